#include "testing/testing.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "headsplit/support/file.h"
#include "headsplit/support/shared_dir.h"

namespace hs::testing {

std::string shared_file(const std::string& relative) { return shared_path(relative); }

bool shared_available() { return is_directory(shared_dir()); }

namespace {
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};
TempDirs g_temp_dirs;
}  // namespace

std::string temp_dir() {
  std::string base = (std::filesystem::temp_directory_path() / "headsplit-test-XXXXXX").string();
  std::vector<char> buf(base.begin(), base.end());
  buf.push_back('\0');
  char* dir = ::mkdtemp(buf.data());
  HS_CHECK(dir != nullptr, "mkdtemp failed");
  g_temp_dirs.dirs.emplace_back(dir);
  return dir;
}

}  // namespace hs::testing
