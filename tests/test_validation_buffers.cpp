// What bad input gets (spec section 6): every public entry point rejects bad
// arguments with std::invalid_argument (non-finite training input with
// std::domain_error), naming the layer and the offending argument, before any
// caller-visible state changes; "unchanged" is checked bit for bit
// (validation_support.hpp).
// This file: noise sources, aliasing, null pointers and the backward's context and buffers.

#include <catch2/catch.hpp>

#include "validation_support.hpp"

// ---- noise -----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("Training with noise needs a noise source", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    INFO(form.name);
    {
      Buffers<T> b(form.config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.noise = nn::NoiseSource<T>::none();
      auto call = [&] { b.forward(Mode::train, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "noise_train", "noise source");
      CHECK(changes(b, before) == "");
      // Evaluation draws no noise, so it needs no source.
      CHECK_NOTHROW(b.forward(Mode::eval, args));
    }
    {
      Buffers<T> b(form.config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.noise = nn::NoiseSource<T>::external(nullptr);
      auto call = [&] { b.forward(Mode::train, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "external noise is null");
      CHECK(changes(b, before) == "");
    }
    {
      // External draws that share bytes with the output.
      Buffers<T> b(form.config, form.shape);
      std::vector<T> normals = make_input<T>(kCapacity);
      const std::vector<T> normals_before = normals;
      const auto before = snapshot(b);
      auto args = b.args();
      args.output = normals.data() + 1;
      args.noise = nn::NoiseSource<T>::external(normals.data());
      auto call = [&] { b.forward(Mode::train, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output overlaps the external noise");
      CHECK(same_bits(normals, normals_before));
      CHECK(changes(b, before) == "");
    }
    {
      // noise_train = 0: no source needed.
      LayerConfig config = form.config;
      config.options.noise_train = 0.0;
      Buffers<T> b(config, form.shape);
      auto args = b.args();
      args.noise = nn::NoiseSource<T>::none();
      CHECK_NOTHROW(b.forward(Mode::train, args));
    }
  }
}

// ---- aliasing ----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("Forward output may equal the input exactly but not partly overlap it", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      const Buffers<T> reference = reference_run<T>(form.config, form.shape, mode);
      const index_t n = reference.count();

      for (const int shift : {1, -1}) {
        INFO("output = input " << (shift > 0 ? "+" : "-") << " 1");
        Buffers<T> b(form.config, form.shape);
        std::vector<T> shared(b.input.begin(), b.input.begin() + n + 1);
        const std::vector<T> shared_before = shared;
        const auto before = snapshot(b);
        auto args = b.args();
        args.input = shared.data() + (shift > 0 ? 0 : 1);
        args.output = shared.data() + (shift > 0 ? 1 : 0);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output partly overlaps input");
        CHECK(same_bits(shared, shared_before));
        CHECK(changes(b, before) == "");
      }

      // In place: the same values and statistics as out of place.
      Buffers<T> b(form.config, form.shape);
      std::copy(b.input.begin(), b.input.end(), b.output.begin());
      auto args = b.args();
      args.input = b.output.data();
      REQUIRE_NOTHROW(b.forward(mode, args));
      CHECK(same_bits(head(b.output, n), head(reference.output, n)));
      CHECK(same_running(b, reference));
    }
  }
}

TEMPLATE_TEST_CASE("Forward output must not overlap weight or bias or running statistics", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    const index_t n = element_count(form.shape);
    const index_t affine = form.config.num_affine();
    for (const Mode mode : {Mode::train, Mode::eval}) {
      struct Case {
        const char* argument;
        index_t at;  // where the parameter starts inside the output
      };
      std::vector<Case> cases = {{"weight", n - 1}, {"weight", 0}, {"bias", n / 2}};
      if (form.config.has_running_stats()) cases.push_back({"running_mean", n - 2});
      for (const Case& c : cases) {
        INFO(form.name << ", " << mode_name(mode) << ", " << c.argument << " at output + " << c.at);
        Buffers<T> b(form.config, form.shape);
        std::vector<T> shared(static_cast<std::size_t>(n + affine), kSentinel<T>);
        T* inside = shared.data() + c.at;
        auto args = b.args();
        args.output = shared.data();
        if (std::string(c.argument) == "weight") {
          std::copy(b.weight.begin(), b.weight.end(), inside);
          args.weight.data = inside;
        } else if (std::string(c.argument) == "bias") {
          std::copy(b.bias.begin(), b.bias.end(), inside);
          args.bias.data = inside;
        } else {
          std::copy(b.mean.begin(), b.mean.end(), inside);
          args.running.mean = inside;
        }
        const std::vector<T> shared_before = shared;
        const auto before = snapshot(b);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output overlaps", c.argument);
        CHECK(same_bits(shared, shared_before));
        CHECK(changes(b, before) == "");
      }
    }
  }
}

