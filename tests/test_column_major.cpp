// Column-major input (Eigen's default layout, the first axis fastest) of every
// form gives the row-major results. The batch forms run on it in place (each
// channel is runs of N values), the others on a copy (engine/placement.hpp), so
// the order of the group sums can differ: equal to within rounding, and exactly
// equal where the engine walks the values in the row-major order. Philox draws
// are keyed by the element's offset in memory.

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "normnorm/distributed/in_process.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

// The offset in column-major memory of each row-major index of `shape`.
std::vector<index_t> column_major_offsets(const Shape& shape) {
  std::vector<index_t> offsets(static_cast<std::size_t>(element_count(shape)));
  for (index_t flat = 0; flat < element_count(shape); ++flat) {
    index_t rest = flat, offset = 0, stride = element_count(shape);
    for (int axis = shape.rank() - 1; axis >= 0; --axis) {
      stride /= shape[axis];  // the column-major stride of `axis`: product of the axes before it
      offset += (rest % shape[axis]) * stride;
      rest /= shape[axis];
    }
    offsets[static_cast<std::size_t>(flat)] = offset;
  }
  return offsets;
}

template <class T>
std::vector<T> to_column_major(const std::vector<T>& row_major, const Shape& shape) {
  const auto offsets = column_major_offsets(shape);
  std::vector<T> column_major(row_major.size());
  for (std::size_t i = 0; i < row_major.size(); ++i) column_major[static_cast<std::size_t>(offsets[i])] = row_major[i];
  return column_major;
}

template <class T>
std::vector<T> from_column_major(const std::vector<T>& column_major, const Shape& shape) {
  const auto offsets = column_major_offsets(shape);
  std::vector<T> row_major(column_major.size());
  for (std::size_t i = 0; i < row_major.size(); ++i) row_major[i] = column_major[static_cast<std::size_t>(offsets[i])];
  return row_major;
}

template <class T>
double worst_difference(const std::vector<T>& got, const std::vector<T>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - double(want[i])) / (1.0 + std::abs(double(want[i]))));
  return worst;
}

struct ColumnCase {
  LayerConfig config;
  Shape shape;
  bool same_order;  // the engine sums in the row-major order: bit-identical
};

std::vector<ColumnCase> column_cases() {
  return {
      {LayerConfig::batch_normal_norm_1d(5, default_options(Form::batch_1d)), Shape{12, 5}, true},
      {LayerConfig::batch_normal_norm_1d(3, default_options(Form::batch_1d)), Shape{4, 3, 10}, false},
      {LayerConfig::batch_normal_norm_2d(5, default_options(Form::batch_2d)), Shape{3, 5, 4, 7}, false},
      {LayerConfig::instance_normal_norm_2d(4, default_options(Form::instance_2d)), Shape{2, 4, 6, 5}, false},
      {LayerConfig::instance_normal_norm_1d(3, default_options(Form::instance_1d)), Shape{2, 3, 11}, true},
      {LayerConfig::group_normal_norm(3, 6, default_options(Form::group)), Shape{2, 6, 5, 3}, false},
      {LayerConfig::group_normal_norm(2, 4, default_options(Form::group)), Shape{3, 4, 9}, true},
      {LayerConfig::layer_normal_norm(Shape{9}, default_options(Form::layer)), Shape{6, 9}, true},
      {LayerConfig::layer_normal_norm(Shape{3, 7}, default_options(Form::layer)), Shape{4, 3, 7}, false},
  };
}

// The layer form's parameters follow normalized_shape in the input's order.
template <class T>
std::vector<T> parameters_in_column_major(const ColumnCase& c, const std::vector<T>& row_major) {
  if (c.config.form != Form::layer) return row_major;
  return to_column_major(row_major, c.config.normalized_shape);
}

