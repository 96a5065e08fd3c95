// The graph text parser (grammar in ir/text.h): recursive descent over characters, building
// the Graph statement by statement so that every error carries a line and a column.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "headsplit/ir/text.h"
#include "headsplit/ir/verifier.h"

namespace hs::ir {

namespace {

struct Pos {
  int line = 1;
  int col = 1;
};

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_name_char(char c) {
  return is_word_char(c) || c == '.' || c == ':' || c == '/' || c == '-';
}
bool is_number_char(char c) { return is_word_char(c) || c == '.' || c == '+' || c == '-'; }
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool is_int_token(std::string_view t) {
  if (!t.empty() && t[0] == '-') t.remove_prefix(1);
  return !t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The characters of the text with positions; skips whitespace and `//` comments.
class Scanner {
 public:
  Scanner(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  bool at_end() const { return i_ >= text_.size(); }
  char peek(size_t k = 0) const { return i_ + k < text_.size() ? text_[i_ + k] : '\0'; }
  Pos pos() const { return {line_, static_cast<int>(i_ - line_start_) + 1}; }
  void advance() {
    if (text_[i_] == '\n') {
      ++line_;
      line_start_ = i_ + 1;
    }
    ++i_;
  }
  void skip_space() {
    while (!at_end()) {
      char c = peek();
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        advance();
      } else if (c == '/' && peek(1) == '/') {
        while (!at_end() && peek() != '\n') advance();
      } else {
        break;
      }
    }
  }
  bool accept(char c) {
    skip_space();
    if (at_end() || peek() != c) return false;
    advance();
    return true;
  }
  Status expect(char c, std::string_view where) {
    if (accept(c)) return {};
    return expected(fmt::format("'{}' {}", c, where));
  }
  // A maximal run of characters satisfying `pred`, after skipping space.
  template <typename Pred>
  std::string_view run(Pred pred) {
    skip_space();
    return run_here(pred);
  }
  // The same without skipping space first.
  template <typename Pred>
  std::string_view run_here(Pred pred) {
    size_t start = i_;
    while (!at_end() && pred(peek())) advance();
    return text_.substr(start, i_ - start);
  }
  std::string_view word() { return run(is_word_char); }
  bool accept_word(std::string_view w) {
    skip_space();
    size_t n = w.size();
    if (text_.substr(i_, n) != w || is_word_char(peek(n))) return false;
    for (size_t k = 0; k < n; ++k) advance();
    return true;
  }

  // "<source>:<line>:<col>: <message>" as a kParse error.
  Error error_at(Pos p, std::string_view message) const {
    return errorf(ErrorKind::kParse, "{}:{}:{}: {}", source_, p.line, p.col, message);
  }
  // Puts "<source>:<line>:<col>: " in front of an error from elsewhere (keeps its kind).
  Error locate(Pos p, Error error) const {
    return std::move(error).with_context(fmt::format("{}:{}:{}", source_, p.line, p.col));
  }
  // "expected <what>, found <the next token>" at the current position.
  Error expected(std::string_view what) {
    skip_space();
    return error_at(pos(), fmt::format("expected {}, found {}", what, found()));
  }
  std::string found() const {
    if (at_end()) return "end of input";
    size_t j = i_;
    while (j < text_.size() && j - i_ < 24 && is_name_char(text_[j])) ++j;
    return fmt::format("'{}'", text_.substr(i_, std::max(j, i_ + 1) - i_));
  }

  // A number of type T (int64_t, float or double) filling a whole number token.
  template <typename T>
  Result<T> number(std::string_view what) {
    skip_space();
    Pos p = pos();
    std::string_view tok = run(is_number_char);
    if (tok.empty()) return expected(what);
    T value{};
    auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), value);
    if (ec == std::errc::result_out_of_range) {
      return error_at(p, fmt::format("{} '{}' is out of range", what, tok));
    }
    if (ec != std::errc() || end != tok.data() + tok.size()) {
      return error_at(p, fmt::format("expected {}, found '{}'", what, tok));
    }
    return value;
  }
  Result<int64_t> integer(std::string_view what, int64_t lo, int64_t hi) {
    skip_space();
    Pos p = pos();
    HS_ASSIGN_OR_RETURN(int64_t v, number<int64_t>(what));
    if (v < lo || v > hi) {
      return error_at(p, fmt::format("{} {} is outside [{},{}]", what, v, lo, hi));
    }
    return v;
  }

