// Tokenizer::create (checks a TokenizerData and picks the kind), the parts shared by every
// kind (piece map, decode of a sequence, EOS test), and the split around special tokens.
#include "headsplit/tokenizer/tokenizer.h"

#include <algorithm>

#include "internal.h"

namespace hs::tokenizer {
namespace {

std::string_view kind_name(TokenizerKind kind) {
  switch (kind) {
    case TokenizerKind::kLlama2c: return "llama2c";
    case TokenizerKind::kSpm: return "spm";
    case TokenizerKind::kByteLevelBpe: return "byte-level bpe";
  }
  return "unknown";
}

Status check_id(std::string_view what, int32_t id, int64_t vocab_size, bool allow_none) {
  if ((allow_none && id == -1) || (id >= 0 && id < vocab_size)) return ok_status();
  return errorf(ErrorKind::kOutOfRange, "tokenizer: {} {} is outside the vocabulary [0, {})", what,
                id, vocab_size);
}

Status check_data(const TokenizerData& data) {
  const int64_t v = static_cast<int64_t>(data.pieces.size());
  if (v == 0) return Error(ErrorKind::kInvalidArgument, "tokenizer: the vocabulary is empty");
  if (v > INT32_MAX) {
    return errorf(ErrorKind::kInvalidArgument, "tokenizer: {} pieces do not fit int32 ids", v);
  }
  const bool scored = data.kind != TokenizerKind::kByteLevelBpe;
  if (scored && static_cast<int64_t>(data.scores.size()) != v) {
    return errorf(ErrorKind::kCorrupt, "tokenizer: {} vocabulary has {} scores for {} pieces",
                  kind_name(data.kind), data.scores.size(), v);
  }
  if (!data.types.empty() && static_cast<int64_t>(data.types.size()) != v) {
    return errorf(ErrorKind::kCorrupt, "tokenizer: {} token types for {} pieces", data.types.size(),
                  v);
  }
  for (size_t i = 0; i < data.types.size(); ++i) {
    const auto type = static_cast<int32_t>(data.types[i]);
    if (type < 0 || type > static_cast<int32_t>(TokenType::kByte)) {
      return errorf(ErrorKind::kCorrupt, "tokenizer: token {} has unknown type {}", i, type);
    }
  }
  HS_TRY(check_id("bos id", data.bos_id, v, /*allow_none=*/true));
  HS_TRY(check_id("eos id", data.eos_id, v, /*allow_none=*/true));
  HS_TRY(check_id("unk id", data.unk_id, v, /*allow_none=*/true));
  HS_TRY(check_id("pad id", data.pad_id, v, /*allow_none=*/true));
  for (int32_t id : data.extra_eos_ids) {
    HS_TRY(check_id("extra eos id", id, v, /*allow_none=*/false));
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(TokenizerData data) {
  HS_TRY(check_data(data));
  if (data.kind == TokenizerKind::kByteLevelBpe) {
    return detail::make_byte_level_bpe_tokenizer(std::move(data));
  }
  return detail::make_spm_tokenizer(std::move(data));
}

Tokenizer::Tokenizer(TokenizerData data)
    : data_(std::move(data)), piece_map_(std::make_shared<detail::PieceMap>(data_.pieces)) {}

std::string Tokenizer::decode(std::span<const int32_t> tokens) const {
  std::string text;
  int32_t prev = -1;
  for (int32_t token : tokens) {
    text += decode_token(prev, token);
    prev = token;
  }
  return text;
}

int32_t Tokenizer::find_piece(std::string_view piece) const { return piece_map_->find(piece); }

TokenType Tokenizer::token_type(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= data_.types.size()) return TokenType::kNormal;
  return data_.types[token];
}

bool Tokenizer::is_eos(int32_t token) const {
  if (token < 0) return false;
  if (token == data_.eos_id) return true;
  return std::find(data_.extra_eos_ids.begin(), data_.extra_eos_ids.end(), token) !=
         data_.extra_eos_ids.end();
}

namespace detail {

PieceMap::PieceMap(const std::vector<std::string>& pieces) {
  map_.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].empty()) map_.insert_or_assign(pieces[i], static_cast<int32_t>(i));
  }
}

int32_t PieceMap::find(std::string_view piece) const {
  const auto it = map_.find(piece);
  return it == map_.end() ? -1 : it->second;
}

std::optional<uint8_t> parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]);
  const int lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

SpecialSplitter::SpecialSplitter(const TokenizerData& data) : data_(data) {
  for (size_t i = 0; i < data.types.size(); ++i) {
    const TokenType type = data.types[i];
    const bool user = type == TokenType::kUserDefined;
    if ((user || type == TokenType::kControl || type == TokenType::kUnknown) &&
        !data.pieces[i].empty()) {
      specials_.push_back(Special{static_cast<int32_t>(i), user});
    }
  }
  std::stable_sort(specials_.begin(), specials_.end(), [&](const Special& a, const Special& b) {
    return data_.pieces[a.id].size() > data_.pieces[b.id].size();
  });
}

std::vector<Fragment> SpecialSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back(Fragment{text, -1});
  std::vector<Fragment> next;
  for (const Special& special : specials_) {
    if (!special.always && !parse_special) continue;
    const std::string_view piece = data_.pieces[special.id];
    next.clear();
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0) {
        next.push_back(fragment);
        continue;
      }
      std::string_view rest = fragment.text;
      for (size_t at = rest.find(piece); at != std::string_view::npos; at = rest.find(piece)) {
        if (at > 0) next.push_back(Fragment{rest.substr(0, at), -1});
        next.push_back(Fragment{piece, special.id});
        rest.remove_prefix(at + piece.size());
      }
      if (!rest.empty()) next.push_back(Fragment{rest, -1});
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace detail
}  // namespace hs::tokenizer
