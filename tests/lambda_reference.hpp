#pragma once
// The lambda reference samples of tests/lambda_reference/make_reference.py:
// standardized samples (ddof = 0) with scipy.stats.yeojohnson_normmax's lambda,
// a tighter scipy run's, and the paper's one-step lambda.

#include <cstddef>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "normnorm/io/npy.hpp"

#ifndef NORMNORM_TEST_DATA_DIR
#define NORMNORM_TEST_DATA_DIR "tests/data"
#endif

namespace normnorm::test {

struct RefSample {
  std::string name;
  std::vector<double> h;
  double scipy = 0, tight = 0, one_step = 0;
};

inline const std::vector<RefSample>& reference_samples() {
  static const std::vector<RefSample> samples = [] {
    const std::string dir = std::string(NORMNORM_TEST_DATA_DIR) + "/lambda_reference/";
    const std::vector<double> all = normnorm::io::read_npy_as<double>(dir + "samples.npy");
    std::ifstream in(dir + "index.txt");
    std::vector<RefSample> out;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ss(line);
      RefSample s;
      std::size_t n = 0, offset = 0;
      ss >> s.name >> n >> offset >> s.scipy >> s.tight >> s.one_step;
      if (!ss || offset + n > all.size()) throw std::runtime_error("bad line in index.txt: " + line);
      s.h.assign(all.begin() + static_cast<std::ptrdiff_t>(offset), all.begin() + static_cast<std::ptrdiff_t>(offset + n));
      s.name += "/" + std::to_string(n);
      out.push_back(std::move(s));
    }
    return out;
  }();
  return samples;
}

}  // namespace normnorm::test
