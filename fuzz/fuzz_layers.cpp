// libFuzzer harness for the raw-pointer API (fuzz/README.md says how to run it).
//
// One input decodes into a layer form, a (small) input shape, options (sometimes
// invalid), a mode, buffer arrangements (sometimes invalid: in place, partly
// overlapping, null) and data (moderate, skewed, constant, two-valued, raw bits,
// NaN/Inf/huge/denormal). The harness runs forward and backward in float and in
// double through normnorm::forward / normnorm::backward on three paths -- SIMD,
// scalar (SimdPath::scalar) and SIMD on a thread pool -- and checks:
//
//   1. nothing crashes and the sanitizers stay quiet (the build adds ASan + UBSan);
//   2. every exception is std::invalid_argument or std::domain_error;
//      domain_error only from a training forward, and never from backward;
//   3. after an exception the output, input and running statistics are bit for
//      bit what they were, and gradients are still the sentinel;
//   4. the thread-pool path is bit-identical to the serial SIMD path;
//   5. outputs (and running statistics) are finite whenever the inputs and
//      parameters are finite and "moderate" (the bound is kForwardBound below);
//      gradients likewise under the tighter kBackwardBound;
//   6. the SIMD path agrees with the scalar path, relative 1e-4 (float) / 1e-9
//      (double) with an absolute floor scaled by the group's output magnitude,
//      on groups whose lambda estimate is well conditioned in that precision.
//
// An input may add an extension (decode_extension) that picks the estimator, newton_iterations,
// evaluation_map and the SIMD path, and drives misuse an embedder can make; then also:
//
//   7. an unavailable SIMD path is invalid_argument, nothing written (forward and backward);
//      a second scalar run (the SIMD run, when its path is SimdPath::scalar) is bit-identical;
//   8. a negative num_batches_tracked, or running buffers aliasing each other, the input,
//      output, weight, bias or external noise, is invalid_argument, nothing written; a count
//      at INT64_MAX (or one below) saturates there;
//   9. a backward whose config differs from the forward's is invalid_argument naming the
//      field, writes no gradient, and leaves the context fit for the real backward.
//
// A violated invariant prints what it saw and calls __builtin_trap(), which
// libFuzzer reports as a crash and saves as crash-<sha1>.

#include <normnorm/normnorm.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace nn = normnorm;
using nn::Form;
using nn::index_t;
using nn::LayerConfig;
using nn::Mode;
using nn::Options;
using nn::Shape;

