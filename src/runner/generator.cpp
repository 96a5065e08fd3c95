// Generator: the hybrid prefill (AR-N) + decode (AR-T_d) loop over a StepModel (reference §9.5).
#include "headsplit/runner/generator.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

namespace hs::runner {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool has_ar_len(const StepModelInfo& info, int64_t ar_len) {
  return std::find(info.ar_lens.begin(), info.ar_lens.end(), ar_len) != info.ar_lens.end();
}

struct Plan {
  int64_t n = 0;      // prompt tokens
  int64_t big_n = 0;  // N, prefill AR length
  int64_t t_dec = 0;  // T_d, decode AR length
  int64_t m = 0;      // new tokens after clamping
};

Result<Plan> make_plan(const StepModelInfo& info, std::span<const int32_t> prompt,
                       const GeneratorOptions& options) {
  if (info.ar_lens.empty()) {
    return errorf(ErrorKind::kInvalidArgument, "generate: the step model has no ar length");
  }
  Plan plan;
  plan.n = static_cast<int64_t>(prompt.size());
  if (plan.n == 0) return errorf(ErrorKind::kInvalidArgument, "generate: the prompt is empty");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= info.vocab_size) {
      return errorf(ErrorKind::kInvalidArgument,
                    "generate: prompt token {} has id {}, outside the vocabulary [0, {})", i,
                    prompt[i], info.vocab_size);
    }
  }
  if (options.max_new_tokens < 0) {
    return errorf(ErrorKind::kInvalidArgument, "generate: max_new_tokens must be >= 0, got {}",
                  options.max_new_tokens);
  }
  const auto [lo, hi] = std::minmax_element(info.ar_lens.begin(), info.ar_lens.end());
  plan.big_n = options.prefill_ar_len > 0 ? options.prefill_ar_len : *hi;
  plan.t_dec = options.decode_ar_len > 0 ? options.decode_ar_len : *lo;
  for (int64_t t : {plan.big_n, plan.t_dec}) {
    if (!has_ar_len(info, t)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "generate: the model has no graph for ar length {} (it has {})", t,
                    fmt::join(info.ar_lens, ", "));
    }
  }
  if (plan.big_n < plan.t_dec) {
    return errorf(ErrorKind::kInvalidArgument,
                  "generate: prefill ar length {} is smaller than decode ar length {}", plan.big_n,
                  plan.t_dec);
  }
  const int64_t c = info.context_len;
  if (plan.n > c - plan.big_n) {
    return errorf(ErrorKind::kInvalidArgument,
                  "generate: a prompt of {} tokens (+{} requested new tokens) does not fit the "
                  "context of {}: prefill with ar length {} has {} cache slots",
                  plan.n, options.max_new_tokens, c, plan.big_n, c - plan.big_n);
  }
  plan.m = std::min(options.max_new_tokens, c - plan.t_dec + 1 - plan.n);
  return plan;
}

// One generation's state: the KV manager, the SmartMask mask and the step buffers.
class Session {
 public:
  Session(StepModel& model, KvManager kv, const StepModelInfo& info, int64_t max_ar_len,
          int32_t pad_token)
      : model_(model),
        kv_(std::move(kv)),
        mask_(max_ar_len, info.context_len),
        vocab_(info.vocab_size),
        pad_token_(pad_token),
        logits_(static_cast<size_t>(max_ar_len * info.vocab_size)) {}

  // Switches to AR length t with n_past cached slots: moves the cache rows to the new stride
  // and re-inits the mask causally.
  Status begin(int64_t t, int64_t n_past) {
    HS_TRY(kv_.rearrange(t, n_past));
    mask_ = AttentionMask(t, mask_.context_len());
    mask_.init_causal(n_past);
    tokens_.assign(static_cast<size_t>(t), pad_token_);
    positions_.assign(static_cast<size_t>(t), 0);
    return ok_status();
  }

  // Runs one step on `chunk` (at most T real tokens; the rest of the rows are padding) at
  // positions pos, pos+1, ...; stores the chunk's entries in the cache and unmasks them.
  Status run(std::span<const int32_t> chunk, int64_t pos, std::string_view phase) {
    const int64_t t = kv_.ar_len();
    const auto n_update = static_cast<int64_t>(chunk.size());
    for (int64_t i = 0; i < t; ++i) {
      tokens_[static_cast<size_t>(i)] = i < n_update ? chunk[static_cast<size_t>(i)] : pad_token_;
      positions_[static_cast<size_t>(i)] = static_cast<int32_t>(pos + i);
    }
    std::span<float> logits(logits_.data(), static_cast<size_t>(t * vocab_));  // [T, V]
    HS_TRY_CTX(model_.step(t, tokens_, positions_, mask_.data(), kv_, logits),
               fmt::format("{} step at position {}", phase, pos));
    HS_TRY(kv_.update(pos, n_update));
    mask_.unmask(pos, n_update);
    return ok_status();
  }

