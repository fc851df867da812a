#pragma once
// The live progress line (each arm's two-letter tag and its mean training loss over the
// epoch so far: "loss nn 0.3735 bn 0.3515"): redrawn in place with '\r' on a terminal, at most ten times a
// second and cut to the terminal's width; when the output is a file or a pipe, a plain
// line at 25%, 50% and 75% of each epoch.

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace fashion_mnist {

// "1:05", "12:34", "1:02:03".
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 360000) return "--:--";
  const long total = static_cast<long>(seconds + 0.5);
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  return text;
}

class ProgressLine {
 public:
  ProgressLine() : terminal_(isatty(fileno(stdout)) != 0) {}

  struct State {
    int epoch = 0, epochs = 0, step = 0, steps = 0;
    std::vector<std::pair<std::string, double>> losses;  // (arm tag, mean over the epoch so far)
    double steps_per_second = 0;
    double eta_epoch = 0, eta_run = 0;                 // seconds
  };

  void update(const State& s) {
    const auto now = std::chrono::steady_clock::now();
    const bool last = s.step == s.steps;
    if (terminal_) {
      if (!last && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else {
      const int quarter = 4 * s.step / s.steps;
      if (quarter == last_quarter_) return;
      last_quarter_ = quarter;
      if (last) return;  // the epoch summary follows
    }
    last_draw_ = now;
    const int width = 10, filled = width * s.step / s.steps;
    const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                            std::string(static_cast<std::size_t>(width - filled), '.');
    std::string losses = " loss";
    for (const auto& [tag, loss] : s.losses) {
      char value[32];
      std::snprintf(value, sizeof value, " %s %.4f", tag.c_str(), loss);
      losses += value;
    }
    char text[256];
    std::snprintf(text, sizeof text, "epoch %d/%d [%s] %d/%d %s  %.1f steps/s  ETA %s (run %s)", s.epoch, s.epochs,
                  bar.c_str(), s.step, s.steps, losses.c_str(), s.steps_per_second,
                  format_duration(s.eta_epoch).c_str(), format_duration(s.eta_run).c_str());
    std::string line = text;
    if (terminal_) {
      // A line wider than the terminal would wrap, and '\r' only returns to the start of its last row.
      winsize size{};
      if (ioctl(fileno(stdout), TIOCGWINSZ, &size) == 0 && size.ws_col > 1 && line.size() >= size.ws_col)
        line.resize(size.ws_col - 1u);
      std::printf("\r\033[K%s", line.c_str());
    } else {
      std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
    drawn_ = true;
  }

  // Erase the line before other output.
  void clear() {
    if (terminal_ && drawn_) std::printf("\r\033[K");
    drawn_ = false;
    last_quarter_ = 0;
    std::fflush(stdout);
  }

 private:
  bool terminal_;
  bool drawn_ = false;
  int last_quarter_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace fashion_mnist
