// What bad input gets (spec section 6): every public entry point rejects bad
// arguments with std::invalid_argument (non-finite training input with
// std::domain_error), naming the layer and the offending argument, before any
// caller-visible state changes; "unchanged" is checked bit for bit
// (validation_support.hpp).
// This file: shapes, parameters, running statistics and options.

#include <catch2/catch.hpp>

#include "validation_support.hpp"

// ---- shapes --------------------------------------------------------------------

TEMPLATE_TEST_CASE("Every form rejects input of the wrong rank or channel count", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      for (const Shape& bad : {form.wrong_rank, form.wrong_channels}) {
        INFO(form.name << ", " << mode_name(mode) << ", input " << bad.to_string());
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.shape = bad;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, bad.to_string());
        CHECK(changes(b, before) == "");

        PrimedModule<T> p(form, mode);
        const auto module_before = state_of(p.module);
        auto module_call = [&] { p.module.forward(p.input.data(), bad, p.output.data()); };
        NN_CHECK_THROWS(std::invalid_argument, module_call, form.name, bad.to_string());
        CHECK(all_sentinel(p.output));
        CHECK(module_changes(p.module, module_before) == "");
      }
    }
  }
}

TEMPLATE_TEST_CASE("GroupNormalNorm rejects num_channels not divisible by num_groups", "[validation]", float, double) {
  using T = TestType;
  const LayerConfig config = LayerConfig::group_normal_norm(4, 6);
  for (const Mode mode : {Mode::train, Mode::eval}) {
    INFO(mode_name(mode));
    Buffers<T> b(config, Shape{2, 6, 3});
    const auto before = snapshot(b);
    auto call = [&] { b.forward(mode); };
    NN_CHECK_THROWS(std::invalid_argument, call, "GroupNormalNorm", "num_groups", "num_channels (6)");
    CHECK(changes(b, before) == "");
  }
  auto construct = [] { nn::GroupNormalNorm<T> module(4, 6); };
  NN_CHECK_THROWS(std::invalid_argument, construct, "GroupNormalNorm", "num_groups (4)");
}

TEMPLATE_TEST_CASE("Zero or negative dimensions are rejected", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      for (const Shape& bad : {form.zero_dim, form.negative_dim}) {
        INFO(form.name << ", " << mode_name(mode) << ", input " << bad.to_string());
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.shape = bad;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, bad.to_string());
        CHECK(changes(b, before) == "");
      }
    }
  }

  SECTION("layer configurations with a zero or negative size") {
    struct BadConfig {
      LayerConfig config;
      const char* name;
      const char* argument;
    };
    const BadConfig configs[] = {
        {LayerConfig::batch_normal_norm_1d(0), "BatchNormalNorm1d", "num_features"},
        {LayerConfig::batch_normal_norm_2d(-3), "BatchNormalNorm2d", "num_features"},
        {LayerConfig::instance_normal_norm_2d(0), "InstanceNormalNorm2d", "num_features"},
        {LayerConfig::group_normal_norm(0, 4), "GroupNormalNorm", "num_groups"},
        {LayerConfig::group_normal_norm(-2, 4), "GroupNormalNorm", "num_groups"},
        {LayerConfig::group_normal_norm(2, 0), "GroupNormalNorm", "num_features"},
        {LayerConfig::layer_normal_norm(Shape{4, 0}), "LayerNormalNorm", "normalized_shape"},
        {LayerConfig::layer_normal_norm(Shape{-4, 5}), "LayerNormalNorm", "normalized_shape"},
        {LayerConfig::layer_normal_norm(Shape{}), "LayerNormalNorm", "normalized_shape"},
    };
    for (const BadConfig& bad : configs) {
      INFO(bad.name << " " << bad.argument);
      Buffers<T> b(bad.config, Shape{2, 4});
      const auto before = snapshot(b);
      auto call = [&] { b.forward(Mode::train); };
      NN_CHECK_THROWS(std::invalid_argument, call, bad.name, bad.argument);
      CHECK(changes(b, before) == "");
      auto construct = [&] { nn::NormalNormModule<T> module(bad.config); };
      NN_CHECK_THROWS(std::invalid_argument, construct, bad.name, bad.argument);
    }
  }
}

TEMPLATE_TEST_CASE("A shape whose element count overflows int64 is rejected", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode) << ", input " << form.overflow.to_string());
      Buffers<T> b(form.config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.shape = form.overflow;
      auto call = [&] { b.forward(mode, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, form.overflow.to_string());
      CHECK(changes(b, before) == "");
    }
  }
  SECTION("elements fit in int64 but their bytes do not") {
    const Shape huge{index_t(1) << 60, 3};  // 3 * 2^60 elements, * sizeof(T) bytes > 2^63
    Buffers<T> b(LayerConfig::batch_normal_norm_1d(3), Shape{4, 3});
    const auto before = snapshot(b);
    auto args = b.args();
    args.shape = huge;
    auto call = [&] { b.forward(Mode::eval, args); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm1d", huge.to_string());
    CHECK(changes(b, before) == "");
  }
}

// ---- parameters and running statistics ------------------------------------------

