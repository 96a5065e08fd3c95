#include "headsplit/support/shared_dir.h"

#include <cstdlib>

#ifndef HEADSPLIT_SHARED_DIR_DEFAULT
#define HEADSPLIT_SHARED_DIR_DEFAULT "../shared"
#endif

namespace hs {

std::string shared_dir() {
  const char* env = std::getenv("HEADSPLIT_SHARED_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return HEADSPLIT_SHARED_DIR_DEFAULT;
}

std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }

}  // namespace hs
