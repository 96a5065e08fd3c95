// clip_for_message and number_for_message (support/message.h).
#include "headsplit/support/message.h"

#include <fmt/format.h>

namespace hs {

std::string clip_for_message(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so a character is not split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}... ({} bytes)", text.substr(0, cut), text.size());
}

std::string number_for_message(double value) { return fmt::format("{:g}", value); }

}  // namespace hs
