// Program -> FlatBuffers bytes (schema: schema/artifact.fbs). A field-by-field mapping in which
// every repeated value is written once and referenced wherever it recurs (FlatBuffers offsets
// may point at one object from many places): strings, shapes and index lists, quant params,
// attributes, and whole tensors and nodes the prefill and decode graphs have in common. The
// enums share values with the schema's, so they convert with a cast.
#include <cstring>
#include <string>
#include <unordered_map>

#include "artifact_generated.h"
#include "headsplit/artifact/format.h"

namespace hs::artifact {
namespace {

namespace fbs = ::flatbuffers;

// A FlatBufferBuilder that remembers what it wrote: `shared(key, make)` returns the offset of
// the object written earlier for the same key, or writes it with make(). Keys are the object's
// bytes (its fields and the offsets of its children), so equal keys mean equal objects.
class Builder : public fbs::FlatBufferBuilder {
 public:
  explicit Builder(size_t initial) : fbs::FlatBufferBuilder(initial) {}

  template <typename T, typename Make>
  fbs::Offset<T> shared(char tag, std::string key, Make&& make) {
    key.insert(key.begin(), tag);
    auto [it, inserted] = written_.try_emplace(std::move(key), 0);
    if (inserted) it->second = make().o;
    return fbs::Offset<T>(it->second);
  }
  // A vector of scalars, written once per distinct content.
  template <typename T>
  fbs::Offset<fbs::Vector<T>> shared_vector(const std::vector<T>& values) {
    return shared<fbs::Vector<T>>('v' + static_cast<char>(sizeof(T)), bytes_of(values),
                                  [&] { return CreateVector(values); });
  }
  fbs::Offset<fbs::String> shared_string(const std::string& s) { return CreateSharedString(s); }

