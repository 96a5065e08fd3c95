// Process memory readings (Linux /proc): current and peak resident set size, and a reset of
// the peak so a phase's own peak can be measured.
#pragma once

#include <cstdint>

namespace hs {

int64_t current_rss_bytes();  // VmRSS
int64_t peak_rss_bytes();     // VmHWM (since start or the last reset_peak_rss)
// Resets the kernel's peak-RSS counter to the current RSS (writes "5" to clear_refs).
// Returns false when the kernel does not allow it (the peak then counts from process start).
bool reset_peak_rss();
// Installed memory (sysconf pages * page size); 0 when unknown.
int64_t physical_memory_bytes();

}  // namespace hs
