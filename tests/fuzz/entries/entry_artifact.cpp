// Fuzz entry point(s): artifact loader, checks and planner (see fuzz_entries.h).
#include <cstring>
#include <memory>

#include "fuzz_entries.h"
#include "headsplit/artifact/format.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/runtime/executor.h"

namespace hs::fuzz {

void fix_artifact_checksum(uint8_t* data, size_t size) {
  if (size < artifact::kHeaderSize) return;
  const uint64_t file_size = size;
  std::memcpy(data + artifact::kFileSizeOffset, &file_size, 8);  // little-endian host
  const uint64_t sum = artifact::compute_checksum(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  std::memcpy(data + artifact::kChecksumOffset, &sum, 8);
}

int artifact(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.hsa", {data, size});
  auto loaded = artifact::load_artifact(path);
  if (!loaded.ok()) return 0;
  auto shared = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded).value());
  for (const artifact::GraphDesc& g : shared->program().graphs) {
    (void)runtime::GraphExecutor::create(shared, g.name);
  }
  exercise_tokenizer(shared->program().tokenizer);
  return 0;
}

}  // namespace hs::fuzz