TEMPLATE_TEST_CASE("grad_input may equal grad_output or input exactly but not partly overlap them", "[validation]",
                   float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      Buffers<T> b(form.config, form.shape);
      b.forward(mode);
      const index_t n = b.count();
      b.output.assign(b.output.size(), kSentinel<T>);  // backward must not touch the forward's output

      Gradients<T> reference(form.config.num_affine());
      nn::backward(form.config, backward_args(b, reference), b.context);

      {
        INFO("in place on grad_output");
        Gradients<T> g(form.config.num_affine());
        std::copy(g.grad_output.begin(), g.grad_output.end(), g.grad_input.begin());
        auto args = backward_args(b, g);
        args.grad_output = g.grad_input.data();
        REQUIRE_NOTHROW(nn::backward(form.config, args, b.context));
        CHECK(same_bits(head(g.grad_input, n), head(reference.grad_input, n)));
        CHECK(same_bits(g.grad_weight, reference.grad_weight));
        CHECK(same_bits(g.grad_bias, reference.grad_bias));
      }

      {
        INFO("in place on input");
        Gradients<T> g(form.config.num_affine());
        std::vector<T> input_copy = b.input;
        auto args = backward_args(b, g);
        args.input = input_copy.data();
        args.grad_input = input_copy.data();
        REQUIRE_NOTHROW(nn::backward(form.config, args, b.context));
        CHECK(same_bits(head(input_copy, n), head(reference.grad_input, n)));
        CHECK(same_bits(g.grad_weight, reference.grad_weight));
        CHECK(same_bits(g.grad_bias, reference.grad_bias));
      }

      {
        for (const bool with_grad_output : {true, false}) {
          for (const int shift : {1, -1}) {
            INFO("grad_input = " << (with_grad_output ? "grad_output " : "input ") << (shift > 0 ? "+" : "-") << " 1");
            Gradients<T> g(form.config.num_affine());
            const std::vector<T>& source = with_grad_output ? g.grad_output : b.input;
            std::vector<T> shared(source.begin(), source.begin() + n + 1);
            const std::vector<T> shared_before = shared;
            const auto before = snapshot(b);
            auto args = backward_args(b, g);
            (with_grad_output ? args.grad_output : args.input) = shared.data() + (shift > 0 ? 0 : 1);
            args.grad_input = shared.data() + (shift > 0 ? 1 : 0);
            auto call = [&] { nn::backward(form.config, args, b.context); };
            NN_CHECK_THROWS(std::invalid_argument, call, form.name, "grad_input partly overlaps",
                            with_grad_output ? "grad_output" : "input");
            CHECK(same_bits(shared, shared_before));
            CHECK(g.untouched());
            CHECK(changes(b, before) == "");
          }
        }
      }
    }
  }
}

// ---- null pointers -----------------------------------------------------------------------

TEMPLATE_TEST_CASE("Null input or output or grad_output pointers are rejected", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      {
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.input = nullptr;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "input is null");
        CHECK(changes(b, before) == "");
      }
      {
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.output = nullptr;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output is null");
        CHECK(changes(b, before) == "");
      }
      {
        Buffers<T> b(form.config, form.shape);
        b.forward(mode);
        for (const char* which : {"input", "grad_output"}) {
          INFO("backward with null " << which);
          Gradients<T> g(form.config.num_affine());
          auto args = backward_args(b, g);
          (std::string(which) == "input" ? args.input : args.grad_output) = nullptr;
          auto call = [&] { nn::backward(form.config, args, b.context); };
          NN_CHECK_THROWS(std::invalid_argument, call, form.name, std::string(which) + " is null");
          CHECK(g.untouched());
        }
        // grad_input may be null: only the parameter gradients are computed.
        Gradients<T> g(form.config.num_affine());
        auto args = backward_args(b, g);
        args.grad_input = nullptr;
        CHECK_NOTHROW(nn::backward(form.config, args, b.context));
        CHECK(all_sentinel(g.grad_input));
        CHECK_FALSE(all_sentinel(g.grad_weight));
      }
    }
  }
}

