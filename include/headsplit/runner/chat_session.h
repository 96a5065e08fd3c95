// ChatSession: a multi-turn conversation on one Decoder. The KV cache is kept between turns:
// positions continue and only a turn's new tokens are prefilled, from the position where the
// previous turn stopped.
//
// The conversation as tokens (what a single prompt over the whole conversation would hold):
//   prefix                chat_prefix(template, system) (BOS when the template has none in it);
//                         plain text: BOS
//   per turn              user   chat_user_turn(template, message, system, first turn?); plain
//                                text: the message
//                         answer the generated tokens (EOS excluded)
//                         end    chat_end_of_answer(template), added when the next turn starts;
//                                plain text: nothing
// After a turn every answer token but the last is in the cache (the last one was sampled, not
// fed); a stop on EOS leaves nothing pending (the template's end of answer closes the turn). So
// turn k + 1 prefills [pending token] + end of answer k + user k+1 from position n_past.
//
// Context full (the new tokens do not fit the prefill graph's C - N slots):
//   ContextPolicy::kStop        send() fails with kOutOfRange, the session unchanged; reset()
//                               starts over
//   ContextPolicy::kDropOldest  the oldest turns are dropped until the rest, the new turn and
//                               max_new_tokens of answer fit (or, failing that, until the prefill
//                               fits), the cache is reset and the kept conversation re-prefilled
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/runner/decoder.h"
#include "headsplit/runner/generator.h"
#include "headsplit/tokenizer/chat.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::runner {

enum class ContextPolicy : uint8_t {
  kStop,        // a turn that does not fit is an error (kOutOfRange); reset() to go on
  kDropOldest,  // drop the oldest turns and re-prefill the rest
};

struct ChatOptions {
  std::optional<tokenizer::ChatTemplate> chat_template;  // nullopt: plain text turns
  std::optional<std::string> system;                     // system prompt (template formats)
  GeneratorOptions generation;  // per answer: max_new_tokens, lookahead, AR lengths
  ContextPolicy on_full = ContextPolicy::kStop;
};

struct TurnResult {
  GenerationResult generation;  // the answer's tokens, stop reason and stats; stats.prompt_tokens
                                // are the tokens prefilled for this turn, from start_position
  std::string text;             // the answer
  int64_t dropped_turns = 0;    // turns dropped to make room (kDropOldest)
};

// Totals since the session was created.
struct ChatStats {
  int64_t turns = 0;
  int64_t prompt_tokens = 0;     // tokens prefilled (re-prefills included)
  int64_t generated_tokens = 0;  // answer tokens
  int64_t decode_tokens = 0;     // tokens decode steps stored
  int64_t decode_steps = 0;
  int64_t lookahead_steps = 0, lookahead_tokens = 0;
  int64_t dropped_turns = 0;
  int64_t resets = 0;
  double prefill_seconds = 0.0, decode_seconds = 0.0;
};

class ChatSession {
 public:
  // `model` and `tokenizer` must outlive the session. Errors: the decoder's (AR lengths,
  // lookahead).
  static Result<ChatSession> create(StepModel& model, const tokenizer::Tokenizer& tokenizer,
                                    const ChatOptions& options);

  // One turn: formats and encodes `message`, prefills the new tokens, generates the answer
  // (streamed through on_token). kOutOfRange when the turn does not fit (see above; the session
  // is unchanged); kInvalidArgument for an empty first message without BOS; a step error resets
  // the session (the cache may hold part of the turn) and is returned with that said.
  Result<TurnResult> send(std::string_view message, Sampler& sampler,
                          const TokenCallback& on_token = nullptr);
  // Forgets the conversation (the cache is reused from position 0).
  void reset();

  int64_t position() const;  // tokens in the conversation (stored + the pending one)
  int64_t context_len() const { return decoder_.context_len(); }
  int64_t turns() const { return static_cast<int64_t>(turns_.size()); }
  const ChatStats& stats() const { return stats_; }
  const ChatOptions& options() const { return options_; }
  // The whole conversation as token ids (prefix, turns, answers; the pending token included).
  std::vector<int32_t> tokens() const;

 private:
  struct Turn {
    std::string message;  // the user's text: re-encoded when the turn becomes the first one
    std::vector<int32_t> user, answer;
    bool closed = false;  // the end-of-answer tokens follow the answer
  };
  ChatSession(StepModel& model, const tokenizer::Tokenizer& tokenizer, const ChatOptions& options,
              Decoder decoder);
  std::vector<int32_t> encode_prefix() const;
  // `first`: the conversation's first turn (Gemma puts the system text in it).
  std::vector<int32_t> encode_user(std::string_view message, bool first) const;
  std::vector<int32_t> end_tokens() const;
  // The tokens of turns [first, end) as fed (closed turns with their end of answer).
  void append_turns(size_t first, std::vector<int32_t>& out) const;
  // kDropOldest: how many old turns to drop so that the new turn `message` fits; kOutOfRange if
  // none works. Counts each candidate first turn as re-encoded in the first position.
  Result<size_t> turns_to_drop(std::string_view message) const;

  StepModel* model_;
  const tokenizer::Tokenizer* tokenizer_;
  ChatOptions options_;
  Decoder decoder_;
  std::vector<int32_t> prefix_;  // the conversation's start (empty until the first turn)
  std::vector<Turn> turns_;
  std::optional<int32_t> pending_;  // the last answer token, sampled but not stored
  ChatStats stats_;
};

}  // namespace hs::runner