  // '"' chars '"' with C escapes, starting at the opening quote.
  Result<std::string> quoted() {
    Pos start = pos();
    advance();
    std::string out;
    while (true) {
      if (at_end() || peek() == '\n') return error_at(start, "unterminated string");
      char c = peek();
      advance();
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      Pos esc = pos();
      char e = at_end() ? '\0' : peek();
      if (!at_end()) advance();
      switch (e) {
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'x': {
          int hi = hex_digit(peek()), lo = hex_digit(peek(1));
          if (hi < 0 || lo < 0) return error_at(esc, "expected two hex digits after '\\x'");
          advance();
          advance();
          out += static_cast<char>(hi * 16 + lo);
          break;
        }
        default: return error_at(esc, "unknown escape in string (\\\\ \\\" \\n \\t \\r \\xHH)");
      }
    }
  }
  // `sigil` then a bare or quoted name.
  Result<std::string> name_after(char sigil, std::string_view what) {
    skip_space();
    if (peek() != sigil) return expected(what);
    advance();
    if (peek() == '"') return quoted();
    size_t start = i_;
    while (!at_end() && is_name_char(peek())) advance();
    if (i_ == start) return expected(fmt::format("a name after '{}'", sigil));
    return std::string(text_.substr(start, i_ - start));
  }

 private:
  std::string_view text_;
  std::string_view source_;
  size_t i_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
};

// The keys of q<...> and the quant kinds they apply to (bit i = QuantKind i).
struct QuantKey {
  std::string_view name;
  unsigned kinds;
};
constexpr unsigned kAllKinds = 0b1110, kAxisKinds = 0b1100, kBlockKinds = 0b1000;
constexpr QuantKey kQuantKeys[] = {
    {"bits", kAllKinds},         {"range", kAllKinds},   {"axis", kAxisKinds},
    {"block_axis", kBlockKinds}, {"block", kBlockKinds}, {"scales", kAllKinds},
    {"zero_points", kAllKinds},
};

Result<QuantParams> parse_quant(Scanner& s) {
  s.skip_space();
  s.advance();  // 'q'
  s.advance();  // '<'
  s.skip_space();
  Pos kind_pos = s.pos();
  std::string_view kind = s.word();
  QuantParams q;
  for (QuantKind k : {QuantKind::kPerTensor, QuantKind::kPerAxis, QuantKind::kPerBlock}) {
    if (quant_kind_name(k) == kind) q.kind = k;
  }
  if (!q.is_quantized()) {
    return s.error_at(kind_pos, fmt::format("expected a quant kind (per_tensor, per_axis, "
                                            "per_block), found '{}'",
                                            kind));
  }
  unsigned seen = 0;
  while (s.accept(',')) {
    s.skip_space();
    Pos key_pos = s.pos();
    std::string_view key = s.word();
    size_t k = 0;
    while (k < std::size(kQuantKeys) && kQuantKeys[k].name != key) ++k;
    if (k == std::size(kQuantKeys)) {
      return s.error_at(key_pos, fmt::format("unknown quant parameter '{}'", key));
    }
    if ((seen >> k) & 1u) {
      return s.error_at(key_pos, fmt::format("quant parameter '{}' given twice", key));
    }
    if (((kQuantKeys[k].kinds >> static_cast<unsigned>(q.kind)) & 1u) == 0) {
      return s.error_at(key_pos,
                        fmt::format("quant parameter '{}' does not apply to {}", key, kind));
    }
    seen |= 1u << k;
    HS_TRY(s.expect('=', fmt::format("after '{}'", key)));
    constexpr int64_t kI32Min = INT32_MIN, kI32Max = INT32_MAX;
    if (key == "bits" || key == "axis" || key == "block_axis") {
      HS_ASSIGN_OR_RETURN(int64_t v, s.integer(key, kI32Min, kI32Max));
      (key == "bits" ? q.bits : key == "axis" ? q.axis : q.block_axis) = static_cast<int>(v);
    } else if (key == "block") {
      HS_ASSIGN_OR_RETURN(q.block, s.number<int64_t>("block"));
    } else if (key == "range") {
      HS_TRY(s.expect('[', "to open the range"));
      HS_ASSIGN_OR_RETURN(int64_t lo, s.integer("qmin", kI32Min, kI32Max));
      HS_TRY(s.expect(',', "between qmin and qmax"));
      HS_ASSIGN_OR_RETURN(int64_t hi, s.integer("qmax", kI32Min, kI32Max));
      HS_TRY(s.expect(']', "to close the range"));
      q.qmin = static_cast<int32_t>(lo);
      q.qmax = static_cast<int32_t>(hi);
    } else {
      HS_TRY(s.expect('[', fmt::format("to open the {} list", key)));
      if (s.accept(']')) continue;
      do {
        if (key == "scales") {
          HS_ASSIGN_OR_RETURN(float v, s.number<float>("a scale"));
          q.scales.push_back(v);
        } else {
          HS_ASSIGN_OR_RETURN(int64_t v, s.integer("a zero point", kI32Min, kI32Max));
          q.zero_points.push_back(static_cast<int32_t>(v));
        }
      } while (s.accept(','));
      HS_TRY(s.expect(']', fmt::format("or ',' in the {} list", key)));
    }
  }
  HS_TRY(s.expect('>', "or ',' in the quant parameters"));
  for (size_t k = 0; k < std::size(kQuantKeys); ++k) {
    bool applies = (kQuantKeys[k].kinds >> static_cast<unsigned>(q.kind)) & 1u;
    if (applies && ((seen >> k) & 1u) == 0) {
      return s.error_at(kind_pos,
                        fmt::format("{} quant parameters miss '{}'", kind, kQuantKeys[k].name));
    }
  }
  return q;
}

Result<TensorType> parse_type_at(Scanner& s) {
  s.skip_space();
  Pos p = s.pos();
  std::string_view name = s.word();
  if (name.empty()) return s.expected("a type");
  auto dtype = parse_dtype(name);
  if (!dtype.ok()) return s.error_at(p, fmt::format("unknown dtype '{}'", name));
  TensorType type{*dtype, {}, {}};
  HS_TRY(s.expect('[', "after the dtype"));
  if (!s.accept(']')) {
    int64_t bytes = dtype_size(type.dtype);  // kept below 2^62 so sizes never overflow
    do {
      s.skip_space();
      Pos dim_pos = s.pos();
      HS_ASSIGN_OR_RETURN(int64_t d, s.integer("a dimension", 0, INT64_MAX));
      if (d > 0 && bytes > (int64_t{1} << 62) / d) {
        return s.error_at(dim_pos, "the shape has too many elements");
      }
      bytes *= d;
      type.shape.push_back(d);
    } while (s.accept(','));
    HS_TRY(s.expect(']', "or ',' in the shape"));
  }
  s.skip_space();
  if (s.peek() == 'q' && s.peek(1) == '<') {
    HS_ASSIGN_OR_RETURN(type.quant, parse_quant(s));
  }
  return type;
}

// The most zero-filled bytes the elided constants of one text may ask for (256 MiB; the golden
// texts of the tests elide a few MiB).
constexpr size_t kMaxElidedBytes = size_t{256} << 20;

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : s_(text, source), source_(source) {}

