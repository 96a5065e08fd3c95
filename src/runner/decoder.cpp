// Decoder: prefill / decode / tree steps over one KvManager and SmartMask mask, continuing from
// n_past (reference §9.5 drivers, generalized to start at any position).
#include "headsplit/runner/decoder.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace hs::runner {

namespace {

bool has_ar_len(const StepModelInfo& info, int64_t ar_len) {
  return std::find(info.ar_lens.begin(), info.ar_lens.end(), ar_len) != info.ar_lens.end();
}

Status check_tokens(std::span<const int32_t> tokens, int64_t vocab) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      return errorf(ErrorKind::kInvalidArgument,
                    "token {} has id {}, outside the vocabulary [0, {})", i, tokens[i], vocab);
    }
  }
  return ok_status();
}

}  // namespace

Result<Decoder> Decoder::create(StepModel& model, const DecoderOptions& options) {
  const StepModelInfo& info = model.info();
  if (info.ar_lens.empty()) {
    return errorf(ErrorKind::kInvalidArgument, "generate: the step model has no ar length");
  }
  const auto [lo, hi] = std::minmax_element(info.ar_lens.begin(), info.ar_lens.end());
  const int64_t prefill = options.prefill_ar_len > 0 ? options.prefill_ar_len : *hi;
  const int64_t decode = options.decode_ar_len > 0 ? options.decode_ar_len : *lo;
  const int64_t lookahead = options.lookahead_ar_len;
  for (int64_t t : {prefill, decode, lookahead}) {
    if (t == lookahead && lookahead == 0) continue;  // no lookahead graph
    if (!has_ar_len(info, t)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "generate: the model has no graph for ar length {} (it has {})", t,
                    fmt::join(info.ar_lens, ", "));
    }
  }
  if (prefill < decode) {
    return errorf(ErrorKind::kInvalidArgument,
                  "generate: prefill ar length {} is smaller than decode ar length {}", prefill,
                  decode);
  }
  const int64_t t_min = lookahead > 0 ? std::min(decode, lookahead) : decode;
  const int64_t t_max = std::max(prefill, lookahead);
  HS_ASSIGN_OR_RETURN(KvManager kv, KvManager::create(info.kv_shape(t_min, t_max)));
  return Decoder(model, std::move(kv), prefill, decode, lookahead, options.pad_token);
}

Decoder::Decoder(StepModel& model, KvManager kv, int64_t prefill, int64_t decode, int64_t lookahead,
                 int32_t pad_token)
    : model_(&model),
      kv_(std::move(kv)),
      prefill_(prefill),
      decode_(decode),
      lookahead_(lookahead),
      pad_token_(pad_token),
      masks_(kv_.ar_len(), model.info().context_len, model.info().sliding_window),
      logits_(static_cast<size_t>(kv_.shape().max_ar_len * model.info().vocab_size)) {}

void Decoder::reset() {
  n_past_ = 0;
  mask_valid_ = false;
}

Status Decoder::use(int64_t t, std::span<const int32_t> parents) {
  if (mask_valid_ && kv_.ar_len() == t &&
      std::equal(parents.begin(), parents.end(), parents_.begin(), parents_.end())) {
    return ok_status();
  }
  HS_TRY(kv_.rearrange(t, n_past_));
  masks_ = StepMasks(t, context_len(), info().sliding_window);
  parents_.assign(parents.begin(), parents.end());
  if (parents_.empty()) {
    masks_.init_causal(n_past_);
  } else {
    masks_.init_tree(n_past_, parents_);
  }
  mask_valid_ = true;
  tokens_.assign(static_cast<size_t>(t), pad_token_);
  positions_.assign(static_cast<size_t>(t), 0);
  return ok_status();
}

Status Decoder::run(int64_t t, std::string_view phase) {
  const int64_t v = info().vocab_size;
  std::span<float> logits(logits_.data(), static_cast<size_t>(t * v));  // [T, V]
  HS_TRY_CTX(model_->step(t, tokens_, positions_, masks_.data(), kv_, logits),
             fmt::format("{} step at position {}", phase, n_past_));
  return ok_status();
}

