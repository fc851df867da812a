// The adapter: torch tensors in, normnorm's raw-pointer API underneath, autograd around it.

#include "normnorm/torch/ops.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

#include <normnorm/api.hpp>

namespace normnorm::torch {
namespace {

using ::torch::autograd::AutogradContext;
using ::torch::autograd::variable_list;

// Raises a failed Status as c10::Error (Python: RuntimeError) with normnorm's message.
void check(const Status& status) { TORCH_CHECK(status.ok(), status.message()); }

// An Eigen pool per thread count, made on first use and kept for the process (never
// destroyed: the interpreter may exit while a pool would still be joining). Spinning
// is off: PyTorch's own threads run the next op as soon as ours return.
const Eigen::ThreadPoolDevice* device_for(int threads) {
  if (threads <= 1) return nullptr;
  static std::mutex mutex;
  static std::map<int, const Eigen::ThreadPoolDevice*> devices;
  std::lock_guard<std::mutex> lock(mutex);
  auto& device = devices[threads];
  if (!device) device = new Eigen::ThreadPoolDevice(new Eigen::ThreadPool(threads, /*allow_spinning=*/false), threads);
  return device;
}

Execution execution(const Reducer* reducer) {
  Execution e;
  e.device = device_for(at::get_num_threads());
  e.reducer = reducer;
  return e;
}

// A key for this call's noise from PyTorch's default CPU generator (under its lock).
std::uint64_t draw_noise_key() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

// Over ranks, one collective before normnorm's own handshake: each rank's verdict on its
// arguments (the adapter's checks) and its noise key, four 16-bit parts (exact in a double).
// A rank whose arguments fail still takes part, so no rank is left waiting in the
// handshake: every rank raises (the refusing one with its own message). Returns rank 0's key.
std::uint64_t agree_call(const LayerConfig& config, std::uint64_t key, const std::string& refusal,
                         const Reducer& reducer) {
  double record[5];
  record[0] = refusal.empty() ? 0.0 : 1.0;
  for (int i = 0; i < 4; ++i) record[1 + i] = static_cast<double>((key >> (16 * i)) & 0xFFFFu);
  const double* all = reducer.allgather(record, 5);  // rank r's record at 5 r
  int refused_rank = -1;
  for (int r = 0; r < reducer.size() && refused_rank < 0; ++r)
    if (all[5 * r] != 0.0) refused_rank = r;
  TORCH_CHECK(refusal.empty(), refusal);
  TORCH_CHECK(refused_rank < 0, "normnorm: ", config.name(), ": rank ", refused_rank,
              " refused its arguments (its error says why); nothing was written on any rank");
  std::uint64_t agreed = 0;
  for (int i = 0; i < 4; ++i) agreed |= static_cast<std::uint64_t>(all[1 + i]) << (16 * i);
  return agreed;
}

// A tensor's values; for a tensor without elements (a rank holding no samples of a split
// batch), a valid pointer that is never read or written, since normnorm refuses null ones.
template <class T>
T* values_of(const at::Tensor& t) {
  static T none[1];
  return t.numel() > 0 ? t.data_ptr<T>() : none;
}

bool channels_last_strides(const at::Tensor& x) {
  // (N, C, spatial...) stored as (N, spatial..., C): what normnorm calls channels_last.
  if (x.dim() < 3) return false;
  int64_t expected = 1;
  const auto sizes = x.sizes();
  const auto strides = x.strides();
  auto fits = [&](int64_t axis) {
    if (sizes[axis] != 1 && strides[axis] != expected) return false;
    expected *= sizes[axis];
    return true;
  };
  if (!fits(1)) return false;
  for (int64_t axis = x.dim() - 1; axis >= 2; --axis)
    if (!fits(axis)) return false;
  return fits(0);
}

// The input as normnorm reads it: contiguous, or channels_last for the forms that take it
// (no copy in both cases); any other strides are copied to contiguous.
struct Layouted {
  at::Tensor tensor;
  MemoryFormat format;
};
Layouted layouted(const at::Tensor& x, Form form) {
  if (x.is_contiguous()) return {x, MemoryFormat::contiguous};
  const bool takes_channels_last = form == Form::batch_2d || form == Form::instance_2d || form == Form::group;
  if (takes_channels_last && channels_last_strides(x)) return {x, MemoryFormat::channels_last};
  return {x.contiguous(), MemoryFormat::contiguous};
}

// A tensor of x's sizes in `format`'s memory order.
at::Tensor empty_in(const at::Tensor& like, MemoryFormat format) {
  if (format == MemoryFormat::contiguous) return at::empty(like.sizes(), like.options());
  std::vector<int64_t> order{0};  // physical order: N, spatial..., C
  for (int64_t axis = 2; axis < like.dim(); ++axis) order.push_back(axis);
  order.push_back(1);
  std::vector<int64_t> physical;
  for (int64_t axis : order) physical.push_back(like.size(axis));
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int64_t>(i);
  return at::empty(physical, like.options()).permute(inverse);
}

Shape shape_of(const at::Tensor& x) {
  TORCH_CHECK(x.dim() <= Shape::max_rank, "normnorm: input rank ", x.dim(), " is above ", Shape::max_rank);
  return Shape(x.sizes().data(), static_cast<int>(x.dim()));
}

void check_parameter(const LayerConfig& config, const at::Tensor& p, const char* name, const at::Tensor& input) {
  TORCH_CHECK(p.defined(), "normnorm: ", config.name(), ": affine is on but ", name, " is missing");
  TORCH_CHECK(p.device().is_cpu(), "normnorm: ", config.name(), ": ", name, " must be a CPU tensor");
  TORCH_CHECK(p.scalar_type() == input.scalar_type(), "normnorm: ", config.name(), ": ", name, " has dtype ",
              p.scalar_type(), " but the input has ", input.scalar_type());
}  // its length: normnorm checks it

// The running statistics as normnorm's view; each tensor must be contiguous and of T.
template <class T>
RunningStats<T> running_view(const LayerConfig& config, const RunningTensors& r, const at::Tensor& input) {
  RunningStats<T> view;
  if (!config.has_running_stats()) return view;
  for (auto [tensor, name] : {std::pair<const at::Tensor*, const char*>{&r.mean, "running_mean"},
                              {&r.var, "running_var"}, {&r.lambda, "running_lmbda"}, {&r.norm, "running_norm"}}) {
    TORCH_CHECK(tensor->defined(), "normnorm: ", config.name(), ": track_running_stats is on but ", name, " is missing");
    TORCH_CHECK(tensor->device().is_cpu() && tensor->is_contiguous() && tensor->scalar_type() == input.scalar_type(),
                "normnorm: ", config.name(), ": ", name, " must be a contiguous CPU tensor of the input's dtype ",
                input.scalar_type(), ", got ", tensor->scalar_type());
  }
  view.mean = r.mean.data_ptr<T>();
  view.var = r.var.data_ptr<T>();
  view.lambda = r.lambda.data_ptr<T>();
  view.norm = r.norm.data_ptr<T>();
  view.size = r.mean.numel();
  TORCH_CHECK(r.var.numel() == view.size && r.lambda.numel() == view.size && r.norm.numel() == view.size,
              "normnorm: ", config.name(), ": the running statistics differ in length");
  if (r.num_batches_tracked.defined()) {
    TORCH_CHECK(r.num_batches_tracked.scalar_type() == at::kLong && r.num_batches_tracked.numel() == 1,
                "normnorm: ", config.name(), ": num_batches_tracked must be one int64 value");
    view.num_batches_tracked = r.num_batches_tracked.data_ptr<std::int64_t>();
  }
  return view;
}

// What the backward needs: the layer, the forward's format, the reducer (null for one
// process) and normnorm's saved context.
struct Saved : ::torch::CustomClassHolder {
  LayerConfig config;
  MemoryFormat format = MemoryFormat::contiguous;
  std::shared_ptr<const Reducer> reducer;
  std::variant<SavedContext<float>, SavedContext<double>> context;
};

// `noise_key`: the Philox key of a training call with noise (over ranks, rank 0's).
template <class T>
at::Tensor forward_typed(const LayerConfig& config, const Layouted& in, const at::Tensor& weight,
                         const at::Tensor& bias, const RunningTensors& running, bool training, std::uint64_t noise_key,
                         Saved& saved) {
  ForwardArgs<T> args;
  args.input = values_of<T>(in.tensor);
  args.shape = shape_of(in.tensor);
  args.memory_format = in.format;
  if (config.options.affine) {
    args.weight = {weight.data_ptr<T>(), weight.numel()};
    args.bias = {bias.data_ptr<T>(), bias.numel()};
  }
  args.running = running_view<T>(config, running, in.tensor);
  const Mode mode = training ? Mode::train : Mode::eval;
  // The reducer is passed to batch forms only (the others ignore it); it reduces in training
  // and when evaluation takes the batch's statistics.
  const Reducer* reducer = is_batch_form(config.form) ? saved.reducer.get() : nullptr;
  if (training && config.options.power_transform && config.options.noise_train > 0)
    args.noise = NoiseSource<T>::philox(noise_key, 0);
  at::Tensor output = empty_in(in.tensor, in.format);
  args.output = values_of<T>(output);
  auto& context = saved.context.template emplace<SavedContext<T>>();
  check(try_forward(config, mode, args, context, execution(reducer)));
  // The context lives in the autograd node until backward: drop its scratch (transposed
  // copies, the lambda search's interleaved copy), which backward does not read, so that
  // the node keeps O(groups) state besides the saved input.
  context.workspace.release();
  return output;
}

template <class T>
variable_list backward_typed(Saved& saved, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& grad,
                             bool want_input, bool want_affine) {
  const LayerConfig& config = saved.config;
  auto& context = std::get<SavedContext<T>>(saved.context);
  const at::Tensor grad_output =
      saved.format == MemoryFormat::contiguous ? grad.contiguous() : (channels_last_strides(grad) ? grad : [&] {
        at::Tensor copy = empty_in(grad, MemoryFormat::channels_last);
        copy.copy_(grad);
        return copy;
      }());
  BackwardArgs<T> args;
  args.input = values_of<T>(input);
  args.shape = shape_of(input);
  args.memory_format = saved.format;
  args.grad_output = values_of<T>(grad_output);
  at::Tensor grad_input, grad_weight, grad_bias;
  if (want_input) {
    grad_input = empty_in(input, saved.format);
    args.grad_input = values_of<T>(grad_input);
  }
  if (config.options.affine) {
    args.weight = {weight.data_ptr<T>(), weight.numel()};
    if (want_affine) {
      grad_weight = at::empty_like(weight, at::MemoryFormat::Contiguous);
      grad_bias = at::empty_like(weight, at::MemoryFormat::Contiguous);
      args.grad_weight = grad_weight.data_ptr<T>();
      args.grad_bias = grad_bias.data_ptr<T>();
    }
  }
  check(try_backward(config, args, context, execution(saved.reducer.get())));
  return {grad_input, grad_weight, grad_bias, at::Tensor()};
}

// The autograd node. Saves the input (as normnorm read it) and the weight; everything
// else the backward needs is normnorm's O(groups) saved context.
struct NormalNormFunction : ::torch::autograd::Function<NormalNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                            const c10::optional<at::Tensor>& bias, std::shared_ptr<const void> call);
  static variable_list backward(AutogradContext* ctx, variable_list grads);
};

