#pragma once
// A module's state in and out of a StateDict, under the paper's PyTorch code's
// names, for all five forms:
//
//   entry                 shape              present when
//   weight, bias          (C,), or the layer  options.affine
//                         form's normalized_shape
//   running_mean          (C,)               batch forms with track_running_stats
//   running_var           (C,)               "
//   running_lmbda         (C,)               "   (normnorm's running_lambda())
//   running_norm          (C,)               "
//   num_batches_tracked   () integer         "
//
// Entry names are prefix + name; a non-empty prefix without a trailing '.' gets
// one ("features.1" and "features.1." both work).
//
// load_state_dict validates everything before it writes anything: a failed load
// leaves the module exactly as it was. Every problem goes into ONE error message:
// missing and unexpected entries (strict mode; "unexpected" = a name directly under
// the prefix that is not one of the above), wrong shapes, non-floating dtypes,
// and non-finite values (including values finite in the file that overflow T).
// Any floating dtype (F16, BF16, F32, F64) converts to T.

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "normnorm/io/state_dict.hpp"
#include "normnorm/layers/module.hpp"
#include "normnorm/status.hpp"

namespace normnorm::io {
namespace detail {

// Accessor-agnostic access to a module's buffers: its accessors return either
// std::vector<T>& or a Span<T> (pointer + size).
template <class T>
T* data_of(std::vector<T>& v) { return v.data(); }
template <class T>
T* data_of(Span<T> s) { return s.data; }
template <class T>
std::size_t size_of(const std::vector<T>& v) { return v.size(); }
template <class T>
std::size_t size_of(Span<T> s) { return static_cast<std::size_t>(s.size); }

inline std::string normalized_prefix(std::string_view prefix) {
  std::string p(prefix);
  if (!p.empty() && p.back() != '.') p.push_back('.');
  return p;
}

// One floating entry of the module: its name, expected shape and the module's buffer.
template <class T>
struct FloatEntry {
  const char* name;
  std::vector<std::int64_t> shape;
  T* target;
  std::size_t size;
};

template <class T>
std::vector<FloatEntry<T>> float_entries(NormalNormModule<T>& module) {
  const LayerConfig& config = module.config();
  std::vector<FloatEntry<T>> entries;
  if (config.options.affine) {
    std::vector<std::int64_t> affine_shape;
    if (config.form == Form::layer) {
      for (index_t d : config.normalized_shape) affine_shape.push_back(d);
    } else {
      affine_shape.push_back(config.num_affine());
    }
    entries.push_back({"weight", affine_shape, data_of(module.weight()), size_of(module.weight())});
    entries.push_back({"bias", affine_shape, data_of(module.bias()), size_of(module.bias())});
  }
  if (config.has_running_stats()) {
    const std::vector<std::int64_t> channels{config.num_running()};
    entries.push_back({"running_mean", channels, data_of(module.running_mean()), size_of(module.running_mean())});
    entries.push_back({"running_var", channels, data_of(module.running_var()), size_of(module.running_var())});
    entries.push_back({"running_lmbda", channels, data_of(module.running_lambda()), size_of(module.running_lambda())});
    entries.push_back({"running_norm", channels, data_of(module.running_norm()), size_of(module.running_norm())});
  }
  return entries;
}

}  // namespace detail

// Loads `dict`'s entries under `prefix` into `module`; on failure the module is unchanged.
template <class T>
Status try_load_state_dict(NormalNormModule<T>& module, const StateDict& dict, std::string_view prefix,
                           bool strict = true) {
  const std::string p = detail::normalized_prefix(prefix);
  const std::vector<detail::FloatEntry<T>> entries = detail::float_entries(module);
  const bool has_count = module.config().has_running_stats();
  std::vector<std::string> problems;
  std::vector<std::vector<T>> staged(entries.size());
  std::vector<bool> found(entries.size(), false);

  for (std::size_t k = 0; k < entries.size(); ++k) {
    const std::string key = p + entries[k].name;
    const Array* array = dict.find(key);
    if (array == nullptr) {
      if (strict) problems.push_back("missing '" + key + "'");
      continue;
    }
    if (!is_floating(array->dtype)) {
      problems.push_back("'" + key + "' has dtype " + dtype_name(array->dtype) + ", expected a floating dtype");
      continue;
    }
    if (array->shape != entries[k].shape) {
      problems.push_back("'" + key + "' has shape " + shape_string(array->shape) + ", expected " +
                         shape_string(entries[k].shape));
      continue;
    }
    const Status sane = detail::check_array(key, *array);
    if (!sane.ok()) {
      problems.push_back(sane.message());
      continue;
    }
    // Checked in double before converting: a finite F64 value beyond T's range
    // would become inf (and the conversion itself is undefined behaviour).
    std::vector<T> values(static_cast<std::size_t>(array->numel()));
    std::size_t bad = 0, first_bad = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double v = array->value(i);
      if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(std::numeric_limits<T>::max())) {
        if (bad++ == 0) first_bad = i;
      } else {
        values[i] = static_cast<T>(v);
      }
    }
    if (bad != 0) {
      problems.push_back("'" + key + "' has " + std::to_string(bad) + " non-finite value(s) (first at index " +
                         std::to_string(first_bad) + ": " + std::to_string(array->value(first_bad)) + ")");
      continue;
    }
    if (values.size() != entries[k].size) {  // the module's own buffer disagrees with its config
      problems.push_back("'" + key + "': the module's buffer holds " + std::to_string(entries[k].size) + " values");
      continue;
    }
    staged[k] = std::move(values);
    found[k] = true;
  }

  bool count_found = false;
  std::int64_t count = 0;
  if (has_count) {
    const std::string key = p + "num_batches_tracked";
    const Array* array = dict.find(key);
    if (array == nullptr) {
      if (strict) problems.push_back("missing '" + key + "'");
    } else if (array->numel() != 1 || !array->shape.empty() || !detail::check_array(key, *array).ok()) {
      problems.push_back("'" + key + "' has shape " + shape_string(array->shape) + ", expected ()");
    } else {
      const double v = array->value(0);
      if (!std::isfinite(v) || v < 0 || v != std::floor(v) || v > 9.0e15) {
        problems.push_back("'" + key + "' is " + std::to_string(v) + ", expected a non-negative integer");
      } else {
        count = static_cast<std::int64_t>(v);
        count_found = true;
      }
    }
  }

  if (strict) {
    for (const auto& entry : dict.arrays) {
      const std::string& key = entry.first;
      if (key.compare(0, p.size(), p) != 0) continue;
      const std::string rest = key.substr(p.size());
      if (rest.find('.') != std::string::npos) continue;  // a child module's entry
      bool expected = has_count && rest == "num_batches_tracked";
      for (const auto& e : entries) expected = expected || rest == e.name;
      if (!expected) problems.push_back("unexpected '" + key + "'");
    }
  }

  if (!problems.empty()) {
    std::string message = std::string("normnorm: load_state_dict(") + module.config().name() + ", prefix '" +
                          std::string(prefix) + "'): " + std::to_string(problems.size()) + " problem(s): ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    return Status::invalid_argument(message);
  }

  // Everything checked: now write.
  for (std::size_t k = 0; k < entries.size(); ++k) {
    if (!found[k]) continue;
    for (std::size_t i = 0; i < staged[k].size(); ++i) entries[k].target[i] = staged[k][i];
  }
  if (count_found) return module.try_set_num_batches_tracked(count);  // checked >= 0 above: cannot fail
  return {};
}

