#pragma once
// The saved context: what a forward leaves for the backward, in four parts:
//   - what made it (config, layout, shape, memory format, mode, noise key);
//   - the state the backward reads: per-group statistics and lambda, and the
//     search traces of the newton and exact estimators; O(groups), never a copy
//     of the input (state_bytes());
//   - the workspace: scratch of one call (transposed copies, per-group verdicts,
//     the backward's per-channel sums, the searches' group-interleaved input),
//     reused from call to call or provided by the caller (workspace.hpp);
//   - the evaluation cache of the batch forms with running statistics.
// normnorm::memory_plan (memory_plan.hpp) predicts each part's size exactly.

#include <cstdint>
#include <vector>

#include "normnorm/layer_config.hpp"
#include "normnorm/layout.hpp"
#include "normnorm/math/lambda_search.hpp"
#include "normnorm/noise/noise_source.hpp"
#include "normnorm/options.hpp"
#include "normnorm/shape.hpp"
#include "normnorm/workspace.hpp"

namespace normnorm {

// What the statistics phase of a forward concluded about a group (the engine's
// internal: read through forward's error, never by callers).
namespace engine {
enum class GroupVerdict : char {
  usable,
  non_finite,  // NaN or Inf in the group (or in its sums)
  zero_scale,  // variance + eps == 0: cannot be standardized
  overflows,   // the power transform with this lambda would leave T's range
};
}  // namespace engine

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

  // Bytes it holds now (what memory_plan's evaluation_cache predicts).
  std::size_t bytes() const {
    return constants.capacity() * sizeof(T) + (lambda.capacity() + key.capacity()) * sizeof(double) +
           polynomial_tables.capacity() * sizeof(float);
  }
};

// Where the current call's scratch lies in the workspace (set before the kernel
// runs, read by it; null where the call has no such part). Valid during one call.
template <class T>
struct CallScratch {
  T* transposed = nullptr;            // copies of input, grad_output and noise in the engine's layout
  engine::GroupVerdict* verdicts = nullptr;   // forward: each group's verdict
  double* extremes = nullptr;         // forward, newton / exact: each group's max h and max -h
  T* interleaved = nullptr;           // forward, newton / exact: standardized input, value j of group g at j * G + g
  double* channel_sums = nullptr;     // backward: per block and channel, sum(g) and sum(g z) (over ranks: + 5 per group)
  double* rank_sums = nullptr;        // forward over ranks (distributed): the collectives' per-group records
  T* partials = nullptr;              // backward: per worker thread, one group's u psi_h and d lambda (engine/backward.hpp)
  T* block_noise = nullptr;           // columns in place: per worker thread, one block's Philox draws (column_noise.hpp)
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
  bool columns_in_place = false;  // the forward walked its groups as columns of the caller's rows (kept noise in memory order)
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
  // Execution::keep_noise: the training forward's draws, one per element in the
  // engine's layout, which the backward reads instead of drawing them again.
  std::vector<T> kept_noise;
  bool noise_kept = false;  // kept_noise holds this forward's draws

  // Estimators newton and exact (docs/lambda-search.md): each group's search trace,
  // what the backward differentiates.
  std::vector<math::LambdaTrace<T>> lambda_traces;

  EvaluationCache<T> evaluation;  // evaluation with running statistics: the folded per-channel maps
  Workspace workspace;            // scratch of one call; provide() hands it the caller's memory
  CallScratch<T> scratch;         // where the current call's parts lie in it

  // Bytes of state it holds now (what memory_plan's state predicts).
  std::size_t state_bytes() const {
    std::size_t doubles = 0;
    for (const auto* v : {&mean, &var, &rstd, &lambda, &mean_hd, &mean_d, &g1, &g2, &noise_scale}) doubles += v->capacity();
    return doubles * sizeof(double) + lambda_traces.capacity() * sizeof(math::LambdaTrace<T>) +
           kept_noise.capacity() * sizeof(T);
  }

  void resize(const Layout& new_layout) {
    layout = new_layout;
    const auto groups = static_cast<std::size_t>(layout.num_groups());
    for (auto* v : {&mean, &var, &rstd, &lambda, &mean_hd, &mean_d, &g1, &g2, &noise_scale}) v->resize(groups);
  }
};

}  // namespace normnorm
