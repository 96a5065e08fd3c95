// Semantic checks of a decoded program (check_program): what the FlatBuffers verifier cannot
// know. Tensor and weight types go through the op set's check (opset::check_type). After they pass,
// the runtime may index tensors, weights and the arena without checks. The writer runs the same
// checks, so it never produces a file the reader rejects.
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <unordered_set>

#include "headsplit/artifact/format.h"
#include "headsplit/opset/step_io.h"
#include "headsplit/support/memory.h"

namespace hs::artifact {
namespace {

using opset::shape_str;

template <typename Enum>
bool in_range(Enum value, int count) {
  return static_cast<int>(value) >= 0 && static_cast<int>(value) < count;
}

// A constant may view its weight's bytes under another shape with the same element count and
// the same leading dimension (so the int4 row packing is the same): a tied LM head
// [V,D,1,1] over the embedding [V,D].
bool same_bytes_view(const std::vector<int64_t>& weight, const std::vector<int64_t>& tensor) {
  if (weight == tensor) return true;
  int64_t a = 1, b = 1;
  for (int64_t d : weight) a *= d;  // both counts are checked (<= 2^53) before this runs
  for (int64_t d : tensor) b *= d;
  int64_t lead_a = weight.empty() ? 1 : weight[0];
  int64_t lead_b = tensor.empty() ? 1 : tensor[0];
  return a == b && lead_a == lead_b;
}

Status check_weight(const WeightDesc& w, size_t index, uint64_t data_size, std::string_view what) {
  std::string where = fmt::format("{}: weight #{} '{}'", what, index, w.name);
  if (!in_range(w.dtype, kNumElementTypes) || !in_range(w.quant.kind, kNumQuantKinds) ||
      !in_range(w.layout, kNumWeightLayouts)) {
    return errorf(
        ErrorKind::kUnsupported, "{}: unknown element type {}, quant kind {} or layout {}", where,
        static_cast<int>(w.dtype), static_cast<int>(w.quant.kind), static_cast<int>(w.layout));
  }
  HS_TRY(opset::check_type(w, where, ErrorKind::kCorrupt));
  if ((w.layout == WeightLayout::kInt4Packed) != (w.dtype == ElementType::kI4)) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: element type {} with layout {}, expected int4_packed exactly for i4", where,
                  opset::dtype_name(w.dtype),
                  w.layout == WeightLayout::kPlain ? "plain" : "int4_packed");
  }
  auto expected = weight_storage_bytes(w);
  if (!expected.ok()) return std::move(expected).error().with_context(what);
  if (w.size_bytes != *expected) {
    return errorf(ErrorKind::kCorrupt, "{}: stores {} bytes, expected {} for {}", where,
                  w.size_bytes, *expected, opset::type_str(w));
  }
  if (w.offset % kDataAlignment != 0) {
    return errorf(ErrorKind::kAlignment, "{}: data offset {} is not a multiple of {}", where,
                  w.offset, kDataAlignment);
  }
  if (w.offset > data_size || w.size_bytes > data_size - w.offset) {
    return errorf(ErrorKind::kOutOfRange,
                  "{}: {} bytes at data offset {} go past the data section of {} bytes", where,
                  w.size_bytes, w.offset, data_size);
  }
  if (w.params_size > 0) {  // quant params in the data section (decode_program read them)
    const uint64_t n = w.quant.scales.size();
    if (w.params_size != 4 * n && w.params_size != 8 * n) {
      return errorf(ErrorKind::kCorrupt, "{}: quant params of {} bytes for {} scales", where,
                    w.params_size, n);
    }
    if (w.params_offset % kDataAlignment != 0) {
      return errorf(ErrorKind::kAlignment, "{}: quant params offset {} is not a multiple of {}",
                    where, w.params_offset, kDataAlignment);
    }
    if (w.params_offset > data_size || w.params_size > data_size - w.params_offset) {
      return errorf(ErrorKind::kOutOfRange,
                    "{}: quant params of {} bytes at data offset {} go past the data section of "
                    "{} bytes",
                    where, w.params_size, w.params_offset, data_size);
    }
  }
  return {};
}