  Result<Graph> parse() {
    if (!s_.accept_word("graph")) return s_.expected("'graph'");
    HS_ASSIGN_OR_RETURN(std::string name, s_.name_after('@', "'@' and the graph name"));
    graph_.set_name(std::move(name));
    HS_TRY(s_.expect('{', "to open the graph body"));
    while (!s_.accept('}')) {
      Pos p = s_.pos();
      if (s_.peek() == '%') {
        HS_TRY(node_statement(p));
      } else if (s_.accept_word("input")) {
        HS_TRY(input_statement());
      } else if (s_.accept_word("const")) {
        HS_TRY(const_statement());
      } else if (s_.accept_word("output")) {
        HS_TRY(output_statement());
      } else {
        return s_.expected("'input', 'const', 'output', a node or '}'");
      }
    }
    s_.skip_space();
    if (!s_.at_end()) return s_.expected("end of input after the graph");
    Status status = verify(graph_);
    if (!status.ok()) return std::move(status).error().with_context(source_);
    return std::move(graph_);
  }

 private:
  struct Ref {
    std::string name;
    Pos pos;
  };

  Result<Ref> ref() {
    s_.skip_space();
    Pos p = s_.pos();
    HS_ASSIGN_OR_RETURN(std::string name, s_.name_after('%', "a value ('%name')"));
    if (name.empty()) return s_.error_at(p, "empty value name");
    return Ref{std::move(name), p};
  }
  Status define(const Ref& r) {
    auto [it, inserted] = defined_at_.emplace(r.name, r.pos);
    if (inserted) return {};
    return s_.error_at(r.pos, fmt::format("'{}' is already defined at {}:{}", value_ref(r.name),
                                          it->second.line, it->second.col));
  }
  Result<ValueId> use(const Ref& r) {
    std::optional<ValueId> id = graph_.find_value(r.name);
    if (id) return *id;
    return s_.error_at(r.pos, fmt::format("'{}' is not defined (values are defined before they "
                                          "are used)",
                                          value_ref(r.name)));
  }
  Status check_value_type(const Ref& r, const TensorType& type, std::string_view role) {
    Status st = check_quant(type, fmt::format("{} '{}'", role, r.name));
    if (!st.ok()) return s_.locate(r.pos, std::move(st).error());
    return {};
  }

