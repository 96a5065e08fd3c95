// ChatSession: turns formatted with the chat template, prefilled from where the previous turn
// stopped on one Decoder; the context-full policies (stop, drop the oldest turns).
#include "headsplit/runner/chat_session.h"

#include <fmt/format.h>

namespace hs::runner {

Result<ChatSession> ChatSession::create(StepModel& model, const tokenizer::Tokenizer& tokenizer,
                                        const ChatOptions& options) {
  HS_ASSIGN_OR_RETURN(const DecoderOptions d, decoder_options(model.info(), options.generation));
  HS_ASSIGN_OR_RETURN(Decoder decoder, Decoder::create(model, d));
  return ChatSession(model, tokenizer, options, std::move(decoder));
}

ChatSession::ChatSession(StepModel& model, const tokenizer::Tokenizer& tokenizer,
                         const ChatOptions& options, Decoder decoder)
    : model_(&model), tokenizer_(&tokenizer), options_(options), decoder_(std::move(decoder)) {}

std::vector<int32_t> ChatSession::encode_prefix() const {
  if (!options_.chat_template) return tokenizer_->encode("", /*add_bos=*/true);
  const tokenizer::ChatTemplate t = *options_.chat_template;
  std::optional<std::string_view> system;
  if (options_.system) system = *options_.system;
  return tokenizer_->encode(tokenizer::chat_prefix(t, system),
                            !tokenizer::chat_template_adds_bos(t), /*parse_special=*/true);
}

std::vector<int32_t> ChatSession::encode_user(std::string_view message, bool first) const {
  if (!options_.chat_template) return tokenizer_->encode(message, /*add_bos=*/false);
  std::optional<std::string_view> system;  // SmolLM3's /no_think flag; Gemma's first turn
  if (options_.system) system = *options_.system;
  return tokenizer_->encode(
      tokenizer::chat_user_turn(*options_.chat_template, message, system, first),
      /*add_bos=*/false, /*parse_special=*/true);
}

std::vector<int32_t> ChatSession::end_tokens() const {
  if (!options_.chat_template) return {};
  return tokenizer_->encode(tokenizer::chat_end_of_answer(*options_.chat_template),
                            /*add_bos=*/false, /*parse_special=*/true);
}

void ChatSession::append_turns(size_t first, std::vector<int32_t>& out) const {
  const std::vector<int32_t> end = end_tokens();
  for (size_t i = first; i < turns_.size(); ++i) {
    const Turn& turn = turns_[i];
    out.insert(out.end(), turn.user.begin(), turn.user.end());
    out.insert(out.end(), turn.answer.begin(), turn.answer.end());
    if (turn.closed || i + 1 < turns_.size()) out.insert(out.end(), end.begin(), end.end());
  }
}

std::vector<int32_t> ChatSession::tokens() const {
  std::vector<int32_t> out = prefix_;
  append_turns(0, out);
  return out;
}

int64_t ChatSession::position() const { return decoder_.n_past() + (pending_ ? 1 : 0); }

void ChatSession::reset() {
  decoder_.reset();
  prefix_.clear();
  turns_.clear();
  pending_.reset();
  ++stats_.resets;
}

Result<size_t> ChatSession::turns_to_drop(std::string_view message) const {
  const int64_t c = decoder_.context_len();
  const int64_t prefill_limit = c - decoder_.prefill_ar_len();
  const int64_t answer_limit = c - decoder_.decode_ar_len() + 1;
  const int64_t want = options_.generation.max_new_tokens;
  const auto end = static_cast<int64_t>(end_tokens().size());
  // total[k]: the conversation without its first k turns, plus the new user tokens; turn k
  // (or the new turn, k = turns) encoded as the first one.
  const auto size = [](const std::vector<int32_t>& v) { return static_cast<int64_t>(v.size()); };
  const size_t n = turns_.size();
  std::vector<int64_t> total(n + 1);
  const int64_t user = size(encode_user(message, /*first=*/false));
  int64_t rest = size(prefix_) + user;  // turns (k, n) and the new one, after the prefix
  total[n] = size(prefix_) + size(encode_user(message, /*first=*/true));
  for (size_t i = n; i-- > 0;) {
    const int64_t answer = size(turns_[i].answer) + end;
    total[i] = rest + size(encode_user(turns_[i].message, /*first=*/true)) + answer;
    rest += size(turns_[i].user) + answer;
  }
  for (size_t k = 1; k < total.size(); ++k) {
    if (total[k] <= prefill_limit && total[k] + want <= answer_limit) return k;
  }
  for (size_t k = 0; k < total.size(); ++k) {
    if (total[k] <= prefill_limit) return k;
  }
  return errorf(ErrorKind::kOutOfRange,
                "context full: the turn needs {} tokens with the conversation's start, more than "
                "the {} slots of the prefill graph (context {})",
                total.back(), prefill_limit, c);
}

Result<TurnResult> ChatSession::send(std::string_view message, Sampler& sampler,
                                     const TokenCallback& on_token) {
  std::vector<int32_t> user = encode_user(message, /*first=*/turns_.empty());
  if (turns_.empty()) prefix_ = encode_prefix();
  // The new tokens: the conversation's start, or the previous answer's last token and end.
  std::vector<int32_t> fresh;
  if (turns_.empty()) {
    fresh = prefix_;
  } else {
    if (pending_) fresh.push_back(*pending_);
    const std::vector<int32_t> end = end_tokens();
    fresh.insert(fresh.end(), end.begin(), end.end());
  }
  fresh.insert(fresh.end(), user.begin(), user.end());
  if (fresh.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "chat: the message is empty (and the vocabulary has no BOS token to start from)");
  }

