// Lookahead decoding: the step layout and its mask parents, the n-gram pool, and the step loop
// (build rows, run the AR-T graph, verify guesses, store the selected rows, move the window).
#include "headsplit/runner/lookahead.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>

namespace hs::runner {

int64_t lookahead_rows(const LookaheadOptions& o) { return (o.window + o.guesses) * (o.ngram - 1); }

int64_t lookahead_export_ar_len(const LookaheadOptions& o) {
  int64_t t = 1;
  while (t < lookahead_rows(o)) t *= 2;
  return t;
}

Status validate_lookahead(const LookaheadOptions& o) {
  auto bad = [](std::string_view field, int64_t value, std::string_view rule) {
    return errorf(ErrorKind::kInvalidArgument, "lookahead: {} must be {}, got {}", field, rule,
                  value);
  };
  if (o.ngram < 2) return bad("the n-gram size N", o.ngram, ">= 2");
  if (o.window < 1) return bad("the window W", o.window, ">= 1");
  if (o.guesses < 1) return bad("the guesses G", o.guesses, ">= 1");
  if (o.ar_len < 0) return bad("the ar length", o.ar_len, ">= 0");
  constexpr int64_t kMaxRows = 1 << 16;  // far beyond any graph; keeps the products small
  if (o.ngram > kMaxRows || o.window > kMaxRows || o.guesses > kMaxRows ||
      lookahead_rows(o) > kMaxRows) {
    return errorf(ErrorKind::kInvalidArgument,
                  "lookahead: N={} W={} G={} needs more than {} rows per step", o.ngram, o.window,
                  o.guesses, kMaxRows);
  }
  return ok_status();
}

Result<LookaheadOptions> parse_lookahead(std::string_view text) {
  LookaheadOptions o;
  int64_t* fields[] = {&o.ngram, &o.window, &o.guesses};
  std::string_view rest = text;
  for (size_t i = 0; i < 3; ++i) {
    const size_t comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), *fields[i]);
    const bool last = i == 2;
    if (ec != std::errc() || end != part.data() + part.size() || part.empty() ||
        (last != (comma == std::string_view::npos))) {
      return errorf(ErrorKind::kInvalidArgument,
                    "lookahead: expected N,W,G (three integers, e.g. 3,8,8), got '{}'", text);
    }
    if (!last) rest = rest.substr(comma + 1);
  }
  HS_TRY(validate_lookahead(o));
  return o;
}

Result<int64_t> lookahead_ar_len(const StepModelInfo& info, const LookaheadOptions& o) {
  HS_TRY(validate_lookahead(o));
  const int64_t rows = lookahead_rows(o);
  if (o.ar_len > 0) {
    if (std::find(info.ar_lens.begin(), info.ar_lens.end(), o.ar_len) == info.ar_lens.end() ||
        o.ar_len < rows) {
      return errorf(ErrorKind::kInvalidArgument,
                    "lookahead N={} W={} G={} needs an ar length >= {}; ar length {} is not one "
                    "of the model's large enough ({})",
                    o.ngram, o.window, o.guesses, rows, o.ar_len, fmt::join(info.ar_lens, ", "));
    }
    return o.ar_len;
  }
  int64_t best = 0;
  for (int64_t t : info.ar_lens) {
    if (t >= rows && (best == 0 || t < best)) best = t;
  }
  if (best == 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "lookahead N={} W={} G={} needs an ar length >= (W + G)(N - 1) = {}; the model "
                  "has {} (export with --lookahead-ar {}, or choose a smaller N, W or G)",
                  o.ngram, o.window, o.guesses, rows, fmt::join(info.ar_lens, ", "),
                  lookahead_export_ar_len(o));
  }
  return best;
}

std::vector<int32_t> lookahead_parents(const LookaheadOptions& o, int64_t ar_len) {
  const auto w = static_cast<int32_t>(o.window);
  const auto levels = static_cast<int32_t>(o.ngram - 1);
  std::vector<int32_t> parents;
  parents.reserve(static_cast<size_t>(ar_len));
  for (int32_t j = 0; j < w; ++j) parents.push_back(j - 1);  // level 0: a chain
  for (int32_t i = 1; i < levels; ++i) {
    for (int32_t j = 0; j < w; ++j) parents.push_back((i - 1) * w + j);  // same column, level i-1
  }
  for (int32_t g = 0; g < o.guesses; ++g) {
    const auto base = static_cast<int32_t>(parents.size());
    for (int32_t k = 1; k <= levels; ++k) parents.push_back(k == 1 ? 0 : base + k - 2);
  }
  HS_CHECK(static_cast<int64_t>(parents.size()) <= ar_len, "lookahead layout exceeds the graph");
  parents.resize(static_cast<size_t>(ar_len), -1);  // padding rows
  return parents;
}

NgramPool::NgramPool(int64_t ngram, int64_t capacity) : rest_len_(ngram - 1), capacity_(capacity) {}

void NgramPool::add(int32_t first, std::span<const int32_t> rest) {
  HS_CHECK(static_cast<int64_t>(rest.size()) == rest_len_, "n-gram of the wrong size");
  Slots& s = slots_[first];
  if (s.tokens.empty()) s.tokens.resize(static_cast<size_t>(capacity_ * rest_len_));
  for (int64_t k = 0; k < s.count; ++k) {
    if (std::equal(rest.begin(), rest.end(), s.tokens.begin() + k * rest_len_)) return;
  }
  std::copy(rest.begin(), rest.end(), s.tokens.begin() + s.head * rest_len_);
  s.head = (s.head + 1) % capacity_;
  if (s.count < capacity_) {
    ++s.count;
    ++total_;
  }
}