namespace {

constexpr index_t kMaxElements = 4096;

// ---- the finiteness bounds (documented in docs/reliability.md) --------------------------
//
// Forward: outputs and running statistics must be finite when every input value,
// weight, bias, external noise draw and running statistic used is finite, |weight|,
// |bias| <= 1e4, noise_train <= 10, |external draw| <= 10, the group's mean, rstd
// and lambda are finite, |x - mean| <= max(T) / 4, and for every element the power's
// exponent stays below half the overflow threshold:
//        |et| * log1p(|h|) <= log(max(T)) / 2        (et = eta + sign(eta) sqrt(eps))
// Then |y| <= log(max(T)) * sqrt(max(T)) and every later product stays far from max(T).
//
// Backward additionally needs |grad_output| <= 1e4, the exponent below a quarter
// of the threshold, |h| <= 1e4, and (where lambda carries gradient) a Newton
// denominator that is not tiny: |g2 + sqrt(eps)| >= 1e-3 and |alpha g1| <= 1e4.
constexpr double kParamBound = 1e4;
constexpr double kNoiseFactorBound = 10;
constexpr double kDrawBound = 10;
constexpr double kForwardExponentFraction = 0.5;
constexpr double kBackwardExponentFraction = 0.25;
constexpr double kBackwardHBound = 1e4;
constexpr double kMinNewtonDenominator = 1e-3;
constexpr double kMaxStep = 1e4;

std::string num(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

// What the current input decoded to, printed with every failure.
std::string g_current;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_layers: invariant violated: %s\n  %s\n  input: %s\n", what, detail.c_str(), g_current.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// ---- decoding ------------------------------------------------------------------------

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double uniform01(std::uint64_t& state) { return static_cast<double>(splitmix(state) >> 11) * 0x1.0p-53; }
double normal(std::uint64_t& state) {
  // Sum of four uniforms, rescaled: cheap, deterministic, bounded (|n| < 3.5).
  double s = 0;
  for (int i = 0; i < 4; ++i) s += uniform01(state);
  return (s - 2.0) * std::sqrt(3.0);
}

enum class Special : int { nan, pos_inf, neg_inf, max, neg_max, half_max, denorm, neg_denorm, min_normal, zero,
                           neg_zero, huge, sqrt_max, tiny, count };

template <class T>
T special_value(Special kind) {
  using L = std::numeric_limits<T>;
  switch (kind) {
    case Special::nan: return L::quiet_NaN();
    case Special::pos_inf: return L::infinity();
    case Special::neg_inf: return -L::infinity();
    case Special::max: return L::max();
    case Special::neg_max: return -L::max();
    case Special::half_max: return L::max() / 2;
    case Special::denorm: return L::denorm_min();
    case Special::neg_denorm: return -L::denorm_min() * 3;
    case Special::min_normal: return L::min();
    case Special::zero: return T(0);
    case Special::neg_zero: return -T(0);
    case Special::huge: return T(1e30);
    case Special::sqrt_max: return std::sqrt(L::max());
    case Special::tiny: return T(1e-30);
    default: return T(0);
  }
}

// How a tensor's values are made. Everything is deterministic in the recipe.
struct DataSpec {
  int mode = 0;
  std::uint64_t seed = 0;
  double scale = 1, offset = 0, skew = 0.7;
  int period = 7;                                   // all-equal-but-one / constant-run period
  std::vector<std::pair<std::uint32_t, Special>> specials;  // (position, kind)
  std::vector<std::uint8_t> raw;                    // raw-bits mode
};

double pick_scale(FuzzedDataProvider& fdp) {
  static const double scales[] = {1, 1, 1, 0.5, 2, 1e-3, 1e3, 1e-8, 1e8, 1e-20, 1e20, 1e-38, 1e38};
  return fdp.PickValueInArray(scales);
}

DataSpec decode_data(FuzzedDataProvider& fdp, bool allow_specials) {
  DataSpec spec;
  spec.mode = fdp.ConsumeIntegralInRange<int>(0, 9);
  spec.seed = fdp.ConsumeIntegral<std::uint32_t>();
  spec.scale = pick_scale(fdp);
  static const double offsets[] = {0, 0, 0, 1, -3, 0.1, 1e3, -1e6, 1e9, 3.5};
  spec.offset = fdp.PickValueInArray(offsets);
  spec.skew = fdp.ConsumeIntegralInRange<int>(0, 30) / 10.0;
  spec.period = fdp.ConsumeIntegralInRange<int>(2, 70);
  if (allow_specials) {
    const int count = fdp.ConsumeIntegralInRange<int>(0, 10) - 4;  // most inputs have none
    for (int i = 0; i < count; ++i) {
      const auto position = fdp.ConsumeIntegral<std::uint16_t>();
      const auto kind = static_cast<Special>(fdp.ConsumeIntegralInRange<int>(0, static_cast<int>(Special::count) - 1));
      spec.specials.emplace_back(position, kind);
    }
  }
  return spec;
}

template <class T>
std::vector<T> materialize(const DataSpec& spec, std::size_t n, const std::vector<std::uint8_t>& raw) {
  std::vector<T> values(n);
  std::uint64_t state = spec.seed * 0x2545F4914F6CDD1Dull + 17;
  const double s = spec.scale, o = spec.offset;
  for (std::size_t i = 0; i < n; ++i) {
    double v = 0;
    switch (spec.mode) {
      case 0: v = o + s * normal(state); break;                                       // moderate
      case 1: v = o + s * std::exp(spec.skew * normal(state)); break;                 // log-normal, skewed
      case 2: v = o + s; break;                                                       // constant
      case 3: v = o + (i % static_cast<std::size_t>(spec.period) == 0 ? s : 0.0); break;  // all equal but one
      case 4: v = o + ((splitmix(state) & 1) ? s : -s); break;                        // two values
      case 5: v = o + s * static_cast<double>(static_cast<int>(splitmix(state) % 5) - 2); break;  // ties, exact zeros
      case 6: {                                                                       // heavy tails
        const double d = normal(state);
        v = o + s * normal(state) / (std::abs(d) < 1e-3 ? 1e-3 : d);
        break;
      }
      case 7: v = o + s * static_cast<double>(i % static_cast<std::size_t>(spec.period)); break;  // ramps
      case 8: {                                                                       // raw bits
        if (raw.size() >= sizeof(T)) {
          T t;
          const std::size_t at = (i * sizeof(T)) % (raw.size() - sizeof(T) + 1);
          std::memcpy(&t, raw.data() + at, sizeof(T));
          values[i] = t;
          continue;
        }
        v = o + s * normal(state);
        break;
      }
      default: v = o + s * (normal(state) + spec.skew * normal(state) * normal(state)); break;
    }
    values[i] = static_cast<T>(v);
  }
  for (const auto& [position, kind] : spec.specials)
    if (n) values[position % n] = special_value<T>(kind);
  return values;
}

// The sequences and choices an input adds after the original fields (decode() reads them
// only behind kExtensionMarker, so inputs from before them decode exactly as they did).
enum class RunningState : int { as_decoded, negative_count, count_at_max, count_below_max };
enum class Alias : int { none, var_is_mean, lambda_in_var, norm_is_lambda, mean_in_input, var_is_output, lambda_in_weight,
                         norm_in_bias, mean_in_noise, count_in_mean, count_in_input, count_in_output, count };
enum class Mismatch : int { none, form, num_groups, estimator, newton_iterations, affine, standardize, power_transform,
                            eps, alpha, order, noise_train, momentum, track_running_stats, evaluation_map,
                            normalized_shape, count };

struct Extension {
  bool present = false;
  nn::SimdPath simd_path = nn::SimdPath::automatic;  // of the "SIMD" and thread-pool runs
  RunningState running_state = RunningState::as_decoded;
  std::int64_t start_count = 0;                      // num_batches_tracked before the first call
  Alias alias = Alias::none;                         // running buffers sharing memory with another argument
  Mismatch mismatch = Mismatch::none;                // a backward config differing from the forward's in this
  std::uint8_t mismatch_choice = 0;                  // which other value
};

struct Recipe {
  LayerConfig config;
  Shape shape;
  Mode mode = Mode::train;
  bool prime = false;          // eval of a batch form: run one training call first
  int running_init = 0;        // 0 defaults, 1 moderate decoded, 2 wild decoded
  int noise_kind = 1;          // 0 none, 1 philox, 2 external
  std::uint64_t noise_seed = 0, noise_call = 0;
  int arrangement = 0;         // 0 separate, 1 exactly in place, 2 partly overlapping
  int nulls = 0;               // 0 none, else which pointer is null or short
  bool grad_input_in_place = false;
  DataSpec x, grad, weight, bias, running, normals;
  std::vector<std::uint8_t> raw;
  Extension ext;
};

// The byte that announces the extension fields.
constexpr std::uint8_t kExtensionMarker = 0xA5;

// The extension: estimator, newton_iterations and evaluation_map (into the options), the
// SIMD path, the running statistics' starting state, aliasing and a backward mismatch.
void decode_extension(FuzzedDataProvider& fdp, Recipe& r) {
  Options& o = r.config.options;
  Extension& e = r.ext;
  e.present = true;
  o.estimator = static_cast<nn::LambdaEstimator>(fdp.ConsumeIntegralInRange<int>(0, 3));
  const int iterations = fdp.ConsumeIntegralInRange<int>(0, 18);  // 0: the default 1; 17, 18: invalid 0 and 17
  o.newton_iterations = iterations == 0 ? 1 : iterations <= 16 ? iterations : iterations == 17 ? 0 : 17;
  o.evaluation_map = fdp.ConsumeBool() ? nn::EvaluationMap::polynomial : nn::EvaluationMap::exact;
  e.simd_path = static_cast<nn::SimdPath>(fdp.ConsumeIntegralInRange<int>(0, 5));
  const int state = fdp.ConsumeIntegralInRange<int>(0, 7);
  constexpr std::int64_t kMaxCount = std::numeric_limits<std::int64_t>::max();
  switch (state) {
    case 4: e.running_state = RunningState::negative_count, e.start_count = -1; break;
    case 5: e.running_state = RunningState::count_at_max, e.start_count = kMaxCount; break;
    case 6: e.running_state = RunningState::count_below_max, e.start_count = kMaxCount - 1; break;
    case 7: e.running_state = RunningState::negative_count, e.start_count = std::numeric_limits<std::int64_t>::min(); break;
    default: break;
  }
  const int alias = fdp.ConsumeIntegralInRange<int>(0, 15) - 4;  // most inputs have none
  e.alias = alias > 0 ? static_cast<Alias>(alias) : Alias::none;
  const int mismatch = fdp.ConsumeIntegralInRange<int>(0, 30) - 15;  // about half have none
  e.mismatch = mismatch > 0 ? static_cast<Mismatch>(mismatch) : Mismatch::none;
  e.mismatch_choice = fdp.ConsumeIntegral<std::uint8_t>();
}

double pick_eps(FuzzedDataProvider& fdp) {
  const int k = fdp.ConsumeIntegralInRange<int>(0, 31);
  static const double valid[] = {1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5,
                                 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 0, 1e-12, 1e-3, 0.1,
                                 1, 100, 1e-30, 1e10, 1e-40, 3e-5, 1e-7, 1e-5};
  if (k < 28) return valid[k];
  static const double invalid[] = {-1e-5, std::numeric_limits<double>::quiet_NaN(),
                                   std::numeric_limits<double>::infinity(), -0.0};
  return invalid[k - 28];  // -0.0 is valid (>= 0)
}

std::optional<double> pick_momentum(FuzzedDataProvider& fdp) {
  const int k = fdp.ConsumeIntegralInRange<int>(0, 15);
  switch (k) {
    case 0: case 1: case 2: case 3: case 4: case 5: return 0.1;
    case 6: case 7: return std::nullopt;
    case 8: return 0.0;
    case 9: return 1.0;
    case 10: return 0.5;
    case 11: return 0.01;
    case 12: return -0.1;                                       // invalid
    case 13: return 1.5;                                        // invalid
    case 14: return std::numeric_limits<double>::quiet_NaN();   // invalid
    default: return 0.9;
  }
}

double pick_noise(FuzzedDataProvider& fdp, double form_default) {
  const int k = fdp.ConsumeIntegralInRange<int>(0, 15);
  static const double table[] = {0, 0, 0, 0, 0, 0.4, 1, 0.1, 5, 10, 12, 1e-6, -0.4,
                                 std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()};
  return k == 15 ? form_default : table[k];
}

int pick_order(FuzzedDataProvider& fdp) {
  const int k = fdp.ConsumeIntegralInRange<int>(0, 15);
  if (k < 9) return 2;
  if (k < 14) return 1;
  return k == 14 ? 0 : 3;  // invalid
}

double pick_alpha(FuzzedDataProvider& fdp) {
  const int k = fdp.ConsumeIntegralInRange<int>(0, 15);
  static const double table[] = {1, 1, 1, 1, 1, 1, 0.5, 0, 2, 1.5, 10, 1e-3, 100, -1,
                                 std::numeric_limits<double>::quiet_NaN(), 0.25};
  return table[k];
}

Recipe decode(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  Recipe r;
  const auto form = static_cast<Form>(fdp.ConsumeIntegralInRange<int>(0, 4));
  Options o = nn::default_options(form);
  o.eps = pick_eps(fdp);
  o.momentum = pick_momentum(fdp);
  o.noise_train = pick_noise(fdp, o.noise_train);
  o.order = pick_order(fdp);
  o.alpha = pick_alpha(fdp);
  const auto flags = fdp.ConsumeIntegral<std::uint8_t>();
  o.affine = (flags & 1) == 0;
  o.track_running_stats = (flags & 2) == 0 ? nn::is_batch_form(form) : !nn::is_batch_form(form);
  o.standardize = (flags & 12) != 12;       // off one time in four
  o.power_transform = (flags & 48) != 48;   // off one time in four
  r.mode = (flags & 64) ? Mode::eval : Mode::train;
  r.prime = (flags & 128) != 0;

  auto dim = [&](int hi) { return static_cast<index_t>(fdp.ConsumeIntegralInRange<int>(1, hi)); };
  switch (form) {
    case Form::batch_1d: {
      const index_t n = dim(64), c = dim(16);
      r.config = LayerConfig::batch_normal_norm_1d(c, o);
      r.shape = Shape{n, c};
      break;
    }
    case Form::batch_2d:
    case Form::instance_2d: {
      const index_t n = dim(8), c = dim(8), h = dim(17), w = dim(17);
      r.config = form == Form::batch_2d ? LayerConfig::batch_normal_norm_2d(c, o) : LayerConfig::instance_normal_norm_2d(c, o);
      r.shape = Shape{n, c, h, w};
      break;
    }
    case Form::group: {
      const index_t n = dim(6), groups = dim(4), per = dim(4);
      const int spatial_rank = fdp.ConsumeIntegralInRange<int>(0, 2);
      Shape s{n, groups * per};
      if (spatial_rank >= 1) s = Shape{n, groups * per, dim(19)};
      if (spatial_rank >= 2) s = Shape{n, groups * per, s[2], dim(9)};
      r.config = LayerConfig::group_normal_norm(groups, groups * per, o);
      r.shape = s;
      break;
    }
    case Form::layer: {
      const int k = fdp.ConsumeIntegralInRange<int>(1, 3), lead = fdp.ConsumeIntegralInRange<int>(0, 2);
      index_t dims[8];
      int rank = 0;
      for (int i = 0; i < lead; ++i) dims[rank++] = dim(6);
      for (int i = 0; i < k; ++i) dims[rank++] = dim(i == 0 ? 33 : 9);
      r.shape = Shape(dims, rank);
      r.config = LayerConfig::layer_normal_norm(Shape(dims + lead, k), o);
      break;
    }
    case Form::batch_3d:
    case Form::instance_1d:
    case Form::instance_3d:
      // Not drawn (the decoder's form byte keeps the paper's five, so the corpus decodes as
      // before): these are the 2-D forms' layouts on other ranks, bit-identical to them
      // (tests/test_ranks.cpp).
      break;
  }
  // Keep the element count small: shrink the largest leading axis until it fits.
  auto count = [&] {
    index_t c = 1;
    for (index_t d : r.shape) c *= d;
    return c;
  };
  // Axes that may shrink: the batch and spatial axes (not C), or the layer form's leading axes.
  const int k = r.config.form == Form::layer ? r.config.normalized_shape.rank() : 0;
  auto shrinkable = [&](int axis) {
    return r.config.form == Form::layer ? axis < r.shape.rank() - k : axis != 1;
  };
  while (count() > kMaxElements) {
    int axis = -1;
    for (int a = 0; a < r.shape.rank(); ++a)
      if (shrinkable(a) && r.shape[a] > 1 && (axis < 0 || r.shape[a] > r.shape[axis])) axis = a;
    if (axis < 0) break;
    r.shape[axis] = (r.shape[axis] + 1) / 2;
  }
  if (r.config.form == Form::layer && count() > kMaxElements) {
    // normalized_shape itself is too large: shrink it (and the input's trailing axes with it).
    Shape ns = r.config.normalized_shape;
    for (int i = ns.rank() - 1; i >= 0 && count() > kMaxElements; --i) {
      ns[i] = 1;
      r.shape[r.shape.rank() - k + i] = 1;
    }
    r.config.normalized_shape = ns;
  }

  // Rarely, break the shape or the configuration.
  const int breakage = fdp.ConsumeIntegralInRange<int>(0, 63);
  if (breakage == 1 && r.shape.rank() > 1) r.shape[1] += 1;                          // wrong channels
  if (breakage == 2) r.shape[0] = 0;                                                  // zero dimension
  if (breakage == 3) r.shape[r.shape.rank() - 1] = -1;                                // negative dimension
  if (breakage == 4 && r.config.form == Form::group) r.config.num_groups += 1;        // not a divisor (usually)
  if (breakage == 5 && r.config.form == Form::layer) r.config.normalized_shape[0] += 1;
  if (breakage == 6) r.shape = Shape{r.shape[0]};                                     // wrong rank

  r.running_init = fdp.ConsumeIntegralInRange<int>(0, 7);
  r.running_init = r.running_init < 5 ? 0 : (r.running_init < 7 ? 1 : 2);
  r.noise_kind = fdp.ConsumeIntegralInRange<int>(0, 7);
  r.noise_kind = r.noise_kind == 0 ? 0 : (r.noise_kind < 6 ? 1 : 2);
  r.noise_seed = fdp.ConsumeIntegral<std::uint32_t>();
  r.noise_call = fdp.ConsumeIntegralInRange<std::uint32_t>(0, 3);
  const int arrangement = fdp.ConsumeIntegralInRange<int>(0, 31);
  r.arrangement = arrangement < 26 ? 0 : (arrangement < 31 ? 1 : 2);
  const int nulls = fdp.ConsumeIntegralInRange<int>(0, 63);
  r.nulls = nulls < 56 ? 0 : nulls - 55;  // 1..8
  r.grad_input_in_place = fdp.ConsumeIntegralInRange<int>(0, 7) == 0;

  r.x = decode_data(fdp, true);
  r.grad = decode_data(fdp, fdp.ConsumeIntegralInRange<int>(0, 7) == 0);
  r.weight = decode_data(fdp, fdp.ConsumeIntegralInRange<int>(0, 7) == 0);
  r.bias = decode_data(fdp, fdp.ConsumeIntegralInRange<int>(0, 7) == 0);
  r.running = decode_data(fdp, r.running_init == 2);
  r.normals = decode_data(fdp, fdp.ConsumeIntegralInRange<int>(0, 15) == 0);
  // Parameters default to the usual 1 / 0 most of the time.
  if (fdp.ConsumeIntegralInRange<int>(0, 3) != 0) r.weight.mode = -1;
  if (fdp.ConsumeIntegralInRange<int>(0, 3) != 0) r.bias.mode = -1;
  if (r.grad.mode == 8) r.grad.mode = 0;
  // Nothing has been read from the front yet: the next integer is the remaining data's last byte.
  if (fdp.remaining_bytes() > 0 && data[fdp.remaining_bytes() - 1] == kExtensionMarker) {
    fdp.ConsumeIntegral<std::uint8_t>();
    decode_extension(fdp, r);
  }
  r.raw = fdp.ConsumeRemainingBytes<std::uint8_t>();
  return r;
}

// ---- one run ----------------------------------------------------------------------

template <class T>
constexpr T kSentinel = T(-7777.25);

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

enum class Outcome { ok, invalid_argument, domain_error };
const char* outcome_name(Outcome o) {
  return o == Outcome::ok ? "ok" : o == Outcome::invalid_argument ? "invalid_argument" : "domain_error";
}

template <class F>
Outcome guarded(F&& call, const char* where) {
  try {
    call();
    return Outcome::ok;
  } catch (const std::invalid_argument&) {
    return Outcome::invalid_argument;
  } catch (const std::domain_error& e) {
    if (std::getenv("NORMNORM_FUZZ_VERBOSE")) std::fprintf(stderr, "%s: domain_error: %s\n", where, e.what());
    return Outcome::domain_error;
  } catch (const std::exception& e) {
    fail("an exception other than invalid_argument / domain_error", std::string(where) + ": " + e.what());
  } catch (...) {
    fail("a non-std exception", where);
  }
}

Eigen::ThreadPoolDevice& pool_device() {
  static Eigen::ThreadPool pool(3);
  static Eigen::ThreadPoolDevice device(&pool, 3);
  return device;
}

// Every buffer of one path's run.
template <class T>
struct Run {
  std::vector<T> storage;  // input (and, in place or overlapping, output) live here
  std::vector<T> input_copy, output, weight, bias, mean, var, lambda, norm, normals;
  std::vector<T> grad_out, grad_in, grad_weight, grad_bias;
  std::vector<T> alias_pool;  // running buffers that share memory (Alias), read only if refused
  std::int64_t batches = 0;
  nn::SavedContext<T> context;
  nn::Execution execution;
  Outcome forward_outcome = Outcome::ok, backward_outcome = Outcome::ok, primed_outcome = Outcome::ok;
  bool primed_ran = false;
  T* out_ptr = nullptr;
  const T* in_ptr = nullptr;
};

template <class T>
struct Setup {
  const Recipe& r;
  std::size_t n = 0;        // elements the (possibly broken) shape claims, clamped
  std::size_t capacity = 0;
  std::vector<T> x, grad, weight, bias, mean, var, lambda, norm, normals;
  bool valid_shape = true;
  nn::SimdPath simd_path = nn::SimdPath::automatic;  // of the runs prepared with simd

  explicit Setup(const Recipe& recipe) : r(recipe) {
    index_t count = 1;
    for (index_t d : r.shape) {
      if (d <= 0) valid_shape = false;
      count *= std::max<index_t>(d, 1);
    }
    n = static_cast<std::size_t>(std::min<index_t>(count, kMaxElements * 2));
    capacity = std::max<std::size_t>(n, 1) + 1;
    x = materialize<T>(r.x, n, r.raw);
    grad = materialize<T>(r.grad, n, r.raw);
    const auto affine = static_cast<std::size_t>(std::max<index_t>(0, std::min<index_t>(r.config.num_affine(), kMaxElements)));
    if (r.weight.mode < 0) weight.assign(affine, T(1));
    else weight = materialize<T>(r.weight, affine, r.raw);
    if (r.bias.mode < 0) bias.assign(affine, T(0));
    else bias = materialize<T>(r.bias, affine, r.raw);
    const auto channels = static_cast<std::size_t>(std::max<index_t>(0, r.config.num_features));
    mean.assign(channels, T(0));
    var.assign(channels, T(1));
    lambda.assign(channels, T(1));
    norm.assign(channels, T(std::sqrt(2.0 / 3.14159265358979323846)));
    if (r.running_init > 0) {
      std::uint64_t state = r.running.seed + 99;
      const auto wild = materialize<T>(r.running, 4 * channels, r.raw);
      for (std::size_t c = 0; c < channels; ++c) {
        if (r.running_init == 1) {
          mean[c] = T(3 * normal(state));
          var[c] = T(0.01 + 5 * uniform01(state));
          lambda[c] = T(-1 + 4 * uniform01(state));
          norm[c] = T(0.1 + uniform01(state));
        } else {
          mean[c] = wild[4 * c], var[c] = wild[4 * c + 1], lambda[c] = wild[4 * c + 2], norm[c] = wild[4 * c + 3];
        }
      }
    }
    normals = materialize<T>(r.normals, n, r.raw);
    if (r.normals.mode != 8 && r.normals.specials.empty()) {
      std::uint64_t state = r.normals.seed + 5;
      for (auto& v : normals) v = T(normal(state));
    }
  }

  void prepare(Run<T>& run, bool simd, bool threaded) {
    run.storage.assign(capacity + 1, kSentinel<T>);
    std::copy(x.begin(), x.end(), run.storage.begin());
    run.input_copy = x;
    run.output.assign(capacity, kSentinel<T>);
    run.weight = weight, run.bias = bias;
    run.mean = mean, run.var = var, run.lambda = lambda, run.norm = norm;
    run.normals = normals;
    run.batches = r.ext.start_count;
    run.alias_pool.assign(4 * mean.size() + 4, T(0.5));
    run.execution = nn::Execution{simd ? simd_path : nn::SimdPath::scalar, threaded ? &pool_device() : nullptr};
    run.in_ptr = run.storage.data();
    run.out_ptr = r.arrangement == 0 ? run.output.data() : r.arrangement == 1 ? run.storage.data() : run.storage.data() + 1;
    run.grad_out = grad;
    run.grad_out.resize(capacity, T(0));
    run.grad_in.assign(capacity, kSentinel<T>);
    run.grad_weight.assign(weight.size(), kSentinel<T>);
    run.grad_bias.assign(weight.size(), kSentinel<T>);
  }

  nn::ForwardArgs<T> forward_args(Run<T>& run) {
    nn::ForwardArgs<T> a;
    a.input = run.in_ptr;
    a.shape = r.shape;
    a.output = run.out_ptr;
    a.weight = {run.weight.data(), static_cast<index_t>(run.weight.size())};
    a.bias = {run.bias.data(), static_cast<index_t>(run.bias.size())};
    a.running = {run.mean.data(), run.var.data(), run.lambda.data(), run.norm.data(), &run.batches,
                 static_cast<index_t>(run.mean.size())};
    if (r.noise_kind == 1) a.noise = nn::NoiseSource<T>::philox(r.noise_seed, r.noise_call);
    if (r.noise_kind == 2) a.noise = nn::NoiseSource<T>::external(run.normals.data());
    switch (r.nulls) {
      case 1: a.input = nullptr; break;
      case 2: a.output = nullptr; break;
      case 3: a.weight.data = nullptr; break;
      case 4: a.bias.size -= 1; break;
      case 5: a.running.var = nullptr; break;
      case 6: a.running.num_batches_tracked = nullptr; break;
      case 7: a.running.size += 1; break;
      case 8: if (r.noise_kind == 2) a.noise.normals = nullptr; break;
      default: break;
    }
    if (alias_applies()) {
      nn::RunningStats<T>& rs = a.running;
      T* pool = run.alias_pool.data();
      const std::size_t shift = mean.size() > 1 ? 1 : 0;  // partly overlapping, or the same when C = 1
      switch (r.ext.alias) {
        case Alias::var_is_mean: rs.var = rs.mean; break;
        case Alias::lambda_in_var: rs.var = pool, rs.lambda = pool + shift; break;
        case Alias::norm_is_lambda: rs.norm = rs.lambda; break;
        case Alias::mean_in_input: rs.mean = run.storage.data(); break;
        case Alias::var_is_output: rs.var = run.out_ptr; break;
        case Alias::lambda_in_weight: rs.lambda = run.weight.data(); break;
        case Alias::norm_in_bias: rs.norm = run.bias.data(); break;
        case Alias::mean_in_noise: rs.mean = run.normals.data(); break;
        case Alias::count_in_mean: rs.mean = pool, rs.num_batches_tracked = reinterpret_cast<std::int64_t*>(pool); break;
        case Alias::count_in_input: rs.num_batches_tracked = reinterpret_cast<std::int64_t*>(run.storage.data()); break;
        case Alias::count_in_output: rs.num_batches_tracked = reinterpret_cast<std::int64_t*>(run.out_ptr); break;
        default: break;
      }
    }
    return a;
  }

  // Whether the recipe's aliasing concerns a buffer the call reads (weight and bias only
  // with affine, the noise only when external; the count only when it is passed).
  bool alias_applies() const {
    if (r.ext.alias == Alias::none || !r.config.has_running_stats()) return false;
    // The buffers aliased into must be large enough: a broken shape may claim fewer elements.
    if (!valid_shape || n < mean.size() + 2) return false;
    switch (r.ext.alias) {
      case Alias::lambda_in_weight:
      case Alias::norm_in_bias: return r.config.options.affine && r.nulls != 3 && r.nulls != 4;
      case Alias::mean_in_noise: return r.noise_kind == 2 && r.nulls != 8;
      case Alias::count_in_mean:
      case Alias::count_in_input:
      case Alias::count_in_output: return r.nulls != 6;
      default: return true;
    }
  }
  // Whether every forward must be refused whatever else the input holds.
  bool must_refuse() const {
    const bool negative_count = r.ext.running_state == RunningState::negative_count && r.config.has_running_stats() &&
                                r.nulls != 6;
    return alias_applies() || negative_count;
  }

  nn::BackwardArgs<T> backward_args(Run<T>& run) {
    nn::BackwardArgs<T> a;
    a.input = run.input_copy.data();
    a.shape = r.shape;
    a.grad_output = run.grad_out.data();
    a.weight = {run.weight.data(), static_cast<index_t>(run.weight.size())};
    a.grad_input = r.grad_input_in_place ? run.grad_out.data() : run.grad_in.data();
    a.grad_weight = run.grad_weight.data();
    a.grad_bias = run.grad_bias.data();
    a.external_noise = r.noise_kind == 2 ? run.normals.data() : nullptr;
    return a;
  }

  // forward (after an optional priming training call), with the exception checks.
  void forward(Run<T>& run, const char* path) {
    if (r.prime && r.mode == Mode::eval && valid_shape && r.nulls == 0 && r.arrangement == 0) {
      // A training call first, so evaluation sees running statistics a forward produced.
      run.primed_outcome = guarded([&] { nn::forward(r.config, Mode::train, forward_args(run), run.context, run.execution); },
                                   "priming forward");
      run.primed_ran = true;
      std::fill(run.output.begin(), run.output.end(), kSentinel<T>);
    }
    const auto storage = run.storage, output = run.output, mean = run.mean, var = run.var, lambda = run.lambda,
               norm = run.norm, weight = run.weight, bias = run.bias, normals = run.normals, pool = run.alias_pool;
    const auto batches = run.batches;
    run.forward_outcome = guarded([&] { nn::forward(r.config, r.mode, forward_args(run), run.context, run.execution); }, path);
    if (must_refuse() && run.forward_outcome != Outcome::invalid_argument)
      fail("aliased running statistics or a negative num_batches_tracked were not refused",
           std::string(path) + ": " + outcome_name(run.forward_outcome));
    if (run.forward_outcome == Outcome::ok) {
      // The count saturates at its largest value, and counts only training calls.
      const bool trained = (r.mode == Mode::train || (r.prime && run.primed_outcome == Outcome::ok && run.primed_ran)) &&
                           r.config.has_running_stats() && r.nulls != 6;
      if (r.ext.start_count > 0 && run.batches != (trained ? std::numeric_limits<std::int64_t>::max() : r.ext.start_count))
        fail("num_batches_tracked near its largest value did not saturate", std::string(path) + ": " + std::to_string(run.batches));
      return;
    }
    if (run.forward_outcome == Outcome::domain_error && r.mode != Mode::train)
      fail("domain_error from an evaluation forward", path);
    std::string changed;
    if (!same_bits(run.storage, storage)) changed += "input/in-place output ";
    if (!same_bits(run.output, output)) changed += "output ";
    if (!same_bits(run.mean, mean)) changed += "running_mean ";
    if (!same_bits(run.var, var)) changed += "running_var ";
    if (!same_bits(run.lambda, lambda)) changed += "running_lambda ";
    if (!same_bits(run.norm, norm)) changed += "running_norm ";
    if (run.batches != batches) changed += "num_batches_tracked ";
    if (!same_bits(run.weight, weight)) changed += "weight ";
    if (!same_bits(run.bias, bias)) changed += "bias ";
    if (!same_bits(run.normals, normals)) changed += "external noise ";
    if (!same_bits(run.alias_pool, pool)) changed += "aliased running buffer ";
    if (!changed.empty())
      fail("a failed forward changed caller-visible state", std::string(path) + " (" + outcome_name(run.forward_outcome) + "): " + changed);
  }

  void backward(Run<T>& run, const char* path) {
    run.backward_outcome = guarded([&] { nn::backward(r.config, backward_args(run), run.context, run.execution); }, path);
    if (run.backward_outcome != Outcome::ok)
      fail("backward threw after a successful forward with valid arguments", path);
  }
};

template <class T>
std::vector<T> head(const std::vector<T>& v, std::size_t n) {
  return std::vector<T>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
}

// The output values of a run (where they were written).
template <class T>
std::vector<T> outputs_of(const Run<T>& run, int arrangement, std::size_t n) {
  if (arrangement == 0) return head(run.output, n);
  return std::vector<T>(run.storage.begin() + (arrangement == 2 ? 1 : 0), run.storage.begin() + (arrangement == 2 ? 1 : 0) + static_cast<std::ptrdiff_t>(n));
}

template <class T>
std::vector<T> grad_input_of(const Run<T>& run, bool in_place, std::size_t n) {
  return head(in_place ? run.grad_out : run.grad_in, n);
}

// Per-group facts the checks need, computed in double from the SIMD run's context.
struct GroupFacts {
  bool forward_bounded = true, backward_bounded = true;
  bool well_conditioned = true;  // SIMD and scalar must agree here
  double out_scale = 0;          // max |output|
  double psi_l_max = 0;          // max |gamma dy/dlambda|
  double gh_scale = 0;           // max |gradient reaching h| (before centring), times rstd
  double lambda_term_roundoff = 0;  // roundoff of the shared lambda term, rstd max_dl eps sum |u psi_l|
  double mean_abs_h = 0;
  double y_scale = 0;            // max |y|: the spread (hence the noise scale) is a sum of |y - mean(y)|
};

template <class T>
std::vector<GroupFacts> group_facts(const Setup<T>& s, const Run<T>& run, const nn::Layout& layout,
                                    const std::vector<T>& out) {
  const Options& o = s.r.config.options;
  const double c = std::sqrt(o.eps);
  const double log_max = std::log(static_cast<double>(std::numeric_limits<T>::max()));
  const double unit = static_cast<double>(std::numeric_limits<T>::epsilon());
  const bool training = s.r.mode == Mode::train;
  const bool noisy = training && o.power_transform && o.noise_train > 0;
  const index_t groups = layout.num_groups();
  std::vector<GroupFacts> facts(static_cast<std::size_t>(groups));

  bool params_ok = true;
  if (o.affine)
    for (std::size_t i = 0; i < run.weight.size(); ++i)
      params_ok = params_ok && std::isfinite(run.weight[i]) && std::isfinite(run.bias[i]) &&
                  std::abs(double(run.weight[i])) <= kParamBound && std::abs(double(run.bias[i])) <= kParamBound;
  if (noisy && o.noise_train > kNoiseFactorBound) params_ok = false;

  for (index_t g = 0; g < groups; ++g) {
    GroupFacts& f = facts[static_cast<std::size_t>(g)];
    const std::size_t gi = static_cast<std::size_t>(g);
    const double mean = run.context.mean[gi], rstd = run.context.rstd[gi], lambda = run.context.lambda[gi];
    const double g1 = run.context.g1[gi], g2 = run.context.g2[gi];
    const double A = run.context.mean_hd[gi], D = run.context.mean_d[gi];
    f.forward_bounded = params_ok && std::isfinite(mean) && std::isfinite(rstd) && std::isfinite(lambda);
    auto et_of = [&](double eta) { return std::abs(eta) <= c ? 0.0 : eta + (eta >= 0 ? c : -c); };
    const double et_pos = et_of(lambda), et_neg = et_of(2.0 - lambda);
    const bool lambda_has_gradient = run.context.batch_statistics && o.power_transform;
    const double denom = g2 + c;
    const bool gradient_step = nn::uses_gradient_step(o);
    // newton(k) and exact: lambda's gradient comes from the search's trace, with 1 / l''
    // factors these bounds do not model (l'' may be tiny): no finiteness claim for the backward.
    const bool searched = lambda_has_gradient && nn::searches_lambda(o);
    if (searched) f.backward_bounded = false;
    if (lambda_has_gradient && !gradient_step && !searched && !(std::abs(denom) >= kMinNewtonDenominator))
      f.backward_bounded = false;
    if (lambda_has_gradient && !searched && !(std::abs(o.alpha * g1) <= kMaxStep)) f.backward_bounded = false;
    const double k_g1 = gradient_step ? -o.alpha : -o.alpha / denom;
    const double k_g2 = gradient_step ? 0.0 : o.alpha * g1 / (denom * denom);

    // Sums of magnitudes of the lambda estimate's terms (for its condition number),
    // and the pieces of the gradient reaching h (for the backward's tolerance).
    double sum_hd = 0, sum_L = 0, sum_he = 0, sum_dd = 0, sum_abs_h = 0;
    double Lambda = 0, sum_abs_u_psi_l = 0, max_u_psi_h = 0, max_dl = 0;
    const index_t m = layout.group_size();
    for (index_t seg = 0; seg < layout.segments_per_group(); ++seg) {
      const index_t base = layout.segment_offset(g, seg);
      for (index_t i = 0; i < layout.segment_length(); ++i) {
        const auto p = static_cast<std::size_t>(base + i);
        const double x = double(run.input_copy[p]);
        const double h = (x - mean) * rstd;
        const index_t channel = layout.first_channel(g) + (layout.inner == 1 ? i : i / layout.inner);
        const double gamma = o.affine ? double(run.weight[static_cast<std::size_t>(channel)]) : 1.0;
        // h itself is computed in T: it must fit (with the log side, y = log1p(|h|) would be
        // finite in exact arithmetic even for |h| > max(T), but T's h is Inf).
        if (!std::isfinite(x) || !std::isfinite(h) || std::abs(x - mean) > double(std::numeric_limits<T>::max()) / 4 ||
            std::abs(h) > double(std::numeric_limits<T>::max()) / 4)
          f.forward_bounded = false;
        // The variance's partial sums are kept in T: squares that can add up past max(T)
        // overflow in one path's accumulator and not in the other's (a different split
        // into lanes), so such groups are not compared.
        if (o.standardize && (x - mean) * (x - mean) * static_cast<double>(layout.group_size()) >
                                 double(std::numeric_limits<T>::max()) / 2)
          f.forward_bounded = false;
        if (noisy && s.r.noise_kind == 2 && !(std::abs(double(run.normals[p])) <= kDrawBound)) f.forward_bounded = false;
        const double a = std::abs(h), L = std::log1p(a), et = h >= 0 ? et_pos : et_neg;
        const bool log_side = et == 0.0;
        const double t = et * L;
        if (o.power_transform && !(std::abs(t) <= kForwardExponentFraction * log_max)) f.forward_bounded = false;
        if (o.power_transform && !(std::abs(t) <= kBackwardExponentFraction * log_max)) f.backward_bounded = false;
        if (!(a <= kBackwardHBound)) f.backward_bounded = false;
        const double u = gamma * double(s.grad[p]);
        if (!(std::abs(double(s.grad[p])) <= kParamBound)) f.backward_bounded = false;
        const double d = (1 + a) * L - a;
        sum_hd += std::abs(h * d), sum_L += L, sum_dd += d * d, sum_he += std::abs(a * ((1 + a) * L * L - 2 * d));
        sum_abs_h += a;
        double psi_h = 1, psi_l = 0;
        if (o.power_transform && std::isfinite(t)) {
          if (log_side) {
            psi_h = 1 / (1 + a);
          } else {
            const double E = std::exp(std::min(t, 700.0));
            psi_h = E / (1 + a);
            psi_l = std::abs(t) < 1e-8 ? 0.5 * L * L : (E * (t - 1) + 1) / (et * et);
          }
        }
        f.psi_l_max = std::max(f.psi_l_max, std::abs(psi_l * gamma));
        if (o.power_transform && std::isfinite(t))
          f.y_scale = std::max(f.y_scale, log_side ? L : std::abs(std::expm1(std::min(t, 700.0)) / et));
        else
          f.y_scale = std::max(f.y_scale, a);
        Lambda += u * psi_l;
        sum_abs_u_psi_l += std::abs(u * psi_l);
        max_u_psi_h = std::max(max_u_psi_h, std::abs(u * psi_h));
        if (lambda_has_gradient && !searched) {
          const double dA = d + a * L, dg1 = dA - 1 / (1 + a);
          const double inner = (1 + 2 * a) * L * L - 2 * d + 2 * (d - D) * L;
          const double dg2 = (h >= 0 ? inner : -inner) - 4 * A * dA;
          max_dl = std::max(max_dl, std::abs(k_g1 * dg1 + k_g2 * dg2) / static_cast<double>(m));
        }
        f.out_scale = std::max(f.out_scale, std::abs(double(out[p])));
      }
    }
    f.backward_bounded = f.backward_bounded && f.forward_bounded;
    const double md = static_cast<double>(m);
    f.mean_abs_h = sum_abs_h / md;
    f.gh_scale = rstd * (max_u_psi_h + std::abs(Lambda) * max_dl);
    // Lambda = sum_k u_k psi_l_k may cancel (u of both signs): its roundoff is relative to
    // sum |u psi_l|, not to |Lambda|, and it reaches every element of the group alike.
    f.lambda_term_roundoff = rstd * max_dl * 16 * unit * std::sqrt(md + 1) * sum_abs_u_psi_l;
    // Condition numbers in precision T: how far roundoff in the sums (summed in a
    // different order by the two paths) can move h and lambda. h carries an absolute
    // error of about unit (|mean| rstd + |h|) (from the mean and rstd), which moves
    // lambda by up to sum_j |dlambda/dh_j| times that; lambda's own sums carry unit
    // times the size of their terms, amplified by the Newton step.
    double max_h = 0;
    for (index_t seg = 0; seg < layout.segments_per_group(); ++seg)
      for (index_t i = 0; i < layout.segment_length(); ++i) {
        const auto p = static_cast<std::size_t>(layout.segment_offset(g, seg) + i);
        max_h = std::max(max_h, std::abs((double(run.input_copy[p]) - mean) * rstd));
      }
    const double offset = o.standardize ? std::abs(mean) * rstd : 0.0;  // cancellation in x - mean
    double kappa_lambda = 0;
    if (lambda_has_gradient && !searched) {  // (searched lambdas are not compared: check_dtype)
      const double s1 = (sum_hd + sum_L) / md, s2 = (sum_he + sum_dd) / md + 4 * std::abs(A) * sum_hd / md;
      kappa_lambda = gradient_step ? std::abs(o.alpha) * s1
                                  : std::abs(o.alpha) * (s1 / std::abs(denom) + std::abs(g1) * s2 / (denom * denom));
      if (o.standardize) kappa_lambda += md * max_dl * (offset + max_h);
    }
    const double tol = sizeof(T) == 4 ? 1e-4 : 1e-9;
    const double roundoff = 8 * unit * std::sqrt(md + 1);
    // (An error in lambda moves the outputs by psi_l times it: the comparison allows that
    // for the lambdas it observes, so here only the lambdas themselves must be determined.)
    f.well_conditioned = std::isfinite(kappa_lambda) && roundoff * (1 + offset) <= tol &&
                         roundoff * kappa_lambda <= tol * (1 + std::abs(lambda));
  }
  return facts;
}

template <class T>
void require_bitwise(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  if (!same_bits(a, b)) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && std::memcmp(&a[i], &b[i], sizeof(T)) == 0) ++i;
    fail("the thread-pool path differs from the serial path", std::string(what) + " at " + std::to_string(i));
  }
}