struct Call {
  LayerConfig config;
  RunningTensors running;
  bool training = false;
  std::shared_ptr<const Reducer> reducer;
};

at::Tensor NormalNormFunction::forward(AutogradContext* ctx, const at::Tensor& input,
                                       const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
                                       std::shared_ptr<const void> call_pointer) {
  const Call& call = *static_cast<const Call*>(call_pointer.get());
  const LayerConfig& config = call.config;
  // Over ranks (a batch form with a reducer, reducing in this call) a refusal here is
  // shared with the other ranks before anyone enters normnorm's handshake (agree_call).
  const bool reduces = call.reducer && is_batch_form(config.form) && (call.training || !config.has_running_stats());
  const at::Tensor w = weight.value_or(at::Tensor()), b = bias.value_or(at::Tensor());
  Layouted in{input, MemoryFormat::contiguous};
  std::string refusal;
  try {
    TORCH_CHECK(input.device().is_cpu(), "normnorm: ", config.name(), ": input must be a CPU tensor, got ", input.device());
    TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble, "normnorm: ", config.name(),
                ": input must be float32 or float64, got ", input.scalar_type());
    if (config.options.affine) {
      check_parameter(config, w, "weight", input);
      check_parameter(config, b, "bias", input);
    }
    TORCH_CHECK(!w.defined() || w.is_contiguous(), "normnorm: ", config.name(), ": weight must be contiguous");
    TORCH_CHECK(!b.defined() || b.is_contiguous(), "normnorm: ", config.name(), ": bias must be contiguous");
    in = layouted(input, config.form);
    if (input.scalar_type() == at::kFloat)
      running_view<float>(config, call.running, input);
    else
      running_view<double>(config, call.running, input);
  } catch (const c10::Error& e) {
    if (!reduces) throw;
    refusal = e.what_without_backtrace();
  } catch (const std::exception& e) {  // Shape's own checks throw std::invalid_argument
    if (!reduces) TORCH_CHECK(false, e.what());
    refusal = e.what();
  }
  // A rank draws a key when one process would (so its generator advances the same way);
  // over ranks all use rank 0's. The exchange is made in every reducing call, noise or
  // not, so that ranks whose options differ still reach normnorm's handshake together,
  // which then refuses the call on every rank.
  const bool noisy = call.training && config.options.power_transform && config.options.noise_train > 0;
  std::uint64_t noise_key = refusal.empty() && noisy ? draw_noise_key() : 0;
  if (reduces) noise_key = agree_call(config, noise_key, refusal, *call.reducer);
  auto saved = c10::make_intrusive<Saved>();
  saved->config = config;
  saved->format = in.format;
  saved->reducer = call.reducer;
  at::Tensor output;
  try {
    output = input.scalar_type() == at::kFloat
                 ? forward_typed<float>(config, in, w, b, call.running, call.training, noise_key, *saved)
                 : forward_typed<double>(config, in, w, b, call.running, call.training, noise_key, *saved);
  } catch (const std::exception& e) {  // Shape's own checks throw std::invalid_argument
    if (dynamic_cast<const c10::Error*>(&e)) throw;
    TORCH_CHECK(false, e.what());
  }
  ctx->save_for_backward({in.tensor, w});
  ctx->saved_data["normnorm"] = c10::IValue::make_capsule(std::move(saved));
  return output;
}

