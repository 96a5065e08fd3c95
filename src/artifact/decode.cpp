// FlatBuffers bytes -> Program (the program section's envelope is unpacked first, section.cpp):
// the FlatBuffers verifier first (every offset, vector length
// and string inside the buffer), then a field-by-field copy; weights' per-axis / per-block quant
// params come from the data section, constants take their weight's quant params. Absent fields take the schema
// defaults; unknown fields (written by a newer minor version) are ignored. Enum values are
// copied as they are and range-checked by check_program.
#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstring>

#include "artifact_generated.h"
#include "headsplit/artifact/format.h"

namespace hs::artifact {
namespace {

namespace fbs = ::flatbuffers;

std::string str(const fbs::String* s) { return s == nullptr ? std::string() : s->str(); }

// Scalar vectors are copied bytewise: the verifier checks a vector's 4-byte length prefix
// alignment but not that 8-byte elements ([long], [double]) are 8-byte aligned, so a typed
// read of a hostile file could be misaligned (found by the artifact fuzzer). Little-endian
// hosts only, as the rest of the format.
template <typename T>
std::vector<T> vec(const fbs::Vector<T>* v) {
  if (v == nullptr) return {};
  std::vector<T> out(v->size());
  if (!out.empty()) std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

template <typename To, typename From>
To from_fb(From value) {
  return static_cast<To>(static_cast<std::underlying_type_t<From>>(value));
}

// FlatBuffers offsets may point at one object from many places (the encoder shares repeated
// strings, vectors and tables on purpose), so a small hostile program could decode to an
// unbounded size by referencing one large object a million times. Every decoded weight,
// tensor, node and metadata entry is charged here; the limit is generous for real programs
// (64 x the program + 16 x the data section, whose quant params constants copy, + 64 MiB)
// and stops an amplification long before memory runs out.
class DecodeBudget {
 public:
  DecodeBudget(uint64_t program_bytes, uint64_t data_bytes, std::string_view what)
      : what_(what) {
    const uint64_t cap = uint64_t{1} << 56;  // saturate instead of overflowing
    limit_ = std::min(cap, 64 * std::min(program_bytes, cap >> 7)) +
             std::min(cap, 16 * std::min(data_bytes, cap >> 5)) + (uint64_t{64} << 20);
    left_ = limit_;
  }
  Status charge(uint64_t bytes, std::string_view item) {
    if (bytes > left_) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: program decodes to more than {} bytes at {} (64 x the program + 16 x "
                    "the data section + 64 MiB): one object referenced too many times",
                    what_, limit_, item);
    }
    left_ -= bytes;
    return {};
  }
  // The heap bytes of a decoded type: shape, scales and zero points, plus the struct.
  template <typename Desc>
  static uint64_t bytes_of(const Desc& d) {
    return sizeof(Desc) + d.name.size() + 8 * d.shape.size() + 4 * d.quant.scales.size() +
           4 * d.quant.zero_points.size();
  }

 private:
  std::string_view what_;
  uint64_t limit_ = 0;
  uint64_t left_ = 0;
};

Quant decode_quant(const fb::Quant* q) {
  Quant out;
  if (q == nullptr) return out;
  out.kind = from_fb<QuantKind>(q->kind());
  out.bits = q->bits();
  out.qmin = q->qmin();
  out.qmax = q->qmax();
  out.axis = q->axis();
  out.block_axis = q->block_axis();
  out.block = q->block();
  out.scales = vec(q->scales());
  out.zero_points = vec(q->zero_points());
  return out;
}

// Adds attribute `a` to `attrs`; a name that appears twice is corrupt.
Status decode_attr(const fb::Attr& a, std::string_view where, Attrs& attrs) {
  std::string name = str(a.name());
  AttrValue value;
  switch (a.kind()) {
    case fb::AttrKind::Int: value = a.i(); break;
    case fb::AttrKind::Float: value = a.f(); break;
    case fb::AttrKind::Ints: value = vec(a.ints()); break;
    case fb::AttrKind::String: value = str(a.s()); break;
    default:
      return errorf(ErrorKind::kUnsupported, "{} attr '{}': unknown attr kind {} (known: 0..3)",
                    where, name, static_cast<int>(a.kind()));
  }
  if (attrs.has(name))
    return errorf(ErrorKind::kCorrupt, "{}: attr '{}' appears twice", where, name);
  attrs.set(std::move(name), std::move(value));
  return {};
}

Result<GraphDesc> decode_graph(const fb::Graph& g, std::string_view what, size_t index,
                               const std::vector<WeightDesc>& weights, DecodeBudget& budget) {
  GraphDesc out;
  out.name = str(g.name());
  out.ar_len = g.ar_len();
  out.arena_bytes = g.arena_bytes();
  out.inputs = vec(g.inputs());
  out.outputs = vec(g.outputs());
  if (g.tensors() != nullptr) {
    out.tensors.reserve(g.tensors()->size());
    for (const fb::Tensor* t : *g.tensors()) {
      TensorDesc& td = out.tensors.emplace_back();
      td.name = str(t->name());
      td.dtype = from_fb<ElementType>(t->type());
      td.shape = vec(t->shape());
      td.quant = decode_quant(t->quant());
      td.weight = t->weight();
      td.arena_offset = t->arena_offset();
      td.role = from_fb<TensorRole>(t->role());
      if (td.role == TensorRole::kConstant) {
        // Stored once, with the weight; an index out of range is check_program's error.
        if (t->quant() != nullptr) {
          return errorf(ErrorKind::kCorrupt,
                        "{}: graph #{} '{}' tensor #{} '{}': a constant with its own quant "
                        "params (format {}.x stores them once, with the weight)",
                        what, index, out.name, out.tensors.size() - 1, td.name, kFormatMajor);
        }
        if (td.weight >= 0 && static_cast<size_t>(td.weight) < weights.size())
          td.quant = weights[static_cast<size_t>(td.weight)].quant;
      }
      HS_TRY(budget.charge(DecodeBudget::bytes_of(td),
                           fmt::format("graph #{} tensor #{}", index, out.tensors.size() - 1)));
    }
  }
  if (g.nodes() != nullptr) {
    out.nodes.reserve(g.nodes()->size());
    for (const fb::Node* n : *g.nodes()) {
      NodeDesc& nd = out.nodes.emplace_back();
      nd.op = from_fb<OpCode>(n->op());
      nd.inputs = vec(n->inputs());
      nd.outputs = vec(n->outputs());
      if (n->attrs() == nullptr) {
        HS_TRY(budget.charge(sizeof(NodeDesc) + 4 * (nd.inputs.size() + nd.outputs.size()),
                             fmt::format("graph #{} node #{}", index, out.nodes.size() - 1)));
        continue;
      }
      std::string where =
          fmt::format("{}: graph #{} '{}' node #{}", what, index, out.name, out.nodes.size() - 1);
      for (const fb::Attr* a : *n->attrs()) HS_TRY(decode_attr(*a, where, nd.attrs));
      uint64_t bytes = sizeof(NodeDesc) + 4 * (nd.inputs.size() + nd.outputs.size());
      for (const auto& [name, value] : nd.attrs.entries()) {
        bytes += 64 + name.size();
        if (const auto* v = std::get_if<std::vector<int64_t>>(&value)) bytes += 8 * v->size();
        if (const auto* v = std::get_if<std::string>(&value)) bytes += v->size();
      }
      HS_TRY(budget.charge(bytes, where));
    }
  }
  return out;
}

// [offset, offset + size) inside [0, limit), without overflow.
bool range_fits(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

// A weight; per-axis / per-block quant params stored in the data section are read from `data`
// (params_count f32 scales, then as many i32 zero points unless they are all zero).
Result<WeightDesc> decode_weight(const fb::Weight& w, size_t index,
                                 std::span<const std::byte> data, std::string_view what) {
  WeightDesc out;
  out.name = str(w.name());
  out.dtype = from_fb<ElementType>(w.type());
  out.shape = vec(w.shape());
  out.quant = decode_quant(w.quant());
  out.offset = w.offset();
  out.size_bytes = w.size();
  out.layout = from_fb<WeightLayout>(w.layout());
  out.params_offset = w.params_offset();
  out.params_size = w.params_size();
  const uint64_t count = w.params_count();
  if (out.params_size == 0 && count == 0) return out;  // params inline (or none)
  std::string where = fmt::format("{}: weight #{} '{}'", what, index, out.name);
  if (!out.quant.scales.empty() || !out.quant.zero_points.empty()) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: quant params both inline ({} scales) and in the data section", where,
                  out.quant.scales.size());
  }
  const bool zero_points = count <= out.params_size / 8 && out.params_size == count * 8;
  if (!zero_points && !(count <= out.params_size / 4 && out.params_size == count * 4)) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: quant params of {} bytes for {} scales, expected {} or {} (with zero "
                  "points)",
                  where, out.params_size, count, count * 4, count * 8);
  }
  if (out.params_offset % kDataAlignment != 0) {
    return errorf(ErrorKind::kAlignment, "{}: quant params offset {} is not a multiple of {}",
                  where, out.params_offset, kDataAlignment);
  }
  if (!range_fits(out.params_offset, out.params_size, data.size())) {
    return errorf(ErrorKind::kOutOfRange,
                  "{}: quant params of {} bytes at data offset {} go past the data section of {} "
                  "bytes",
                  where, out.params_size, out.params_offset, data.size());
  }
  const std::byte* p = data.data() + out.params_offset;
  out.quant.scales.resize(count);
  std::memcpy(out.quant.scales.data(), p, count * sizeof(float));
  out.quant.zero_points.assign(count, 0);
  if (zero_points) std::memcpy(out.quant.zero_points.data(), p + count * 4, count * 4);
  return out;
}

