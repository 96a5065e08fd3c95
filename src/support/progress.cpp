#include "headsplit/support/progress.h"

#include <unistd.h>

#include <atomic>

namespace hs {

namespace {
std::atomic<bool> g_progress_enabled{true};
}

void Progress::set_enabled(bool enabled) { g_progress_enabled = enabled; }

Progress::Progress(std::string label, int64_t total, std::string unit, std::FILE* out)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), out_(out) {
  tty_ = ::isatty(::fileno(out_)) != 0;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n) {
  done_ += n;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (!g_progress_enabled) return;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  int percent = total_ > 0 ? static_cast<int>(100 * done_ / total_) : 100;
  if (!final) {
    if (tty_) {
      if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else {
      int decile = percent / 10;
      if (decile == last_decile_) return;
      last_decile_ = decile;
    }
  }
  last_draw_ = now;
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  const char* prefix = tty_ ? "\r\033[K" : "";
  if (final) {
    std::fprintf(out_, "%s%s  %lld/%lld %s  done in %.2fs (%.1f %s/s)\n", prefix, label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
                 elapsed, rate, unit_.c_str());
  } else {
    std::fprintf(out_, "%s%s  %lld/%lld %s  %3d%%  %.1f %s/s  eta %.1fs%s", prefix, label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
                 percent, rate, unit_.c_str(), eta, tty_ ? "" : "\n");
  }
  std::fflush(out_);
}

}  // namespace hs
