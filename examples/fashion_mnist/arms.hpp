#pragma once
// The arms of the comparison (which normalization each model uses) and the learning-rate
// schedule they all share.
//
// Three arms separate the two things normality normalization adds to batch norm:
//   normality  BatchNormalNorm1d with the noise factor of --noise (0.4 by default)
//   transform  BatchNormalNorm1d with noise factor 0: the power transform alone
//   batch      the same layer with power_transform off: plain batch norm
// normality - transform is the noise's share, transform - batch the transform's.

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace fashion_mnist {

enum class ArmKind { normality, transform, batch };

struct Arm {
  ArmKind kind;
  std::string key;    // CSV column prefix and --arms name
  std::string name;   // rows of the tables, at most 15 characters ("normality norm")
  std::string column; // the accuracy table's column header ("normality norm (0.4)")
  std::string tag;    // two letters for the progress line
  std::string color;  // gnuplot colour, the same arm the same colour in every plot
  std::string plot_title;
  normnorm::Options options;
  bool has_transform() const { return kind != ArmKind::batch; }
};

inline Arm make_arm(ArmKind kind, double noise) {
  normnorm::Options options = normnorm::default_options(normnorm::Form::batch_1d);
  std::ostringstream noise_text;
  noise_text << noise;
  switch (kind) {
    case ArmKind::normality:
      options.noise_train = noise;
      return {kind, "normality_norm", "normality norm", "normality norm (" + noise_text.str() + ")", "nn", "#d95f02",
              "BatchNormalNorm1d (noise " + noise_text.str() + ")", options};
    case ArmKind::transform:
      options.noise_train = 0;
      return {kind, "transform_only", "transform only", "transform only (0)", "tr", "#7570b3",
              "BatchNormalNorm1d (noise 0: transform only)", options};
    case ArmKind::batch:
      options.power_transform = false;  // lambda = 1, no noise
      return {kind, "batch_norm", "batch norm", "batch norm", "bn", "#1b9e77", "batch norm (power transform off)",
              options};
  }
  throw std::logic_error("unknown arm");
}

// "normality,transform,batch" -> arms in that order; each at most once.
inline std::vector<Arm> parse_arms(const std::string& list, double noise) {
  std::vector<Arm> arms;
  std::stringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    ArmKind kind;
    if (item == "normality") kind = ArmKind::normality;
    else if (item == "transform") kind = ArmKind::transform;
    else if (item == "batch") kind = ArmKind::batch;
    else throw std::invalid_argument("unknown arm '" + item + "' (normality, transform or batch)");
    for (const Arm& a : arms)
      if (a.kind == kind) throw std::invalid_argument("arm '" + item + "' given twice");
    arms.push_back(make_arm(kind, noise));
  }
  if (arms.empty()) throw std::invalid_argument("no arm");
  return arms;
}

// The arm every other arm is compared with: batch norm when it runs, else none (-1).
inline int reference_arm(const std::vector<Arm>& arms) {
  for (std::size_t m = 0; m < arms.size(); ++m)
    if (arms[m].kind == ArmKind::batch) return static_cast<int>(m);
  return -1;
}

// Step decay: the rate is multiplied by 0.1 once training has done each fraction of its
// steps (--lr-steps 0.5,0.75 over 20 epochs: x0.1 from epoch 11, x0.01 from epoch 16,
// as PyTorch's MultiStepLR with milestones 10 and 15). Counting steps, not epochs, keeps a
// fraction exact whatever the number of epochs. No fractions: a constant rate.
struct LearningRateSchedule {
  float initial = 0.1f;
  std::vector<double> fractions;  // increasing, each in (0, 1)

  float at(long step, long total_steps) const {
    float rate = initial;
    for (double f : fractions)
      if (static_cast<double>(step) >= f * static_cast<double>(total_steps)) rate *= 0.1f;
    return rate;
  }
};

// "0.5,0.75" -> {0.5, 0.75}; increasing, each in (0, 1).
inline std::vector<double> parse_fractions(const std::string& list) {
  std::vector<double> fractions;
  std::stringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    std::size_t used = 0;
    const double f = std::stod(item, &used);
    if (used != item.size() || !(f > 0 && f < 1) || (!fractions.empty() && !(f > fractions.back())))
      throw std::invalid_argument("fractions must be increasing, each in (0, 1)");
    fractions.push_back(f);
  }
  if (fractions.empty()) throw std::invalid_argument("no fraction");
  return fractions;
}

}  // namespace fashion_mnist
