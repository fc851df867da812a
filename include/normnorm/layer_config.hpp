#pragma once
// A layer's configuration: its form, its sizes, and its options. The factories
// are the one place each form's defaults and shape rules live; layout_for() is
// the adapter that turns an input shape into the engine's group layout.

#include <limits>
#include <stdexcept>
#include <string>

#include "normnorm/layout.hpp"
#include "normnorm/options.hpp"
#include "normnorm/shape.hpp"
#include "normnorm/status.hpp"

namespace normnorm {

struct LayerConfig {
  Form form = Form::batch_2d;
  index_t num_features = 0;  // channels (C) of the batch, group and instance forms
  Shape normalized_shape;    // the layer form's trailing axes
  index_t num_groups = 1;    // the group form's G
  Options options;

  static LayerConfig batch_normal_norm_1d(index_t num_features, Options options = default_options(Form::batch_1d)) {
    return make(Form::batch_1d, num_features, {}, 1, options);
  }
  static LayerConfig batch_normal_norm_2d(index_t num_features, Options options = default_options(Form::batch_2d)) {
    return make(Form::batch_2d, num_features, {}, 1, options);
  }
  static LayerConfig layer_normal_norm(Shape normalized_shape, Options options = default_options(Form::layer)) {
    return make(Form::layer, 0, normalized_shape, 1, options);
  }
  static LayerConfig group_normal_norm(index_t num_groups, index_t num_channels,
                                       Options options = default_options(Form::group)) {
    return make(Form::group, num_channels, {}, num_groups, options);
  }
  static LayerConfig instance_normal_norm_2d(index_t num_features, Options options = default_options(Form::instance_2d)) {
    return make(Form::instance_2d, num_features, {}, 1, options);
  }
  static LayerConfig batch_normal_norm_3d(index_t num_features, Options options = default_options(Form::batch_3d)) {
    return make(Form::batch_3d, num_features, {}, 1, options);
  }
  static LayerConfig instance_normal_norm_1d(index_t num_features, Options options = default_options(Form::instance_1d)) {
    return make(Form::instance_1d, num_features, {}, 1, options);
  }
  static LayerConfig instance_normal_norm_3d(index_t num_features, Options options = default_options(Form::instance_3d)) {
    return make(Form::instance_3d, num_features, {}, 1, options);
  }

  const char* name() const { return form_name(form); }
  bool has_running_stats() const { return is_batch_form(form) && options.track_running_stats; }

  // Length of weight and bias: C, or prod(normalized_shape) for the layer form.
  // Saturates at the largest index_t (and gives 0 for a non-positive axis) on a
  // config not yet validated, which validate_options then refuses.
  index_t num_affine() const {
    if (form != Form::layer) return num_features;
    index_t size = 1;
    for (index_t d : normalized_shape) {
      if (d <= 0) return 0;
      if (size > std::numeric_limits<index_t>::max() / d) return std::numeric_limits<index_t>::max();
      size *= d;
    }
    return size;
  }
  // Length of each running-statistic buffer (batch forms): C.
  index_t num_running() const { return is_batch_form(form) ? num_features : 0; }

  // The engine's layout for an input of `shape`; throws std::invalid_argument
  // naming the expected and actual shapes when they do not fit this layer.
  Layout layout_for(const Shape& shape) const {
    Layout layout;
    detail::raise_if_error(check_layout(shape, layout));
    return layout;
  }

  // layout_for without exceptions: the layout in `layout`, or why there is none.
  Status check_layout(const Shape& shape, Layout& layout) const {
    // Messages are built only on failure: this runs on every call, including
    // the allocation-free inference path.
    auto c = [this] { return std::to_string(num_features); };
    switch (form) {
      case Form::batch_1d:  // (N, C) or (N, C, L): one channel over N (and L)
        if (shape.rank() != 2 && shape.rank() != 3)
          return reject("expected 2-D input (N, " + c() + ") or 3-D input (N, " + c() + ", L)", shape);
        return per_channel_layout(shape, true, layout);
      case Form::instance_1d:
        if (shape.rank() != 3) return reject("expected 3-D input (N, " + c() + ", L)", shape);
        return per_channel_layout(shape, false, layout);
      case Form::batch_2d:
      case Form::instance_2d:
        if (shape.rank() != 4) return reject("expected 4-D input (N, " + c() + ", H, W)", shape);
        return per_channel_layout(shape, form == Form::batch_2d, layout);
      case Form::batch_3d:
      case Form::instance_3d:
        if (shape.rank() != 5) return reject("expected 5-D input (N, " + c() + ", D, H, W)", shape);
        return per_channel_layout(shape, form == Form::batch_3d, layout);
      case Form::group: {
        if (shape.rank() < 2) return reject("expected input (N, " + c() + ", ...)", shape);
        if (shape[1] != num_features) return reject_channels(shape);
        layout = Layout{shape[0], shape[1], spatial_size(shape), num_features / num_groups, false};
        return {};
      }
      case Form::layer: {
        const int k = normalized_shape.rank();
        bool fits = shape.rank() >= k;
        for (int i = 0; fits && i < k; ++i) fits = shape[shape.rank() - k + i] == normalized_shape[i];
        if (!fits) {
          std::string trailing;
          for (index_t d : normalized_shape) trailing += ", " + std::to_string(d);
          return reject("expected input (..." + trailing + ") ending in normalized_shape", shape);
        }
        index_t outer = 1;
        for (int axis = 0; axis < shape.rank() - k; ++axis) outer *= shape[axis];
        const index_t row = num_affine();
        layout = Layout{outer, row, 1, row, false};
        return {};
      }
    }
    layout = Layout{};
    return {};
  }

 private:
  static LayerConfig make(Form form, index_t num_features, Shape normalized_shape, index_t num_groups, Options options) {
    LayerConfig config;
    config.form = form;
    config.num_features = num_features;
    config.normalized_shape = normalized_shape;
    config.num_groups = num_groups;
    config.options = options;
    return config;
  }
  // Product of the axes after (N, C): 1 for (N, C).
  static index_t spatial_size(const Shape& shape) {
    index_t inner = 1;
    for (int axis = 2; axis < shape.rank(); ++axis) inner *= shape[axis];
    return inner;
  }
  // The batch and instance forms of every rank: one channel per group, over the
  // spatial axes, and over the batch too for the batch forms.
  Status per_channel_layout(const Shape& shape, bool spans_batch, Layout& layout) const {
    if (shape[1] != num_features) return reject_channels(shape);
    layout = Layout{shape[0], shape[1], spatial_size(shape), 1, spans_batch};
    return {};
  }
  Status reject(const std::string& expected, const Shape& shape) const {
    return Status::invalid_argument(std::string("normnorm: ") + name() + ": " + expected + ", got " + shape.to_string());
  }
  Status reject_channels(const Shape& shape) const {
    return reject("expected " + std::to_string(num_features) + " channels on axis 1", shape);
  }
};

}  // namespace normnorm
