// EvaluationMap::polynomial (engine/polynomial_map.hpp): its error against the
// long-double transform over the range it covers, its layer-level agreement
// with the exact map, the values it hands to the exact map (beyond the table,
// NaN), its table cache, and double (always exact).

#include <cmath>
#include <limits>
#include <utility>

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

// Largest |polynomial - y(h)| / (1 + |y(h)|) over a dense grid of h in (-15, 15), gamma 1, beta 0.
template <class V>
double worst_error(double lambda, double eps) {
  alignas(64) float table[engine::pm::table_size];
  engine::pm::build_channel_table(lambda, std::sqrt(eps), 1.0, 0.0, table);
  const engine::PolynomialChannel<V> map(table);
  constexpr int width = static_cast<int>(math::lane_traits<V>::width);
  double worst = 0;
  alignas(64) float h[width], y[width];
  for (int i = 0; i < 60000; i += width) {
    for (int l = 0; l < width; ++l) h[l] = float(-14.99 + 29.98 * (i + l) / 60000.0);
    math::store(y, map(math::load<V>(h)));
    for (int l = 0; l < width; ++l) {
      const long double want = reference_transform(h[l], lambda, std::sqrt(eps));
      worst = std::max(worst, double(std::fabs(y[l] - want) / (1 + std::fabs(want))));
    }
  }
  return worst;
}

// The same layer with the exact and with the polynomial evaluation map.
std::pair<LayerConfig, LayerConfig> exact_and_polynomial(Form form, index_t channels) {
  Options options = default_options(form);
  auto make = [&](const Options& o) {
    return form == Form::batch_1d ? LayerConfig::batch_normal_norm_1d(channels, o)
                                  : LayerConfig::batch_normal_norm_2d(channels, o);
  };
  const LayerConfig exact = make(options);
  options.evaluation_map = EvaluationMap::polynomial;
  return {exact, make(options)};
}

}  // namespace

TEST_CASE("The polynomial map is within 1e-6 (1 + |y|) of the transform over its range", "[polynomial_map]") {
  // Running lambdas in practice lie in about [0, 2]; the grid goes well beyond.
  for (double lambda : {-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0}) {
    for (double eps : {1e-5, 1e-3}) {
      const double scalar = worst_error<float>(lambda, eps);
      const double simd = worst_error<xsimd::batch<float>>(lambda, eps);
      INFO("lambda " << lambda << " eps " << eps << ": worst " << scalar << " (scalar), " << simd << " (SIMD)");
      CHECK(scalar <= 1e-6);
      CHECK(simd <= 1e-6);
    }
  }
}

TEST_CASE("Layers with the polynomial map agree with the exact map, and beyond the table and NaN go exact", "[polynomial_map]") {
  for (const bool simd : {true, false}) {
    const auto [exact_config, polynomial_config] = exact_and_polynomial(Form::batch_2d, 5);
    Harness<float> exact(exact_config, Shape{3, 5, 7, 9}), polynomial(polynomial_config, Shape{3, 5, 7, 9});
    for (auto* layer : {&exact, &polynomial}) {
      layer->randomize(11);
      layer->execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
      for (std::size_t c = 0; c < 5; ++c) layer->running_lambda[c] = float(0.4 + 0.3 * double(c));
      layer->x[3] = 40.0f;  // 1 + |h| beyond 16: the exact map
      layer->x[100] = std::numeric_limits<float>::quiet_NaN();
      layer->forward(Mode::eval);
      layer->backward();  // differentiates the exact map in both
    }
    INFO((simd ? "SIMD" : "scalar"));
    for (std::size_t i = 0; i < exact.out.size(); ++i) {
      INFO("element " << i);
      if (i == 100) {
        CHECK(std::isnan(polynomial.out[i]));
        continue;
      }
      CHECK(std::abs(polynomial.out[i] - exact.out[i]) <= 2e-6 * (1 + std::abs(exact.out[i])));
    }
    CHECK(polynomial.out[3] == exact.out[3]);
    double worst_grad = 0;
    for (std::size_t i = 0; i < exact.grad_x.size(); ++i)
      if (i != 100) worst_grad = std::max(worst_grad, double(std::abs(polynomial.grad_x[i] - exact.grad_x[i])));
    CHECK(worst_grad == 0);  // the backward is the exact map's in both
  }
}

