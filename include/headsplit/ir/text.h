// The text form of a graph: a printer and a parser for the same grammar. Golden tests of
// passes compare printed graphs, so the form is meant to be read by people.
//
//   graph @llama {
//     input %tokens : i32[1,1]
//     const %layers.0.attention.wq : f32[64,64,1,1] = dense<"0000803f...">
//     const %big : i8[512,64] q<per_axis, bits=8, range=[-127,127], axis=0, scales=[...],
//                                zero_points=[...]> = elided<xxh3:1a2b3c4d5e6f7788>
//     %layers.0.attn.x = rms_norm(%h, %layers.0.attention_norm.weight) {eps = 1e-05} : f32[1,1,64]
//     %layers.0.attn.q = conv2d(%layers.0.attn.xt, %layers.0.attention.wq) : f32[1,64,1,1]
//     output %logits, %k_new.0, %v_new.0
//   }
//
// Grammar. Tokens are separated by any whitespace (newlines included); `//` starts a comment
// that runs to the end of the line.
//   graph  := 'graph' '@' name '{' stmt* '}'
//   stmt   := 'input' ref ':' type
//           | 'const' ref ':' type '=' data
//           | ref (',' ref)* '=' op '(' [ref (',' ref)*] ')' ['{' attr (',' attr)* '}']
//                 ':' type (',' type)*
//           | 'output' ref (',' ref)*
//   ref    := '%' name
//   name   := [A-Za-z0-9_.:/-]+ | '"' chars '"'   (C escapes: \\ \" \n \t \r \xHH)
//             a bare name takes every name character, so `%x:f32[2]` is the name "x:f32": put
//             a space before the ':' of a type (the printer always does)
//   data   := 'dense<"' hex '">'                  (the raw little-endian bytes, 2 digits each)
//           | 'elided<xxh3:' 16 hex digits '>'     (hs::hash64 of the bytes)
//   attr   := key '=' value;  key := [A-Za-z_][A-Za-z0-9_]* | '"' chars '"'
//   value  := int | float | '[' [int (',' int)*] ']' | '"' chars '"'
//   type   := the syntax of type_str() (types.h): dtype '[' dims ']' [quant]
//   quant  := 'q<' kind (',' key '=' value)* '>'  kind: per_tensor | per_axis | per_block;
//             keys bits, range=[qmin,qmax], scales=[f,...], zero_points=[i,...] always;
//             axis for per_axis and per_block; block_axis and block for per_block.
// Floats always contain '.', an exponent, 'inf' or 'nan' (1.0, 1e-05, -inf) and are printed
// in the shortest form that reads back to the same bits; ints never do. Statements print in
// the order: inputs, constants, live nodes in order, outputs. Values are defined before use.
//
// Only full constants round-trip their data: an elided constant parses to zero-filled data of
// the right size (the hash is checked for syntax only and not remembered), at most 256 MiB of
// them in one text (a larger elided constant is an error naming it and its size).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "headsplit/ir/graph.h"
#include "headsplit/support/result.h"

namespace hs::ir {

enum class ConstantText : uint8_t {
  kAuto,    // full up to PrintOptions::elide_above_bytes, elided above
  kFull,    // always dense<"hex">: the text round-trips exactly
  kElided,  // always elided<xxh3:...>
};

struct PrintOptions {
  ConstantText constants = ConstantText::kAuto;
  int64_t elide_above_bytes = 64;
};

// The whole graph in the text form, ending with "}\n".
std::string print_graph(const Graph& graph, const PrintOptions& options = {});

// One live node as a statement without indent or newline:
//   "%q = conv2d(%x, %wq) : f32[1,64,1,1]"  (for pass logs).
std::string print_node(const Graph& graph, NodeId node);

// "%name", or "%\"...\"" with escapes when the name has characters outside [A-Za-z0-9_.:/-].
std::string value_ref(std::string_view name);

// Parses the text form. Syntax errors, unknown ops and dtypes, names used before their
// definition or never defined, duplicate names and constant data of the wrong size are
// kParse errors "<source>:<line>:<col>: expected ..., found ...". The graph must then pass
// verify(): a node that fails verify_node reports the verifier's error kind with
// "<source>:<line>:<col>: " in front; a graph-level failure with "<source>: " in front.
Result<Graph> parse_graph(std::string_view text, std::string_view source_name = "<text>");

// Parses one type in the type_str() syntax, e.g. "i8[4,2] q<per_axis, ...>". Errors are kParse
// with a column; the quantization parameters are not checked (use check_quant).
Result<TensorType> parse_type(std::string_view text);

}  // namespace hs::ir
