// Helpers for the pass tests (pass_testing.h).
#include "passes/pass_testing.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "headsplit/passes/pass.h"
#include "headsplit/support/file.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::passes::testing {

void expect_golden(const std::string& text, const std::string& file) {
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

Result<SinglePassRun> run_single_pass(std::string_view name, ir::Graph& graph) {
  HS_ASSIGN_OR_RETURN(std::unique_ptr<Pass> pass, create_pass(name));
  std::FILE* out = std::tmpfile();
  if (out == nullptr) return Error(ErrorKind::kIo, "cannot create a temporary file");
  PassContext context;
  context.verify_each = true;
  context.print_after = {std::string(name)};
  context.print_out = out;
  Result<bool> changed = run_pass(*pass, graph, context);
  SinglePassRun run;
  std::fflush(out);
  std::rewind(out);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, out)) > 0;)
    run.printed.append(buffer, n);
  std::fclose(out);
  HS_TRY(changed);
  run.changed = *changed;
  return run;
}

ir::ValueId emit(ir::Graph& g, ir::OpKind op, std::vector<ir::ValueId> inputs, ir::Attrs attrs,
                 std::string name) {
  auto id = g.emit(op, std::move(inputs), std::move(attrs), name);
  EXPECT_TRUE(id.ok()) << name << ": " << id.error().message();
  return id.ok() ? *id : ir::kNoValue;
}

ir::ValueId seeded_constant(ir::Graph& g, const std::string& name, const ir::TensorType& type,
                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto n = static_cast<size_t>(type.numel());
  std::vector<std::byte> bytes(n * static_cast<size_t>(ir::dtype_size(type.dtype)));
  for (size_t i = 0; i < n; ++i) {
    if (type.dtype == ir::DType::kF32) {
      const float v = std::uniform_real_distribution<float>(-2.f, 2.f)(rng);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else if (type.dtype == ir::DType::kI32) {
      const auto v = static_cast<int32_t>(rng() % 8);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else {  // integer storage within [qmin, qmax], 1 or 2 bytes
      const auto span = static_cast<uint64_t>(type.quant.qmax - type.quant.qmin + 1);
      const auto q = static_cast<int32_t>(type.quant.qmin + static_cast<int64_t>(rng() % span));
      const int64_t size = ir::dtype_size(type.dtype);
      if (size == 1) bytes[i] = static_cast<std::byte>(static_cast<uint8_t>(q));
      if (size == 2) {
        const auto v = static_cast<uint16_t>(q);
        std::memcpy(bytes.data() + 2 * i, &v, 2);
      }
    }
  }
  auto buffer = HeapBuffer::copy_of(bytes);
  const size_t size = buffer->size();
  return g.add_constant(name, type, BufferView{std::move(buffer), 0, size}).value();
}

std::vector<ir::NamedTensor> seeded_inputs(const ir::Graph& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<ir::NamedTensor> inputs;
  for (ir::ValueId id : g.inputs()) {
    const ir::TensorType& t = g.type(id);
    const auto n = static_cast<size_t>(t.numel());
    ir::Tensor tensor;
    if (t.dtype == ir::DType::kI32) {
      std::vector<int32_t> v(n);
      for (int32_t& x : v) x = static_cast<int32_t>(rng() % 4);
      tensor = ir::Tensor::from_i32(t.shape, std::move(v));
    } else {
      std::vector<float> v(n);
      for (float& x : v) x = std::uniform_real_distribution<float>(-2.f, 2.f)(rng);
      tensor = ir::Tensor::from_f32(t.shape, std::move(v));
    }
    inputs.push_back({g.value(id).name, std::move(tensor)});
  }
  return inputs;
}

void expect_same_outputs(const ir::Graph& before, const ir::Graph& after, uint64_t seed) {
  const std::vector<ir::NamedTensor> inputs = seeded_inputs(before, seed);
  auto a = ir::run_graph(before, inputs);
  auto b = ir::run_graph(after, inputs);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  std::string why;
  EXPECT_TRUE(hs::testing::bit_identical(*a, *b, &why)) << why;
}

ir::Graph expect_single_pass(std::string_view name, const ir::Graph& before,
                             const std::string& golden, uint64_t seed) {
  ir::Graph after = before;
  auto run = run_single_pass(name, after);
  EXPECT_TRUE(run.ok()) << run.error().message();
  if (!run.ok()) return after;
  EXPECT_TRUE(run->changed) << name << " changed nothing";
  expect_same_outputs(before, after, seed);
  ir::Graph again = after;
  auto second = run_single_pass(name, again);
  EXPECT_TRUE(second.ok() && !second->changed) << "a second " << name << " run changed the graph";
  expect_golden(run->printed, golden);
  return after;
}

}  // namespace hs::passes::testing