int64_t NgramPool::count(int32_t first) const {
  const auto it = slots_.find(first);
  return it == slots_.end() ? 0 : it->second.count;
}

std::span<const int32_t> NgramPool::get(int32_t first, int64_t k) const {
  const Slots& s = slots_.at(first);
  HS_CHECK(k >= 0 && k < s.count, "n-gram index out of range");
  return std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(k * rest_len_),
                                                    static_cast<size_t>(rest_len_));
}

LookaheadDecoder::LookaheadDecoder(const LookaheadOptions& options,
                                   std::span<const int32_t> context)
    : options_(options), pool_(options.ngram, options.guesses) {
  // The first window: random tokens of the prompt (after BOS), as the reference does.
  SplitMix64 rng(options.seed);
  levels_.assign(static_cast<size_t>(options.ngram - 1),
                 std::vector<int32_t>(static_cast<size_t>(options.window), 0));
  for (auto& level : levels_) {
    for (int32_t& token : level) {
      if (context.size() >= 2) {
        token = context[1 + rng.next_u64() % (context.size() - 1)];
      } else if (!context.empty()) {
        token = context[0];
      }
    }
  }
  level0_prev_ = levels_[0];
}

void LookaheadDecoder::fill_step(int32_t current, int64_t pos, int64_t ar_len) {
  const int64_t w = options_.window, levels = options_.ngram - 1;
  tokens_.assign(static_cast<size_t>(ar_len), current);  // padding rows: any valid id
  positions_.assign(static_cast<size_t>(ar_len), static_cast<int32_t>(pos));
  levels_[0][0] = current;
  for (int64_t i = 0; i < levels; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      tokens_[static_cast<size_t>(i * w + j)] =
          levels_[static_cast<size_t>(i)][static_cast<size_t>(j)];
      positions_[static_cast<size_t>(i * w + j)] = static_cast<int32_t>(pos + i + j);
    }
  }
  const int64_t branches = pool_.count(current);
  for (int64_t g = 0; g < options_.guesses; ++g) {
    const int64_t base = (w + g) * levels;
    for (int64_t k = 1; k <= levels; ++k) {
      const auto row = static_cast<size_t>(base + k - 1);
      if (g < branches) tokens_[row] = pool_.get(current, g)[static_cast<size_t>(k - 1)];
      positions_[row] = static_cast<int32_t>(pos + k);
    }
  }
}

void LookaheadDecoder::advance_window(const Decoder& decoder) {
  const int64_t w = options_.window, levels = options_.ngram - 1;
  level0_prev_ = levels_[0];
  std::vector<int32_t> last(static_cast<size_t>(w));
  for (int64_t j = 0; j < w; ++j) {
    last[static_cast<size_t>(j)] = argmax(decoder.logits_row((levels - 1) * w + j));
  }
  std::rotate(levels_.begin(), levels_.begin() + 1, levels_.end());
  levels_.back() = std::move(last);
  // Column f now reads positions pos + f .. pos + f + N - 1: one n-gram per column.
  std::vector<int32_t> rest(static_cast<size_t>(levels));
  for (int64_t f = 0; f < w; ++f) {
    for (int64_t k = 0; k < levels; ++k) {
      rest[static_cast<size_t>(k)] = levels_[static_cast<size_t>(k)][static_cast<size_t>(f)];
    }
    pool_.add(level0_prev_[static_cast<size_t>(f)], rest);
  }
}

Result<bool> LookaheadDecoder::run(Decoder& decoder, Sampler& sampler, int32_t& current,
                                   const EmitToken& emit) {
  const int64_t t = decoder.lookahead_ar_len();
  const int64_t n = options_.ngram, w = options_.window, levels = n - 1;
  if (t < lookahead_rows(options_)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "lookahead: the decoder's lookahead ar length {} is smaller than the {} rows of "
                  "N={} W={} G={}",
                  t, lookahead_rows(options_), n, w, options_.guesses);
  }
  if (parents_.empty()) parents_ = lookahead_parents(options_, t);
  while (decoder.n_past() + n <= decoder.context_len() - t) {
    const int64_t pos = decoder.n_past();
    fill_step(current, pos, t);
    // The branches' guesses, copied: moving the window adds n-grams to the pool.
    const int64_t branches = pool_.count(current);
    std::vector<int32_t> guesses;  // [branches, N-1]
    for (int64_t g = 0; g < branches; ++g) {
      const std::span<const int32_t> rest = pool_.get(current, g);
      guesses.insert(guesses.end(), rest.begin(), rest.end());
    }
    std::vector<uint8_t> active(static_cast<size_t>(branches), 1);
    HS_TRY(decoder.run_tree(parents_, tokens_, positions_));

    selected_.clear();
    bool more = true;
    int64_t row = 0;
    for (int64_t v = 0; v < n; ++v) {
      selected_.push_back(row);
      const int32_t token = sampler.sample(decoder.logits_row(row));
      if (v == 0) advance_window(decoder);
      more = emit(token);
      current = token;
      if (!more || v == n - 1) break;
      // Guess v + 1 of each still active branch must be the token just sampled.
      row = -1;
      for (int64_t g = 0; g < branches; ++g) {
        uint8_t& a = active[static_cast<size_t>(g)];
        a = a != 0 && guesses[static_cast<size_t>(g * levels + v)] == token;
        if (a && row < 0) row = (w + g) * levels + v;
      }
      if (row < 0) break;
    }
    HS_TRY(decoder.commit(selected_));
    ++stats_.steps;
    stats_.tokens += static_cast<int64_t>(selected_.size());
    if (!more) return false;
  }
  return true;
}

}  // namespace hs::runner
