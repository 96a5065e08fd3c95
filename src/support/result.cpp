#include "headsplit/support/result.h"

#include <cstdio>
#include <cstdlib>

namespace hs {

std::string_view error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk: return "ok";
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kShape: return "shape mismatch";
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kParse: return "parse error";
    case ErrorKind::kCorrupt: return "corrupt file";
    case ErrorKind::kBadMagic: return "bad magic";
    case ErrorKind::kVersion: return "unsupported version";
    case ErrorKind::kChecksum: return "checksum mismatch";
    case ErrorKind::kAlignment: return "misaligned data";
    case ErrorKind::kOutOfRange: return "out of range";
    case ErrorKind::kIo: return "i/o error";
    case ErrorKind::kInternal: return "internal error";
  }
  return "unknown";
}

std::string clip_for_message(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so a character is not split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}... ({} bytes)", text.substr(0, cut), text.size());
}

std::string number_for_message(double value) { return fmt::format("{:g}", value); }

namespace detail {
void check_failed(const char* file, int line, const char* cond, std::string_view msg) {
  std::fprintf(stderr, "headsplit: internal check failed at %s:%d: %s: %.*s\n", file, line, cond,
               static_cast<int>(msg.size()), msg.data());
  std::abort();
}
}  // namespace detail

}  // namespace hs