TEMPLATE_TEST_CASE("Weight and bias of the wrong length or null are rejected with affine on", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    const index_t n = form.config.num_affine();
    const std::string expected = std::to_string(n) + " values";
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      struct Case {
        const char* argument;
        std::function<void(nn::ForwardArgs<T>&)> spoil;
        std::string detail;
      };
      const Case cases[] = {
          {"weight", [&](nn::ForwardArgs<T>& a) { a.weight.size = n - 1; }, expected},
          {"weight", [&](nn::ForwardArgs<T>& a) { a.weight.size = n + 1; }, expected},
          {"weight", [](nn::ForwardArgs<T>& a) { a.weight.data = nullptr; }, "null"},
          {"bias", [&](nn::ForwardArgs<T>& a) { a.bias.size = n - 1; }, expected},
          {"bias", [](nn::ForwardArgs<T>& a) { a.bias = {}; }, "null"},
      };
      for (const Case& c : cases) {
        INFO(c.argument << ": " << c.detail);
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        c.spoil(args);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, c.argument, c.detail);
        CHECK(changes(b, before) == "");
      }
    }
    {
      INFO(form.name << ": affine off ignores weight and bias");
      LayerConfig config = form.config;
      config.options.affine = false;
      Buffers<T> b(config, form.shape);
      auto args = b.args();
      args.weight = {};
      args.bias = {};
      CHECK_NOTHROW(b.forward(Mode::train, args));
    }
  }
}

TEMPLATE_TEST_CASE("Batch forms reject running statistics of the wrong length or null", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    if (!nn::is_batch_form(form.config.form)) continue;
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      struct Case {
        const char* argument;
        std::function<void(nn::RunningStats<T>&)> spoil;
        const char* detail;
      };
      const Case cases[] = {
          {"running_mean", [](nn::RunningStats<T>& r) { r.mean = nullptr; }, "null"},
          {"running_var", [](nn::RunningStats<T>& r) { r.var = nullptr; }, "null"},
          {"running_lambda", [](nn::RunningStats<T>& r) { r.lambda = nullptr; }, "null"},
          {"running_norm", [](nn::RunningStats<T>& r) { r.norm = nullptr; }, "null"},
          {"running_mean", [](nn::RunningStats<T>& r) { r.size = 2; }, "must hold 3 values, got 2"},
          {"running_mean", [](nn::RunningStats<T>& r) { r.size = 4; }, "must hold 3 values, got 4"},
          {"running_mean", [](nn::RunningStats<T>& r) { r = {}; }, "null"},
      };
      for (const Case& c : cases) {
        INFO(c.argument << ": " << c.detail);
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        c.spoil(args.running);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, c.argument, c.detail);
        CHECK(changes(b, before) == "");
      }
    }

    {
      INFO(form.name << ": momentum none needs num_batches_tracked");
      LayerConfig config = form.config;
      config.options.momentum = std::nullopt;
      Buffers<T> b(config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.running.num_batches_tracked = nullptr;
      for (const Mode mode : {Mode::train, Mode::eval}) {  // docs/api.md: checked in evaluation too
        INFO(mode_name(mode));
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "num_batches_tracked", "momentum");
        CHECK(changes(b, before) == "");
      }
      // With the count it runs, and counts.
      CHECK_NOTHROW(b.forward(Mode::train));
      CHECK(b.batches == before.batches + 1);
    }

    {
      INFO(form.name << ": without track_running_stats the buffers are ignored");
      LayerConfig config = form.config;
      config.options.track_running_stats = false;
      Buffers<T> b(config, form.shape);
      auto args = b.args();
      args.running = {};
      CHECK_NOTHROW(b.forward(Mode::train, args));
      CHECK_NOTHROW(b.forward(Mode::eval, args));
    }
  }
}

// ---- options ---------------------------------------------------------------------