// ---- backward's context ------------------------------------------------------------------

TEMPLATE_TEST_CASE("Backward needs the context of a forward of the same shape", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    INFO(form.name);
    {
      // No forward yet.
      Buffers<T> b(form.config, form.shape);
      Gradients<T> g(form.config.num_affine());
      auto call = [&] { nn::backward(form.config, backward_args(b, g), b.context); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "context");
      CHECK(g.untouched());

      PrimedModule<T> p(form, Mode::train);
      nn::NormalNormModule<T> fresh(form.config, 21);
      const auto before = state_of(fresh);
      auto module_call = [&] {
        fresh.backward(p.input.data(), form.shape, p.grad_output.data(), p.grad_input.data());
      };
      NN_CHECK_THROWS(std::invalid_argument, module_call, form.name, "context");
      CHECK(all_sentinel(p.grad_input));
      CHECK(module_changes(fresh, before) == "");
    }
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(mode_name(mode));
      Buffers<T> b(form.config, form.shape);
      b.forward(mode);
      for (const Shape& other : {form.other_batch, form.wrong_rank, form.wrong_channels, form.zero_dim}) {
        INFO("backward with " << other.to_string());
        Gradients<T> g(form.config.num_affine());
        auto args = backward_args(b, g);
        args.shape = other;
        auto call = [&] { nn::backward(form.config, args, b.context); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, other.to_string());
        CHECK(g.untouched());
        CHECK(b.context.valid);
      }

      PrimedModule<T> p(form, mode);
      const auto before = state_of(p.module);
      auto module_call = [&] {
        p.module.backward(p.input.data(), form.other_batch, p.grad_output.data(), p.grad_input.data());
      };
      NN_CHECK_THROWS(std::invalid_argument, module_call, form.name, form.other_batch.to_string());
      CHECK(all_sentinel(p.grad_input));
      CHECK(module_changes(p.module, before) == "");
    }
    {
      // Backward's own parameter check: the weight it is given.
      Buffers<T> b(form.config, form.shape);
      b.forward(Mode::train);
      Gradients<T> g(form.config.num_affine());
      auto args = backward_args(b, g);
      args.weight.size -= 1;
      auto call = [&] { nn::backward(form.config, args, b.context); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "weight");
      CHECK(g.untouched());
    }
  }
}

// ---- backward buffers overlapping the weight or each other ----------------------------------

TEMPLATE_TEST_CASE("Backward rejects grad_input overlapping weight", "[validation]", float, double) {
  using T = TestType;
  const LayerConfig config = LayerConfig::layer_normal_norm(Shape{4, 5});
  Buffers<T> b(config, Shape{3, 4, 5});
  b.forward(Mode::train);
  Gradients<T> g(config.num_affine());
  // The weight is grad_input's first 20 values: writing group 0's gradient
  // overwrites the weight that groups 1 and 2 still read (wrong gradients, no error).
  std::copy(b.weight.begin(), b.weight.end(), g.grad_input.begin());
  const std::vector<T> grad_input_before = g.grad_input;
  auto args = backward_args(b, g);
  args.weight.data = g.grad_input.data();
  args.grad_weight = nullptr;
  args.grad_bias = nullptr;
  auto call = [&] { nn::backward(config, args, b.context); };
  NN_CHECK_THROWS(std::invalid_argument, call, "LayerNormalNorm", "grad_input", "weight");
  CHECK(same_bits(g.grad_input, grad_input_before));
}

TEMPLATE_TEST_CASE("Backward rejects grad_weight overlapping grad_bias", "[validation]", float, double) {
  using T = TestType;
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
  Buffers<T> b(config, Shape{2, 3, 4, 5});
  b.forward(Mode::train);
  Gradients<T> g(4);
  auto args = backward_args(b, g);
  args.grad_weight = g.grad_weight.data();
  args.grad_bias = g.grad_weight.data() + 1;
  auto call = [&] { nn::backward(config, args, b.context); };
  NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "grad_weight", "grad_bias");
  CHECK(g.untouched());
}
