// Batch forms on (N, C) and channels-last input, and instance forms (and groups of
// one channel) on channels-last input, walk the caller's rows in place, one group
// per lane (engine/column_forward.hpp, column_backward.hpp). The same
// calls on the transposed copy (Execution::columns_in_place = false) are the
// reference: outputs, gradients, running statistics and kept noise must be the
// same bits, for every option set, both noise kinds, SIMD and scalar paths,
// partial batches of channels and rows past a reduction block.

#include <catch2/catch.hpp>

#include <unsupported/Eigen/CXX11/ThreadPool>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

struct ColumnCase {
  LayerConfig config;
  Shape shape;
  MemoryFormat format;
};

template <class T>
void check_in_place_matches_copy(const ColumnCase& cc, NoiseKind noise_kind, bool simd, bool keep_noise,
                                 const Eigen::ThreadPoolDevice* device = nullptr) {
  Harness<T> in_place(cc.config, cc.shape), on_copy(cc.config, cc.shape);
  in_place.randomize(21);
  on_copy.randomize(21);
  if (cc.format == MemoryFormat::channels_last) {
    in_place.x = on_copy.x = to_channels_last(in_place.x, cc.shape);
    in_place.grad_out = on_copy.grad_out = to_channels_last(in_place.grad_out, cc.shape);
  }
  std::vector<T> normals(in_place.x.size());
  noise::fill_standard_normals<T>(5, 2, 0, normals.size(), normals.data());
  in_place.noise = on_copy.noise =
      noise_kind == NoiseKind::philox ? NoiseSource<T>::philox(5, 2) : NoiseSource<T>::external(normals.data());
  for (Harness<T>* h : {&in_place, &on_copy}) {
    h->memory_format = cc.format;
    h->execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
    h->execution.keep_noise = keep_noise;
    h->execution.device = device;
  }
  on_copy.execution.columns_in_place = false;
  for (Mode mode : {Mode::train, Mode::train, Mode::eval}) {
    in_place.forward(mode);
    on_copy.forward(mode);
    // The engine walked the rows in place (the knob is not a no-op) where it chose to:
    // not for an evaluation with a fixed map (it has its own in-place path).
    const bool fixed_map = mode == Mode::eval && cc.config.has_running_stats() && cc.config.options.power_transform;
    Layout layout;
    REQUIRE(cc.config.check_layout(cc.shape, layout).ok());
    CHECK(in_place.context.columns_in_place ==
          (!fixed_map && engine::columns_pay_off(layout.channels, layout.group_size(), sizeof(T))));
    CHECK_FALSE(on_copy.context.columns_in_place);
    in_place.backward();
    on_copy.backward();
    CHECK(in_place.out == on_copy.out);
    CHECK(in_place.grad_x == on_copy.grad_x);
    CHECK(in_place.grad_weight == on_copy.grad_weight);
    CHECK(in_place.grad_bias == on_copy.grad_bias);
    CHECK(in_place.running_mean == on_copy.running_mean);
    CHECK(in_place.running_var == on_copy.running_var);
    CHECK(in_place.running_lambda == on_copy.running_lambda);
    CHECK(in_place.running_norm == on_copy.running_norm);
    CHECK(in_place.context.lambda == on_copy.context.lambda);
    if (in_place.context.noise_kept && in_place.context.columns_in_place) {
      // Kept draws: in memory order in place, in the copy's order ((N, C): (1, C, N)) on the copy.
      const Shape copy_order = cc.format == MemoryFormat::channels_last ? cc.shape : Shape{1, cc.shape[1], cc.shape[0]};
      CHECK(in_place.context.kept_noise == to_channels_last(on_copy.context.kept_noise, copy_order));
    }
  }
}

std::vector<Options> option_sets(Form form) {
  std::vector<Options> sets(7, default_options(form));
  sets[1].standardize = false;
  sets[2].estimator = LambdaEstimator::gradient_step;
  sets[3].power_transform = false;
  sets[4].noise_train = 0.0;
  sets[5].affine = false;
  sets[6].track_running_stats = false;  // evaluation from the batch's own statistics
  return sets;
}