const char* mismatch_field(Mismatch m);

std::string describe(const Recipe& r, const char* dtype) {
  const Options& o = r.config.options;
  std::string text = std::string(dtype) + " " + r.config.name() + " shape " + r.shape.to_string();
  if (r.config.form == Form::group) text += " groups " + std::to_string(r.config.num_groups);
  text += r.mode == Mode::train ? " train" : " eval";
  if (r.prime) text += " (primed)";
  text += " eps " + num(o.eps) + " momentum " + (o.momentum ? num(*o.momentum) : std::string("none")) + " noise " +
          num(o.noise_train) + " order " + std::to_string(o.order) + " alpha " + num(o.alpha) + " affine " +
          std::to_string(o.affine) + " track " + std::to_string(o.track_running_stats) + " standardize " +
          std::to_string(o.standardize) + " power " + std::to_string(o.power_transform) + " noise_kind " +
          std::to_string(r.noise_kind) + " running_init " + std::to_string(r.running_init) + " arrangement " +
          std::to_string(r.arrangement) + " nulls " + std::to_string(r.nulls) + " data mode " + std::to_string(r.x.mode) +
          " scale " + num(r.x.scale) + " offset " + num(r.x.offset) + " specials " + std::to_string(r.x.specials.size());
  if (r.ext.present) {
    static const char* const states[] = {"as decoded", "negative", "at max", "below max"};
    static const char* const aliases[] = {"none", "var = mean", "lambda partly over var", "norm = lambda", "mean in input",
                                          "var = output", "lambda in weight", "norm in bias", "mean in external noise",
                                          "count in mean", "count in input", "count in output"};
    text += std::string(" | estimator ") + nn::estimator_name(o.estimator) + " newton_iterations " +
            std::to_string(o.newton_iterations) + " evaluation_map " +
            (o.evaluation_map == nn::EvaluationMap::polynomial ? "polynomial" : "exact") + " simd_path " +
            nn::to_string(r.ext.simd_path) + " count " + states[static_cast<int>(r.ext.running_state)] + " (" +
            std::to_string(r.ext.start_count) + ") alias " + aliases[static_cast<int>(r.ext.alias)] + " mismatch " +
            mismatch_field(r.ext.mismatch) + " (choice " + std::to_string(r.ext.mismatch_choice) + ")";
  }
  return text;
}

