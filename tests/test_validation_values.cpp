// What bad input gets (spec section 6): every public entry point rejects bad
// arguments with std::invalid_argument (non-finite training input with
// std::domain_error), naming the layer and the offending argument, before any
// caller-visible state changes; "unchanged" is checked bit for bit
// (validation_support.hpp).
// This file: non-finite input, in training and in evaluation.

#include <catch2/catch.hpp>

#include "validation_support.hpp"

// ---- non-finite input --------------------------------------------------------------------

TEMPLATE_TEST_CASE("Non-finite training input is a domain_error naming the group and nothing changes", "[validation]",
                   float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const T poison : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
      INFO(form.name << ", poison " << poison << " in group " << form.poison_group);
      REQUIRE(group_of(form.config, form.shape, form.poison_offset) == form.poison_group);
      const std::string group = "group " + std::to_string(form.poison_group) + " ";
      const auto p = static_cast<std::size_t>(form.poison_offset);
      const index_t n = element_count(form.shape);

      // Raw API.
      {
        Buffers<T> b(form.config, form.shape);
        const T clean = b.input[p];
        b.input[p] = poison;
        const auto before = snapshot(b);
        auto call = [&] { b.forward(Mode::train); };
        NN_CHECK_THROWS(std::domain_error, call, form.name, group);
        CHECK(changes(b, before) == "");

        // A failed forward leaves no context: backward refuses.
        Gradients<T> g(form.config.num_affine());
        auto backward_call = [&] { nn::backward(form.config, backward_args(b, g), b.context); };
        NN_CHECK_THROWS(std::invalid_argument, backward_call, form.name, "context");
        CHECK(g.untouched());

        // The next valid call is the same as if the failed one never happened.
        b.input[p] = clean;
        REQUIRE_NOTHROW(b.forward(Mode::train));
        const Buffers<T> reference = reference_run<T>(form.config, form.shape, Mode::train);
        CHECK(same_bits(b.output, reference.output));
        CHECK(same_running(b, reference));
      }

      // Module: the noise counter does not move either.
      {
        PrimedModule<T> m(form, Mode::train);
        PrimedModule<T> twin(form, Mode::train);
        const T clean = m.input[p];
        m.input[p] = poison;
        const auto before = state_of(m.module);
        auto call = [&] { m.module.forward(m.input.data(), form.shape, m.output.data()); };
        NN_CHECK_THROWS(std::domain_error, call, form.name, group);
        CHECK(all_sentinel(m.output));
        CHECK(module_changes(m.module, before) == "context ");  // documented: a failed forward clears it
        CHECK_FALSE(m.module.context().valid);

        m.input[p] = clean;
        REQUIRE_NOTHROW(m.module.forward(m.input.data(), form.shape, m.output.data()));
        twin.module.forward(twin.input.data(), form.shape, twin.output.data());
        CHECK(m.module.training_calls() == before.calls + 1);
        CHECK(same_bits(m.output, twin.output));
        CHECK(module_changes(m.module, state_of(twin.module)) == "");
        for (index_t i = 0; i < n; ++i) CHECK(std::isfinite(m.output[static_cast<std::size_t>(i)]));
      }
    }
  }
}

TEMPLATE_TEST_CASE("Evaluation with running statistics: a NaN reaches its own element only", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    if (!form.config.has_running_stats()) continue;
    for (const T poison : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
      INFO(form.name << ", poison " << poison);
      const auto p = static_cast<std::size_t>(form.poison_offset);
      const auto n = static_cast<std::size_t>(element_count(form.shape));
      for (const bool simd : {true, false}) {
        INFO((simd ? "SIMD path" : "scalar path"));
        const Buffers<T> clean = reference_run<T>(form.config, form.shape, Mode::eval, nn::Execution{simd ? nn::SimdPath::automatic : nn::SimdPath::scalar});
        Buffers<T> b(form.config, form.shape);
        b.execution.simd_path = simd ? nn::SimdPath::automatic : nn::SimdPath::scalar;
        b.input[p] = poison;
        const auto before = snapshot(b);
        REQUIRE_NOTHROW(b.forward(Mode::eval));
        if (std::isnan(poison)) CHECK(std::isnan(b.output[p]));
        for (std::size_t i = 0; i < n; ++i) {
          if (i == p) continue;
          INFO("element " << i);
          CHECK(std::isfinite(b.output[i]));
          CHECK(std::memcmp(&b.output[i], &clean.output[i], sizeof(T)) == 0);
        }
        CHECK(same_running(b, clean));
        b.output.assign(b.output.size(), kSentinel<T>);
        CHECK(changes(b, before) == "context ");  // only the (now valid) context
      }

      // Module in eval: the noise counter and statistics stay.
      PrimedModule<T> m(form, Mode::eval);
      m.input[p] = poison;
      const auto module_before = state_of(m.module);
      REQUIRE_NOTHROW(m.module.forward(m.input.data(), form.shape, m.output.data()));
      if (std::isnan(poison)) CHECK(std::isnan(m.output[p]));
      for (std::size_t i = 0; i < n; ++i)
        if (i != p) CHECK(std::isfinite(m.output[i]));
      CHECK(module_changes(m.module, module_before) == "");
    }
  }
}

TEMPLATE_TEST_CASE("Evaluation with statistics from the group: a NaN fills its group only", "[validation]", float,
                   double) {
  using T = TestType;
  for (FormCase form : form_cases()) {
    if (nn::is_batch_form(form.config.form)) {
      form.config.options.track_running_stats = false;  // statistics from the batch, as training
      form.poison_group = group_of(form.config, form.shape, form.poison_offset);
    }
    const auto p = static_cast<std::size_t>(form.poison_offset);
    const index_t n = element_count(form.shape);
    for (const bool simd : {true, false}) {
      INFO(form.name << ", NaN in group " << form.poison_group << ", " << (simd ? "SIMD path" : "scalar path"));
      const Buffers<T> clean = reference_run<T>(form.config, form.shape, Mode::eval, nn::Execution{simd ? nn::SimdPath::automatic : nn::SimdPath::scalar});
      Buffers<T> b(form.config, form.shape);
      b.execution.simd_path = simd ? nn::SimdPath::automatic : nn::SimdPath::scalar;
      b.input[p] = std::numeric_limits<T>::quiet_NaN();
      REQUIRE_NOTHROW(b.forward(Mode::eval));
      index_t poisoned = 0;
      for (index_t i = 0; i < n; ++i) {
        const auto k = static_cast<std::size_t>(i);
        INFO("element " << i);
        if (group_of(form.config, form.shape, i) == form.poison_group) {
          CHECK(std::isnan(b.output[k]));
          ++poisoned;
        } else {
          CHECK(std::isfinite(b.output[k]));
          CHECK(std::memcmp(&b.output[k], &clean.output[k], sizeof(T)) == 0);
        }
      }
      CHECK(poisoned > 1);
      CHECK(poisoned < n);
    }
  }
}
