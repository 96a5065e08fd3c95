// SentencePiece-BPE encoding and decoding for the kLlama2c and kSpm kinds.
//
// Encode (llama2.c run.c `encode`, llama.cpp `llm_tokenizer_spm`):
//   1. a dummy-prefix space in front of the first fragment (kLlama2c: the piece " ",
//      kSpm: "▁", every space of the text also becoming "▁"),
//   2. one symbol per UTF-8 code point (an ill-formed sequence: its lead byte and the
//      continuation bytes that follow), the code point's token when it is a piece, else
//      byte fallback (kLlama2c: one symbol per byte, token byte + 3, whose piece "<0xHH>" is
//      what later merges see, as in run.c; kSpm: the code point stays one symbol that may
//      still merge, and is emitted as <0xHH> tokens if it never becomes a piece),
//   3. repeatedly merge the adjacent pair whose concatenation is a piece of highest score,
//      leftmost on ties, until no pair is a piece.
// Step 3 uses a priority queue of candidate pairs with lazy invalidation: O(n log n) in the
// text length n, one hash lookup per candidate, independent of the vocabulary size.
#include <algorithm>
#include <queue>

#include "internal.h"

namespace hs::tokenizer::detail {
namespace {

constexpr std::string_view kSpmSpace = "\xe2\x96\x81";  // "▁" U+2581

struct Symbol {
  size_t start = 0;  // span [start, start + size) of the work buffer
  size_t size = 0;
  int32_t id = -1;  // the token of the span, -1 while it is none (kSpm byte fallback)
  int prev = -1;
  int next = -1;
  bool alive = true;  // false once merged into its left neighbour
};

struct Bigram {
  float score = 0.0f;
  int left = 0;
  int right = 0;
  size_t size = 0;  // bytes of the merged span when the pair was queued
  int32_t id = 0;
};

// Highest score on top; on equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(TokenizerData data) : Tokenizer(std::move(data)), specials_(data_) {}

  std::vector<int32_t> encode(std::string_view text, bool add_bos,
                              bool parse_special) const override;
  std::string decode_token(int32_t prev, int32_t token) const override;

