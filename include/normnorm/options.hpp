#pragma once
// Layer options, named as in PyTorch and the paper, with the paper's defaults.

#include <optional>

#include "normnorm/config.hpp"

namespace normnorm {

// Which layer form a configuration describes: the paper's five, then the 1-D/3-D
// forms PyTorch users expect (appended, so the first five keep their values).
// batch_1d takes (N, C) and (N, C, L), as PyTorch's BatchNorm1d.
enum class Form { batch_1d, batch_2d, layer, group, instance_2d, batch_3d, instance_1d, instance_3d };

// Training estimates statistics (and adds noise); evaluation uses running
// statistics where the form has them.
enum class Mode { train, eval };

// How a group's lambda is estimated (docs/lambda-search.md). Each is a file in
// estimators/, listed once in estimators/registry.hpp.
enum class LambdaEstimator {
  newton_step,    // the paper's: one Newton step from lambda = 1 on its approximate NLL (order 2)
  gradient_step,  // the paper's order 1: one gradient step (the same as order = 1)
  newton,         // newton_iterations Newton steps on the exact profile NLL, from lambda = 1
  exact,          // the maximum-likelihood lambda (safeguarded Newton/bisection in [-8, 10])
};

// How the batch forms evaluate their fixed per-channel map with running
// statistics (docs/math.md, "Evaluation map").
enum class EvaluationMap {
  exact,       // one log1p and one expm1 per element (the default)
  polynomial,  // float only: a piecewise polynomial per channel; max error 1.2e-7 (1 + |y|) for
               // lambda in [-0.5, 2.5], 7.8e-7 in [-2, 4] (tests/test_polynomial_map.cpp);
               // channels with running lambda outside [-2, 4] keep the exact map
               // before the affine; double always evaluates exactly, and so do (N, C)
               // and channels-last input (their lanes run across channels)
};

// Options shared by every form. Fields a form does not use (momentum and
// track_running_stats outside the batch forms) are ignored by it.
struct Options {
  double eps = 1e-5;                  // variance floor; sqrt(eps) also shifts the exponent
  std::optional<double> momentum = 0.1;  // none (std::nullopt) = cumulative average
  bool affine = true;                 // PyTorch's `affine` / `elementwise_affine`
  bool track_running_stats = true;    // batch forms only
  double noise_train = 0.4;           // noise factor xi; 1.0 is the layer form's default
  int order = 2;                      // 2 = Newton step, 1 = gradient step (the paper's spelling)
  LambdaEstimator estimator = LambdaEstimator::newton_step;
  int newton_iterations = 1;          // k of LambdaEstimator::newton, 1 to 16
  double alpha = 1.0;                 // step size of the lambda update
  bool standardize = true;            // off: h = x (no centring or scaling)
  bool power_transform = true;        // off: the plain normalization layer (lambda = 1, no noise)
  EvaluationMap evaluation_map = EvaluationMap::exact;  // batch forms in evaluation (float)
};

// The forms with running statistics (one group per channel, over the batch).
inline bool is_batch_form(Form form) {
  return form == Form::batch_1d || form == Form::batch_2d || form == Form::batch_3d;
}

// The options a form starts from: the paper's defaults for it (the 1-D and 3-D
// batch and instance forms take those of their 2-D form).
inline Options default_options(Form form) {
  Options options;
  if (form == Form::layer) options.noise_train = 1.0;
  if (!is_batch_form(form)) options.track_running_stats = false;
  return options;
}

inline const char* form_name(Form form) {
  switch (form) {
    case Form::batch_1d: return "BatchNormalNorm1d";
    case Form::batch_2d: return "BatchNormalNorm2d";
    case Form::layer: return "LayerNormalNorm";
    case Form::group: return "GroupNormalNorm";
    case Form::instance_2d: return "InstanceNormalNorm2d";
    case Form::batch_3d: return "BatchNormalNorm3d";
    case Form::instance_1d: return "InstanceNormalNorm1d";
    case Form::instance_3d: return "InstanceNormalNorm3d";
  }
  return "NormalNorm";
}

}  // namespace normnorm
