// stories260K exports for end-to-end tests (see stories_export.h).
#include "testing/stories_export.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <tuple>

#include "headsplit/frontend/loader.h"
#include "testing/testing.h"

namespace hs::testing {

const Exported& exported(const StoriesExport& c) {
  static std::map<std::tuple<std::string, bool, int64_t, int64_t, int64_t>,
                  std::unique_ptr<Exported>>
      cache;
  auto& slot = cache[{c.scheme, c.split, c.lookahead_ar, c.prefill_ar, c.context_len}];
  if (slot) return *slot;
  slot = std::make_unique<Exported>();
  auto model = frontend::load_model(shared_file("models/stories260K/stories260K.bin"),
                                    shared_file("models/stories260K/tok512.bin"));
  EXPECT_TRUE(model.ok()) << model.error().message();
  if (!model.ok()) return *slot;
  // A short calibration: quantization params only need to be the same on both sides.
  const std::string calib = temp_dir() + "/calib.txt";
  {
    std::ifstream in(shared_file("data/tinystories/valid-sample.txt"));
    std::ofstream out(calib);
    std::string line;
    for (int i = 0; i < 2 && std::getline(in, line); ++i) out << line << "\n";
  }
  backend::ExportOptions options;
  options.lookahead_ar_len = c.lookahead_ar;
  options.prefill_ar_len = c.prefill_ar;
  options.context_len = c.context_len;
  options.quant.scheme = c.scheme;
  options.quant.calibration_files = {calib};
  options.quant.progress = false;
  options.preprocess.split = c.split;
  auto prepared = backend::prepare_export(*model, options);
  EXPECT_TRUE(prepared.ok()) << prepared.error().message();
  if (!prepared.ok()) return *slot;
  const std::string path =
      fmt::format("{}/stories-{}-{}-la{}-ar{}-c{}.hsa", temp_dir(), c.scheme,
                  c.split ? "split" : "mha", c.lookahead_ar, c.prefill_ar, c.context_len);
  auto written = backend::write_export(*prepared, path);
  EXPECT_TRUE(written.ok()) << written.error().message();
  auto loaded = artifact::load_artifact(path);
  EXPECT_TRUE(loaded.ok()) << loaded.error().message();
  if (!loaded.ok()) return *slot;
  slot->path = path;
  slot->prepared = std::move(prepared).value();
  slot->artifact = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded).value());
  const artifact::GraphDesc* decode = slot->artifact->program().find_graph("decode");
  EXPECT_NE(decode, nullptr);
  if (decode == nullptr) return *slot;
  for (int32_t o : decode->outputs) {
    const artifact::TensorDesc& t = decode->tensors[static_cast<size_t>(o)];
    if (t.name == "logits" && !t.quant.scales.empty()) slot->logits_scale = t.quant.scales[0];
  }
  return *slot;
}

std::unique_ptr<tokenizer::Tokenizer> make_tokenizer(const Exported& e) {
  tokenizer::TokenizerData data = e.artifact->program().tokenizer;
  data.eos_id = -1;
  data.extra_eos_ids.clear();
  auto tok = tokenizer::Tokenizer::create(std::move(data));
  EXPECT_TRUE(tok.ok()) << tok.error().message();
  return std::move(tok).value();
}

}  // namespace hs::testing