Status check_tensor(const TensorDesc& t, const GraphDesc& g, const Program& p,
                    const std::string& where) {
  if (!in_range(t.dtype, kNumElementTypes) || !in_range(t.quant.kind, kNumQuantKinds) ||
      !in_range(t.role, kNumTensorRoles)) {
    return errorf(ErrorKind::kUnsupported, "{}: unknown element type {}, quant kind {} or role {}",
                  where, static_cast<int>(t.dtype), static_cast<int>(t.quant.kind),
                  static_cast<int>(t.role));
  }
  HS_TRY(opset::check_type(t, where, ErrorKind::kCorrupt));
  if (t.role == TensorRole::kConstant) {
    if (t.weight < 0 || static_cast<size_t>(t.weight) >= p.weights.size()) {
      return errorf(ErrorKind::kOutOfRange, "{}: weight index {} outside [0, {})", where, t.weight,
                    p.weights.size());
    }
    const WeightDesc& w = p.weights[t.weight];
    // The weight's element count is checked by check_weight, which runs first.
    if (w.dtype != t.dtype || w.quant != t.quant || !same_bytes_view(w.shape, t.shape)) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: is {}{} but its weight #{} '{}' is {}{} (or quant params differ)", where,
                    opset::dtype_name(t.dtype), shape_str(t.shape), t.weight, w.name,
                    opset::dtype_name(w.dtype), shape_str(w.shape));
    }
    if (t.arena_offset != -1) {
      return errorf(ErrorKind::kCorrupt, "{}: a constant with arena offset {}, expected -1", where,
                    t.arena_offset);
    }
    return {};
  }
  if (t.weight != -1) {
    return errorf(ErrorKind::kCorrupt, "{}: role {} with weight index {}, expected -1", where,
                  tensor_role_name(t.role), t.weight);
  }
  if (t.arena_offset < -1) {
    return errorf(ErrorKind::kCorrupt, "{}: arena offset {}, expected -1 or >= 0", where,
                  t.arena_offset);
  }
  if (t.arena_offset >= 0 && t.role != TensorRole::kIntermediate) {
    return errorf(ErrorKind::kCorrupt, "{}: graph {} with arena offset {}, expected -1", where,
                  tensor_role_name(t.role), t.arena_offset);
  }
  if (t.arena_offset >= 0) {
    if (t.arena_offset % kArenaAlignment != 0) {
      return errorf(ErrorKind::kAlignment, "{}: arena offset {} is not a multiple of {}", where,
                    t.arena_offset, kArenaAlignment);
    }
    int64_t bytes = t.numel() * kArenaElementBytes;  // numel <= 2^53 (check_type): no overflow
    if (t.arena_offset > g.arena_bytes || bytes > g.arena_bytes - t.arena_offset) {
      return errorf(ErrorKind::kOutOfRange,
                    "{}: {} bytes at arena offset {} go past arena_bytes {}", where, bytes,
                    t.arena_offset, g.arena_bytes);
    }
  }
  return {};
}

// Graph inputs (outputs) are exactly the tensors with role input (output), each once.
Status check_io(const GraphDesc& g, const std::vector<int32_t>& io, TensorRole role,
                const std::string& where) {
  std::string_view kind = tensor_role_name(role);
  std::set<int32_t> seen;
  for (int32_t index : io) {
    if (index < 0 || static_cast<size_t>(index) >= g.tensors.size()) {
      return errorf(ErrorKind::kOutOfRange, "{}: {} tensor index {} outside [0, {})", where, kind,
                    index, g.tensors.size());
    }
    const TensorDesc& t = g.tensors[index];
    if (t.role != role || !seen.insert(index).second) {
      return errorf(ErrorKind::kCorrupt, "{}: {} list names tensor #{} '{}' (role {}) {}", where,
                    kind, index, t.name, tensor_role_name(t.role),
                    t.role != role ? "of the wrong role" : "twice");
    }
  }
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (g.tensors[i].role == role && seen.count(static_cast<int32_t>(i)) == 0) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: tensor #{} '{}' has role {} but is not in the {} list", where, i,
                    g.tensors[i].name, kind, kind);
    }
  }
  return {};
}

