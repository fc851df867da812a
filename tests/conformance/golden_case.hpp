#pragma once
// Replays one golden case (tests/data/golden/FORMAT.md) on one module and
// compares every file it can recompute. Shared by the conformance runner and
// the golden-parity unit test.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <normnorm/normnorm.hpp>

#include "mini_json.hpp"

namespace normnorm::test {

struct Tolerance {
  double relative, absolute;  // pass when |got - want| <= absolute + relative |want|
};
template <class T> constexpr Tolerance tolerance_for();
template <> constexpr Tolerance tolerance_for<double>() { return {1e-9, 1e-12}; }
template <> constexpr Tolerance tolerance_for<float>() { return {1e-4, 1e-5}; }
// 2-byte storage is compared with the float64 computation on the same rounded input
// (replay_case's `expected`), so the tolerance is the final rounding: half an ulp of the
// storage type (2^-8 bfloat16, 2^-11 half) relative, doubled for results that sit on a
// rounding boundary where float and float64 round to neighbouring values, plus float's
// own tolerance. Parameters' gradients and statistics stay float: float's tolerance.
template <> constexpr Tolerance tolerance_for<Eigen::bfloat16>() { return {2.0 / 256 + 1e-4, 1e-5}; }
template <> constexpr Tolerance tolerance_for<Eigen::half>() { return {2.0 / 2048 + 1e-4, 1e-5}; }

template <class T>
double to_double(T value) {
  if constexpr (is_narrow_storage<T>) return static_cast<double>(static_cast<float>(value));
  else return static_cast<double>(value);
}

// Extra behaviour of a replay: round the input tensors through a storage type first
// (x and grad_y, as a 2-byte run sees them), record what was computed, or compare
// against recorded values instead of the golden files.
struct ReplayOptions {
  double (*round_input)(double) = nullptr;
  std::map<std::string, std::vector<double>>* record = nullptr;
  const std::map<std::string, std::vector<double>>* expected = nullptr;
};

template <class S>
double round_through(double value) {
  return static_cast<double>(static_cast<float>(S(static_cast<float>(value))));
}

struct TensorError {
  std::string file;
  double max_abs = 0, max_rel = 0;
  bool pass = true;
};

struct CaseResult {
  std::string name;
  std::vector<TensorError> tensors;
  bool pass() const {
    return !tensors.empty() && std::all_of(tensors.begin(), tensors.end(), [](const TensorError& t) { return t.pass; });
  }
};

inline Json read_case_json(const std::filesystem::path& dir) {
  std::ifstream in(dir / "case.json");
  if (!in) throw std::runtime_error("cannot open " + (dir / "case.json").string());
  std::stringstream text;
  text << in.rdbuf();
  return JsonParser(text.str()).parse();
}

// The layer a case describes. The golden vectors were made with noise factor 0.
inline LayerConfig config_from_case(const Json& spec) {
  const std::string layer = spec["layer"].text;
  const Json& o = spec["options"];
  const auto& shape = spec["input_shape"].items;
  auto get = [&](const char* key, double fallback) { return o.has(key) ? o[key].number : fallback; };
  auto apply = [&](Options options) {
    options.eps = get("eps", options.eps);
    options.order = static_cast<int>(get("order", options.order));
    options.alpha = get("alpha", options.alpha);
    if (o.has("momentum")) options.momentum = o["momentum"].is_null() ? std::nullopt : std::optional<double>(o["momentum"].number);
    if (o.has("affine")) options.affine = o["affine"].boolean;
    if (o.has("elementwise_affine")) options.affine = o["elementwise_affine"].boolean;
    if (o.has("standardize")) options.standardize = o["standardize"].boolean;
    if (o.has("track_running_stats")) options.track_running_stats = o["track_running_stats"].boolean;
    options.noise_train = get("noise_train", 0.0);
    return options;
  };
  const auto channels = static_cast<index_t>(shape.size() > 1 ? shape[1].number : 0);
  if (layer == "batch_normal_norm_1d") return LayerConfig::batch_normal_norm_1d(channels, apply(default_options(Form::batch_1d)));
  if (layer == "batch_normal_norm_2d") return LayerConfig::batch_normal_norm_2d(channels, apply(default_options(Form::batch_2d)));
  if (layer == "instance_normal_norm_2d")
    return LayerConfig::instance_normal_norm_2d(channels, apply(default_options(Form::instance_2d)));
  // The 1-D/3-D forms (cases made by tests/golden_ranks/make_cases.py); batch 1d also takes (N, C, L).
  if (layer == "batch_normal_norm_3d") return LayerConfig::batch_normal_norm_3d(channels, apply(default_options(Form::batch_3d)));
  if (layer == "instance_normal_norm_1d")
    return LayerConfig::instance_normal_norm_1d(channels, apply(default_options(Form::instance_1d)));
  if (layer == "instance_normal_norm_3d")
    return LayerConfig::instance_normal_norm_3d(channels, apply(default_options(Form::instance_3d)));
  if (layer == "group_normal_norm")
    return LayerConfig::group_normal_norm(static_cast<index_t>(o["num_groups"].number), channels,
                                          apply(default_options(Form::group)));
  if (layer == "layer_normal_norm") {
    Shape normalized;
    std::vector<index_t> dims;
    for (const Json& d : o["normalized_shape"].items) dims.push_back(static_cast<index_t>(d.number));
    normalized = Shape(dims.data(), static_cast<int>(dims.size()));
    return LayerConfig::layer_normal_norm(normalized, apply(default_options(Form::layer)));
  }
  throw std::runtime_error("unknown layer '" + layer + "'");
}

template <class T>
std::vector<T> read_as(const std::filesystem::path& file) {
  return io::read_npy_as<T>(file.string());
}

inline TensorError compare(const std::string& name, const std::vector<double>& got, const std::vector<double>& want,
                           Tolerance tol) {
  TensorError e;
  e.file = name;
  if (got.size() != want.size()) {
    e.pass = false;
    e.max_abs = e.max_rel = INFINITY;
    return e;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(got[i] - want[i]);
    e.max_abs = std::max(e.max_abs, diff);
    e.max_rel = std::max(e.max_rel, diff / std::max(std::abs(want[i]), 1e-300));
    if (!(diff <= tol.absolute + tol.relative * std::abs(want[i]))) e.pass = false;
  }
  return e;
}

// A tensor file as T: a 2-byte storage type rounds the float64 values once (via float,
// which holds them exactly for the golden inputs' precision needs).
template <class T>
std::vector<T> read_tensor(const std::filesystem::path& file, std::vector<std::int64_t>* dims,
                           const ReplayOptions& options) {
  const std::vector<double> values = io::read_npy_as<double>(file.string(), dims);
  std::vector<T> out;
  out.reserve(values.size());
  for (double v : values) {
    const double rounded = options.round_input ? options.round_input(v) : v;
    if constexpr (is_narrow_storage<T>) out.push_back(T(static_cast<float>(rounded)));
    else out.push_back(static_cast<T>(rounded));
  }
  return out;
}

// Replays the case with tensors stored in T (float, double, Eigen::bfloat16, Eigen::half).
// When write_dir is not empty, writes what it computed into write_dir/<case>/ as float64
// .npy under the golden file names.
template <class T>
CaseResult replay_case(const std::filesystem::path& dir, const std::string& write_dir = "",
                       const Execution& execution = {}, const ReplayOptions& options = {}) {
  namespace fs = std::filesystem;
  using C = compute_t<T>;
  const Json spec = read_case_json(dir);
  const LayerConfig config = config_from_case(spec);
  CaseResult result;
  result.name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();

  NormalNormModule<T> module(config);
  module.set_execution(execution);
  if (config.options.affine) {
    module.weight() = read_as<C>(dir / "weight.npy");
    module.bias() = read_as<C>(dir / "bias.npy");
  }
  fs::path out_dir;
  if (!write_dir.empty()) {
    out_dir = fs::path(write_dir) / result.name;
    fs::create_directories(out_dir);
  }

  for (std::size_t k = 0; k < spec["steps"].items.size(); ++k) {
    const Json& step = spec["steps"].items[k];
    const std::string prefix = "step" + std::to_string(k) + "_";
    auto has = [&](const std::string& stem) {
      return std::any_of(step["files"].items.begin(), step["files"].items.end(),
                         [&](const Json& f) { return f.text == prefix + stem; });
    };
    // Tensors in T get T's tolerance; parameters' gradients, lambda and statistics (in C), C's.
    auto check = [&](const std::string& stem, const auto& got, const std::vector<std::int64_t>& shape) {
      using V = typename std::decay_t<decltype(got)>::value_type;
      std::vector<double> as_double;
      for (const V& v : got) as_double.push_back(to_double(v));
      if (!out_dir.empty()) io::write_npy<double>((out_dir / (prefix + stem + ".npy")).string(), as_double.data(), shape);
      if (options.record) (*options.record)[prefix + stem] = as_double;
      if (!has(stem)) return;
      const Tolerance tol = std::is_same_v<V, T> ? tolerance_for<T>() : tolerance_for<C>();
      if (options.expected) {
        const auto found = options.expected->find(prefix + stem);
        if (found != options.expected->end()) result.tensors.push_back(compare(prefix + stem, as_double, found->second, tol));
        return;
      }
      const auto want = io::read_npy(dir / (prefix + stem + ".npy")).data;
      result.tensors.push_back(compare(prefix + stem, as_double, want, tol));
    };

    std::vector<std::int64_t> dims;
    const std::vector<T> x = read_tensor<T>(dir / (prefix + "x.npy"), &dims, options);
    const Shape shape(dims.data(), static_cast<int>(dims.size()));
    module.train(step["mode"].text == "train");
    std::vector<T> y(x.size(), T(0.0f));
    module.forward(x.data(), shape, y.data());
    check("y", y, dims);

    if (has("grad_y")) {
      const std::vector<T> grad_y = read_tensor<T>(dir / (prefix + "grad_y.npy"), nullptr, options);
      std::vector<T> grad_x(x.size(), T(0.0f));
      module.backward(x.data(), shape, grad_y.data(), grad_x.data());
      check("grad_x", grad_x, dims);
      const std::vector<std::int64_t> affine_dims(config.form == Form::layer ? std::vector<std::int64_t>(config.normalized_shape.begin(), config.normalized_shape.end())
                                                                              : std::vector<std::int64_t>{config.num_features});
      if (config.options.affine) {
        check("grad_weight", module.grad_weight(), affine_dims);
        check("grad_bias", module.grad_bias(), affine_dims);
      }
    }
    if (module.is_training() && (is_batch_form(config.form) || config.form == Form::layer)) {
      const auto& lambda = module.context().lambda;
      std::vector<double> got;
      std::vector<std::int64_t> lambda_dims{config.num_features};
      if (config.form == Form::layer) {  // one value per normalized row, broadcast to the input's shape
        const index_t row = config.num_affine();
        for (std::size_t i = 0; i < x.size(); ++i) got.push_back(double(C(lambda[i / static_cast<std::size_t>(row)])));
        lambda_dims = dims;
      } else {
        for (double l : lambda) got.push_back(double(C(l)));
      }
      check("lambda", got, lambda_dims);
    }
    if (config.has_running_stats()) {
      const std::vector<std::int64_t> c{config.num_features};
      auto values = [](normnorm::Span<C> s) { return std::vector<C>(s.begin(), s.end()); };
      check("running_lmbda", values(module.running_lambda()), c);
      check("running_mean", values(module.running_mean()), c);
      check("running_var", values(module.running_var()), c);
      check("running_norm", values(module.running_norm()), c);
    }
  }
  return result;
}

inline std::string describe(const CaseResult& result, const std::string& dtype) {
  std::ostringstream line;
  line << (result.pass() ? "PASS " : "FAIL ") << result.name << " [" << dtype << "]";
  for (const TensorError& t : result.tensors) {
    line << "\n    " << (t.pass ? "ok   " : "FAIL ") << t.file;
    line.precision(2);
    line << std::scientific << "  max abs " << t.max_abs << "  max rel " << t.max_rel;
  }
  return line.str();
}

// A 2-byte storage type: the float64 replay on the same rounded inputs is the
// reference (recorded first), then the replay in S is compared with it.
template <class S>
CaseResult replay_case_narrow(const std::filesystem::path& dir, const std::string& write_dir = "",
                              const Execution& execution = {}) {
  std::map<std::string, std::vector<double>> reference;
  ReplayOptions record;
  record.round_input = &round_through<S>;
  record.record = &reference;
  (void)replay_case<double>(dir, "", execution, record);
  ReplayOptions compare_with;
  compare_with.round_input = &round_through<S>;
  compare_with.expected = &reference;
  return replay_case<S>(dir, write_dir, execution, compare_with);
}

}  // namespace normnorm::test
