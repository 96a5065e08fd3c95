// Golden text: the printed graph of one small attention block after the split, and its
// quantized twin, compared with checked-in expectations (tests/golden/). Regenerate after an
// intended change with HS_UPDATE_GOLDEN=1 and review the diff.
#include <gtest/gtest.h>

#include <cstdlib>

#include "headsplit/frontend/builder.h"
#include "headsplit/ir/text.h"
#include "headsplit/passes/passes.h"
#include "headsplit/support/file.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::passes {
namespace {

// One layer, H = 4, Hkv = 2 (G = 2), Dh = 4, D = 8, T = 2, C = 6, masked softmax, R3.
ir::Graph tiny_block() {
  frontend::LlamaConfig c;
  c.dim = 8, c.hidden_dim = 8, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4;
  c.vocab_size = 8, c.max_seq_len = 16;
  frontend::BuildOptions o;
  o.ar_len = 2, o.context_len = 6, o.r3 = true, o.mask = frontend::MaskKind::kMaskedSoftmax;
  return frontend::build_llama(frontend::make_random_llama(c, 1), o).value();
}

void check_golden(const ir::Graph& g, const std::string& file) {
  ir::PrintOptions po;
  po.constants = ir::ConstantText::kElided;
  const std::string text = ir::print_graph(g, po);
  const std::string path = std::string(HS_SOURCE_DIR) + "/tests/golden/" + file;
  if (std::getenv("HS_UPDATE_GOLDEN") != nullptr) {
    HS_ASSERT_OK(write_file_atomic(path, text));
    GTEST_SKIP() << "rewrote " << path;
  }
  auto expected = read_text_file(path);
  ASSERT_TRUE(expected.ok()) << expected.error().message();
  EXPECT_EQ(text, *expected) << "printed graph differs from " << path
                             << " (HS_UPDATE_GOLDEN=1 rewrites it)";
}

TEST(Golden, SplitAttentionBlock) {
  ir::Graph g = tiny_block();
  HS_ASSERT_OK(run_preprocess(g, PreprocessOptions{}, PassContext{}));
  check_golden(g, "split_heads_block.txt");
}

TEST(Golden, SplitAttentionBlockQuantized) {
  ir::Graph g = tiny_block();
  testing::SyntheticQuant q;
  q.weights = testing::SyntheticWeights::kPerBlockInt4;
  q.block = 4;
  HS_ASSERT_OK(testing::quantize_synthetic(g, q));
  HS_ASSERT_OK(run_preprocess(g, PreprocessOptions{}, PassContext{}));
  check_golden(g, "split_heads_block_quantized.txt");
}

}  // namespace
}  // namespace hs::passes
