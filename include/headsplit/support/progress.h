// A one-line progress indicator with rate and ETA for long work (calibration, export):
//   calibrate  37/120 windows  31%  12.4 windows/s  eta 6.7s
// It redraws in place on a terminal and prints a line every ~10% otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace hs {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit, std::FILE* out = stderr);
  ~Progress();
  void advance(int64_t n = 1);
  void finish();
  double elapsed_seconds() const;
  // Silences all progress output (tests, --quiet).
  static void set_enabled(bool enabled);

 private:
  void draw(bool final);
  std::string label_;
  std::string unit_;
  int64_t total_ = 0;
  int64_t done_ = 0;
  std::FILE* out_;
  bool tty_ = false;
  bool finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace hs