// Each case with both noise kinds, the SIMD and scalar paths, with and without kept noise.
template <class T>
void check_every_variant(const std::vector<ColumnCase>& cases, const Options& options) {
  for (const ColumnCase& cc : cases)
    for (NoiseKind kind : {NoiseKind::philox, NoiseKind::external})
      for (bool simd : {true, false})
        for (bool keep : {false, true}) {
          INFO(cc.config.name() << " " << cc.shape.to_string() << (kind == NoiseKind::philox ? " philox" : " external")
                                << (simd ? " simd" : " scalar") << (keep ? " kept" : "") << " standardize "
                                << options.standardize << " power " << options.power_transform << " noise "
                                << options.noise_train << " affine " << options.affine << " running "
                                << options.track_running_stats);
          check_in_place_matches_copy<T>(cc, kind, simd, keep);
        }
}

}  // namespace

TEMPLATE_TEST_CASE("columns walked in place give the transposed copy's results, bit for bit", "[columns]", float,
                   double) {
  for (const Options& options : option_sets(Form::batch_1d)) {
    std::vector<ColumnCase> cases;
    for (index_t channels : {4, 5, 8, 17, 40})
      for (index_t batch : {2, 7, 130})
        if (batch > 2 || options.standardize)  // (two unstandardized values: lambda overflows the transform)
          cases.push_back({LayerConfig::batch_normal_norm_1d(channels, options), Shape{batch, channels}, MemoryFormat::contiguous});
    // Rows past one reduction block (512) and one backward chunk (256).
    cases.push_back({LayerConfig::batch_normal_norm_1d(9, options), Shape{600, 9}, MemoryFormat::contiguous});
    Options options_2d = options, options_3d = options;
    cases.push_back({LayerConfig::batch_normal_norm_2d(6, options_2d), Shape{3, 6, 5, 7}, MemoryFormat::channels_last});
    cases.push_back({LayerConfig::batch_normal_norm_2d(19, options_2d), Shape{2, 19, 17, 31}, MemoryFormat::channels_last});
    cases.push_back({LayerConfig::batch_normal_norm_3d(5, options_3d), Shape{2, 5, 3, 4, 3}, MemoryFormat::channels_last});
    check_every_variant<TestType>(cases, options);
  }
}

// Instance forms: one plane of columns per sample. The backward's per-channel sums
// come in accumulator blocks of consecutive groups (engine/backward.hpp): with at most
// C groups a block (N <= 64) each sum takes one group; with more (N > 64) a block
// spans samples and its sums take several groups, in order.
TEMPLATE_TEST_CASE("instance columns walked in place give the transposed copy's results, bit for bit", "[columns]",
                   float, double) {
  std::vector<Options> sets = option_sets(Form::instance_2d);
  sets.pop_back();  // (running statistics: batch forms only)
  // Every set but the no-affine one (index 5) has an affine, so grad_weight and grad_bias are compared.
  for (std::size_t i = 0; i < sets.size(); ++i) sets[i].affine = i != 5;
  for (const Options& options : sets) {
    std::vector<ColumnCase> cases;
    cases.push_back({LayerConfig::instance_normal_norm_2d(6, options), Shape{3, 6, 5, 7}, MemoryFormat::channels_last});
    cases.push_back({LayerConfig::instance_normal_norm_2d(19, options), Shape{2, 19, 17, 31}, MemoryFormat::channels_last});
    cases.push_back({LayerConfig::instance_normal_norm_2d(40, options), Shape{5, 40, 3, 4}, MemoryFormat::channels_last});
    if (options.standardize) {  // (nine unstandardized values: some group's lambda overflows the transform)
      cases.push_back({LayerConfig::instance_normal_norm_2d(9, options), Shape{70, 9, 3, 3}, MemoryFormat::channels_last});
      // Groups of two backward chunks, several to a block: each chunk's sums add to the block's, in order.
      cases.push_back({LayerConfig::instance_normal_norm_2d(8, options), Shape{66, 8, 17, 17}, MemoryFormat::channels_last});
    }
    cases.push_back({LayerConfig::instance_normal_norm_3d(11, options), Shape{2, 11, 3, 4, 3}, MemoryFormat::channels_last});
    cases.push_back({LayerConfig::group_normal_norm(12, 12, options), Shape{3, 12, 6, 5}, MemoryFormat::channels_last});
    check_every_variant<TestType>(cases, options);
  }
}