 private:
  // Work buffer and initial symbols of one raw fragment (steps 1 and 2).
  void seed_llama2c(std::string_view text, bool space_prefix, std::string& work,
                    std::vector<Symbol>& symbols) const;
  void seed_spm(std::string_view text, bool space_prefix, std::string& work,
                std::vector<Symbol>& symbols) const;
  void encode_fragment(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;
  // The token of one byte for kSpm: <0xHH>, else the one-byte piece, else unk (-1: none).
  int32_t spm_byte_token(uint8_t byte) const;

  SpecialSplitter specials_;
};

void push_symbol(std::vector<Symbol>& symbols, size_t start, size_t size, int32_t id) {
  Symbol symbol;
  symbol.start = start;
  symbol.size = size;
  symbol.id = id;
  symbol.prev = static_cast<int>(symbols.size()) - 1;
  symbols.push_back(symbol);
}

void SpmTokenizer::seed_llama2c(std::string_view text, bool space_prefix, std::string& work,
                                std::vector<Symbol>& symbols) const {
  const int64_t v = vocab_size();
  auto add_piece = [&](std::string_view bytes, int32_t id) {
    push_symbol(symbols, work.size(), bytes.size(), id);
    work += bytes;
  };
  auto add_group = [&](std::string_view group) {
    const int32_t id = piece_map().find(group);
    if (id >= 0) {
      add_piece(group, id);
      return;
    }
    for (char c : group) {  // byte fallback: ids 3..258 are <0x00>..<0xFF>
      const int32_t byte_id = static_cast<unsigned char>(c) + 3;
      const int32_t fallback = byte_id < v ? byte_id : data_.unk_id;
      if (fallback >= 0) add_piece(data_.pieces[fallback], fallback);
    }
  };
  if (space_prefix) add_group(" ");
  // run.c groups a byte with the continuation bytes (10xxxxxx) after it, at most 4 in all.
  size_t i = 0;
  while (i < text.size()) {
    size_t n = 1;
    while (n < 4 && i + n < text.size() &&
           (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) {
      ++n;
    }
    add_group(text.substr(i, n));
    i += n;
  }
}

void SpmTokenizer::seed_spm(std::string_view text, bool space_prefix, std::string& work,
                            std::vector<Symbol>& symbols) const {
  if (space_prefix) work += kSpmSpace;
  for (char c : text) {
    if (c == ' ') {
      work += kSpmSpace;
    } else {
      work += c;
    }
  }
  size_t i = 0;
  while (i < work.size()) {
    // One code point: the lead byte and the continuation bytes (10xxxxxx) that follow it, at most
    // as many as the lead byte announces. An ill-formed sequence stops at the first byte that is
    // not a continuation, so it never swallows the start of the next character (a "▁" after a
    // truncated sequence stays a space); on well-formed text this is the sequence length.
    const size_t len =
        std::min(utf8_sequence_length(static_cast<unsigned char>(work[i])), work.size() - i);
    size_t n = 1;
    while (n < len && (static_cast<unsigned char>(work[i + n]) & 0xC0) == 0x80) ++n;
    push_symbol(symbols, i, n, piece_map().find(std::string_view(work).substr(i, n)));
    i += n;
  }
}

int32_t SpmTokenizer::spm_byte_token(uint8_t byte) const {
  const std::string name = fmt::format("<0x{:02X}>", byte);
  int32_t id = piece_map().find(name);
  if (id < 0) id = piece_map().find(std::string(1, static_cast<char>(byte)));
  return id >= 0 ? id : data_.unk_id;
}

void SpmTokenizer::encode_fragment(std::string_view text, bool space_prefix,
                                   std::vector<int32_t>& out) const {
  std::string work;
  std::vector<Symbol> symbols;
  if (data_.kind == TokenizerKind::kLlama2c) {
    seed_llama2c(text, space_prefix, work, symbols);
  } else {
    seed_spm(text, space_prefix, work, symbols);
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int>(i + 1);

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols[left].size + symbols[right].size;
    const int32_t id = piece_map().find(std::string_view(work).substr(symbols[left].start, size));
    if (id < 0) return;
    queue.push(Bigram{data_.scores[id], left, right, size, id});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int>(i - 1), static_cast<int>(i));

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale when either side has been merged away or has grown since the pair was queued.
    if (!left.alive || !right.alive || left.next != bigram.right ||
        left.size + right.size != bigram.size) {
      continue;
    }
    left.size += right.size;
    left.id = bigram.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  for (int i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& symbol = symbols[i];
    if (symbol.id >= 0) {
      out.push_back(symbol.id);
      continue;
    }
    for (size_t b = 0; b < symbol.size; ++b) {
      const int32_t id = spm_byte_token(static_cast<uint8_t>(work[symbol.start + b]));
      if (id >= 0) out.push_back(id);
    }
  }
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_bos,
                                          bool parse_special) const {
  std::vector<int32_t> out;
  if (add_bos && data_.add_bos && data_.bos_id >= 0) out.push_back(data_.bos_id);
  bool prev_special = true;  // the dummy prefix goes in front of text that follows a special
  for (const Fragment& fragment : specials_.split(text, parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      prev_special = true;
      continue;
    }
    encode_fragment(fragment.text, data_.add_space_prefix && prev_special, out);
    prev_special = false;
  }
  return out;
}

std::string SpmTokenizer::decode_token(int32_t prev, int32_t token) const {
  if (token < 0 || token >= vocab_size()) return {};
  const TokenType type = token_type(token);
  if (type == TokenType::kControl || token == data_.bos_id || token == data_.eos_id) return {};
  std::string_view piece = data_.pieces[token];
  const bool after_bos = data_.bos_id >= 0 && prev == data_.bos_id;
  if (data_.kind == TokenizerKind::kLlama2c) {  // run.c `decode`
    if (after_bos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    if (auto byte = parse_byte_piece(piece)) return std::string(1, static_cast<char>(*byte));
    return std::string(piece);
  }
  // llama.cpp token_to_piece for SPM.
  if (type == TokenType::kByte || (data_.types.empty() && parse_byte_piece(piece))) {
    if (auto byte = parse_byte_piece(piece)) return std::string(1, static_cast<char>(*byte));
  }
  if (type == TokenType::kUnknown) return "\xe2\x96\x85";  // "▅", as llama.cpp prints <unk>
  std::string text;
  text.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kSpmSpace.size()) == kSpmSpace) {
      text += ' ';
      i += kSpmSpace.size();
    } else {
      text += piece[i++];
    }
  }
  if (after_bos && data_.add_space_prefix && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_spm_tokenizer(TokenizerData data) {
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(data)));
}

}  // namespace hs::tokenizer::detail