// ---- a backward config other than the forward's ------------------------------------------

const char* mismatch_field(Mismatch m) {
  static const char* const names[] = {"none", "form", "num_groups", "estimator", "newton_iterations", "affine",
                                      "standardize", "power_transform", "eps", "alpha", "order", "noise_train",
                                      "momentum", "track_running_stats", "evaluation_map", "normalized_shape"};
  return names[static_cast<int>(m)];
}

// A config that differs from the recipe's in the field r.ext.mismatch names (field is set
// to the one that changed: a form or a num_groups the shape cannot take falls back to
// another field). Forms change to ones on the same shape where layouts allow.
LayerConfig mismatched_config(const Recipe& r, Mismatch& field) {
  const LayerConfig& c = r.config;
  const unsigned choice = r.ext.mismatch_choice;
  LayerConfig m = c;
  Options& o = m.options;
  auto pick = [&](std::initializer_list<double> values, double current) {
    std::vector<double> others;
    for (double v : values)
      if (!(v == current)) others.push_back(v);
    return others[choice % others.size()];
  };
  const Shape& shape = r.shape;
  const int rank = shape.rank();
  field = r.ext.mismatch;
  if (field == Mismatch::num_groups) {
    std::vector<index_t> divisors;
    if (c.form == Form::group)
      for (index_t g = 1; g <= c.num_features; ++g)
        if (c.num_features % g == 0 && g != c.num_groups) divisors.push_back(g);
    if (!divisors.empty()) {
      m.num_groups = divisors[choice % divisors.size()];
      return m;
    }
    field = Mismatch::form;
  }
  if (field == Mismatch::normalized_shape) {
    if (c.form == Form::layer) {
      // One axis more, or one fewer, of the input's trailing axes.
      const int k = c.normalized_shape.rank();
      const int other = (k > 1 && ((choice & 1) || rank == k)) ? k - 1 : k + 1;
      if (other >= 1 && other <= rank) {
        index_t dims[8];
        for (int i = 0; i < other; ++i) dims[i] = shape[rank - other + i];
        m.normalized_shape = Shape(dims, other);
        return m;
      }
    }
    field = Mismatch::form;
  }
  if (field == Mismatch::form) {
    // Every other form this shape fits, in a fixed order.
    std::vector<LayerConfig> others;
    const index_t channels = rank >= 2 ? shape[1] : 1;
    if (rank >= 2) {
      index_t trailing[8];
      for (int i = 1; i < rank; ++i) trailing[i - 1] = shape[i];
      if (rank == 2) others.push_back(LayerConfig::batch_normal_norm_1d(channels, o));
      if (rank == 4) others.push_back(LayerConfig::batch_normal_norm_2d(channels, o));
      if (rank == 4) others.push_back(LayerConfig::instance_normal_norm_2d(channels, o));
      others.push_back(LayerConfig::group_normal_norm(1, channels, o));
      if (channels > 1) others.push_back(LayerConfig::group_normal_norm(channels, channels, o));
      if (rank - 1 <= 3) others.push_back(LayerConfig::layer_normal_norm(Shape(trailing, rank - 1), o));
    }
    others.erase(std::remove_if(others.begin(), others.end(), [&](const LayerConfig& x) { return x.form == c.form; }),
                 others.end());
    if (!others.empty()) return others[choice % others.size()];
    field = Mismatch::affine;
  }
  switch (field) {
    case Mismatch::estimator:
      o.estimator = static_cast<nn::LambdaEstimator>((static_cast<int>(o.estimator) + 1 + choice % 3) % 4);
      break;
    case Mismatch::newton_iterations:
      o.newton_iterations = static_cast<int>(pick({1, 2, 3, 4, 8, 16, 0, 17}, o.newton_iterations));
      break;
    case Mismatch::affine: o.affine = !o.affine; break;
    case Mismatch::standardize: o.standardize = !o.standardize; break;
    case Mismatch::power_transform: o.power_transform = !o.power_transform; break;
    case Mismatch::eps: o.eps = pick({1e-5, 1e-3, 0, 1e-12, 1e-5 * (1 + 1e-15)}, o.eps); break;
    case Mismatch::alpha: o.alpha = pick({1, 0.5, 2, 0}, o.alpha); break;
    case Mismatch::order: o.order = o.order == 1 ? 2 : 1; break;
    case Mismatch::noise_train: o.noise_train = pick({0, 0.4, 1}, o.noise_train); break;
    case Mismatch::momentum:
      if (o.momentum) o.momentum = (choice & 1) ? std::optional<double>() : std::optional<double>(*o.momentum == 0.5 ? 0.1 : 0.5);
      else o.momentum = 0.1;
      break;
    case Mismatch::track_running_stats: o.track_running_stats = !o.track_running_stats; break;
    case Mismatch::evaluation_map:
      o.evaluation_map = o.evaluation_map == nn::EvaluationMap::exact ? nn::EvaluationMap::polynomial : nn::EvaluationMap::exact;
      break;
    default: break;
  }
  return m;
}

