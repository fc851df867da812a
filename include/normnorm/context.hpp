#pragma once
// The saved context: what a training (or statistics-estimating) forward leaves
// for the backward. O(groups) memory: per-group statistics and lambda, never a
// copy of the input.

#include <cstdint>
#include <vector>

#include "normnorm/layers/config.hpp"
#include "normnorm/layout.hpp"
#include "normnorm/math/lambda_search.hpp"
#include "normnorm/noise/noise_source.hpp"
#include "normnorm/options.hpp"
#include "normnorm/shape.hpp"

namespace normnorm {

// What the statistics phase of a forward concluded about a group.
enum class GroupVerdict : char {
  usable,
  non_finite,  // NaN or Inf in the group (or in its sums)
  zero_scale,  // variance + eps == 0: cannot be standardized
  overflows,   // the power transform with this lambda would leave T's range
};

// Evaluation of the batch forms with running statistics: every channel's map is
// fixed, so it is folded once into these (engine/evaluation.hpp) and then only
// read, by any number of threads at once (normnorm::try_evaluate).
template <class T>
struct EvaluationCache {
  LayerConfig config;            // what it was prepared for
  index_t channels = 0;
  bool ready = false;
  bool any_log = false;          // some side is the log side (eta within sqrt(eps) of 0)
  std::vector<T> constants;      // 9 per channel (engine::ChannelMaps)
  std::vector<double> lambda;    // each channel's running lambda
  std::vector<double> key;       // eps, then per channel mean, var, lambda, gamma, beta: what it was built from
  std::vector<float> polynomial_tables;  // EvaluationMap::polynomial, float batch forms: 1 KiB per channel

  // Bytes it holds for `channels` channels (tables: with the polynomial map).
  static std::size_t bytes_for(index_t channels, bool polynomial) {
    const auto c = static_cast<std::size_t>(channels);
    return c * (9 * sizeof(T) + 6 * sizeof(double)) + sizeof(double) + (polynomial ? c * 1024 : 0);
  }
};

template <class T>
struct SavedContext {
  // What made it: backward refuses another config, shape or memory format (the
  // value type is the template's), since every per-group vector below is sized and
  // filled for this one.
  LayerConfig config;
  Layout layout;
  Shape shape;  // the forward's input shape: backward must see the same
  MemoryFormat memory_format = MemoryFormat::contiguous;
  Mode mode = Mode::train;
  bool batch_statistics = true;  // mean, var and lambda came from the group (they carry gradient)
  bool valid = false;            // false until a forward succeeds; a failed forward clears it

  // Per group (layout.num_groups() entries).
  std::vector<double> mean;         // mu (running_mean in batch-form evaluation)
  std::vector<double> var;          // v, the biased variance (running_var in batch-form evaluation)
  std::vector<double> rstd;         // r = 1 / sqrt(v + eps)
  std::vector<double> lambda;       // the lambda used by the transform
  std::vector<double> mean_hd;      // A, the lambda estimate's mean(h d)
  std::vector<double> mean_d;       // D = mean(d)
  std::vector<double> g1, g2;       // first and second derivative estimates of the NLL at lambda = 1
  std::vector<double> noise_scale;  // xi * norm (0 without noise)

  // How the noise was drawn, so backward can replay it for grad_weight.
  NoiseKind noise_kind = NoiseKind::none;
  std::uint64_t noise_seed = 0;
  std::uint64_t noise_call = 0;

  // Scratch kept here so repeated calls allocate once: each group's verdict
  // (forward), and backward's per-block, per-channel accumulators.
  std::vector<GroupVerdict> group_verdict;
  EvaluationCache<T> evaluation;     // evaluation with running statistics: the folded per-channel maps
  std::vector<T> workspace;          // transposed copies for (N, C) and channels-last input (engine/transpose.hpp)
  std::vector<double> channel_scratch;

  // Estimators newton and exact (docs/lambda-search.md): each group's search trace (what
  // the backward differentiates), and the standardized input laid out group-interleaved
  // for the search (lanes = groups), with each group's largest h and -h (from the statistics
  // phase, for the overflow check once lambda is known).
  std::vector<math::LambdaTrace<T>> lambda_traces;
  std::vector<T> lambda_workspace;
  std::vector<double> group_extremes;

  // Bytes of the per-group state for a layout: the size query.
  static std::size_t bytes_for(const Layout& layout) {
    return static_cast<std::size_t>(layout.num_groups()) * 9 * sizeof(double);
  }

  void resize(const Layout& new_layout) {
    layout = new_layout;
    const auto groups = static_cast<std::size_t>(layout.num_groups());
    for (auto* v : {&mean, &var, &rstd, &lambda, &mean_hd, &mean_d, &g1, &g2, &noise_scale}) v->resize(groups);
  }
};

}  // namespace normnorm