Result<ModelMetadata> decode_metadata(const fb::Metadata* m, std::string_view what,
                                      DecodeBudget& budget) {
  ModelMetadata out;
  if (m == nullptr) return out;
  out.model_name = str(m->model_name());
  out.model_source = str(m->model_source());
  out.dim = m->dim();
  out.n_layers = m->n_layers();
  out.n_heads = m->n_heads();
  out.n_kv_heads = m->n_kv_heads();
  out.head_dim = m->head_dim();
  out.hidden_dim = m->hidden_dim();
  out.vocab_size = m->vocab_size();
  out.context_len = m->context_len();
  out.rope_theta = m->rope_theta();
  out.rms_eps = m->rms_eps();
  out.rope_scaling_type = str(m->rope_scaling_type());
  out.rope_scaling_factor = m->rope_scaling_factor();
  out.rope_low_freq_factor = m->rope_low_freq_factor();
  out.rope_high_freq_factor = m->rope_high_freq_factor();
  out.rope_original_max_positions = m->rope_original_max_positions();
  out.ar_lengths = vec(m->ar_lengths());
  out.quant_scheme = str(m->quant_scheme());
  out.kv_cache_bits = m->kv_cache_bits();
  out.mask_bits = m->mask_bits();
  out.logits_bits = m->logits_bits();
  out.split_applied = m->split_applied();
  out.r3 = m->r3();
  out.masked_softmax = m->masked_softmax();
  out.producer = str(m->producer());
  if (m->extra() != nullptr) {
    for (const fb::KeyValue* kv : *m->extra()) {
      std::string key = str(kv->key());
      HS_TRY(budget.charge(64 + key.size() + (kv->value() ? kv->value()->size() : 0),
                           fmt::format("metadata key '{}'", key)));
      if (!out.extra.emplace(key, str(kv->value())).second) {
        return errorf(ErrorKind::kCorrupt, "{}: metadata key '{}' appears twice", what, key);
      }
    }
  }
  return out;
}

