// Byte-level BPE (GPT-2 family) encoding and decoding.
//
// Encode (Hugging Face ByteLevel BPE, llama.cpp `llm_tokenizer_bpe`): split the text around
// special tokens, make each raw fragment a Unicode string (ill-formed UTF-8 -> U+FFFD per
// maximal subpart, then NFC when the pre-tokenizer asks), split it into words with the
// pre-tokenizer, map each word's bytes to GPT-2's printable characters, start from one symbol
// per character and repeatedly merge the adjacent pair "a b" of lowest rank in `merges`
// (leftmost on ties) until no pair has a rank; each final symbol is a piece (or, failing that, its
// single bytes are looked up). A priority queue with lazy invalidation keeps a word of n characters
// O(n log n).
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "headsplit/tokenizer/pre_tokenizer.h"
#include "internal.h"

namespace hs::tokenizer::detail {
namespace {

struct Symbol {
  size_t start = 0;  // span [start, start + size) of the mapped word
  size_t size = 0;
  int prev = -1;
  int next = -1;
  bool alive = true;
};

struct Bigram {
  int32_t rank = 0;
  int left = 0;
  int right = 0;
  size_t size = 0;  // bytes of the merged span when the pair was queued
};

// Lowest rank on top; on equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

struct Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using RankMap = std::unordered_map<std::string, int32_t, Hash, std::equal_to<>>;

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  ByteLevelBpeTokenizer(TokenizerData data, PreTokenizer pre_tokenizer, RankMap ranks)
      : Tokenizer(std::move(data)),
        specials_(data_),
        pre_tokenizer_(std::move(pre_tokenizer)),
        ranks_(std::move(ranks)) {}

  std::vector<int32_t> encode(std::string_view text, bool add_bos,
                              bool parse_special) const override;
  std::string decode_token(int32_t prev, int32_t token) const override;

 private:
  void encode_word(const std::string& word, std::vector<int32_t>& out) const;
  int32_t rank(std::string_view left, std::string_view right) const;

  SpecialSplitter specials_;
  PreTokenizer pre_tokenizer_;
  RankMap ranks_;  // "a b" -> rank (position in merges; the first of repeated merges wins)
};

int32_t ByteLevelBpeTokenizer::rank(std::string_view left, std::string_view right) const {
  std::string key;
  key.reserve(left.size() + 1 + right.size());
  key.append(left).append(" ").append(right);
  const auto it = ranks_.find(key);
  return it == ranks_.end() ? -1 : it->second;
}

void ByteLevelBpeTokenizer::encode_word(const std::string& word, std::vector<int32_t>& out) const {
  if (pre_tokenizer_.ignore_merges()) {
    const int32_t id = piece_map().find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  for (size_t i = 0; i < word.size();) {
    Symbol symbol;
    symbol.start = i;
    symbol.size =
        std::min(utf8_sequence_length(static_cast<unsigned char>(word[i])), word.size() - i);
    symbol.prev = static_cast<int>(symbols.size()) - 1;
    symbol.next = static_cast<int>(symbols.size()) + 1;
    symbols.push_back(symbol);
    i += symbol.size;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  const std::string_view text = word;
  auto span = [&](const Symbol& s) { return text.substr(s.start, s.size); };
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int32_t r = rank(span(symbols[left]), span(symbols[right]));
    if (r < 0) return;
    queue.push(Bigram{r, left, right, symbols[left].size + symbols[right].size});
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
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  for (int i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = span(symbols[i]);
    const int32_t id = piece_map().find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {  // as llama.cpp: the single bytes that are pieces, if any
      const int32_t byte_id = piece_map().find(std::string_view(&c, 1));
      if (byte_id >= 0) out.push_back(byte_id);
    }
  }
}

std::vector<int32_t> ByteLevelBpeTokenizer::encode(std::string_view text, bool add_bos,
                                                   bool parse_special) const {
  std::vector<int32_t> out;
  if (add_bos && data_.add_bos && data_.bos_id >= 0) out.push_back(data_.bos_id);
  for (const Fragment& fragment : specials_.split(text, parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      continue;
    }
    // The reference tokenizes a Unicode string: ill-formed UTF-8 is U+FFFD there.
    std::string text;
    if (pre_tokenizer_.nfc()) {
      text = nfc_normalize(fragment.text);
    } else if (!is_valid_utf8(fragment.text)) {
      text = to_valid_utf8(fragment.text);
    } else {
      text = std::string(fragment.text);
    }
    for (std::string_view word : pre_tokenizer_.split(text)) {
      encode_word(bytes_to_unicode(word), out);
    }
  }
  return out;
}

std::string ByteLevelBpeTokenizer::decode_token(int32_t /*prev*/, int32_t token) const {
  if (token < 0 || token >= vocab_size()) return {};
  if (token == data_.bos_id || token == data_.eos_id) return {};
  const std::string& piece = data_.pieces[token];
  switch (token_type(token)) {
    case TokenType::kControl: return {};
    case TokenType::kUserDefined: return piece;  // stored as raw text
    default: return unicode_to_bytes(piece);
  }
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_byte_level_bpe_tokenizer(TokenizerData data) {
  HS_ASSIGN_OR_RETURN(PreTokenizer pre_tokenizer, PreTokenizer::create(data.pre_tokenizer));
  RankMap ranks;
  ranks.reserve(data.merges.size());
  for (size_t i = 0; i < data.merges.size(); ++i) {
    const std::string& merge = data.merges[i];
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos || space + 1 >= merge.size()) {
      return errorf(ErrorKind::kCorrupt, "tokenizer: merge {} '{}' is not two parts 'a b'", i,
                    merge);
    }
    ranks.emplace(merge, static_cast<int32_t>(i));
  }
  return std::unique_ptr<Tokenizer>(
      new ByteLevelBpeTokenizer(std::move(data), std::move(pre_tokenizer), std::move(ranks)));
}

}  // namespace hs::tokenizer::detail
