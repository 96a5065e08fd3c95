// Clear errors, never crashes: binding mistakes (unknown name, wrong size, misaligned buffer,
// missing binding), programs whose nodes the runtime rejects at load (wrong declared shape,
// unsupported weight storage, overlapping arena plan), and damaged files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "graph_builder.h"
#include "headsplit/backend/lower.h"
#include "headsplit/engine/engine.h"
#include "runtime_testing.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using ir::OpKind;

ir::Graph small_graph() {
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({2, 8})));
  const auto tok = must(g.add_input("tok", ir::TensorType::i32({2})));
  const auto rows = emit(g, OpKind::kGather, {f32_constant(g, "tab", {4, 8}, 1), tok}, {}, "rows");
  const auto y = emit(g, OpKind::kLinear, {emit(g, OpKind::kAdd, {x, rows}, {}, "h"),
                                           f32_constant(g, "w", {3, 8}, 2)},
                      {}, "y");
  g.set_outputs({y});
  return g;
}

void expect_error(const Status& s, ErrorKind kind, std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), kind) << s.error().message();
  for (std::string_view p : parts) {
    EXPECT_NE(s.error().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << s.error().message();
  }
}

TEST(RuntimeBinding, ErrorsNameTheTensorAndSizes) {
  const ir::Graph g = small_graph();
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
  HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g"));
  std::vector<float> x(16), y(6), too_small(15);
  std::vector<int32_t> tok = {1, 3};
  // Unknown names list what exists.
  expect_error(exec->bind_input("nope", std::as_bytes(std::span<const float>(x))),
               ErrorKind::kNotFound, {"no input 'nope'", "x, tok"});
  expect_error(exec->bind_output("x", std::as_writable_bytes(std::span<float>(y))),
               ErrorKind::kNotFound, {"no output 'x'", "outputs: y"});
  // Wrong sizes name the tensor, element count and type, bytes expected and given.
  expect_error(exec->bind_input("x", std::as_bytes(std::span<const float>(too_small))),
               ErrorKind::kInvalidArgument, {"input 'x'", "16 x f32", "64 bytes", "got 60"});
  // Misaligned.
  std::vector<std::byte> raw(65);
  expect_error(exec->bind_input("x", std::span<const std::byte>(raw).subspan(1, 64)),
               ErrorKind::kInvalidArgument, {"input 'x'", "not aligned"});
  // Missing bindings are reported at execute, by name.
  HS_ASSERT_OK(exec->bind_input("x", std::as_bytes(std::span<const float>(x))));
  expect_error(exec->execute(), ErrorKind::kInvalidArgument, {"input 'tok' is not bound"});
  HS_ASSERT_OK(exec->bind_input("tok", std::as_bytes(std::span<const int32_t>(tok))));
  expect_error(exec->execute(), ErrorKind::kInvalidArgument, {"output 'y' is not bound"});
  HS_ASSERT_OK(exec->bind_output("y", std::as_writable_bytes(std::span<float>(y))));
  HS_EXPECT_OK(exec->execute());
  // Unknown graph.
  expect_error(GraphExecutor::create(artifact, "prefill").error(), ErrorKind::kNotFound,
               {"no graph 'prefill'", "has: g"});
}

// Lowers `g`, lets `mutate` damage the program (still a valid file), writes and loads it.
template <typename Mutate>
Result<std::shared_ptr<const artifact::LoadedArtifact>> mutated_artifact(const ir::Graph& g,
                                                                         Mutate mutate) {
  HS_ASSIGN_OR_RETURN(backend::MemoryPlan plan, backend::plan_memory(g));
  const backend::GraphToLower gl{&g, "g", 1, &plan};
  HS_ASSIGN_OR_RETURN(backend::LoweredProgram lowered,
                      backend::lower(std::span(&gl, 1), {}, tokenizer::TokenizerData{}));
  mutate(lowered.program);
  const std::string path = hs::testing::temp_dir() + "/m.hsa";
  HS_TRY(backend::write_lowered(path, lowered));
  HS_ASSIGN_OR_RETURN(artifact::LoadedArtifact loaded, artifact::load_artifact(path));
  return std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
}

int32_t tensor_named(const artifact::GraphDesc& g, std::string_view name) {
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (g.tensors[i].name == name) return static_cast<int32_t>(i);
  }
  return -1;
}

TEST(RuntimePlan, WrongDeclaredShapeNamesTheNode) {
  // The artifact's checks leave op semantics to the runtime: a node declaring a shape its op
  // does not produce (same element count) is rejected at load, naming node and shapes.
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, mutated_artifact(small_graph(), [](artifact::Program& p) {
                            artifact::GraphDesc& g = p.graphs[0];
                            g.tensors[static_cast<size_t>(tensor_named(g, "h"))].shape = {8, 2};
                          }));
  auto exec = GraphExecutor::create(artifact, "g");
  expect_error(exec.error(), ErrorKind::kShape, {"graph 'g'", "node 'h' (add)", "[8,2]", "[2,8]"});
}