Status Decoder::prefill(std::span<const int32_t> tokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  HS_TRY_CTX(check_tokens(tokens, info().vocab_size), "prefill");
  if (n_past_ + n > context_len() - prefill_) {
    return errorf(ErrorKind::kInvalidArgument,
                  "prefill: {} tokens at position {} do not fit the context of {}: prefill with "
                  "ar length {} has {} cache slots",
                  n, n_past_, context_len(), prefill_, context_len() - prefill_);
  }
  if (n == 0) return ok_status();
  HS_TRY(use(prefill_, {}));
  // ceil(n / N) chunks; the last one stores n_update = 1 + (n - 1) % N entries.
  for (int64_t done = 0; done < n; done += prefill_) {
    const int64_t n_update = std::min(prefill_, n - done);
    for (int64_t i = 0; i < prefill_; ++i) {
      tokens_[static_cast<size_t>(i)] =
          i < n_update ? tokens[static_cast<size_t>(done + i)] : pad_token_;
      positions_[static_cast<size_t>(i)] = static_cast<int32_t>(n_past_ + i);
    }
    const bool last = done + prefill_ >= n;  // only the last token's logits are read
    model_->want_logits_rows(last ? n_update - 1 : 0, last ? 1 : 0);
    HS_TRY(run(prefill_, "prefill"));
    HS_TRY(kv_.update(n_past_, n_update));
    masks_.unmask(n_past_, n_update);
    n_past_ += n_update;
    last_row_ = n_update - 1;
  }
  return ok_status();
}

Status Decoder::decode(int32_t token) {
  HS_TRY_CTX(check_tokens(std::span<const int32_t>(&token, 1), info().vocab_size), "decode");
  if (n_past_ >= context_len() - decode_) {
    return errorf(ErrorKind::kInvalidArgument,
                  "decode: position {} has no cache slot: decode with ar length {} has {} "
                  "(context {})",
                  n_past_, decode_, context_len() - decode_, context_len());
  }
  HS_TRY(use(decode_, {}));
  for (int64_t i = 0; i < decode_; ++i) {
    tokens_[static_cast<size_t>(i)] = i == 0 ? token : pad_token_;
    positions_[static_cast<size_t>(i)] = static_cast<int32_t>(n_past_ + i);
  }
  HS_TRY(run(decode_, "decode"));
  HS_TRY(kv_.update(n_past_, 1));
  masks_.unmask(n_past_, 1);
  ++n_past_;
  last_row_ = 0;
  return ok_status();
}

Status Decoder::run_tree(std::span<const int32_t> parents, std::span<const int32_t> tokens,
                         std::span<const int32_t> positions) {
  const int64_t t = lookahead_;
  if (t == 0) {
    return Error(ErrorKind::kInvalidArgument, "lookahead step: the decoder has no lookahead graph");
  }
  if (static_cast<int64_t>(parents.size()) != t || static_cast<int64_t>(tokens.size()) != t ||
      static_cast<int64_t>(positions.size()) != t) {
    return errorf(ErrorKind::kInvalidArgument,
                  "lookahead step: got {} parents, {} tokens and {} positions for ar length {}",
                  parents.size(), tokens.size(), positions.size(), t);
  }
  HS_TRY_CTX(check_tokens(tokens, info().vocab_size), "lookahead step");
  for (int64_t i = 0; i < t; ++i) {
    const int32_t parent = parents[static_cast<size_t>(i)];
    const int32_t pos = positions[static_cast<size_t>(i)];
    if (parent >= i || pos < n_past_ || pos >= context_len()) {
      return errorf(ErrorKind::kInvalidArgument,
                    "lookahead step: row {} has parent {} and position {} (n_past {}, context {})",
                    i, parent, pos, n_past_, context_len());
    }
  }
  // A sliding-window mask places tree row i at position n_past + depth_i (what lookahead uses);
  // without a window the positions are the caller's.
  std::vector<int64_t> depth(info().sliding_window > 0 ? static_cast<size_t>(t) : 0, 0);
  for (int64_t i = 0; i < static_cast<int64_t>(depth.size()); ++i) {
    const int32_t parent = parents[static_cast<size_t>(i)];
    if (parent >= 0) depth[static_cast<size_t>(i)] = depth[static_cast<size_t>(parent)] + 1;
    const int64_t pos = positions[static_cast<size_t>(i)];
    if (pos != n_past_ + depth[static_cast<size_t>(i)]) {
      return errorf(ErrorKind::kInvalidArgument,
                    "lookahead step: with a sliding window (window {}) row {} must be at position "
                    "n_past + its depth = {}, got {}",
                    info().sliding_window, i, n_past_ + depth[static_cast<size_t>(i)], pos);
    }
  }
  HS_TRY(use(t, parents));
  std::copy(tokens.begin(), tokens.end(), tokens_.begin());
  std::copy(positions.begin(), positions.end(), positions_.begin());
  return run(t, "lookahead");
}

Status Decoder::commit(std::span<const int64_t> rows) {
  const auto n_update = static_cast<int64_t>(rows.size());
  HS_TRY(kv_.update(n_past_, rows));
  masks_.unmask(n_past_, n_update);
  n_past_ += n_update;
  if (n_update > 0) last_row_ = rows.back();
  return ok_status();
}

std::span<const float> Decoder::logits_row(int64_t r) const {
  const int64_t v = info().vocab_size;
  return std::span<const float>(logits_).subspan(static_cast<size_t>(r * v),
                                                 static_cast<size_t>(v));
}

}  // namespace hs::runner