variable_list NormalNormFunction::backward(AutogradContext* ctx, variable_list grads) {
  const variable_list tensors = ctx->get_saved_variables();
  auto saved = c10::static_intrusive_pointer_cast<Saved>(ctx->saved_data["normnorm"].toCapsule());
  const at::Tensor& input = tensors[0];
  const bool want_input = ctx->needs_input_grad(0);
  // Edges exist for the tensors given only: (input), or (input, weight, bias) when affine.
  const bool want_affine = saved->config.options.affine && (ctx->needs_input_grad(1) || ctx->needs_input_grad(2));
  if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  // The backward is not itself differentiable: refuse rather than return gradients whose
  // own derivative would silently miss this layer's second-order terms.
  TORCH_CHECK(!(at::GradMode::is_enabled() && grads[0].requires_grad()), "normnorm: ", saved->config.name(),
              ": double backward (create_graph=True through this layer) is not supported");
  const at::Tensor grad = grads[0].to(input.scalar_type());
  return input.scalar_type() == at::kFloat ? backward_typed<float>(*saved, input, tensors[1], grad, want_input, want_affine)
                                           : backward_typed<double>(*saved, input, tensors[1], grad, want_input, want_affine);
}

}  // namespace

at::Tensor normal_norm(const LayerConfig& config, const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                       const c10::optional<at::Tensor>& bias, const RunningTensors& running, bool training,
                       std::shared_ptr<const Reducer> reducer) {
  auto call = std::make_shared<Call>();
  call->config = config;
  call->running = running;
  call->training = training;
  call->reducer = std::move(reducer);
  return NormalNormFunction::apply(input, weight, bias, std::shared_ptr<const void>(call));
}

LambdaEstimator parse_estimator(const std::string& name) {
  const std::optional<LambdaEstimator> estimator = estimators::from_name(name);
  TORCH_CHECK(estimator.has_value(), "normnorm: estimator must be ", estimators::names(), ", got '", name, "'");
  return *estimator;
}

EvaluationMap parse_evaluation_map(const std::string& name) {
  if (name == "exact") return EvaluationMap::exact;
  if (name == "polynomial") return EvaluationMap::polynomial;
  TORCH_CHECK(false, "normnorm: evaluation_map must be exact or polynomial, got '", name, "'");
  return EvaluationMap::exact;
}

}  // namespace normnorm::torch
