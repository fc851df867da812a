// Training noise inside the layers: z = y + xi * norm * n with n keyed by the
// element's flat index, reproducible, the same through Philox or as external
// draws, and advanced by the module's call counter.

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

TEST_CASE("training noise is xi * norm * the Philox draw of each element", "[noise]") {
  for (const FormCase& fc : form_cases(Options{}, false)) {
    INFO(fc.config.name());
    Harness<double> noisy(fc.config, fc.shape), clean(fc.config, fc.shape);
    noisy.randomize(5);
    clean.randomize(5);
    clean.config.options.noise_train = 0;
    noisy.noise = NoiseSource<double>::philox(77, 3);
    noisy.forward(Mode::train);
    clean.forward(Mode::train);
    const auto groups = noisy.config.layout_for(noisy.shape);
    const double xi = noisy.config.options.noise_train;
    CHECK(xi == (fc.config.form == Form::layer ? 1.0 : 0.4));
    // Recover each element's draw from the outputs: (out - clean) / (gamma * sigma).
    const auto affine_of = [&](std::size_t i) {
      if (fc.config.form == Form::layer) return i % static_cast<std::size_t>(fc.config.num_affine());
      return (i / static_cast<std::size_t>(groups.inner)) % static_cast<std::size_t>(groups.channels);
    };
    for (index_t g = 0; g < groups.num_groups(); ++g) CHECK(noisy.context.noise_scale[g] > 0);
    std::size_t matched = 0;
    for (index_t g = 0; g < groups.num_groups(); ++g) {
      const double sigma = noisy.context.noise_scale[g];
      for (index_t s = 0; s < groups.segments_per_group(); ++s)
        for (index_t k = 0; k < groups.segment_length(); ++k) {
          const auto i = static_cast<std::size_t>(groups.segment_offset(g, s) + k);
          const double draw = (noisy.out[i] - clean.out[i]) / (noisy.weight[affine_of(i)] * sigma);
          CHECK(draw == Approx(noise::standard_normal(77, 3, i)).margin(1e-9));
          ++matched;
        }
    }
    CHECK(matched == noisy.x.size());
  }
}

TEST_CASE("external draws give the same result as the generator they came from", "[noise]") {
  const FormCase fc = form_cases(Options{}, false)[1];
  Harness<float> philox(fc.config, fc.shape), external(fc.config, fc.shape);
  philox.randomize(8);
  external.randomize(8);
  std::vector<float> draws(philox.x.size());
  noise::fill_standard_normals<float>(5, 9, 0, draws.size(), draws.data());
  philox.noise = NoiseSource<float>::philox(5, 9);
  external.noise = NoiseSource<float>::external(draws.data());
  philox.forward(Mode::train);
  external.forward(Mode::train);
  CHECK(philox.out == external.out);
  philox.backward();
  external.backward();
  CHECK(philox.grad_weight == external.grad_weight);
  CHECK(philox.grad_x == external.grad_x);
}

TEST_CASE("a module's noise is reproducible from its seed and advances per training call", "[noise]") {
  const Shape shape{16, 4};
  std::vector<float> x(64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(double(i)) * 3 + std::exp(0.01 * double(i)));
  BatchNormalNorm1d<float> a(4, default_options(Form::batch_1d), /*seed=*/42), b(4, default_options(Form::batch_1d), 42);
  std::vector<float> ya1(64), ya2(64), yb1(64), yb2(64);
  a.forward(x.data(), shape, ya1.data());
  a.forward(x.data(), shape, ya2.data());
  b.forward(x.data(), shape, yb1.data());
  b.forward(x.data(), shape, yb2.data());
  CHECK(ya1 == yb1);
  CHECK(ya2 == yb2);
  CHECK(ya1 != ya2);
  CHECK(a.training_calls() == 2);
  a.eval();
  a.forward(x.data(), shape, ya1.data());
  CHECK(a.training_calls() == 2);  // evaluation draws nothing
}
