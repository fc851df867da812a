// torch.ops.normnorm.*: one op per form. Every normnorm::Options field is an argument,
// except affine (weight and bias given) and track_running_stats (running tensors given),
// which follow from the tensors, as in torch.nn.functional.batch_norm.

#include <torch/library.h>

#include "normnorm/torch/ops.hpp"
#include "normnorm/torch/process_group.hpp"

namespace normnorm::torch {
namespace {

// The options every form takes, in the order the schemas list them.
Options options_from(double eps, c10::optional<double> momentum, double noise_train, int64_t order, double alpha,
                     bool standardize, bool power_transform, c10::string_view estimator, int64_t newton_iterations,
                     c10::string_view evaluation_map, bool affine, bool track_running_stats) {
  Options o;
  o.eps = eps;
  o.momentum = momentum ? std::optional<double>(*momentum) : std::nullopt;
  o.noise_train = noise_train;
  o.order = static_cast<int>(order);
  o.alpha = alpha;
  o.standardize = standardize;
  o.power_transform = power_transform;
  o.estimator = parse_estimator(std::string(estimator));
  o.newton_iterations = static_cast<int>(newton_iterations);
  o.evaluation_map = parse_evaluation_map(std::string(evaluation_map));
  o.affine = affine;
  o.track_running_stats = track_running_stats;
  return o;
}

bool given(const c10::optional<at::Tensor>& t) { return t.has_value() && t->defined(); }

at::Tensor batch_form(bool two_d, const at::Tensor& input, int64_t num_features, const c10::optional<at::Tensor>& weight,
                      const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& running_mean,
                      const c10::optional<at::Tensor>& running_var, const c10::optional<at::Tensor>& running_lmbda,
                      const c10::optional<at::Tensor>& running_norm,
                      const c10::optional<at::Tensor>& num_batches_tracked, bool training, double eps,
                      c10::optional<double> momentum, double noise_train, int64_t order, double alpha, bool standardize,
                      bool power_transform, c10::string_view estimator, int64_t newton_iterations,
                      c10::string_view evaluation_map,
                      const c10::intrusive_ptr<c10d::ProcessGroup>& process_group = {}) {
  const bool tracked = given(running_mean);
  const Options o = options_from(eps, momentum, noise_train, order, alpha, standardize, power_transform, estimator,
                                 newton_iterations, evaluation_map, given(weight), tracked);
  const LayerConfig config = two_d ? LayerConfig::batch_normal_norm_2d(num_features, o)
                                   : LayerConfig::batch_normal_norm_1d(num_features, o);
  RunningTensors running;
  if (tracked) {
    running.mean = *running_mean;
    running.var = running_var.value_or(at::Tensor());
    running.lambda = running_lmbda.value_or(at::Tensor());
    running.norm = running_norm.value_or(at::Tensor());
    running.num_batches_tracked = num_batches_tracked.value_or(at::Tensor());
  }
  if (process_group) return sync_normal_norm(config, input, weight, bias, running, training, process_group);
  return normal_norm(config, input, weight, bias, running, training);
}

// The batch ops' parameters after `input`, and their names, shared by the plain and the
// synchronized ops.
#define NORMNORM_BATCH_PARAMETERS                                                                                    \
  int64_t num_features, const c10::optional<at::Tensor>&weight, const c10::optional<at::Tensor>&bias,             \
      const c10::optional<at::Tensor>&running_mean, const c10::optional<at::Tensor>&running_var,                  \
      const c10::optional<at::Tensor>&running_lmbda, const c10::optional<at::Tensor>&running_norm,                \
      const c10::optional<at::Tensor>&num_batches_tracked, bool training, double eps,                             \
      c10::optional<double> momentum, double noise_train, int64_t order, double alpha, bool standardize,          \
      bool power_transform, c10::string_view estimator, int64_t newton_iterations, c10::string_view evaluation_map
#define NORMNORM_BATCH_ARGUMENTS                                                                                     \
  num_features, weight, bias, running_mean, running_var, running_lmbda, running_norm, num_batches_tracked, training, \
      eps, momentum, noise_train, order, alpha, standardize, power_transform, estimator, newton_iterations,        \
      evaluation_map

#define NORMNORM_BATCH_OP(name, two_d)                                                 \
  at::Tensor name(const at::Tensor& input, NORMNORM_BATCH_PARAMETERS) {                \
    return batch_form(two_d, input, NORMNORM_BATCH_ARGUMENTS);                         \
  }
NORMNORM_BATCH_OP(batch_normal_norm_1d, false)
NORMNORM_BATCH_OP(batch_normal_norm_2d, true)
#undef NORMNORM_BATCH_OP

// The batch forms over a batch split across the ranks of a process group (the Python
// side passes a torch.distributed group as the ScriptObject made by _process_group).
#define NORMNORM_SYNC_BATCH_OP(name, two_d)                                                                        \
  at::Tensor name(const at::Tensor& input, NORMNORM_BATCH_PARAMETERS,                                             \
                  const c10::intrusive_ptr<c10d::ProcessGroup>& process_group) {                                 \
    TORCH_CHECK(process_group, "normnorm: " #name ": the process group is None");                                \
    return batch_form(two_d, input, NORMNORM_BATCH_ARGUMENTS, process_group);                                    \
  }
NORMNORM_SYNC_BATCH_OP(sync_batch_normal_norm_1d, false)
NORMNORM_SYNC_BATCH_OP(sync_batch_normal_norm_2d, true)
#undef NORMNORM_SYNC_BATCH_OP
#undef NORMNORM_BATCH_ARGUMENTS
#undef NORMNORM_BATCH_PARAMETERS

at::Tensor layer_normal_norm(const at::Tensor& input, at::IntArrayRef normalized_shape,
                             const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
                             bool training, double eps, double noise_train, int64_t order, double alpha,
                             bool standardize, bool power_transform, c10::string_view estimator,
                             int64_t newton_iterations) {
  TORCH_CHECK(normalized_shape.size() <= static_cast<size_t>(Shape::max_rank),
              "normnorm: LayerNormalNorm: normalized_shape has more than 8 axes");
  const Options o = options_from(eps, 0.1, noise_train, order, alpha, standardize, power_transform, estimator,
                                 newton_iterations, "exact", given(weight), false);
  const LayerConfig config = LayerConfig::layer_normal_norm(
      Shape(normalized_shape.data(), static_cast<int>(normalized_shape.size())), o);
  return normal_norm(config, input, weight, bias, {}, training);
}

at::Tensor group_normal_norm(const at::Tensor& input, int64_t num_channels, int64_t num_groups,
                             const c10::optional<at::Tensor>& weight,
                             const c10::optional<at::Tensor>& bias, bool training, double eps, double noise_train,
                             int64_t order, double alpha, bool standardize, bool power_transform,
                             c10::string_view estimator, int64_t newton_iterations) {
  const Options o = options_from(eps, 0.1, noise_train, order, alpha, standardize, power_transform, estimator,
                                 newton_iterations, "exact", given(weight), false);
  const LayerConfig config = LayerConfig::group_normal_norm(num_groups, num_channels, o);
  return normal_norm(config, input, weight, bias, {}, training);
}

at::Tensor instance_normal_norm_2d(const at::Tensor& input, int64_t num_features, const c10::optional<at::Tensor>& weight,
                                   const c10::optional<at::Tensor>& bias, bool training, double eps,
                                   double noise_train, int64_t order, double alpha, bool standardize,
                                   bool power_transform, c10::string_view estimator, int64_t newton_iterations) {
  const Options o = options_from(eps, 0.1, noise_train, order, alpha, standardize, power_transform, estimator,
                                 newton_iterations, "exact", given(weight), false);
  const LayerConfig config = LayerConfig::instance_normal_norm_2d(num_features, o);
  return normal_norm(config, input, weight, bias, {}, training);
}

// The options' tail of every schema (defaults: the paper's, noise aside).
#define NORMNORM_OPTIONS(noise) \
  "float eps=1e-05, float noise_train=" noise ", int order=2, float alpha=1.0, bool standardize=True, " \
  "bool power_transform=True, str estimator=\"newton_step\", int newton_iterations=1"

#define NORMNORM_BATCH_ARGUMENTS                                                                                 \
  "(Tensor input, int num_features, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, Tensor(b!)? running_var, " \
  "Tensor(c!)? running_lmbda, Tensor(d!)? running_norm, Tensor(e!)? num_batches_tracked, bool training, "          \
  "float eps=1e-05, float? momentum=0.1, float noise_train=0.4, int order=2, float alpha=1.0, "                  \
  "bool standardize=True, bool power_transform=True, str estimator=\"newton_step\", "                            \
  "int newton_iterations=1, str evaluation_map=\"exact\""
#define NORMNORM_BATCH_SCHEMA(name) name NORMNORM_BATCH_ARGUMENTS ") -> Tensor"
// The process group is required and comes last, after the defaulted options: pass it by keyword.
#define NORMNORM_SYNC_BATCH_SCHEMA(name) \
  name NORMNORM_BATCH_ARGUMENTS ", *, __torch__.torch.classes.c10d.ProcessGroup process_group) -> Tensor"

}  // namespace
}  // namespace normnorm::torch

// Outside namespace normnorm: the macros name ::torch unqualified.
TORCH_LIBRARY(normnorm, m) {
  m.def(NORMNORM_BATCH_SCHEMA("batch_normal_norm_1d"));
  m.def(NORMNORM_BATCH_SCHEMA("batch_normal_norm_2d"));
  m.def(NORMNORM_SYNC_BATCH_SCHEMA("sync_batch_normal_norm_1d"));
  m.def(NORMNORM_SYNC_BATCH_SCHEMA("sync_batch_normal_norm_2d"));
  m.def("layer_normal_norm(Tensor input, int[] normalized_shape, Tensor? weight, Tensor? bias, bool training, "
        NORMNORM_OPTIONS("1.0") ") -> Tensor");
  m.def("group_normal_norm(Tensor input, int num_channels, int num_groups, Tensor? weight, Tensor? bias, bool training, "
        NORMNORM_OPTIONS("0.4") ") -> Tensor");
  m.def("instance_normal_norm_2d(Tensor input, int num_features, Tensor? weight, Tensor? bias, bool training, "
        NORMNORM_OPTIONS("0.4") ") -> Tensor");
}

// The same kernels serve CPU (below autograd, e.g. under inference mode) and Autograd:
// they build their own backward node (normal_norm), so nothing redispatches.
#define NORMNORM_IMPLS(m)                                                               \
  m.impl("batch_normal_norm_1d", TORCH_FN(normnorm::torch::batch_normal_norm_1d));       \
  m.impl("batch_normal_norm_2d", TORCH_FN(normnorm::torch::batch_normal_norm_2d));       \
  m.impl("sync_batch_normal_norm_1d", TORCH_FN(normnorm::torch::sync_batch_normal_norm_1d)); \
  m.impl("sync_batch_normal_norm_2d", TORCH_FN(normnorm::torch::sync_batch_normal_norm_2d)); \
  m.impl("layer_normal_norm", TORCH_FN(normnorm::torch::layer_normal_norm));             \
  m.impl("group_normal_norm", TORCH_FN(normnorm::torch::group_normal_norm));             \
  m.impl("instance_normal_norm_2d", TORCH_FN(normnorm::torch::instance_normal_norm_2d))

TORCH_LIBRARY_IMPL(normnorm, CPU, m) { NORMNORM_IMPLS(m); }
TORCH_LIBRARY_IMPL(normnorm, Autograd, m) { NORMNORM_IMPLS(m); }