  Status input_statement() {
    HS_ASSIGN_OR_RETURN(Ref r, ref());
    HS_TRY(s_.expect(':', "before the input type"));
    HS_ASSIGN_OR_RETURN(TensorType type, parse_type_at(s_));
    HS_TRY(define(r));
    HS_TRY(check_value_type(r, type, "graph input"));
    HS_TRY(graph_.add_input(r.name, std::move(type)));
    return {};
  }

  Status const_statement() {
    HS_ASSIGN_OR_RETURN(Ref r, ref());
    HS_TRY(s_.expect(':', "before the constant type"));
    HS_ASSIGN_OR_RETURN(TensorType type, parse_type_at(s_));
    HS_TRY(s_.expect('=', "before the constant data"));
    s_.skip_space();
    Pos data_pos = s_.pos();
    const auto size = static_cast<size_t>(type.numel() * dtype_size(type.dtype));
    std::string_view hex;
    if (s_.accept_word("dense")) {
      HS_TRY(s_.expect('<', "after 'dense'"));
      HS_TRY(s_.expect('"', "to open the hex data"));
      hex = s_.run_here([](char c) { return hex_digit(c) >= 0; });
      if (s_.peek() != '"') {
        return s_.error_at(s_.pos(), fmt::format("expected a hex digit or '\"' in constant "
                                                 "data, found {}",
                                                 s_.found()));
      }
      s_.advance();
      if (hex.size() != 2 * size) {
        return s_.error_at(data_pos, fmt::format("constant '{}' of type {} needs {} bytes, the "
                                                 "data has {} hex digits",
                                                 r.name, type_str(type), size, hex.size()));
      }
    } else if (s_.accept_word("elided")) {
      HS_TRY(s_.expect('<', "after 'elided'"));
      if (!s_.accept_word("xxh3")) return s_.expected("'xxh3'");
      HS_TRY(s_.expect(':', "after 'xxh3'"));
      std::string_view hash = s_.run([](char c) { return hex_digit(c) >= 0; });
      if (hash.size() != 16) return s_.expected("16 hex digits of the hash");
      // Elided data becomes zeros: bound what a short text can make the parser allocate.
      if (size > kMaxElidedBytes - elided_bytes_) {
        return s_.error_at(data_pos,
                           fmt::format("elided constant '{}' of type {} would be {} bytes of "
                                       "zeros; elided constants are limited to {} bytes in all",
                                       r.name, type_str(type), size, kMaxElidedBytes));
      }
      elided_bytes_ += size;
    } else {
      return s_.expected("'dense' or 'elided' constant data");
    }
    HS_TRY(s_.expect('>', "to close the constant data"));
    HS_TRY(define(r));
    // Elided data reads as zeros.
    auto buffer = std::make_shared<HeapBuffer>(size);
    std::span<std::byte> bytes = buffer->mutable_bytes();
    std::fill(bytes.begin(), bytes.end(), std::byte{0});
    for (size_t i = 0; i < hex.size() / 2; ++i) {
      bytes[i] = static_cast<std::byte>(hex_digit(hex[2 * i]) * 16 + hex_digit(hex[2 * i + 1]));
    }
    HS_TRY(check_value_type(r, type, "constant"));
    HS_TRY(graph_.add_constant(r.name, std::move(type), BufferView{buffer, 0, size}));
    return {};
  }

