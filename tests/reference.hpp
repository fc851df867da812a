#pragma once
// A plain, slow, obviously-right reference (oneDNN's ref_* idea): the spec's
// formulas in long double, one group at a time, with groups built straight from
// each form's definition rather than from the library's Layout. Every fast
// path is tested against it.

#include <cmath>
#include <optional>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace normnorm::test {

struct ReferenceRunning {
  std::vector<double> mean, var, lambda, norm;
  std::int64_t batches = 0;
  explicit ReferenceRunning(std::size_t channels = 0)
      : mean(channels, 0.0), var(channels, 1.0), lambda(channels, 1.0), norm(channels, std::sqrt(2.0 / M_PI)) {}
};

struct ReferenceGroups {
  std::vector<std::vector<std::size_t>> members;  // flat indices of each group
  std::vector<std::size_t> affine_index;          // per flat element
};

inline ReferenceGroups reference_groups(const LayerConfig& config, const Shape& shape) {
  ReferenceGroups groups;
  std::size_t total = 1;
  for (index_t d : shape) total *= static_cast<std::size_t>(d);
  groups.affine_index.resize(total);
  if (config.form == Form::layer) {
    const auto row = static_cast<std::size_t>(config.num_affine());
    for (std::size_t r = 0; r < total / row; ++r) {
      groups.members.emplace_back();
      for (std::size_t j = 0; j < row; ++j) {
        groups.members.back().push_back(r * row + j);
        groups.affine_index[r * row + j] = j;
      }
    }
    return groups;
  }
  const auto n = static_cast<std::size_t>(shape[0]), c = static_cast<std::size_t>(shape[1]);
  const std::size_t spatial = total / (n * c);
  auto flat = [&](std::size_t i, std::size_t ch, std::size_t s) { return (i * c + ch) * spatial + s; };
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t ch = 0; ch < c; ++ch)
      for (std::size_t s = 0; s < spatial; ++s) groups.affine_index[flat(i, ch, s)] = ch;
  if (is_batch_form(config.form)) {
    for (std::size_t ch = 0; ch < c; ++ch) {
      groups.members.emplace_back();
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t s = 0; s < spatial; ++s) groups.members.back().push_back(flat(i, ch, s));
    }
  } else {
    const std::size_t per_group = config.form == Form::group ? c / static_cast<std::size_t>(config.num_groups) : 1;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t g = 0; g < c / per_group; ++g) {
        groups.members.emplace_back();
        for (std::size_t ch = g * per_group; ch < (g + 1) * per_group; ++ch)
          for (std::size_t s = 0; s < spatial; ++s) groups.members.back().push_back(flat(i, ch, s));
      }
  }
  return groups;
}

// y for one standardized value, straight from the spec (pow in long double).
inline long double reference_transform(long double h, long double lambda, long double c) {
  const long double s = h >= 0 ? 1.0L : -1.0L, a = std::fabs(h);
  const long double eta = 1.0L + s * (lambda - 1.0L);
  if (std::fabs(eta) <= c) return s * std::log1p(a);
  const long double et = eta + (eta >= 0 ? c : -c);
  return s * (std::pow(1.0L + a, et) - 1.0L) / et;
}

struct ReferenceOutput {
  std::vector<double> out;
  std::vector<double> lambda;  // per group
};

// normals: one standard-normal draw per element (may be empty when no noise is added).
inline ReferenceOutput reference_forward(const LayerConfig& config, Mode mode, const std::vector<double>& x,
                                         const Shape& shape, const std::vector<double>& weight,
                                         const std::vector<double>& bias, ReferenceRunning* running,
                                         const std::vector<double>& normals) {
  const Options& o = config.options;
  const ReferenceGroups groups = reference_groups(config, shape);
  const long double c = std::sqrt(static_cast<long double>(o.eps));
  const bool training = mode == Mode::train;
  const bool use_running = !training && running && config.has_running_stats();
  ReferenceOutput result;
  result.out.assign(x.size(), 0.0);
  double factor = 0;
  if (training && running && config.has_running_stats()) {
    ++running->batches;
    factor = o.momentum ? *o.momentum : 1.0 / static_cast<double>(running->batches);
  }
  for (std::size_t g = 0; g < groups.members.size(); ++g) {
    const auto& idx = groups.members[g];
    const long double m = static_cast<long double>(idx.size());
    long double mu = 0, v = 1, lambda = 1;
    if (use_running) {
      if (o.standardize) mu = running->mean[g], v = running->var[g];
      if (o.power_transform) lambda = running->lambda[g];
    } else if (o.standardize) {
      for (auto i : idx) mu += x[i];
      mu /= m;
      v = 0;
      for (auto i : idx) v += (x[i] - mu) * (x[i] - mu);
      v /= m;
    }
    const long double r = o.standardize ? 1.0L / std::sqrt(v + o.eps) : 1.0L;
    std::vector<long double> h(idx.size());
    for (std::size_t k = 0; k < idx.size(); ++k) h[k] = o.standardize ? (x[idx[k]] - mu) * r : x[idx[k]];
    if (!use_running && o.power_transform) {
      long double A = 0, S = 0, D = 0, he = 0;
      std::vector<long double> d(h.size());
      for (std::size_t k = 0; k < h.size(); ++k) {
        const long double s = h[k] >= 0 ? 1 : -1, a = std::fabs(h[k]), L = std::log1p(a);
        d[k] = (1 + a) * L - a;
        A += h[k] * d[k], S += s * L, D += d[k];
        he += h[k] * s * ((1 + a) * L * L - 2 * d[k]);
      }
      A /= m, S /= m, D /= m;
      long double B = he / m;
      for (long double dk : d) B += (dk - D) * (dk - D) / m;
      const long double g1 = A - S, g2 = B - 2 * A * A;
      lambda = o.order == 1 ? 1 - o.alpha * g1 : 1 - o.alpha * g1 / (g2 + c);
    }
    result.lambda.push_back(static_cast<double>(lambda));
    std::vector<long double> y(h.size());
    for (std::size_t k = 0; k < h.size(); ++k) y[k] = o.power_transform ? reference_transform(h[k], lambda, c) : h[k];
    long double spread = 0;
    if (training && o.power_transform) {
      long double mean_y = 0;
      for (long double yk : y) mean_y += yk / m;
      for (long double yk : y) spread += std::fabs(yk - mean_y) / m;
    }
    for (std::size_t k = 0; k < idx.size(); ++k) {
      long double z = y[k];
      if (training && o.power_transform && o.noise_train > 0 && !normals.empty())
        z += o.noise_train * spread * normals[idx[k]];
      const std::size_t p = groups.affine_index[idx[k]];
      result.out[idx[k]] = static_cast<double>(o.affine ? weight[p] * z + bias[p] : z);
    }
    if (factor != 0 || (training && running && config.has_running_stats())) {
      const double unbias = static_cast<double>(m / (m - 1));
      if (o.standardize) {
        running->mean[g] = factor * static_cast<double>(mu) + (1 - factor) * running->mean[g];
        running->var[g] = factor * static_cast<double>(v) * unbias + (1 - factor) * running->var[g];
      }
      if (o.power_transform) {
        running->lambda[g] = factor * static_cast<double>(lambda) + (1 - factor) * running->lambda[g];
        running->norm[g] = factor * static_cast<double>(spread) * unbias + (1 - factor) * running->norm[g];
      }
    }
  }
  return result;
}

}  // namespace normnorm::test