TEMPLATE_TEST_CASE("columns in place: the same bits on a thread pool", "[columns][threads]", float, double) {
  Eigen::ThreadPool pool(3);
  Eigen::ThreadPoolDevice device(&pool, 3);
  const Options options = default_options(Form::batch_1d);
  for (const ColumnCase& cc : std::vector<ColumnCase>{
           {LayerConfig::batch_normal_norm_1d(70, options), Shape{33, 70}, MemoryFormat::contiguous},
           {LayerConfig::batch_normal_norm_2d(24, options), Shape{2, 24, 9, 9}, MemoryFormat::channels_last},
           {LayerConfig::instance_normal_norm_2d(24, default_options(Form::instance_2d)), Shape{3, 24, 9, 9},
            MemoryFormat::channels_last},
           {LayerConfig::instance_normal_norm_2d(16, default_options(Form::instance_2d)), Shape{67, 16, 5, 5},
            MemoryFormat::channels_last},
           // (Enough work that the blocks of each plane run on the pool: at most C groups to an accumulator block.)
           {LayerConfig::instance_normal_norm_2d(64, default_options(Form::instance_2d)), Shape{8, 64, 16, 16},
            MemoryFormat::channels_last}}) {
    INFO(cc.shape.to_string());
    check_in_place_matches_copy<TestType>(cc, NoiseKind::philox, true, false, &device);
    check_in_place_matches_copy<TestType>(cc, NoiseKind::philox, true, true, &device);
  }
}

TEST_CASE("columns in place: the searching estimators, few channels, long columns and groups of channels take the copy",
          "[columns]") {
  Options newton = default_options(Form::batch_1d);
  newton.estimator = LambdaEstimator::newton;
  newton.newton_iterations = 3;
  const auto trains_in_place = [](const LayerConfig& config, const Shape& shape, MemoryFormat format) {
    Harness<float> h(config, shape);
    h.randomize(3);
    h.noise = NoiseSource<float>::philox(1, 1);
    h.memory_format = format;
    h.forward(Mode::train);
    REQUIRE(h.context.valid);
    return h.context.columns_in_place;
  };
  const Options defaults = default_options(Form::batch_1d);
  CHECK(trains_in_place(LayerConfig::batch_normal_norm_1d(8, defaults), Shape{16, 8}, MemoryFormat::contiguous));
  CHECK_FALSE(trains_in_place(LayerConfig::batch_normal_norm_1d(8, newton), Shape{16, 8}, MemoryFormat::contiguous));
  CHECK_FALSE(trains_in_place(LayerConfig::batch_normal_norm_1d(4, defaults), Shape{16, 4}, MemoryFormat::contiguous));
  CHECK(trains_in_place(LayerConfig::batch_normal_norm_2d(8, defaults), Shape{2, 8, 32, 32}, MemoryFormat::channels_last));
  CHECK_FALSE(trains_in_place(LayerConfig::batch_normal_norm_2d(8, defaults), Shape{2, 8, 64, 64}, MemoryFormat::channels_last));
  CHECK(trains_in_place(LayerConfig::batch_normal_norm_1d(8, defaults), Shape{4096, 8}, MemoryFormat::contiguous));
  CHECK_FALSE(trains_in_place(LayerConfig::batch_normal_norm_1d(8, defaults), Shape{4097, 8}, MemoryFormat::contiguous));
  const Options instance = default_options(Form::instance_2d);
  CHECK(trains_in_place(LayerConfig::instance_normal_norm_2d(8, instance), Shape{2, 8, 64, 64}, MemoryFormat::channels_last));
  CHECK_FALSE(trains_in_place(LayerConfig::instance_normal_norm_2d(8, instance), Shape{1, 8, 128, 128}, MemoryFormat::channels_last));
  CHECK_FALSE(trains_in_place(LayerConfig::instance_normal_norm_2d(4, instance), Shape{2, 4, 8, 8}, MemoryFormat::channels_last));
  // Groups of several channels (a 2-D block per group) stay on the copy.
  const Options group = default_options(Form::group);
  CHECK(trains_in_place(LayerConfig::group_normal_norm(8, 8, group), Shape{2, 8, 8, 8}, MemoryFormat::channels_last));
  CHECK_FALSE(trains_in_place(LayerConfig::group_normal_norm(4, 8, group), Shape{2, 8, 8, 8}, MemoryFormat::channels_last));
}