  Status node_statement(Pos start) {
    std::vector<Ref> results;
    do {
      HS_ASSIGN_OR_RETURN(Ref r, ref());
      results.push_back(std::move(r));
    } while (s_.accept(','));
    HS_TRY(s_.expect('=', "after the node results"));
    s_.skip_space();
    Pos op_pos = s_.pos();
    std::string_view op_word = s_.word();
    if (op_word.empty()) return s_.expected("an op name");
    auto op = parse_op_name(op_word);
    if (!op.ok()) return s_.error_at(op_pos, fmt::format("unknown op '{}'", op_word));
    HS_TRY(s_.expect('(', "after the op name"));
    std::vector<ValueId> operands;
    if (!s_.accept(')')) {
      do {
        HS_ASSIGN_OR_RETURN(Ref r, ref());
        HS_ASSIGN_OR_RETURN(ValueId v, use(r));
        operands.push_back(v);
      } while (s_.accept(','));
      HS_TRY(s_.expect(')', "or ',' after an operand"));
    }
    Attrs attrs;
    if (s_.accept('{')) HS_TRY(attributes(attrs));
    HS_TRY(s_.expect(':', "before the result types"));
    s_.skip_space();
    Pos types_pos = s_.pos();
    std::vector<std::pair<std::string, TensorType>> outputs;
    do {
      HS_ASSIGN_OR_RETURN(TensorType type, parse_type_at(s_));
      outputs.emplace_back(std::string(), std::move(type));
    } while (s_.accept(','));
    if (outputs.size() != results.size()) {
      return s_.error_at(types_pos,
                         fmt::format("{} results but {} types", results.size(), outputs.size()));
    }
    for (size_t i = 0; i < results.size(); ++i) {
      HS_TRY(define(results[i]));
      outputs[i].first = results[i].name;
    }
    HS_ASSIGN_OR_RETURN(NodeId node, graph_.add_node(*op, std::move(operands), std::move(attrs),
                                                     std::move(outputs)));
    Status st = verify_node(graph_, node);
    if (!st.ok()) return s_.locate(start, std::move(st).error());
    return {};
  }

  // After '{': key '=' value (',' key '=' value)* '}'.
  Status attributes(Attrs& attrs) {
    do {
      s_.skip_space();
      Pos key_pos = s_.pos();
      std::string key;
      if (s_.peek() == '"') {
        HS_ASSIGN_OR_RETURN(key, s_.quoted());
      } else {
        key = std::string(s_.word());
        if (key.empty()) return s_.expected("an attribute name");
      }
      if (attrs.has(key)) {
        return s_.error_at(key_pos, fmt::format("attribute '{}' given twice", key));
      }
      HS_TRY(s_.expect('=', fmt::format("after attribute '{}'", key)));
      HS_ASSIGN_OR_RETURN(AttrValue value, attribute_value());
      attrs.set(std::move(key), std::move(value));
    } while (s_.accept(','));
    return s_.expect('}', "or ',' after an attribute");
  }

  Result<AttrValue> attribute_value() {
    s_.skip_space();
    if (s_.peek() == '"') {
      HS_ASSIGN_OR_RETURN(std::string str, s_.quoted());
      return AttrValue(std::move(str));
    }
    if (s_.accept('[')) {
      std::vector<int64_t> list;
      if (s_.accept(']')) return AttrValue(std::move(list));
      do {
        HS_ASSIGN_OR_RETURN(int64_t v, s_.number<int64_t>("an integer"));
        list.push_back(v);
      } while (s_.accept(','));
      HS_TRY(s_.expect(']', "or ',' in the integer list"));
      return AttrValue(std::move(list));
    }
    Scanner probe = s_;  // decide int or float by looking at the whole token
    std::string_view tok = probe.run(is_number_char);
    if (is_int_token(tok)) {
      HS_ASSIGN_OR_RETURN(int64_t v, s_.number<int64_t>("an integer"));
      return AttrValue(v);
    }
    HS_ASSIGN_OR_RETURN(double v, s_.number<double>("an attribute value"));
    return AttrValue(v);
  }

  Status output_statement() {
    do {
      HS_ASSIGN_OR_RETURN(Ref r, ref());
      HS_ASSIGN_OR_RETURN(ValueId v, use(r));
      graph_.add_output(v);
    } while (s_.accept(','));
    return {};
  }

  Scanner s_;
  std::string_view source_;
  Graph graph_;
  size_t elided_bytes_ = 0;  // zero-filled bytes of the elided constants so far
  std::unordered_map<std::string, Pos> defined_at_;
};

}  // namespace

Result<Graph> parse_graph(std::string_view text, std::string_view source_name) {
  return Parser(text, source_name).parse();
}

Result<TensorType> parse_type(std::string_view text) {
  Scanner s(text, "<type>");
  HS_ASSIGN_OR_RETURN(TensorType type, parse_type_at(s));
  s.skip_space();
  if (!s.at_end()) return s.expected("end of the type");
  return type;
}

}  // namespace hs::ir