// After a successful forward: a backward with another config (or an unavailable SIMD path)
// must be refused with invalid_argument, naming the field where the config is valid for the
// shape, and write nothing; then the context must still serve the real backward.
template <class T>
void probe_refused_backward(Setup<T>& s, Run<T>& run, const LayerConfig& config, const nn::Execution& execution,
                            const char* expected_field) {
  const auto grad_in = run.grad_in, grad_out = run.grad_out, grad_weight = run.grad_weight, grad_bias = run.grad_bias;
  nn::Status status;
  std::string message;
  if (s.r.ext.mismatch_choice & 1) {
    status = nn::try_backward(config, s.backward_args(run), run.context, execution);
    message = status.message();
  } else {
    const Outcome outcome = guarded([&] {
      try {
        nn::backward(config, s.backward_args(run), run.context, execution);
      } catch (const std::invalid_argument& e) {
        message = e.what();
        throw;
      }
    }, "refused backward");
    status = outcome == Outcome::ok                 ? nn::Status()
             : outcome == Outcome::invalid_argument ? nn::Status::invalid_argument(message)
                                                    : nn::Status::domain_error("domain_error");
  }
  if (std::getenv("NORMNORM_FUZZ_VERBOSE")) std::fprintf(stderr, "refused backward: %s\n", message.c_str());
  const std::string what = std::string("config ") + config.name() + (expected_field ? std::string(", field ") + expected_field : "");
  if (status.kind() != nn::ErrorKind::invalid_argument)
    fail("a backward that must be refused was not (invalid_argument)", what + ": " + (status.ok() ? "ok" : message));
  if (expected_field &&
      message.find(std::string("differs from the forward that filled the context (") + expected_field + ":") == std::string::npos)
    fail("a refused backward does not name the differing field", what + ": " + message);
  std::string changed;
  if (!same_bits(run.grad_in, grad_in)) changed += "grad_input ";
  if (!same_bits(run.grad_out, grad_out)) changed += "grad_output (grad_input in place) ";
  if (!same_bits(run.grad_weight, grad_weight)) changed += "grad_weight ";
  if (!same_bits(run.grad_bias, grad_bias)) changed += "grad_bias ";
  if (!changed.empty()) fail("a refused backward wrote", what + ": " + changed);
}

