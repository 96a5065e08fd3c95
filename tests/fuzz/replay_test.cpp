// Replays, through the fuzz entry points and with any compiler: every saved crasher under
// tests/fuzz/regressions/<target>/, every seed, and a fixed set of cheap mutations of the
// seeds (truncations, byte flips, 0xff runs). A crash or hang here is a regression; the
// readers must turn every input into a value or a clean error.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "entries/fuzz_entries.h"
#include "entries/fuzz_seeds.h"
#include "headsplit/support/file.h"
#include "headsplit/support/shared_dir.h"
#include "testing/testing.h"

namespace hs::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> bytes_of(const fs::path& path) {
  auto text = read_text_file(path.string());
  EXPECT_TRUE(text.ok()) << path;
  if (!text.ok()) return {};
  return {text->begin(), text->end()};
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path& seed_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::path(hs::testing::temp_dir()) / "fuzz-seeds";
    write_seeds(d.string(), shared_dir(), HS_SOURCE_DIR);
    return d;
  }();
  return dir;
}

class Replay : public ::testing::TestWithParam<Target> {};

TEST_P(Replay, SavedCrashersLoadCleanly) {
  const Target& t = GetParam();
  const auto files = files_in(fs::path(HS_SOURCE_DIR) / "tests/fuzz/regressions" / t.name);
  for (const fs::path& f : files) {
    SCOPED_TRACE(f.string());
    std::vector<uint8_t> b = bytes_of(f);
    if (t.name == "artifact") fix_artifact_checksum(b.data(), b.size());
    EXPECT_EQ(t.entry(b.data(), b.size()), 0);
  }
  std::printf("%s: %zu saved crashers replayed\n", std::string(t.name).c_str(), files.size());
}

TEST_P(Replay, SeedsAndTheirMutantsLoadCleanly) {
  const Target& t = GetParam();
  const auto seeds = files_in(seed_dir() / t.name);
  // Some formats' seeds come only from the shared data (stories260K.gguf, tok512.bin).
  if (seeds.empty()) HS_REQUIRE_SHARED();
  ASSERT_FALSE(seeds.empty()) << "no seeds for " << t.name;
  std::mt19937_64 rng(16);
  size_t runs = 0;
  for (const fs::path& f : seeds) {
    SCOPED_TRACE(f.string());
    const std::vector<uint8_t> seed = bytes_of(f);
    t.entry(seed.data(), seed.size());
    ++runs;
    // Large seeds (whole models) get fewer mutants: each run parses the whole file.
    const int mutants = seed.size() > 65536 ? 4 : 48;
    for (int m = 0; m < mutants; ++m) {
      std::vector<uint8_t> b = seed;
      if (b.empty()) break;
      switch (m % 3) {
        case 0: b.resize(rng() % b.size()); break;
        case 1:
          for (int k = 0; k < 4; ++k)
            b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        default: {
          const size_t at = rng() % b.size();
          for (size_t k = at; k < std::min(b.size(), at + 8); ++k) b[k] = 0xff;
        }
      }
      if (t.name == "artifact" && m % 2 == 0) fix_artifact_checksum(b.data(), b.size());
      t.entry(b.data(), b.size());
      ++runs;
    }
  }
  std::printf("%s: %zu seeds, %zu runs\n", std::string(t.name).c_str(), seeds.size(), runs);
}

INSTANTIATE_TEST_SUITE_P(Fuzz, Replay, ::testing::ValuesIn(targets().begin(), targets().end()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace hs::fuzz
