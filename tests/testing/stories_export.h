// stories260K artifacts for end-to-end tests (runtime generation and lookahead, engine, chat
// command): exported once per process and configuration with a short calibration, kept with the
// preprocessed graphs so the same graphs can run on the interpreter.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::testing {

struct Exported {
  backend::PreparedExport prepared;
  std::shared_ptr<const artifact::LoadedArtifact> artifact;
  std::string path;          // the .hsa file (in a temp dir)
  float logits_scale = 0.f;  // of the decode graph's u16 logits
};

struct StoriesExport {
  std::string scheme = "16a8w";
  bool split = true;
  int64_t lookahead_ar = 0;  // > 0: a lookahead graph of this AR length
  int64_t prefill_ar = 32;   // N
  int64_t context_len = 0;   // 0: the model's (256)
};

// Exports stories260K (cached per configuration). Failures are test failures (artifact null).
const Exported& exported(const StoriesExport& config);
inline const Exported& exported(const std::string& scheme, bool split, int64_t lookahead_ar = 0) {
  return exported(StoriesExport{.scheme = scheme, .split = split, .lookahead_ar = lookahead_ar});
}

// The artifact's tokenizer without end-of-generation ids, so every run decodes all tokens asked.
std::unique_ptr<tokenizer::Tokenizer> make_tokenizer(const Exported& e);

}  // namespace hs::testing