TEST_CASE("The polynomial tables follow the running statistics and parameters", "[polynomial_map]") {
  const auto [exact_config, polynomial_config] = exact_and_polynomial(Form::batch_2d, 2);
  Harness<float> layer(polynomial_config, Shape{2, 2, 4, 8});
  layer.randomize(3);
  layer.forward(Mode::eval);
  const auto first = layer.out;
  layer.forward(Mode::eval);
  CHECK(layer.out == first);  // tables kept
  layer.running_lambda[1] = 1.7f;
  layer.forward(Mode::eval);
  Harness<float> exact(exact_config, Shape{2, 2, 4, 8});
  exact.randomize(3);
  exact.running_lambda[1] = 1.7f;
  exact.forward(Mode::eval);
  for (std::size_t i = 0; i < layer.out.size(); ++i)
    CHECK(std::abs(layer.out[i] - exact.out[i]) <= 2e-6 * (1 + std::abs(exact.out[i])));
  layer.bias[0] = 5.0f;  // an affine parameter too
  layer.forward(Mode::eval);
  CHECK(layer.out[0] != first[0]);
}

TEST_CASE("double layers evaluate exactly whatever evaluation_map says", "[polynomial_map]") {
  const auto [exact_config, polynomial_config] = exact_and_polynomial(Form::batch_2d, 3);
  Harness<double> exact(exact_config, Shape{2, 3, 4, 5}), polynomial(polynomial_config, Shape{2, 3, 4, 5});
  for (auto* layer : {&exact, &polynomial}) {
    layer->randomize(5);
    layer->forward(Mode::eval);
  }
  CHECK(polynomial.out == exact.out);
}

TEST_CASE("(N, C) and channels-last input evaluate in place with the exact map", "[polynomial_map]") {
  // Their lanes run across channels, so the polynomial map (lanes within one channel)
  // gives way to the exact one: no transposed copy, bit-identical to exact.
  struct Case {
    LayerConfig exact, polynomial;
    Shape shape;
    MemoryFormat format;
  };
  const auto batch_1d = exact_and_polynomial(Form::batch_1d, 5), batch_2d = exact_and_polynomial(Form::batch_2d, 6);
  const Case cases[] = {
      {batch_1d.first, batch_1d.second, Shape{37, 5}, MemoryFormat::contiguous},
      {batch_2d.first, batch_2d.second, Shape{2, 6, 5, 7}, MemoryFormat::channels_last},
  };
  for (const Case& c : cases) {
    Harness<float> exact(c.exact, c.shape), polynomial(c.polynomial, c.shape);
    for (auto* layer : {&exact, &polynomial}) {
      layer->randomize(21);
      layer->memory_format = c.format;
      for (std::size_t k = 0; k < layer->running_lambda.size(); ++k) layer->running_lambda[k] = float(0.5 + 0.2 * double(k));
      layer->forward(Mode::eval);
    }
    INFO(c.exact.name() << " " << c.shape.to_string());
    CHECK(polynomial.out == exact.out);
    CHECK(polynomial.context.workspace.capacity() == 0);  // no transposed copy, no scratch at all
  }
}

TEST_CASE("Channels whose running lambda is outside [-2, 4] keep the exact map", "[polynomial_map]") {
  // There the Taylor remainder grows with |binom(et - 1, 6)| (measured with gamma 1: 2.0e-6
  // (1 + |y|) at lambda -3, 4.5e-6 at 6, 1.6e-5 at 8). The exact map must be used, bit for bit.
  const auto [exact_config, polynomial_config] = exact_and_polynomial(Form::batch_2d, 3);
  Harness<float> exact(exact_config, Shape{2, 3, 4, 16}), polynomial(polynomial_config, Shape{2, 3, 4, 16});
  for (auto* layer : {&exact, &polynomial}) {
    layer->randomize(8);
    layer->running_lambda = {0.5f, 8.0f, -3.0f};
    layer->forward(Mode::eval);
  }
  const std::size_t per_channel = 4 * 16;
  bool channel0_differs = false;
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t i = 0; i < per_channel; ++i) {
        const std::size_t at = (n * 3 + c) * per_channel + i;
        if (c == 0) {
          channel0_differs = channel0_differs || polynomial.out[at] != exact.out[at];
          CHECK(std::abs(polynomial.out[at] - exact.out[at]) <= 2e-6 * (1 + std::abs(exact.out[at])));
        } else {
          CHECK(polynomial.out[at] == exact.out[at]);
        }
      }
  CHECK(channel0_differs);  // channel 0 did use its table
}