// Strings stored as one blob plus N + 1 offsets (tokenizer pieces and merges); `items`
// names them in errors ("piece", "merge").
Result<std::vector<std::string>> decode_blob(const fbs::Vector<uint8_t>* blob,
                                             const fbs::Vector<uint32_t>* offset_vec,
                                             std::string_view what, std::string_view items) {
  std::vector<std::string> out;
  std::vector<uint8_t> bytes = vec(blob);
  std::vector<uint32_t> offsets = vec(offset_vec);
  if (offsets.empty()) {
    if (!bytes.empty()) {
      return errorf(ErrorKind::kCorrupt, "{}: tokenizer has {} {} bytes but no {} offsets", what,
                    bytes.size(), items, items);
    }
    return out;
  }
  if (offsets.front() != 0 || offsets.back() != bytes.size()) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: tokenizer {} offsets span [{}, {}), expected [0, {}) (the {} bytes)", what,
                  items, offsets.front(), offsets.back(), bytes.size(), items);
  }
  out.reserve(offsets.size() - 1);
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    // Check each string against the blob before slicing: monotonic with the right ends is
    // not enough while the later offsets are still unchecked.
    if (offsets[i + 1] < offsets[i] || offsets[i + 1] > bytes.size()) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: tokenizer {} {} spans [{}, {}), outside [0, {}) or reversed", what, items,
                    i, offsets[i], offsets[i + 1], bytes.size());
    }
    out.emplace_back(reinterpret_cast<const char*>(bytes.data()) + offsets[i],
                     offsets[i + 1] - offsets[i]);
  }
  return out;
}