Status check_nodes(const GraphDesc& g, const std::string& where) {
  // available[i]: tensor i may be read (an input, a constant or already produced).
  std::vector<bool> available(g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    TensorRole role = g.tensors[i].role;
    available[i] = role == TensorRole::kInput || role == TensorRole::kConstant;
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const NodeDesc& node = g.nodes[n];
    std::string at = fmt::format("{} node #{} ({})", where, n, opset::op_name(node.op));
    if (!in_range(node.op, kNumOpCodes)) {
      return errorf(ErrorKind::kUnsupported, "{}: unknown op code {} (this build knows 0..{})", at,
                    static_cast<int>(node.op), kNumOpCodes - 1);
    }
    for (int32_t index : node.inputs) {
      if (index < 0 || static_cast<size_t>(index) >= g.tensors.size()) {
        return errorf(ErrorKind::kOutOfRange, "{}: input tensor index {} outside [0, {})", at,
                      index, g.tensors.size());
      }
      if (!available[index]) {
        return errorf(ErrorKind::kCorrupt, "{}: reads tensor #{} '{}' before it is produced", at,
                      index, g.tensors[index].name);
      }
    }
    if (node.outputs.empty()) return errorf(ErrorKind::kCorrupt, "{}: has no outputs", at);
    for (int32_t index : node.outputs) {
      if (index < 0 || static_cast<size_t>(index) >= g.tensors.size()) {
        return errorf(ErrorKind::kOutOfRange, "{}: output tensor index {} outside [0, {})", at,
                      index, g.tensors.size());
      }
      if (available[index]) {
        return errorf(ErrorKind::kCorrupt,
                      "{}: writes tensor #{} '{}' (role {}) that is an input, a constant or "
                      "already produced",
                      at, index, g.tensors[index].name, tensor_role_name(g.tensors[index].role));
      }
      available[index] = true;
    }
  }
  for (int32_t index : g.outputs) {
    if (!available[index]) {
      return errorf(ErrorKind::kCorrupt, "{}: output tensor #{} '{}' is never produced", where,
                    index, g.tensors[index].name);
    }
  }
  return {};
}

Status check_graph(const GraphDesc& g, size_t index, const Program& p, std::string_view what) {
  std::string where = fmt::format("{}: graph #{} '{}'", what, index, g.name);
  if (g.ar_len < 1 || g.arena_bytes < 0) {
    return errorf(ErrorKind::kCorrupt, "{}: ar_len {} and arena_bytes {}, expected >= 1 and >= 0",
                  where, g.ar_len, g.arena_bytes);
  }
  std::unordered_set<std::string_view> names;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const TensorDesc& t = g.tensors[i];
    std::string at = fmt::format("{} tensor #{} '{}'", where, i, t.name);
    if (!names.insert(t.name).second) {
      return errorf(ErrorKind::kCorrupt, "{}: name appears twice", at);
    }
    HS_TRY(check_tensor(t, g, p, at));
  }
  HS_TRY(check_io(g, g.inputs, TensorRole::kInput, where));
  HS_TRY(check_io(g, g.outputs, TensorRole::kOutput, where));
  // The arena is allocated (and zeroed) at load: no larger than its tensors need, rounded up
  // to the alignment as the memory planner does.
  int64_t arena_end = 0;
  for (const TensorDesc& t : g.tensors) {
    if (t.arena_offset >= 0) {
      arena_end = std::max(arena_end, t.arena_offset + t.numel() * kArenaElementBytes);
    }
  }
  const int64_t needed = (arena_end + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
  if (g.arena_bytes > needed) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: arena_bytes {} but its tensors end at byte {} (at most {} with "
                  "alignment); refusing to allocate the difference",
                  where, g.arena_bytes, arena_end, needed);
  }
  return check_nodes(g, where);
}