  template <typename T>
  static std::string bytes_of(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  // Appends a scalar's bytes to a key.
  template <typename T>
  static void put(std::string& key, T value) {
    key.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }

 private:
  std::unordered_map<std::string, fbs::uoffset_t> written_;
};

template <typename Enum, typename From>
Enum to_fb(From value) {
  return static_cast<Enum>(static_cast<std::underlying_type_t<From>>(value));
}

// `with_values`: false when the scales and zero points are stored in the data section.
fbs::Offset<fb::Quant> write_quant(Builder& b, const Quant& q, bool with_values) {
  fbs::Offset<fbs::Vector<float>> scales;
  fbs::Offset<fbs::Vector<int32_t>> zero_points;
  if (with_values) {
    scales = b.shared_vector(q.scales);
    zero_points = b.shared_vector(q.zero_points);
  }
  fb::QuantBuilder qb(b);
  qb.add_kind(to_fb<fb::QuantKind>(q.kind));
  qb.add_bits(q.bits);
  qb.add_qmin(q.qmin);
  qb.add_qmax(q.qmax);
  qb.add_axis(q.axis);
  qb.add_block_axis(q.block_axis);
  qb.add_block(q.block);
  if (with_values) {
    qb.add_scales(scales);
    qb.add_zero_points(zero_points);
  }
  return qb.Finish();
}

fbs::Offset<fb::Quant> encode_quant(Builder& b, const Quant& q, bool with_values = true) {
  std::string key;
  Builder::put(key, static_cast<uint8_t>(q.kind));
  Builder::put(key, q.bits);
  Builder::put(key, q.qmin);
  Builder::put(key, q.qmax);
  Builder::put(key, q.axis);
  Builder::put(key, q.block_axis);
  Builder::put(key, q.block);
  Builder::put(key, with_values);
  if (with_values) {
    Builder::put(key, q.scales.size());
    key += Builder::bytes_of(q.scales);
    key += Builder::bytes_of(q.zero_points);
  }
  return b.shared<fb::Quant>('q', std::move(key), [&] { return write_quant(b, q, with_values); });
}

fbs::Offset<fb::Attr> encode_attr(Builder& b, const std::string& attr_name,
                                  const AttrValue& value) {
  auto name = b.shared_string(attr_name);
  fbs::Offset<fbs::Vector<int64_t>> ints;
  fbs::Offset<fbs::String> str;
  if (const auto* v = std::get_if<std::vector<int64_t>>(&value)) ints = b.shared_vector(*v);
  if (const auto* v = std::get_if<std::string>(&value)) str = b.shared_string(*v);
  std::string key;
  Builder::put(key, name.o);
  Builder::put(key, static_cast<uint8_t>(value.index()));
  Builder::put(key, ints.o);
  Builder::put(key, str.o);
  if (const auto* v = std::get_if<int64_t>(&value)) Builder::put(key, *v);
  if (const auto* v = std::get_if<double>(&value)) Builder::put(key, *v);
  return b.shared<fb::Attr>('a', std::move(key), [&] {
    fb::AttrBuilder ab(b);
    ab.add_name(name);
    ab.add_kind(static_cast<fb::AttrKind>(value.index()));
    if (const auto* v = std::get_if<int64_t>(&value)) ab.add_i(*v);
    if (const auto* v = std::get_if<double>(&value)) ab.add_f(*v);
    if (!ints.IsNull()) ab.add_ints(ints);
    if (!str.IsNull()) ab.add_s(str);
    return ab.Finish();
  });
}

fbs::Offset<fb::Tensor> encode_tensor(Builder& b, const TensorDesc& t) {
  auto name = b.shared_string(t.name);
  auto shape = b.shared_vector(t.shape);
  // A constant's quant is its weight's (check_program): stored once, with the weight.
  const bool constant = t.role == TensorRole::kConstant;
  fbs::Offset<fb::Quant> quant;
  if (!constant) quant = encode_quant(b, t.quant);
  std::string key;
  Builder::put(key, name.o);
  Builder::put(key, shape.o);
  Builder::put(key, quant.o);
  Builder::put(key, static_cast<uint8_t>(t.dtype));
  Builder::put(key, t.weight);
  Builder::put(key, t.arena_offset);
  Builder::put(key, static_cast<uint8_t>(t.role));
  return b.shared<fb::Tensor>('t', std::move(key), [&] {
    fb::TensorBuilder tb(b);
    tb.add_name(name);
    tb.add_type(to_fb<fb::ElementType>(t.dtype));
    tb.add_shape(shape);
    if (!constant) tb.add_quant(quant);
    tb.add_weight(t.weight);
    tb.add_arena_offset(t.arena_offset);
    tb.add_role(to_fb<fb::TensorRole>(t.role));
    return tb.Finish();
  });
}

fbs::Offset<fb::Node> encode_node(Builder& b, const NodeDesc& n) {
  auto inputs = b.shared_vector(n.inputs);
  auto outputs = b.shared_vector(n.outputs);
  std::vector<uint32_t> attr_offsets;
  for (const auto& [name, value] : n.attrs.entries()) {
    attr_offsets.push_back(encode_attr(b, name, value).o);
  }
  auto attr_vec = b.shared<fbs::Vector<fbs::Offset<fb::Attr>>>(
      'A', Builder::bytes_of(attr_offsets), [&] {
        std::vector<fbs::Offset<fb::Attr>> attrs(attr_offsets.begin(), attr_offsets.end());
        return b.CreateVector(attrs);
      });
  std::string key;
  Builder::put(key, static_cast<uint16_t>(n.op));
  Builder::put(key, inputs.o);
  Builder::put(key, outputs.o);
  Builder::put(key, attr_vec.o);
  return b.shared<fb::Node>('n', std::move(key), [&] {
    fb::NodeBuilder nb(b);
    nb.add_op(to_fb<fb::OpCode>(n.op));
    nb.add_inputs(inputs);
    nb.add_outputs(outputs);
    nb.add_attrs(attr_vec);
    return nb.Finish();
  });
}

fbs::Offset<fb::Graph> encode_graph(Builder& b, const GraphDesc& g) {
  auto name = b.shared_string(g.name);
  std::vector<fbs::Offset<fb::Tensor>> tensors;
  for (const TensorDesc& t : g.tensors) tensors.push_back(encode_tensor(b, t));
  auto tensor_vec = b.CreateVector(tensors);
  std::vector<fbs::Offset<fb::Node>> nodes;
  for (const NodeDesc& n : g.nodes) nodes.push_back(encode_node(b, n));
  auto node_vec = b.CreateVector(nodes);
  auto inputs = b.shared_vector(g.inputs);
  auto outputs = b.shared_vector(g.outputs);
  fb::GraphBuilder gb(b);
  gb.add_name(name);
  gb.add_ar_len(g.ar_len);
  gb.add_tensors(tensor_vec);
  gb.add_nodes(node_vec);
  gb.add_inputs(inputs);
  gb.add_outputs(outputs);
  gb.add_arena_bytes(g.arena_bytes);
  return gb.Finish();
}

fbs::Offset<fb::Weight> encode_weight(Builder& b, const WeightDesc& w) {
  auto name = b.shared_string(w.name);
  auto shape = b.shared_vector(w.shape);
  const bool in_data = w.params_size > 0;  // scales (and zero points) in the data section
  auto quant = encode_quant(b, w.quant, !in_data);
  fb::WeightBuilder wb(b);
  wb.add_name(name);
  wb.add_type(to_fb<fb::ElementType>(w.dtype));
  wb.add_shape(shape);
  wb.add_quant(quant);
  wb.add_offset(w.offset);
  wb.add_size(w.size_bytes);
  wb.add_layout(to_fb<fb::WeightLayout>(w.layout));
  if (in_data) {
    wb.add_params_offset(w.params_offset);
    wb.add_params_size(w.params_size);
    wb.add_params_count(w.quant.scales.size());
  }
  return wb.Finish();
}

fbs::Offset<fb::Metadata> encode_metadata(Builder& b, const ModelMetadata& m) {
  auto model_name = b.CreateString(m.model_name);
  auto model_source = b.CreateString(m.model_source);
  auto rope_scaling_type = b.CreateString(m.rope_scaling_type);
  auto ar_lengths = b.CreateVector(m.ar_lengths);
  auto quant_scheme = b.CreateString(m.quant_scheme);
  auto producer = b.CreateString(m.producer);
  // std::map iterates in key order, which is the order the schema's (key) attribute wants.
  std::vector<fbs::Offset<fb::KeyValue>> extra;
  for (const auto& [key, value] : m.extra) {
    extra.push_back(fb::CreateKeyValue(b, b.CreateString(key), b.CreateString(value)));
  }
  auto extra_vec = b.CreateVector(extra);
  fb::MetadataBuilder mb(b);
  mb.add_model_name(model_name);
  mb.add_model_source(model_source);
  mb.add_dim(m.dim);
  mb.add_n_layers(m.n_layers);
  mb.add_n_heads(m.n_heads);
  mb.add_n_kv_heads(m.n_kv_heads);
  mb.add_head_dim(m.head_dim);
  mb.add_hidden_dim(m.hidden_dim);
  mb.add_vocab_size(m.vocab_size);
  mb.add_context_len(m.context_len);
  mb.add_rope_theta(m.rope_theta);
  mb.add_rms_eps(m.rms_eps);
  mb.add_rope_scaling_type(rope_scaling_type);
  mb.add_rope_scaling_factor(m.rope_scaling_factor);
  mb.add_rope_low_freq_factor(m.rope_low_freq_factor);
  mb.add_rope_high_freq_factor(m.rope_high_freq_factor);
  mb.add_rope_original_max_positions(m.rope_original_max_positions);
  mb.add_ar_lengths(ar_lengths);
  mb.add_quant_scheme(quant_scheme);
  mb.add_kv_cache_bits(m.kv_cache_bits);
  mb.add_mask_bits(m.mask_bits);
  mb.add_logits_bits(m.logits_bits);
  mb.add_split_applied(m.split_applied);
  mb.add_r3(m.r3);
  mb.add_masked_softmax(m.masked_softmax);
  mb.add_producer(producer);
  mb.add_extra(extra_vec);
  return mb.Finish();
}

fbs::Offset<fb::Tokenizer> encode_tokenizer(Builder& b, const tokenizer::TokenizerData& t) {
  std::vector<uint8_t> piece_bytes;
  std::vector<uint32_t> piece_offsets;
  if (!t.pieces.empty()) piece_offsets.push_back(0);
  for (const std::string& piece : t.pieces) {
    piece_bytes.insert(piece_bytes.end(), piece.begin(), piece.end());
    piece_offsets.push_back(static_cast<uint32_t>(piece_bytes.size()));
  }
  // The merges the same way: "a b" strings concatenated, M + 1 offsets.
  std::vector<uint8_t> merge_bytes;
  std::vector<uint32_t> merge_offsets;
  if (!t.merges.empty()) merge_offsets.push_back(0);
  for (const std::string& merge : t.merges) {
    merge_bytes.insert(merge_bytes.end(), merge.begin(), merge.end());
    merge_offsets.push_back(static_cast<uint32_t>(merge_bytes.size()));
  }
  std::vector<int32_t> types;
  for (tokenizer::TokenType type : t.types) types.push_back(static_cast<int32_t>(type));
  auto piece_bytes_vec = b.CreateVector(piece_bytes);
  auto piece_offsets_vec = b.CreateVector(piece_offsets);
  auto scores = b.CreateVector(t.scores);
  auto types_vec = b.CreateVector(types);
  auto merge_bytes_vec = b.CreateVector(merge_bytes);
  auto merge_offsets_vec = b.CreateVector(merge_offsets);
  auto pre_tokenizer = b.CreateString(t.pre_tokenizer);
  auto extra_eos = b.CreateVector(t.extra_eos_ids);
  auto chat_template = b.CreateString(t.chat_template);
  fb::TokenizerBuilder tb(b);
  tb.add_kind(static_cast<uint8_t>(t.kind));
  tb.add_piece_bytes(piece_bytes_vec);
  tb.add_piece_offsets(piece_offsets_vec);
  tb.add_scores(scores);
  tb.add_types(types_vec);
  tb.add_merge_bytes(merge_bytes_vec);
  tb.add_merge_offsets(merge_offsets_vec);
  tb.add_pre_tokenizer(pre_tokenizer);
  tb.add_bos_id(t.bos_id);
  tb.add_eos_id(t.eos_id);
  tb.add_extra_eos_ids(extra_eos);
  tb.add_unk_id(t.unk_id);
  tb.add_pad_id(t.pad_id);
  tb.add_add_bos(t.add_bos);
  tb.add_add_space_prefix(t.add_space_prefix);
  tb.add_max_token_length(t.max_token_length);
  tb.add_chat_template(chat_template);
  return tb.Finish();
}

}  // namespace

std::vector<std::byte> encode_program(const Program& program) {
  Builder b(1 << 16);
  auto metadata = encode_metadata(b, program.metadata);
  auto tok = encode_tokenizer(b, program.tokenizer);
  std::vector<fbs::Offset<fb::Weight>> weights;
  for (const WeightDesc& w : program.weights) weights.push_back(encode_weight(b, w));
  auto weight_vec = b.CreateVector(weights);
  std::vector<fbs::Offset<fb::Graph>> graphs;
  for (const GraphDesc& g : program.graphs) graphs.push_back(encode_graph(b, g));
  auto graph_vec = b.CreateVector(graphs);
  fb::ProgramBuilder pb(b);
  pb.add_metadata(metadata);
  pb.add_tokenizer(tok);
  pb.add_weights(weight_vec);
  pb.add_graphs(graph_vec);
  fb::FinishProgramBuffer(b, pb.Finish());
  std::vector<std::byte> bytes(b.GetSize());
  std::memcpy(bytes.data(), b.GetBufferPointer(), bytes.size());
  return bytes;
}

}  // namespace hs::artifact