template <class T>
void check_column_major(const ColumnCase& c, NoiseKind noise_kind, bool simd) {
  Harness<T> rows(c.config, c.shape), columns(c.config, c.shape);
  rows.randomize(21);
  rows.execution.simd_path = columns.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
  columns.execution.keep_noise = simd;  // kept draws (at the engine's offsets) or replayed ones: the same results
  columns.memory_format = MemoryFormat::column_major;
  columns.x = to_column_major(rows.x, c.shape);
  columns.grad_out = to_column_major(rows.grad_out, c.shape);
  columns.weight = parameters_in_column_major(c, rows.weight);
  columns.bias = parameters_in_column_major(c, rows.bias);
  // The draws column-major memory offset m takes, as row-major external noise.
  std::vector<T> draws(rows.x.size());
  noise::fill_standard_normals<T>(5, 2, 0, draws.size(), draws.data());
  const std::vector<T> draws_by_row = from_column_major(draws, c.shape);
  rows.noise = NoiseSource<T>::external(draws_by_row.data());
  columns.noise = noise_kind == NoiseKind::philox ? NoiseSource<T>::philox(5, 2) : NoiseSource<T>::external(draws.data());
  const double tolerance = sizeof(T) == 4 ? 2e-4 : 1e-11;
  for (Mode mode : {Mode::train, Mode::train, Mode::eval}) {
    rows.forward(mode);
    columns.forward(mode);
    rows.backward();
    columns.backward();
    const auto out = from_column_major(columns.out, c.shape);
    const auto grad_x = from_column_major(columns.grad_x, c.shape);
    const auto grad_weight = parameters_in_column_major(c, rows.grad_weight);
    const auto grad_bias = parameters_in_column_major(c, rows.grad_bias);
    const bool fixed_map = mode == Mode::eval && c.config.has_running_stats();
    if (c.same_order && !fixed_map) {
      CHECK(out == rows.out);
      CHECK(grad_x == rows.grad_x);
      CHECK(columns.grad_weight == grad_weight);
      CHECK(columns.grad_bias == grad_bias);
      CHECK(columns.running_lambda == rows.running_lambda);
    }
    CHECK(worst_difference(out, rows.out) <= tolerance);
    CHECK(worst_difference(grad_x, rows.grad_x) <= tolerance);
    CHECK(worst_difference(columns.grad_weight, grad_weight) <= tolerance);
    CHECK(worst_difference(columns.grad_bias, grad_bias) <= tolerance);
    CHECK(worst_difference(columns.running_mean, rows.running_mean) <= tolerance);
    CHECK(worst_difference(columns.running_var, rows.running_var) <= tolerance);
    CHECK(worst_difference(columns.running_lambda, rows.running_lambda) <= tolerance);
    CHECK(worst_difference(columns.running_norm, rows.running_norm) <= tolerance);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("column-major input gives the row-major results", "[column_major]", float, double) {
  for (const ColumnCase& c : column_cases())
    for (NoiseKind kind : {NoiseKind::philox, NoiseKind::external})
      for (bool simd : {true, false}) {
        INFO(c.config.name() << " " << c.shape.to_string() << (kind == NoiseKind::philox ? " philox" : " external")
                             << (simd ? " simd" : " scalar"));
        check_column_major<TestType>(c, kind, simd);
      }
}

TEST_CASE("column-major batch input runs in place; the other forms through a copy", "[column_major][memory_plan]") {
  const Shape shape{3, 4, 5, 6};
  const auto workspace = [&](const LayerConfig& config, MemoryFormat format) {
    return memory_plan<float>(config, shape, Mode::train, format).forward_workspace;
  };
  const LayerConfig batch = LayerConfig::batch_normal_norm_2d(4);
  const LayerConfig instance = LayerConfig::instance_normal_norm_2d(4);
  // A copy would add the input's 360 floats (with noise: three times that).
  CHECK(workspace(batch, MemoryFormat::column_major) == workspace(batch, MemoryFormat::contiguous));
  CHECK(workspace(instance, MemoryFormat::column_major) >=
        workspace(instance, MemoryFormat::contiguous) + 360 * sizeof(float));
}

TEST_CASE("column-major Eigen maps and tensors give the row-major results", "[column_major][eigen]") {
  namespace ne = normnorm::eigen;
  const LayerConfig config = LayerConfig::instance_normal_norm_2d(3, default_options(Form::instance_2d));
  const Shape shape{2, 3, 4, 5};
  Harness<double> reference(config, shape);
  reference.randomize(3);
  std::vector<double> draws(reference.x.size());
  noise::fill_standard_normals<double>(8, 1, 0, draws.size(), draws.data());
  const std::vector<double> draws_by_row = from_column_major(draws, shape);
  reference.noise = NoiseSource<double>::external(draws_by_row.data());
  reference.forward(Mode::train);
  reference.backward();

  const auto x = to_column_major(reference.x, shape);
  const auto grad_out = to_column_major(reference.grad_out, shape);
  std::vector<double> out(x.size()), grad_x(x.size()), grad_weight(3), grad_bias(3);
  SavedContext<double> context;
  const ne::AffineMaps<double> affine(ne::ConstVectorMap<double>(reference.weight.data(), 3),
                                      ne::ConstVectorMap<double>(reference.bias.data(), 3));
  ne::Forward<double> forward{config};
  forward(Mode::train, ne::ConstColMajorMap<double, 4>(x.data(), 2, 3, 4, 5), ne::ColMajorMap<double, 4>(out.data(), 2, 3, 4, 5),
          affine, RunningStats<double>{}, NoiseSource<double>::philox(8, 1), context);
  CHECK(context.shape == shape);
  CHECK(context.memory_format == MemoryFormat::column_major);
  ne::Backward<double> backward{config};
  backward(ne::ConstColMajorMap<double, 4>(x.data(), 2, 3, 4, 5), ne::ConstColMajorMap<double, 4>(grad_out.data(), 2, 3, 4, 5),
           affine, ne::ColMajorMap<double, 4>(grad_x.data(), 2, 3, 4, 5),
           ne::AffineGradMaps<double>(ne::VectorMap<double>(grad_weight.data(), 3), ne::VectorMap<double>(grad_bias.data(), 3)),
           context);
  CHECK(worst_difference(from_column_major(out, shape), reference.out) <= 1e-12);
  CHECK(worst_difference(from_column_major(grad_x, shape), reference.grad_x) <= 1e-12);
  CHECK(worst_difference(grad_weight, reference.grad_weight) <= 1e-12);

  // A column-major map with channels_last set is refused, nothing written.
  forward.memory_format = MemoryFormat::channels_last;
  std::fill(out.begin(), out.end(), 7.0);
  const Status refused = forward.try_call(Mode::train, ne::ConstColMajorMap<double, 4>(x.data(), 2, 3, 4, 5),
                                          ne::ColMajorMap<double, 4>(out.data(), 2, 3, 4, 5), affine,
                                          RunningStats<double>{}, NoiseSource<double>::philox(8, 1), context);
  CHECK(!refused.ok());
  CHECK(out == std::vector<double>(out.size(), 7.0));

  // The module's tensor overloads: a column-major Eigen::Tensor in, one out (no noise:
  // the module draws its own).
  Options quiet_options = default_options(Form::instance_2d);
  quiet_options.noise_train = 0;
  const LayerConfig quiet_config = LayerConfig::instance_normal_norm_2d(3, quiet_options);
  Harness<double> quiet(quiet_config, shape);
  quiet.x = reference.x;
  quiet.weight = reference.weight;
  quiet.bias = reference.bias;
  quiet.forward(Mode::train);
  NormalNormModule<double> module(quiet_config);
  module.weight() = reference.weight;
  module.bias() = reference.bias;
  Eigen::Tensor<double, 4, Eigen::ColMajor> input(2, 3, 4, 5);
  std::copy(x.begin(), x.end(), input.data());
  const Eigen::Tensor<double, 4, Eigen::ColMajor> output = module.forward(input);
  const std::vector<double> module_out(output.data(), output.data() + output.size());
  CHECK(worst_difference(from_column_major(module_out, shape), quiet.out) <= 1e-12);
}

TEST_CASE("column_major with a Reducer is refused, nothing written", "[column_major][validation]") {
  InProcessGroup group(1);
  InProcessReducer reducer(group, 0);
  Harness<float> layer(LayerConfig::batch_normal_norm_2d(3), Shape{2, 3, 4, 4});
  layer.memory_format = MemoryFormat::column_major;
  layer.noise = NoiseSource<float>::philox(1, 1);
  layer.randomize(1);
  layer.execution.reducer = &reducer;
  std::fill(layer.out.begin(), layer.out.end(), 5.f);
  CHECK_THROWS_WITH(layer.forward(Mode::train), Catch::Contains("column_major") && Catch::Contains("Reducer"));
  CHECK(layer.out == std::vector<float>(layer.out.size(), 5.f));
  CHECK(layer.running_mean == std::vector<float>(3, 0.f));
}

namespace {

template <class T, class Arch>
void check_transposes_against_elementwise() {
  // Packed (N, C) and channels-last shapes, and the column-major copy's strided batches,
  // with sides that are and are not multiples of every register block.
  const std::vector<engine::Transposition> cases = {
      engine::Transposition::packed(1, 128, 784), engine::Transposition::packed(1, 37, 5),
      engine::Transposition::packed(3, 20, 16),   engine::Transposition::packed(2, 64, 8),
      engine::Transposition{6, 35, 9, 9, 6 * 9, 35, 6 * 35},  // column-major (9, 6, 5, 7), per channel
  };
  for (const engine::Transposition& t : cases) {
    const index_t span = (t.batches - 1) * t.caller_batch_stride + (t.rows - 1) * t.caller_row_stride + t.cols;
    std::vector<T> caller(static_cast<std::size_t>(span)), copy(static_cast<std::size_t>(t.elements()), T(-1));
    for (std::size_t i = 0; i < caller.size(); ++i) caller[i] = T(i) * T(0.5) + T(1);
    engine::transpose<T, Arch>(t, caller.data(), copy.data(), true, engine::workers_on(nullptr));
    bool all_equal = true;
    for (index_t b = 0; b < t.batches; ++b)
      for (index_t r = 0; r < t.rows; ++r)
        for (index_t c = 0; c < t.cols; ++c)
          all_equal = all_equal && copy[static_cast<std::size_t>(b * t.engine_batch_stride + c * t.engine_row_stride + r)] ==
                                       caller[static_cast<std::size_t>(b * t.caller_batch_stride + r * t.caller_row_stride + c)];
    CHECK(all_equal);
    std::vector<T> back(caller.size(), T(0));
    engine::transpose<T, Arch>(t, copy.data(), back.data(), false, engine::workers_on(nullptr));
    CHECK(back == caller);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("the engine's transposes match an element-by-element one", "[column_major][channels_last]", float, double) {
  check_transposes_against_elementwise<TestType, xsimd::default_arch>();
  check_transposes_against_elementwise<TestType, math::scalar_arch>();
}

TEST_CASE("column-major results do not depend on the thread count", "[column_major][threads]") {
  Eigen::ThreadPool pool(3);
  Eigen::ThreadPoolDevice device(&pool, 3);
  const std::vector<FormCase> cases = {
      {LayerConfig::batch_normal_norm_2d(6, default_options(Form::batch_2d)), Shape{8, 6, 5, 7}},
      {LayerConfig::instance_normal_norm_2d(4, default_options(Form::instance_2d)), Shape{5, 4, 6, 9}},
      {LayerConfig::layer_normal_norm(Shape{6, 5}, default_options(Form::layer)), Shape{7, 6, 5}},
  };
  for (const FormCase& c : cases) {
    INFO(c.config.name() << " " << c.shape.to_string());
    Harness<float> serial(c.config, c.shape), pooled(c.config, c.shape);
    for (Harness<float>* layer : {&serial, &pooled}) {
      layer->randomize(4);
      layer->memory_format = MemoryFormat::column_major;
      layer->noise = NoiseSource<float>::philox(3, 9);
    }
    pooled.execution.device = &device;
    for (Mode mode : {Mode::train, Mode::eval}) {
      serial.forward(mode);
      pooled.forward(mode);
      serial.backward();
      pooled.backward();
      CHECK(pooled.out == serial.out);
      CHECK(pooled.grad_x == serial.grad_x);
      CHECK(pooled.grad_weight == serial.grad_weight);
      CHECK(pooled.running_lambda == serial.running_lambda);
    }
  }
}

TEST_CASE("column-major bfloat16 storage gives the row-major results", "[column_major][storage]") {
  using B = Eigen::bfloat16;
  Options options = default_options(Form::instance_2d);
  options.noise_train = 0;  // the comparison is of layouts, not of draws
  const LayerConfig config = LayerConfig::instance_normal_norm_2d(3, options);
  const Shape shape{2, 3, 6, 5};
  Harness<float> source(config, shape);
  source.randomize(5);
  std::vector<B> x_rows(source.x.size()), grad_rows(source.x.size());
  for (std::size_t i = 0; i < x_rows.size(); ++i) {
    x_rows[i] = B(source.x[i]);
    grad_rows[i] = B(source.grad_out[i]);
  }
  const std::vector<B> x_columns = to_column_major(x_rows, shape), grad_columns = to_column_major(grad_rows, shape);
  std::vector<float> to_float_rows, to_float_columns;
  const auto run = [&](const std::vector<B>& x, const std::vector<B>& grad, MemoryFormat format) {
    std::vector<B> out(x.size()), grad_x(x.size());
    std::vector<float> grad_weight(3), grad_bias(3);
    SavedContext<float> context;
    ForwardArgs<B> forward_args;
    forward_args.input = x.data();
    forward_args.shape = shape;
    forward_args.output = out.data();
    forward_args.weight = {source.weight.data(), 3};
    forward_args.bias = {source.bias.data(), 3};
    forward_args.memory_format = format;
    forward(config, Mode::train, forward_args, context);
    BackwardArgs<B> backward_args;
    backward_args.input = x.data();
    backward_args.shape = shape;
    backward_args.grad_output = grad.data();
    backward_args.weight = {source.weight.data(), 3};
    backward_args.grad_input = grad_x.data();
    backward_args.grad_weight = grad_weight.data();
    backward_args.grad_bias = grad_bias.data();
    backward_args.memory_format = format;
    backward(config, backward_args, context);
    std::vector<float> all;
    for (B v : out) all.push_back(float(v));
    for (B v : grad_x) all.push_back(float(v));
    return std::make_pair(all, grad_weight);
  };
  const auto rows = run(x_rows, grad_rows, MemoryFormat::contiguous);
  const auto columns = run(x_columns, grad_columns, MemoryFormat::column_major);
  const std::size_t n = x_rows.size();
  const std::vector<float> out_columns(columns.first.begin(), columns.first.begin() + static_cast<std::ptrdiff_t>(n));
  const std::vector<float> grad_x_columns(columns.first.begin() + static_cast<std::ptrdiff_t>(n), columns.first.end());
  const std::vector<float> out_rows(rows.first.begin(), rows.first.begin() + static_cast<std::ptrdiff_t>(n));
  const std::vector<float> grad_x_rows(rows.first.begin() + static_cast<std::ptrdiff_t>(n), rows.first.end());
  // Sums in another order may move a value across one bfloat16 rounding boundary (2^-8).
  CHECK(worst_difference(from_column_major(out_columns, shape), out_rows) <= 1e-2);
  CHECK(worst_difference(from_column_major(grad_x_columns, shape), grad_x_rows) <= 1e-2);
  CHECK(worst_difference(columns.second, rows.second) <= 1e-4);
}

TEST_CASE("column-major prepared evaluation and module inference equal the forward's evaluation",
          "[column_major][evaluate]") {
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(4, default_options(Form::batch_2d));
  const Shape shape{3, 4, 5, 6};
  Harness<float> layer(config, shape);
  layer.randomize(8);
  layer.memory_format = MemoryFormat::column_major;
  layer.noise = NoiseSource<float>::philox(2, 2);
  for (int step = 0; step < 3; ++step) layer.forward(Mode::train);  // running statistics away from their start
  layer.forward(Mode::eval);

  EvaluationCache<float> cache;
  prepare_evaluation(config, Span<const float>{layer.weight.data(), 4}, Span<const float>{layer.bias.data(), 4},
                     layer.running(), cache);
  std::vector<float> evaluated(layer.x.size());
  EvaluateArgs<float> args;
  args.input = layer.x.data();
  args.shape = shape;
  args.output = evaluated.data();
  args.memory_format = MemoryFormat::column_major;
  evaluate(config, args, cache);
  CHECK(evaluated == layer.out);

  NormalNormModule<float> module(config);
  module.weight() = layer.weight;
  module.bias() = layer.bias;
  std::copy(layer.running_mean.begin(), layer.running_mean.end(), module.running_mean().data);
  std::copy(layer.running_var.begin(), layer.running_var.end(), module.running_var().data);
  std::copy(layer.running_lambda.begin(), layer.running_lambda.end(), module.running_lambda().data);
  std::copy(layer.running_norm.begin(), layer.running_norm.end(), module.running_norm().data);
  module.eval();
  std::vector<float> inferred(layer.x.size());
  module.infer(layer.x.data(), shape, inferred.data(), MemoryFormat::column_major);
  CHECK(inferred == layer.out);
}
