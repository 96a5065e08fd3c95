// Bounds for what an error message quotes from untrusted input (docs/reliability.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hs {

// At most `max_bytes` bytes of `text` (cut on a UTF-8 boundary), followed by "..." and the
// full size when cut: clip_for_message(huge) == "{\"a\":[[[[... (1048576 bytes)".
std::string clip_for_message(std::string_view text, size_t max_bytes = 96);
// A number for messages, compact: "1.79769e+308", "0.5", "-3" (never 309 digits of DBL_MAX).
std::string number_for_message(double value);

}  // namespace hs