Result<tokenizer::TokenizerData> decode_tokenizer(const fb::Tokenizer* t, std::string_view what) {
  tokenizer::TokenizerData out;
  if (t == nullptr) return out;
  out.kind = static_cast<tokenizer::TokenizerKind>(t->kind());
  HS_ASSIGN_OR_RETURN(out.pieces, decode_blob(t->piece_bytes(), t->piece_offsets(), what, "piece"));
  HS_ASSIGN_OR_RETURN(out.merges, decode_blob(t->merge_bytes(), t->merge_offsets(), what, "merge"));
  out.scores = vec(t->scores());
  for (int32_t type : vec(t->types())) out.types.push_back(static_cast<tokenizer::TokenType>(type));
  out.pre_tokenizer = str(t->pre_tokenizer());
  out.bos_id = t->bos_id();
  out.eos_id = t->eos_id();
  out.extra_eos_ids = vec(t->extra_eos_ids());
  out.unk_id = t->unk_id();
  out.pad_id = t->pad_id();
  out.add_bos = t->add_bos();
  out.add_space_prefix = t->add_space_prefix();
  out.max_token_length = t->max_token_length();
  out.chat_template = str(t->chat_template());
  return out;
}

}  // namespace

Result<Program> decode_program(std::span<const std::byte> bytes, std::string_view what,
                               std::span<const std::byte> data_section) {
  if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return errorf(ErrorKind::kOutOfRange, "{}: program is {} bytes, the limit is {}", what,
                  bytes.size(), static_cast<uint64_t>(FLATBUFFERS_MAX_BUFFER_SIZE) - 1);
  }
  HS_CHECK(reinterpret_cast<uintptr_t>(bytes.data()) % 8 == 0, "program bytes must be aligned");
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  fbs::Verifier::Options options;
  options.max_depth = 16;         // the schema nests 5 deep
  options.max_tables = 1u << 30;  // bounded by the buffer size anyway
  fbs::Verifier verifier(data, bytes.size(), options);
  if (!fb::VerifyProgramBuffer(verifier)) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: program ({} bytes) fails the flatbuffers verifier (bad offset, length or "
                  "identifier, expected 'HSAP')",
                  what, bytes.size());
  }
  const fb::Program* root = fb::GetProgram(data);
  Program program;
  DecodeBudget budget(bytes.size(), data_section.size(), what);
  HS_ASSIGN_OR_RETURN(program.metadata, decode_metadata(root->metadata(), what, budget));
  HS_ASSIGN_OR_RETURN(program.tokenizer, decode_tokenizer(root->tokenizer(), what));
  if (root->weights() != nullptr) {
    program.weights.reserve(root->weights()->size());
    for (const fb::Weight* w : *root->weights()) {
      HS_ASSIGN_OR_RETURN(WeightDesc weight,
                          decode_weight(*w, program.weights.size(), data_section, what));
      HS_TRY(budget.charge(DecodeBudget::bytes_of(weight),
                           fmt::format("weight #{}", program.weights.size())));
      program.weights.push_back(std::move(weight));
    }
  }
  if (root->graphs() != nullptr) {
    for (const fb::Graph* g : *root->graphs()) {
      HS_ASSIGN_OR_RETURN(GraphDesc graph,
                          decode_graph(*g, what, program.graphs.size(), program.weights, budget));
      HS_TRY(budget.charge(sizeof(GraphDesc) + graph.name.size() +
                               4 * (graph.inputs.size() + graph.outputs.size()),
                           fmt::format("graph #{}", program.graphs.size())));
      program.graphs.push_back(std::move(graph));
    }
  }
  return program;
}

}  // namespace hs::artifact