  // Logits row r [V] of the last step.
  std::span<const float> row(int64_t r) const {
    return std::span<const float>(logits_).subspan(static_cast<size_t>(r * vocab_),
                                                   static_cast<size_t>(vocab_));
  }

 private:
  StepModel& model_;
  KvManager kv_;
  AttentionMask mask_;
  int64_t vocab_;
  int32_t pad_token_;
  std::vector<float> logits_;                // [T_max, V]
  std::vector<int32_t> tokens_, positions_;  // [T]
};

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kMaxTokens: return "max tokens";
    case StopReason::kEos: return "eos";
    case StopReason::kContextFull: return "context full";
  }
  return "unknown";
}

double GenerationStats::prefill_tokens_per_second() const {
  return prefill_seconds > 0.0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
}

double GenerationStats::decode_tokens_per_second() const {
  return decode_seconds > 0.0 ? static_cast<double>(decode_steps) / decode_seconds : 0.0;
}

Result<GenerationResult> Generator::generate(std::span<const int32_t> prompt, Sampler& sampler,
                                             const GeneratorOptions& options,
                                             const TokenCallback& on_token) {
  const Clock::time_point start = Clock::now();
  const StepModelInfo& info = model_.info();
  HS_ASSIGN_OR_RETURN(const Plan plan, make_plan(info, prompt, options));
  HS_ASSIGN_OR_RETURN(KvManager kv, KvManager::create(info.kv_shape(plan.t_dec, plan.big_n)));
  Session session(model_, std::move(kv), info, plan.big_n, options.pad_token);

  GenerationResult result;
  result.requested_new_tokens = options.max_new_tokens;
  result.max_new_tokens = plan.m;
  result.prefill_ar_len = plan.big_n;
  result.decode_ar_len = plan.t_dec;
  GenerationStats& stats = result.stats;
  stats.prompt_tokens = plan.n;

  // Prefill: ceil(n / N) chunks; the last one stores n_update = 1 + (n - 1) % N entries.
  HS_TRY(session.begin(plan.big_n, 0));
  for (int64_t pos = 0; pos < plan.n; pos += plan.big_n) {
    const auto size = static_cast<size_t>(std::min(plan.big_n, plan.n - pos));
    HS_TRY(session.run(prompt.subspan(static_cast<size_t>(pos), size), pos, "prefill"));
    ++stats.prefill_steps;
  }
  if (plan.m == 0) {
    stats.prefill_seconds = seconds_since(start);
    return result;
  }
  int32_t prev = prompt.back();
  int32_t next = sampler.sample(session.row((plan.n - 1) % plan.big_n));
  stats.prefill_seconds = seconds_since(start);
  stats.first_token_seconds = stats.prefill_seconds;

  // Emits `next` unless it ends generation; returns false to stop.
  auto emit = [&]() {
    if (tokenizer_.is_eos(next)) {
      result.stop = StopReason::kEos;
      return false;
    }
    result.tokens.push_back(next);
    if (on_token) on_token(next, tokenizer_.decode_token(prev, next));
    prev = next;
    if (static_cast<int64_t>(result.tokens.size()) < plan.m) return true;
    result.stop =
        plan.m < options.max_new_tokens ? StopReason::kContextFull : StopReason::kMaxTokens;
    return false;
  };

  // Decode: feed the last token at position pos, one per step at AR length T_d.
  const Clock::time_point decode_start = Clock::now();
  bool more = emit();
  if (more) HS_TRY(session.begin(plan.t_dec, plan.n));
  for (int64_t pos = plan.n; more; ++pos) {
    HS_TRY(session.run(std::span<const int32_t>(&next, 1), pos, "decode"));
    ++stats.decode_steps;
    next = sampler.sample(session.row(0));
    more = emit();
  }
  stats.decode_seconds = seconds_since(decode_start);
  stats.generated_tokens = static_cast<int64_t>(result.tokens.size());
  return result;
}

}  // namespace hs::runner
