// Helpers for the pass tests: golden text files (tests/golden/), one registered pass run with
// the pipeline's instruments (--verify-each, --print-after), graph construction with seeded
// constant data, and the interpreter-equivalence check.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/support/result.h"

namespace hs::passes::testing {

// Compares `text` with tests/golden/<file>. With HS_UPDATE_GOLDEN=1 in the environment it
// rewrites the file instead (review the diff) and skips the test.
void expect_golden(const std::string& text, const std::string& file);

// What run_single_pass saw: whether the pass changed the graph, and the graph it printed.
struct SinglePassRun {
  bool changed = false;
  std::string printed;  // the --print-after text of the pass
};

// Runs the registered pass `name` on `graph` through run_pass with verify_each and
// print_after = {name}, the printed graph captured.
Result<SinglePassRun> run_single_pass(std::string_view name, ir::Graph& graph);

// A node with an inferred result type (Graph::emit), failing the test on an error.
ir::ValueId emit(ir::Graph& g, ir::OpKind op, std::vector<ir::ValueId> inputs, ir::Attrs attrs,
                 std::string name);

// A constant of `type` whose elements are seeded values (f32: uniform in [-2, 2); integer
// storage: uniform over the type's [qmin, qmax]; i32: [0, 8)).
ir::ValueId seeded_constant(ir::Graph& g, const std::string& name, const ir::TensorType& type,
                            uint64_t seed);

// Seeded inputs for every graph input (f32 in [-2, 2); i32 in [0, 4)).
std::vector<ir::NamedTensor> seeded_inputs(const ir::Graph& g, uint64_t seed);

// Runs `before` and `after` on the same seeded inputs with the reference interpreter and
// expects bit-identical outputs.
void expect_same_outputs(const ir::Graph& before, const ir::Graph& after, uint64_t seed);

// The checks every pass gets on its own: run_single_pass(name) on a copy of `before` changes
// it; the outputs stay bit-identical (expect_same_outputs with `seed`); the printed graph
// matches tests/golden/<golden>; a second run changes nothing. Returns the rewritten graph
// for the test's own checks.
ir::Graph expect_single_pass(std::string_view name, const ir::Graph& before,
                             const std::string& golden, uint64_t seed);

}  // namespace hs::passes::testing