// Throwing form: std::invalid_argument listing every problem.
template <class T>
void load_state_dict(NormalNormModule<T>& module, const StateDict& dict, std::string_view prefix = {},
                     bool strict = true) {
  normnorm::detail::raise_if_error(try_load_state_dict(module, dict, prefix, strict));
}

// Adds the module's entries under `prefix` to `out` (F32 for float modules, F64
// for double; num_batches_tracked as a 0-d I64), replacing entries of the same name.
template <class T>
Status try_state_dict(NormalNormModule<T>& module, std::string_view prefix, StateDict& out) {
  const std::string p = detail::normalized_prefix(prefix);
  for (const auto& entry : detail::float_entries(module)) {
    std::int64_t expected = 1;
    for (std::int64_t d : entry.shape) expected *= d;
    if (static_cast<std::size_t>(expected) != entry.size)
      return Status::invalid_argument(std::string("normnorm: state_dict(") + module.config().name() + "): '" +
                                      entry.name + "' holds " + std::to_string(entry.size) + " values, expected " +
                                      std::to_string(expected));
  }
  for (const auto& entry : detail::float_entries(module)) out.insert(p + entry.name, Array::from_values(entry.target, entry.shape));
  if (module.config().has_running_stats())
    out.insert(p + "num_batches_tracked", Array::scalar_i64(module.num_batches_tracked()));
  return {};
}

// The module's entries under `prefix`, as a new StateDict.
template <class T>
StateDict state_dict(NormalNormModule<T>& module, std::string_view prefix = {}) {
  StateDict out;
  normnorm::detail::raise_if_error(try_state_dict(module, prefix, out));
  return out;
}

}  // namespace normnorm::io
