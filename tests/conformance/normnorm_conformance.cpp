// normnorm_conformance [--dtype float|double|bfloat16|half] [--write-outputs DIR] CASE_DIR...
// Replays golden cases and prints one line per case (PASS/FAIL) with the
// largest absolute and relative error of every tensor it compared. Exits
// non-zero when any case fails or cannot be read. bfloat16 and half (2-byte storage,
// float compute) are compared with the float64 replay on the same rounded inputs,
// within the final rounding (golden_case.hpp's tolerance_for).

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "golden_case.hpp"

int main(int argc, char** argv) {
  std::string dtype = "double", write_dir;
  std::vector<std::string> cases;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dtype" && i + 1 < argc) {
      dtype = argv[++i];
    } else if (arg == "--write-outputs" && i + 1 < argc) {
      write_dir = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: normnorm_conformance [--dtype float|double|bfloat16|half] [--write-outputs DIR] CASE_DIR...\n";
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "normnorm_conformance: unknown option " << arg << "\n";
      return 2;
    } else {
      cases.push_back(arg);
    }
  }
  if (dtype != "double" && dtype != "float" && dtype != "bfloat16" && dtype != "half") {
    std::cerr << "normnorm_conformance: --dtype must be float, double, bfloat16 or half, got " << dtype << "\n";
    return 2;
  }
  if (cases.empty()) {
    std::cerr << "normnorm_conformance: no case directories given\n";
    return 2;
  }
  int failed = 0;
  for (const std::string& dir : cases) {
    try {
      using namespace normnorm::test;
      const auto result = dtype == "double"     ? replay_case<double>(dir, write_dir)
                          : dtype == "float"    ? replay_case<float>(dir, write_dir)
                          : dtype == "bfloat16" ? replay_case_narrow<Eigen::bfloat16>(dir, write_dir)
                                                : replay_case_narrow<Eigen::half>(dir, write_dir);
      std::cout << normnorm::test::describe(result, dtype) << "\n";
      failed += result.pass() ? 0 : 1;
    } catch (const std::exception& e) {
      std::cout << "FAIL " << dir << " [" << dtype << "]: " << e.what() << "\n";
      ++failed;
    }
  }
  std::cout << (cases.size() - failed) << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