TEST(RuntimePlan, MissingAttributeNamesTheNode) {
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({2, 3})));
  g.set_outputs({emit(g, OpKind::kSoftmax, {x}, {{"axis", int64_t{1}}}, "sm")});
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, mutated_artifact(g, [](artifact::Program& p) {
                            p.graphs[0].nodes[0].attrs = {};
                          }));
  expect_error(GraphExecutor::create(artifact, "g").error(), ErrorKind::kShape,
               {"node 'sm' (softmax)", "attribute 'axis'"});
}

TEST(RuntimePlan, OverlappingArenaPlanIsCorrupt) {
  // Put the output of a matmul on top of its input in the arena.
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({4, 4})));
  const auto h = emit(g, OpKind::kNeg, {x}, {}, "h");
  const auto m = emit(g, OpKind::kMatMul, {h, h}, {}, "m");
  g.set_outputs({emit(g, OpKind::kNeg, {m}, {}, "out")});
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, mutated_artifact(g, [](artifact::Program& p) {
                            artifact::GraphDesc& gd = p.graphs[0];
                            gd.tensors[static_cast<size_t>(tensor_named(gd, "m"))].arena_offset =
                                gd.tensors[static_cast<size_t>(tensor_named(gd, "h"))].arena_offset;
                            // The arena shrinks to what the tensors now need (a larger one is
                            // refused at load, before the planner sees the overlap).
                            int64_t end = 0;
                            for (const auto& t : gd.tensors) {
                              if (t.arena_offset >= 0) {
                                end = std::max(end, t.arena_offset + 4 * t.numel());
                              }
                            }
                            gd.arena_bytes = (end + 63) / 64 * 64;
                          }));
  expect_error(GraphExecutor::create(artifact, "g").error(), ErrorKind::kCorrupt,
               {"node 'm' (matmul)", "overlaps"});
}

TEST(RuntimePlan, UnsupportedWeightStorageNamesTheNode) {
  // u8 weights with a zero point: no fast kernel (the qgemm kernels are symmetric).
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({1, 8})));
  const auto w = int_constant(g, "w", ir::DType::kU8, {4, 8},
                              ir::QuantParams::per_axis(0, {0.1f, 0.1f, 0.1f, 0.1f},
                                                        {128, 128, 128, 128}, 8, 0, 255),
                              3);
  g.set_outputs({emit(g, OpKind::kLinear, {x, w}, {}, "proj")});
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
  expect_error(GraphExecutor::create(artifact, "g").error(), ErrorKind::kUnsupported,
               {"node 'proj' (linear)", "weight 'w'", "u8"});
  // The reference kernels run it (dequantized once at load), exactly.
  const auto inputs = random_inputs(g, 4);
  HS_ASSERT_OK_AND_ASSIGN(BothRuns runs, run_both(g, inputs, KernelChoice::kReference));
  std::string why;
  EXPECT_TRUE(bit_identical(runs.reference, runs.runtime, &why)) << why;
}

TEST(RuntimeLoad, DamagedFilesAreClearErrors) {
  // A good artifact, then damaged copies: loading it for a run (the engine) reports the reader's
  // error kind.
  const ir::Graph g = small_graph();
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
  std::ifstream in(artifact->path(), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string dir = hs::testing::temp_dir();
  auto write = [&](const std::string& name, const std::string& data) {
    std::ofstream(dir + "/" + name, std::ios::binary) << data;
    return dir + "/" + name;
  };
  struct Case {
    std::string name, data;
    ErrorKind kind;
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x40);
  std::string magic = bytes;
  magic[1] = 'X';
  const std::vector<Case> cases = {
      {"truncated.hsa", bytes.substr(0, bytes.size() / 2), ErrorKind::kCorrupt},
      {"tiny.hsa", bytes.substr(0, 10), ErrorKind::kCorrupt},
      {"flipped.hsa", flipped, ErrorKind::kChecksum},
      {"magic.hsa", magic, ErrorKind::kBadMagic},
  };
  for (const Case& c : cases) {
    auto report = engine::Engine::load({.model_path = write(c.name, c.data)});
    ASSERT_FALSE(report.ok()) << c.name;
    EXPECT_EQ(report.kind(), c.kind) << c.name << ": " << report.error().message();
    EXPECT_NE(report.error().message().find(c.name), std::string::npos) << report.error().message();
  }
  EXPECT_EQ(engine::Engine::load({.model_path = dir + "/none.hsa"}).kind(), ErrorKind::kIo);
}

}  // namespace
}  // namespace hs::runtime::testing