// Whether this program holds `path` and this CPU runs it.
bool simd_path_available(nn::SimdPath path) {
  if (path == nn::SimdPath::automatic) return true;
  static const auto available = nn::available_simd_paths();
  for (const auto& info : available)
    if (info.path == path) return true;
  return false;
}

template <class T>
void check_dtype(const Recipe& r) {
  g_current = describe(r, sizeof(T) == 4 ? "float" : "double");
  if (std::getenv("NORMNORM_FUZZ_DESCRIBE")) std::fprintf(stderr, "fuzz_layers: %s\n", g_current.c_str());
  Setup<T> s(r);
  // A SIMD path this program lacks (or this CPU cannot run) must be refused before any
  // write; the runs below then take the automatic path.
  const bool path_available = simd_path_available(r.ext.simd_path);
  if (!path_available) {
    s.simd_path = r.ext.simd_path;
    Run<T> refused;
    s.prepare(refused, true, false);
    s.forward(refused, "forward (unavailable SIMD path)");
    if (refused.forward_outcome != Outcome::invalid_argument)
      fail("an unavailable SIMD path was not refused", std::string(nn::to_string(r.ext.simd_path)) + ": " +
                                                          outcome_name(refused.forward_outcome));
  }
  s.simd_path = path_available ? r.ext.simd_path : nn::SimdPath::automatic;
  Run<T> simd, scalar, threaded;
  s.prepare(simd, true, false);
  s.prepare(scalar, false, false);
  s.prepare(threaded, true, true);
  s.forward(simd, "forward (SIMD)");
  s.forward(scalar, "forward (scalar)");
  s.forward(threaded, "forward (thread pool)");

  // The thread pool changes nothing, not even which exception.
  if (threaded.forward_outcome != simd.forward_outcome)
    fail("thread-pool and serial forwards disagree on failure",
         std::string(outcome_name(threaded.forward_outcome)) + " vs " + outcome_name(simd.forward_outcome));
  // SIMD and scalar must fail alike, except where float partial sums of huge
  // values overflow in one summation order and not the other.
  // (With eps = 0 a zero-variance group makes rstd infinite and h NaN; whether the
  // group's computed variance is exactly 0 depends on the summation order.)
  bool moderate_input = r.config.options.eps > 0;
  for (T v : s.x) moderate_input = moderate_input && std::isfinite(v) && std::abs(double(v)) <= 1e15;
  if (moderate_input && simd.forward_outcome != scalar.forward_outcome)
    fail("SIMD and scalar forwards disagree on failure",
         std::string(outcome_name(simd.forward_outcome)) + " vs " + outcome_name(scalar.forward_outcome));
  if (simd.forward_outcome != Outcome::ok) return;

  const std::size_t n = s.n;
  const auto out_simd = outputs_of(simd, r.arrangement, n), out_threaded = outputs_of(threaded, r.arrangement, n);
  require_bitwise(out_threaded, out_simd, "output");
  require_bitwise(threaded.mean, simd.mean, "running_mean");
  require_bitwise(threaded.var, simd.var, "running_var");
  require_bitwise(threaded.lambda, simd.lambda, "running_lambda");
  require_bitwise(threaded.norm, simd.norm, "running_norm");

  const nn::Layout layout = r.config.layout_for(r.shape);
  const bool run_backward = r.arrangement != 2;
  if (run_backward) {
    if (r.ext.mismatch != Mismatch::none) {
      Mismatch field = r.ext.mismatch;
      const LayerConfig other = mismatched_config(r, field);
      nn::Layout other_layout;
      const bool names_field = nn::detail::validate_options(other).ok() && nn::detail::validate_shape<T>(other, r.shape).ok() &&
                               other.check_layout(r.shape, other_layout).ok();
      probe_refused_backward(s, simd, other, simd.execution, names_field ? mismatch_field(field) : nullptr);
    }
    if (!path_available)
      probe_refused_backward(s, simd, r.config, nn::Execution{r.ext.simd_path}, nullptr);
    s.backward(simd, "backward (SIMD)");
    s.backward(threaded, "backward (thread pool)");
    require_bitwise(grad_input_of(threaded, r.grad_input_in_place, n), grad_input_of(simd, r.grad_input_in_place, n), "grad_input");
    require_bitwise(threaded.grad_weight, simd.grad_weight, "grad_weight");
    require_bitwise(threaded.grad_bias, simd.grad_bias, "grad_bias");
    if (scalar.forward_outcome == Outcome::ok) s.backward(scalar, "backward (scalar)");
  }
  const std::vector<T> grad_simd = run_backward ? grad_input_of(simd, r.grad_input_in_place, n) : std::vector<T>{};
  const auto facts = group_facts(s, simd, layout, out_simd);

  // Finiteness under the documented bounds.
  const Options& o = r.config.options;
  bool all_forward_bounded = true, all_backward_bounded = true;
  for (index_t g = 0; g < layout.num_groups(); ++g) {
    const GroupFacts& f = facts[static_cast<std::size_t>(g)];
    all_forward_bounded = all_forward_bounded && f.forward_bounded;
    all_backward_bounded = all_backward_bounded && f.backward_bounded;
    for (index_t seg = 0; seg < layout.segments_per_group(); ++seg) {
      const index_t base = layout.segment_offset(g, seg);
      for (index_t i = 0; i < layout.segment_length(); ++i) {
        const auto p = static_cast<std::size_t>(base + i);
        if (f.forward_bounded && !std::isfinite(out_simd[p]))
          fail("non-finite output from bounded input", "group " + std::to_string(g) + " element " + std::to_string(p) +
                                                          " lambda " + num(simd.context.lambda[static_cast<std::size_t>(g)]) + " value " + num(out_simd[p]) +
                                                          " x " + num(s.x[p]) + " mean " + num(simd.context.mean[static_cast<std::size_t>(g)]) +
                                                          " rstd " + num(simd.context.rstd[static_cast<std::size_t>(g)]) +
                                                          (o.affine ? " gamma " + num(s.weight[static_cast<std::size_t>(layout.first_channel(g) + (layout.inner == 1 ? i : i / layout.inner))]) : std::string()));
        if (run_backward && f.backward_bounded && !std::isfinite(grad_simd[p]))
          fail("non-finite grad_input from bounded input", "group " + std::to_string(g) + " element " + std::to_string(p));
      }
    }
  }
  bool prior_running_finite = true;  // what this call blended into (the fuzzer may start from anything)
  for (const auto* v : {&s.mean, &s.var, &s.lambda, &s.norm})
    for (T value : *v) prior_running_finite = prior_running_finite && std::isfinite(value) && std::abs(double(value)) <= 1e30;
  if (all_forward_bounded && prior_running_finite && !r.prime && r.mode == Mode::train && r.config.has_running_stats())
    for (std::size_t c = 0; c < simd.mean.size(); ++c)
      if (!std::isfinite(simd.mean[c]) || !std::isfinite(simd.var[c]) || !std::isfinite(simd.lambda[c]) || !std::isfinite(simd.norm[c]))
        fail("non-finite running statistics from bounded input", "channel " + std::to_string(c));
  if (run_backward && all_backward_bounded && o.affine)
    for (std::size_t c = 0; c < simd.grad_weight.size(); ++c)
      if (!std::isfinite(simd.grad_weight[c]) || !std::isfinite(simd.grad_bias[c]))
        fail("non-finite grad_weight / grad_bias from bounded input", "parameter " + std::to_string(c));

  // With SimdPath::scalar, the "SIMD" run is a second scalar run: bit for bit the same.
  if (s.simd_path == nn::SimdPath::scalar) {
    if (scalar.forward_outcome != Outcome::ok || scalar.primed_outcome != simd.primed_outcome)
      fail("two scalar runs disagree on failure", outcome_name(scalar.forward_outcome));
    std::vector<std::pair<const std::vector<T>*, const std::vector<T>*>> pairs = {
        {&simd.mean, &scalar.mean}, {&simd.var, &scalar.var}, {&simd.lambda, &scalar.lambda}, {&simd.norm, &scalar.norm}};
    const auto out_scalar = outputs_of(scalar, r.arrangement, n);
    const auto grad_scalar = run_backward ? grad_input_of(scalar, r.grad_input_in_place, n) : std::vector<T>{};
    pairs.push_back({&out_simd, &out_scalar});
    if (run_backward) {
      pairs.push_back({&grad_simd, &grad_scalar});
      pairs.push_back({&simd.grad_weight, &scalar.grad_weight});
      pairs.push_back({&simd.grad_bias, &scalar.grad_bias});
    }
    for (const auto& [a, b] : pairs)
      if (!same_bits(*a, *b)) fail("two scalar runs differ", "");
  }

  // SIMD against scalar.
  if (scalar.forward_outcome != Outcome::ok) return;
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-9;
  // An evaluation after a priming training call compares only if the two paths
  // primed alike (the priming data may itself be ill-conditioned).
  if (simd.primed_outcome != scalar.primed_outcome) return;
  for (const auto& [a, b] : {std::pair{&simd.mean, &scalar.mean}, {&simd.var, &scalar.var}, {&simd.lambda, &scalar.lambda},
                             {&simd.norm, &scalar.norm}})
    for (std::size_t c = 0; c < a->size(); ++c)
      if (!(std::abs(double((*a)[c]) - double((*b)[c])) <= tol * (1 + std::abs(double((*b)[c]))))) {
        if (r.mode == Mode::eval) return;  // evaluation reads them: nothing comparable left
        break;
      }
  const bool searched_lambda = nn::searches_lambda(o) && simd.context.batch_statistics && o.power_transform;
  const bool philox_draws_differ =
      r.noise_kind == 1 && std::strcmp(nn::resolved_simd_arch(s.simd_path), nn::resolved_simd_arch(nn::SimdPath::native)) != 0;
  const auto out_scalar = outputs_of(scalar, r.arrangement, n);
  const auto facts_scalar = group_facts(s, scalar, layout, out_scalar);
  const std::vector<T> grad_scalar = run_backward ? grad_input_of(scalar, r.grad_input_in_place, n) : std::vector<T>{};
  for (index_t g = 0; g < layout.num_groups(); ++g) {
    const GroupFacts& f = facts[static_cast<std::size_t>(g)];
    if (!f.forward_bounded || !f.well_conditioned) continue;
    const auto gi = static_cast<std::size_t>(g);
    const double lambda_simd = simd.context.lambda[gi], lambda_scalar = scalar.context.lambda[gi];
    const double dlambda = std::abs(lambda_simd - lambda_scalar);
    // A searched lambda (newton(k), exact) has its own conditioning (1 / l'', the stopping
    // tolerance), which the harness does not model: the outputs are still compared, allowing
    // for the lambdas each path found, and gradients are not.
    if (!searched_lambda && dlambda > tol * (1 + std::abs(lambda_scalar)))
      fail("SIMD and scalar lambdas differ on a well-conditioned group",
           "group " + std::to_string(g) + ": " + num(lambda_simd) + " vs " + num(lambda_scalar));
    // The transform jumps where |eta| crosses sqrt(eps) (y = s L on one side, s expm1(2 c L) / (2 c)
    // on the other: a property of the definition, docs/reliability.md). Two lambdas within
    // roundoff of that edge may legitimately land on different sides.
    const double c = std::sqrt(o.eps);
    const double edge = std::min(std::abs(std::abs(lambda_scalar) - c), std::abs(std::abs(2.0 - lambda_scalar) - c));
    if (o.power_transform && edge <= 2 * dlambda + tol * (1 + std::abs(lambda_scalar))) continue;
    // y is convex in lambda on each side of the edge, so |dy/dlambda| between the two
    // lambdas is at most its larger value at either end (the slope at one end alone
    // underestimates a difference the size a searched lambda may have).
    const double psi_l_bound = std::max(f.psi_l_max, facts_scalar[gi].psi_l_max);
    const double out_allowance = tol * std::max(1.0, f.out_scale) * 0.1 + psi_l_bound * dlambda;
    for (index_t seg = 0; seg < layout.segments_per_group(); ++seg) {
      const index_t base = layout.segment_offset(g, seg);
      for (index_t i = 0; i < layout.segment_length(); ++i) {
        const auto p = static_cast<std::size_t>(base + i);
        const double a = double(out_simd[p]), b = double(out_scalar[p]);
        // The noise scale xi mean|y - mean(y)| is a float sum that cancels when the group's
        // values are nearly equal: it carries roundoff relative to max |y|, not to itself.
        double noise_allowance = 0;
        if (r.mode == Mode::train && o.power_transform && o.noise_train > 0) {
          const index_t channel = layout.first_channel(g) + (layout.inner == 1 ? i : i / layout.inner);
          const double gamma = o.affine ? std::abs(double(s.weight[static_cast<std::size_t>(channel)])) : 1.0;
          const double draw = r.noise_kind == 2 ? std::abs(double(s.normals[p])) : 7.0;
          noise_allowance = o.noise_train * draw * gamma * 16 * double(std::numeric_limits<T>::epsilon()) *
                            std::sqrt(static_cast<double>(layout.group_size()) + 1) * f.y_scale;
          // Philox draws are float Box-Muller (double takes them widened) with xsimd's log and
          // sincos: a path with FMA (avx2, avx512) rounds them differently from the scalar
          // path (which draws with native's instruction set), by a few float ulps of r <= 5.8.
          if (philox_draws_differ) noise_allowance += o.noise_train * gamma * f.y_scale * 48 * double(FLT_EPSILON);
        }
        const double allowed = tol * std::abs(b) + out_allowance + noise_allowance;
        if (!(std::abs(a - b) <= allowed) && std::getenv("NORMNORM_FUZZ_VERBOSE")) {
          std::fprintf(stderr, "group %ld: mean %.9g/%.9g rstd %.9g/%.9g lambda %.9g/%.9g g1 %.9g/%.9g g2 %.9g/%.9g\n",
                       static_cast<long>(g), simd.context.mean[gi], scalar.context.mean[gi], simd.context.rstd[gi],
                       scalar.context.rstd[gi], lambda_simd, lambda_scalar, simd.context.g1[gi], scalar.context.g1[gi],
                       simd.context.g2[gi], scalar.context.g2[gi]);
          for (index_t s2 = 0; s2 < layout.segments_per_group(); ++s2)
            for (index_t k = 0; k < layout.segment_length(); ++k) {
              const auto q = static_cast<std::size_t>(layout.segment_offset(g, s2) + k);
              std::fprintf(stderr, "  [%zu] x %.9g out %.9g / %.9g\n", q, double(s.x[q]), double(out_simd[q]), double(out_scalar[q]));
            }
        }
        if (!(std::abs(a - b) <= allowed))
          fail("SIMD and scalar outputs differ", "group " + std::to_string(g) + " element " + std::to_string(p) + ": " +
                                                    num(a) + " vs " + num(b) + " (lambda " + num(lambda_simd) + ", scale " + num(f.out_scale) + ")");
        if (run_backward && f.backward_bounded && !searched_lambda) {
          const double ga = double(grad_simd[p]), gb = double(grad_scalar[p]);
          const double h = (double(s.x[p]) - simd.context.mean[gi]) * simd.context.rstd[gi];
          // (Below T's normal range the spacing is denorm_min: a few of those are roundoff too.)
          const double floor = std::max(tol * f.gh_scale * (1 + std::abs(h) * f.mean_abs_h) + f.lambda_term_roundoff,
                                        64.0 * double(std::numeric_limits<T>::denorm_min()));
          if (!(std::abs(ga - gb) <= tol * std::abs(gb) + floor))
            fail("SIMD and scalar grad_input differ", "group " + std::to_string(g) + " element " + std::to_string(p) +
                                                         ": " + num(ga) + " vs " + num(gb) + " (floor " + num(floor) + ")");
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Recipe recipe = decode(data, size);
  check_dtype<float>(recipe);
  check_dtype<double>(recipe);
  return 0;
}