TEMPLATE_TEST_CASE("Out-of-range options are rejected", "[validation]", float, double) {
  using T = TestType;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct BadOption {
    const char* argument;
    std::function<void(Options&)> set;
    bool batch_only;
  };
  const BadOption bad_options[] = {
      {"momentum", [](Options& o) { o.momentum = -0.1; }, true},
      {"momentum", [](Options& o) { o.momentum = 1.5; }, true},
      {"momentum", [&](Options& o) { o.momentum = nan; }, true},
      {"eps", [](Options& o) { o.eps = -1e-3; }, false},
      {"eps", [&](Options& o) { o.eps = nan; }, false},
      {"eps", [&](Options& o) { o.eps = inf; }, false},
      {"noise_train", [](Options& o) { o.noise_train = -0.5; }, false},
      {"noise_train", [&](Options& o) { o.noise_train = inf; }, false},
      {"alpha", [](Options& o) { o.alpha = -1.0; }, false},
      {"alpha", [&](Options& o) { o.alpha = nan; }, false},
      {"order", [](Options& o) { o.order = 0; }, false},
      {"order", [](Options& o) { o.order = 3; }, false},
  };
  for (const FormCase& form : form_cases()) {
    for (std::size_t k = 0; k < std::size(bad_options); ++k) {
      const BadOption& bad = bad_options[k];
      if (bad.batch_only && !nn::is_batch_form(form.config.form)) continue;
      LayerConfig config = form.config;
      bad.set(config.options);
      for (const Mode mode : {Mode::train, Mode::eval}) {
        INFO(form.name << ", " << mode_name(mode) << ", bad option #" << k << " (" << bad.argument << ")");
        Buffers<T> b(config, form.shape);
        const auto before = snapshot(b);
        auto call = [&] { b.forward(mode); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, bad.argument);
        CHECK(changes(b, before) == "");
      }
      INFO(form.name << ", module constructor, bad option #" << k << " (" << bad.argument << ")");
      auto construct = [&] { nn::NormalNormModule<T> module(config); };
      NN_CHECK_THROWS(std::invalid_argument, construct, form.name, bad.argument);
    }
  }
  SECTION("the named module classes check their options too") {
    Options options = nn::default_options(Form::batch_2d);
    options.momentum = 2.0;
    auto construct = [&] { nn::BatchNormalNorm2d<T> module(3, options); };
    NN_CHECK_THROWS(std::invalid_argument, construct, "BatchNormalNorm2d", "momentum");
    Options layer = nn::default_options(Form::layer);
    layer.order = 3;
    auto construct_layer = [&] { nn::LayerNormalNorm<T> module(Shape{4, 5}, layer); };
    NN_CHECK_THROWS(std::invalid_argument, construct_layer, "LayerNormalNorm", "order");
  }
}

// ---- batch-form training needs more than one value per channel ------------------

TEMPLATE_TEST_CASE("Batch-form training with one value per channel is rejected but evaluation is fine", "[validation]",
                   float, double) {
  using T = TestType;
  std::vector<T> input = make_input<T>(kCapacity);
  std::vector<T> output(static_cast<std::size_t>(kCapacity), kSentinel<T>);

  SECTION("BatchNormalNorm1d, N = 1") {
    nn::BatchNormalNorm1d<T> module(3);
    const Shape single{1, 3};
    const auto before = state_of(module);
    auto call = [&] { module.forward(input.data(), single, output.data()); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm1d", "(1, 3)", "more than one value per channel");
    CHECK(all_sentinel(output));
    CHECK(module_changes(module, before) == "");

    module.eval();
    const auto eval_before = state_of(module);
    REQUIRE_NOTHROW(module.forward(input.data(), single, output.data()));
    for (int i = 0; i < 3; ++i) CHECK(std::isfinite(output[static_cast<std::size_t>(i)]));
    CHECK(output[3] == kSentinel<T>);
    CHECK(module_changes(module, eval_before) == "context ");  // eval saves a context; nothing else moves
  }

  SECTION("BatchNormalNorm2d, N = H = W = 1") {
    nn::BatchNormalNorm2d<T> module(3);
    const Shape single{1, 3, 1, 1};
    const auto before = state_of(module);
    auto call = [&] { module.forward(input.data(), single, output.data()); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "(1, 3, 1, 1)",
                    "more than one value per channel");
    CHECK(all_sentinel(output));
    CHECK(module_changes(module, before) == "");

    module.eval();
    REQUIRE_NOTHROW(module.forward(input.data(), single, output.data()));
    for (int i = 0; i < 3; ++i) CHECK(std::isfinite(output[static_cast<std::size_t>(i)]));
    CHECK(output[3] == kSentinel<T>);
    CHECK(module.training_calls() == 0);
    CHECK(module.num_batches_tracked() == 0);
  }

  SECTION("raw API: two values per channel are enough") {
    Buffers<T> b(LayerConfig::batch_normal_norm_2d(3), Shape{2, 3, 1, 1});
    CHECK_NOTHROW(b.forward(Mode::train));
    Buffers<T> one(LayerConfig::batch_normal_norm_2d(3), Shape{1, 3, 1, 1});
    const auto before = snapshot(one);
    auto call = [&] { one.forward(Mode::train); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "(1, 3, 1, 1)");
    CHECK(changes(one, before) == "");
  }
}

TEMPLATE_TEST_CASE("A normalized_shape whose element count overflows int64 is rejected", "[validation]",
                   float, double) {
  using T = TestType;
  const index_t big = index_t(1) << 40;
  const LayerConfig config = LayerConfig::layer_normal_norm(Shape{big, big});
  // The options check the module constructor runs first. Only if it rejects the
  // configuration is the constructor called: today it would go on to compute
  // num_affine() = 2^80, a signed overflow (undefined behaviour).
  const std::string message = message_of<std::invalid_argument>([&] { nn::detail::raise_if_error(nn::detail::validate_options(config)); });
  INFO("message: " << message);
  REQUIRE_THAT(message, Catch::StartsWith("normnorm: LayerNormalNorm"));
  CHECK_THAT(message, Catch::Contains("normalized_shape"));
  auto construct = [&] { nn::LayerNormalNorm<T> module(Shape{big, big}); };
  NN_CHECK_THROWS(std::invalid_argument, construct, "LayerNormalNorm", "normalized_shape");
}
