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

namespace detail {
void check_failed(const char* file, int line, const char* cond, std::string_view msg) {
  std::fprintf(stderr, "headsplit: internal check failed at %s:%d: %s: %.*s\n", file, line, cond,
               static_cast<int>(msg.size()), msg.data());
  std::abort();
}
}  // namespace detail

}  // namespace hs
