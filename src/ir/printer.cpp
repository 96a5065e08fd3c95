// The graph text printer (grammar in ir/text.h). Types are printed by type_str(), the single
// source of the type syntax; everything else is printed here.
#include <string>
#include <string_view>

#include "headsplit/ir/text.h"
#include "headsplit/support/hash.h"

namespace hs::ir {

namespace {

bool is_bare_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '-';
}

bool is_identifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// "..." with C escapes; bytes >= 0x80 (UTF-8) pass through.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += fmt::format("\\x{:02x}", u);
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string name_text(std::string_view name) {
  bool bare = !name.empty();
  for (char c : name) bare = bare && is_bare_name_char(c);
  return bare ? std::string(name) : quoted(name);
}

// Shortest exact form, always recognizable as a float: 1.0, 1e-05, -inf, nan.
std::string float_text(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string attr_text(const AttrValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return fmt::format("{}", *i);
  if (const auto* f = std::get_if<double>(&value)) return float_text(*f);
  if (const auto* l = std::get_if<std::vector<int64_t>>(&value)) {
    return fmt::format("[{}]", fmt::join(*l, ","));
  }
  return quoted(std::get<std::string>(value));
}

std::string refs_text(const Graph& graph, const std::vector<ValueId>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += value_ref(graph.value(ids[i]).name);
  }
  return out;
}

std::string constant_text(const Value& value, const PrintOptions& options) {
  std::span<const std::byte> bytes = value.data->bytes();
  bool full = options.constants == ConstantText::kFull ||
              (options.constants == ConstantText::kAuto &&
               static_cast<int64_t>(bytes.size()) <= options.elide_above_bytes);
  if (!full) return fmt::format("elided<xxh3:{:016x}>", hash64(bytes));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "dense<\"";
  out.reserve(bytes.size() * 2 + 9);
  for (std::byte b : bytes) {
    auto u = static_cast<unsigned>(b);
    out += kHex[u >> 4];
    out += kHex[u & 15];
  }
  out += "\">";
  return out;
}

}  // namespace

std::string value_ref(std::string_view name) {
  std::string out = "%";
  out += name_text(name);
  return out;
}

std::string print_node(const Graph& graph, NodeId id) {
  const Node& node = graph.node(id);
  std::string out = fmt::format("{} = {}({})", refs_text(graph, node.outputs), op_name(node.op),
                                refs_text(graph, node.inputs));
  if (!node.attrs.entries().empty()) {
    out += " {";
    bool first = true;
    for (const auto& [key, value] : node.attrs.entries()) {
      if (!first) out += ", ";
      first = false;
      out += fmt::format("{} = {}", is_identifier(key) ? key : quoted(key), attr_text(value));
    }
    out += "}";
  }
  out += " : ";
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    if (i > 0) out += ", ";
    out += type_str(graph.type(node.outputs[i]));
  }
  return out;
}

std::string print_graph(const Graph& graph, const PrintOptions& options) {
  std::string out = fmt::format("graph @{} {{\n", name_text(graph.name()));
  for (ValueId v : graph.inputs()) {
    const Value& value = graph.value(v);
    out += fmt::format("  input {} : {}\n", value_ref(value.name), type_str(value.type));
  }
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (!value.is_constant() || graph.is_graph_input(v)) continue;
    out += fmt::format("  const {} : {} = {}\n", value_ref(value.name), type_str(value.type),
                       constant_text(value, options));
  }
  for (NodeId n = 0; n < graph.num_nodes(); ++n) {
    if (graph.node(n).erased) continue;
    out += fmt::format("  {}\n", print_node(graph, n));
  }
  if (!graph.outputs().empty())
    out += fmt::format("  output {}\n", refs_text(graph, graph.outputs()));
  out += "}\n";
  return out;
}

}  // namespace hs::ir
