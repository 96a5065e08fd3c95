// Golden text: the printed graph of one small attention block after the split, and its
// quantized twin, compared with checked-in expectations (tests/golden/). Regenerate after an
// intended change with HS_UPDATE_GOLDEN=1 and review the diff.
#include <gtest/gtest.h>

#include "headsplit/frontend/builder.h"
#include "headsplit/ir/text.h"
#include "headsplit/passes/passes.h"
#include "passes/pass_testing.h"
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
  testing::expect_golden(ir::print_graph(g, po), file);
}

TEST(Golden, SplitAttentionBlock) {
  ir::Graph g = tiny_block();
  HS_ASSERT_OK(run_preprocess(g, PreprocessOptions{}, PassContext{}));
  check_golden(g, "split_heads_block.txt");
}

TEST(Golden, SplitAttentionBlockQuantized) {
  ir::Graph g = tiny_block();
  hs::testing::SyntheticQuant q;
  q.weights = hs::testing::SyntheticWeights::kPerBlockInt4;
  q.block = 4;
  HS_ASSERT_OK(hs::testing::quantize_synthetic(g, q));
  HS_ASSERT_OK(run_preprocess(g, PreprocessOptions{}, PassContext{}));
  check_golden(g, "split_heads_block_quantized.txt");
}

}  // namespace
}  // namespace hs::passes