// The memory a program commits when every graph is planned: arenas and I/O buffers (floats),
// in doubles so that no sum overflows. Refused when above the machine's memory.
Status check_memory(const Program& p, std::string_view what) {
  double bytes = 0;
  for (const GraphDesc& g : p.graphs) {
    bytes += static_cast<double>(g.arena_bytes);
    for (const TensorDesc& t : g.tensors) {
      if (t.role == TensorRole::kInput || t.role == TensorRole::kOutput) {
        bytes += 4.0 * static_cast<double>(t.numel());
      }
    }
  }
  const auto have = static_cast<double>(physical_memory_bytes());
  if (have > 0 && bytes > have) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: its graphs' arenas and I/O need about {:.3g} GiB, more than the {:.3g} "
                  "GiB of memory of this machine",
                  what, bytes / 1073741824.0, have / 1073741824.0);
  }
  return {};
}

// Step graphs (those following the step-I/O contract) against the metadata: T and C from the
// tensor shapes must be the graph's ar_len and the model's context_len, the caches must agree
// with L, Hkv and Dh, the logits with V, and ar_lengths must list the graphs' T in order.
Status check_step_graphs(const Program& p, std::string_view what) {
  const ModelMetadata& m = p.metadata;
  std::vector<int64_t> ar_lens;
  for (const GraphDesc& g : p.graphs) {
    ar_lens.push_back(g.ar_len);
    std::vector<opset::NamedType> inputs, outputs;
    for (int32_t i : g.inputs)
      inputs.push_back(
          {g.tensors[static_cast<size_t>(i)].name, &g.tensors[static_cast<size_t>(i)]});
    for (int32_t i : g.outputs)
      outputs.push_back(
          {g.tensors[static_cast<size_t>(i)].name, &g.tensors[static_cast<size_t>(i)]});
    auto io = opset::describe_step_io(inputs, outputs, what);
    if (!io.ok()) continue;  // not a step graph: the runtime's step model refuses it by name
    const opset::StepDims& d = io->dims;
    const std::string where = fmt::format("{}: graph '{}'", what, g.name);
    if (d.ar_len != g.ar_len) {
      return errorf(ErrorKind::kCorrupt, "{}: ar_len {} but its tokens input has T = {}", where,
                    g.ar_len, d.ar_len);
    }
    const std::pair<const char*, std::pair<int64_t, int64_t>> fields[] = {
        {"context_len", {m.context_len, d.context_len}},
        {"vocab_size", {m.vocab_size, d.vocab_size}},
        {"n_layers", {m.n_layers, d.n_layers}},
        {"n_kv_heads", {m.n_kv_heads, d.n_kv_heads}},
        {"head_dim", {m.head_dim, d.head_dim}}};
    for (const auto& [name, values] : fields) {
      if (values.first != values.second) {
        return errorf(ErrorKind::kCorrupt,
                      "{}: metadata {} is {} but the graph's I/O shapes say {}", where, name,
                      values.first, values.second);
      }
    }
  }
  if (!m.ar_lengths.empty() && m.ar_lengths != ar_lens) {
    return errorf(ErrorKind::kCorrupt, "{}: metadata ar_lengths [{}] but the graphs have [{}]",
                  what, fmt::join(m.ar_lengths, ", "), fmt::join(ar_lens, ", "));
  }
  return {};
}