  const GeneratorOptions& g = options_.generation;
  const auto n_fresh = static_cast<int64_t>(fresh.size());
  const bool fits = n_fresh <= decoder_.prefill_room();
  const bool answer_fits = decoder_.n_past() + n_fresh + g.max_new_tokens <=
                           decoder_.context_len() - decoder_.decode_ar_len() + 1;
  std::vector<int32_t> feed = std::move(fresh);
  size_t dropped = 0;
  bool rebuild = false;
  if (options_.on_full == ContextPolicy::kDropOldest && !turns_.empty() && !(fits && answer_fits)) {
    HS_ASSIGN_OR_RETURN(dropped, turns_to_drop(message));
    rebuild = dropped > 0;
  } else if (!fits) {
    return errorf(ErrorKind::kOutOfRange,
                  "context full: the conversation holds {} tokens and this turn adds {}, but the "
                  "prefill graph has {} slots (context {})",
                  position(), n_fresh - (pending_ ? 1 : 0),
                  decoder_.context_len() - decoder_.prefill_ar_len(), decoder_.context_len());
  }
  if (rebuild) {
    if (!turns_.empty()) turns_.back().closed = true;
    turns_.erase(turns_.begin(), turns_.begin() + static_cast<std::ptrdiff_t>(dropped));
    if (turns_.empty()) {
      user = encode_user(message, /*first=*/true);
    } else {
      turns_.front().user = encode_user(turns_.front().message, /*first=*/true);
    }
    feed = prefix_;
    append_turns(0, feed);
    feed.insert(feed.end(), user.begin(), user.end());
    decoder_.reset();
    pending_.reset();
  }

  TurnResult turn;
  turn.dropped_turns = static_cast<int64_t>(dropped);
  Generator generator(*model_, *tokenizer_);
  auto generated =
      generator.generate(decoder_, feed, sampler, g, [&](int32_t token, std::string_view piece) {
        turn.text.append(piece);
        if (on_token) on_token(token, piece);
      });
  if (!generated.ok()) {
    reset();  // the cache may hold part of the turn: start over rather than go on inconsistent
    return std::move(generated).error().with_context("chat turn (the conversation was reset)");
  }
  turn.generation = std::move(generated).value();
  const GenerationResult& r = turn.generation;
  if (!turns_.empty()) turns_.back().closed = true;
  turns_.push_back(Turn{std::string(message), user, r.tokens, false});
  pending_.reset();
  if (r.stop != StopReason::kEos && !r.tokens.empty()) pending_ = r.tokens.back();

  const GenerationStats& s = r.stats;
  ++stats_.turns;
  stats_.prompt_tokens += s.prompt_tokens;
  stats_.generated_tokens += s.generated_tokens;
  stats_.decode_tokens += s.decode_tokens;
  stats_.decode_steps += s.decode_steps;
  stats_.lookahead_steps += s.lookahead_steps;
  stats_.lookahead_tokens += s.lookahead_tokens;
  stats_.dropped_turns += turn.dropped_turns;
  stats_.prefill_seconds += s.prefill_seconds;
  stats_.decode_seconds += s.decode_seconds;
  return turn;
}

}  // namespace hs::runner