Status check_tokenizer(const tokenizer::TokenizerData& t, int64_t vocab_size,
                       std::string_view what) {
  if (static_cast<int>(t.kind) > static_cast<int>(tokenizer::TokenizerKind::kByteLevelBpe)) {
    return errorf(ErrorKind::kUnsupported, "{}: unknown tokenizer kind {}", what,
                  static_cast<int>(t.kind));
  }
  size_t vocab = t.pieces.size();
  if ((!t.scores.empty() && t.scores.size() != vocab) ||
      (!t.types.empty() && t.types.size() != vocab)) {
    return errorf(ErrorKind::kCorrupt, "{}: tokenizer has {} pieces, {} scores and {} types", what,
                  vocab, t.scores.size(), t.types.size());
  }
  for (size_t i = 0; i < t.types.size(); ++i) {
    auto type = static_cast<int32_t>(t.types[i]);
    if (type < 0 || type > static_cast<int32_t>(tokenizer::TokenType::kByte)) {
      return errorf(ErrorKind::kCorrupt, "{}: tokenizer token {} has unknown type {}", what, i,
                    type);
    }
  }
  if (vocab > 0) {
    // The kind must match what it carries: llama2.c and SentencePiece vocabularies are scored
    // (one score per piece; the tokenizer merges by score), byte-level BPE merges by rank.
    if (t.kind != tokenizer::TokenizerKind::kByteLevelBpe && t.scores.size() != vocab) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: {} tokenizer with {} scores for {} pieces (expected one score per piece)",
                    what, t.kind == tokenizer::TokenizerKind::kSpm ? "spm" : "llama2c",
                    t.scores.size(), vocab);
    }
    if (t.kind == tokenizer::TokenizerKind::kByteLevelBpe && t.merges.empty() && vocab > 256) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: byte-level bpe tokenizer with {} pieces and no merges", what, vocab);
    }
    if (vocab_size > 0 && static_cast<int64_t>(vocab) != vocab_size) {
      return errorf(ErrorKind::kCorrupt, "{}: tokenizer has {} pieces but vocab_size is {}", what,
                    vocab, vocab_size);
    }
  }
  auto vocab_i = static_cast<int64_t>(vocab);
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", t.bos_id}, {"eos", t.eos_id}, {"unk", t.unk_id}, {"pad", t.pad_id}};
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= vocab_i) {
      return errorf(ErrorKind::kOutOfRange, "{}: tokenizer {} id {} outside [-1, {})", what, name,
                    id, vocab);
    }
  }
  for (int32_t id : t.extra_eos_ids) {
    if (id < 0 || id >= vocab_i) {
      return errorf(ErrorKind::kOutOfRange, "{}: tokenizer extra eos id {} outside [0, {})", what,
                    id, vocab);
    }
  }
  if (t.max_token_length < 0) {
    return errorf(ErrorKind::kCorrupt, "{}: tokenizer max_token_length {} is negative", what,
                  t.max_token_length);
  }
  return {};
}

}  // namespace

Status check_program(const Program& program, const CheckOptions& options, std::string_view what) {
  std::unordered_set<std::string_view> names;
  for (size_t i = 0; i < program.weights.size(); ++i) {
    const WeightDesc& w = program.weights[i];
    if (!names.insert(w.name).second) {
      return errorf(ErrorKind::kCorrupt, "{}: weight #{} name '{}' appears twice", what, i, w.name);
    }
    HS_TRY(check_weight(w, i, options.data_size, what));
  }
  names.clear();
  for (size_t i = 0; i < program.graphs.size(); ++i) {
    const GraphDesc& g = program.graphs[i];
    if (!names.insert(g.name).second) {
      return errorf(ErrorKind::kCorrupt, "{}: graph #{} name '{}' appears twice", what, i, g.name);
    }
    HS_TRY(check_graph(g, i, program, what));
  }
  HS_TRY(check_tokenizer(program.tokenizer, program.metadata.vocab_size, what));
  HS_TRY(check_step_graphs(program, what));
  return check_memory(program, what);
}

}  // namespace hs::artifact
