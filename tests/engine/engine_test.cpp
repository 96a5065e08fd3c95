// The engine API on a stories260K artifact: load errors, generate (text, stats, lookahead), and
// chat sessions: the cache is reused between turns (a turn prefills only its new tokens, from
// the position where the previous one stopped), the answer of turn 3 equals one run over the
// whole conversation, the context-full policies (stop + reset, drop the oldest turns).
//
// The artifact has a prefill AR length of 4 and a context of 96: every step has fewer than 8 rows,
// so the runtime's projections take one kernel path for prefill and decode alike and the
// comparisons with one run are exact; the small context fills within a few turns.
#include "headsplit/engine/engine.h"
#include "headsplit/kernels/qgemm.h"
#include "headsplit/runner/chat_session.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/tokenizer/chat.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::engine {
namespace {

const hs::testing::Exported& artifact() {
  return hs::testing::exported({.prefill_ar = 4, .context_len = 96});
}

std::unique_ptr<Engine> load() {
  auto engine = Engine::load({.model_path = artifact().path, .threads = 1});
  EXPECT_TRUE(engine.ok()) << engine.error().message();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

TEST(Engine, LoadErrorsNameTheFile) {
  auto missing = Engine::load({.model_path = "/nonexistent/model.hsa"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.kind(), ErrorKind::kIo);
  EXPECT_NE(missing.error().message().find("/nonexistent/model.hsa"), std::string::npos);
}

TEST(Engine, GeneratesTextAndStatsLikeTheRunner) {
  HS_REQUIRE_SHARED();
  auto engine = load();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->info().context_len, 96);
  EXPECT_EQ(engine->info().ar_lens, (std::vector<int64_t>{4, 1}));
  std::string streamed;
  HS_ASSERT_OK_AND_ASSIGN(
      runtime::RunReport report,
      engine->generate("Once upon a time", {.max_new_tokens = 24},
                       [&](std::string_view piece) { streamed.append(piece); }));
  EXPECT_EQ(report.text, streamed);
  EXPECT_FALSE(report.text.empty());
  EXPECT_EQ(report.prompt_text, "Once upon a time");
  const std::vector<int32_t> ids = engine->tokenizer().encode("Once upon a time", true);
  EXPECT_EQ(report.prompt_tokens, static_cast<int64_t>(ids.size()));
  EXPECT_EQ(report.generation.tokens.size(), 24u);
  EXPECT_GT(report.generation.stats.load_seconds, 0.0);
  EXPECT_EQ(report.threads, 1);
  // The same through the runner directly.
  runner::Generator generator(engine->step_model(), engine->tokenizer());
  HS_ASSERT_OK_AND_ASSIGN(runner::Sampler sampler, runner::Sampler::create({}));
  HS_ASSERT_OK_AND_ASSIGN(runner::GenerationResult direct,
                          generator.generate(ids, sampler, {.max_new_tokens = 24}));
  EXPECT_EQ(direct.tokens, report.generation.tokens);
  // Lookahead on the AR-4 graph (N=2 W=2 G=2: 4 rows): the same text, fewer steps.
  HS_ASSERT_OK_AND_ASSIGN(
      runtime::RunReport ahead,
      engine->generate("Once upon a time", {.max_new_tokens = 24,
                                            .lookahead = {.ngram = 2, .window = 2, .guesses = 2}}));
  EXPECT_EQ(ahead.text, report.text);
  EXPECT_EQ(ahead.generation.lookahead_ar_len, 4);
  EXPECT_GT(ahead.generation.stats.lookahead_steps, 0);
  const std::string stats = runtime::format_run_stats(ahead);
  EXPECT_NE(stats.find("lookahead:   "), std::string::npos) << stats;
  EXPECT_NE(stats.find("at ar length 4 (N=2 W=2 G=2)"), std::string::npos) << stats;
  EXPECT_NE(runtime::format_run_stats_json(ahead).find("\"lookahead_steps\": "), std::string::npos);
  EXPECT_EQ(runtime::format_run_stats(report).find("lookahead:"), std::string::npos);
  // Which kernels ran: the Highway target and the exact integer path's (qgemm.h, ExactIsa).
  EXPECT_EQ(report.integer_kernels, kernels::exact_path_name());
  EXPECT_NE(stats.find(fmt::format("SIMD {} (integer matmuls {})", report.simd_target,
                                   report.integer_kernels)),
            std::string::npos)
      << stats;
  EXPECT_NE(runtime::format_run_stats_json(ahead).find(
                fmt::format("\"integer_kernels\": \"{}\"", ahead.integer_kernels)),
            std::string::npos);
  // Where the weights live: huge pages by default (EngineOptions::residence).
  EXPECT_EQ(report.weights_memory, "huge pages");
  EXPECT_NE(stats.find("; weights huge pages)"), std::string::npos) << stats;
  EXPECT_NE(runtime::format_run_stats_json(ahead).find("\"weights_memory\": \"huge pages\""),
            std::string::npos);
  {  // Memory-mapped (--mmap): the same text.
    HS_ASSERT_OK_AND_ASSIGN(auto mapped,
                            Engine::load({.model_path = artifact().path,
                                          .threads = 1,
                                          .residence = artifact::Residence::kMapped}));
    HS_ASSERT_OK_AND_ASSIGN(runtime::RunReport m,
                            mapped->generate("Once upon a time", {.max_new_tokens = 24}));
    EXPECT_EQ(m.text, report.text);
    EXPECT_EQ(m.weights_memory, "mapped");
  }
  // Bad options are errors, not crashes.
  EXPECT_EQ(engine->generate("x", {.lookahead = {.ngram = 3, .window = 8, .guesses = 8}}).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(engine->generate("x", {.format = PromptFormat::kAuto}).kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(engine->generate("x", {.sampler = {.temperature = -1.0f}}).kind(),
            ErrorKind::kInvalidArgument);
}

TEST(EngineChat, TurnsContinueTheCacheAndEqualOneRun) {
  HS_REQUIRE_SHARED();
  auto engine = load();
  ASSERT_NE(engine, nullptr);
  const tokenizer::Tokenizer& tok = engine->tokenizer();
  for (const runner::LookaheadOptions la :
       {runner::LookaheadOptions{},
        runner::LookaheadOptions{.ngram = 2, .window = 2, .guesses = 2}}) {
    HS_ASSERT_OK_AND_ASSIGN(auto chat, engine->chat({.max_new_tokens = 16, .lookahead = la}));
    EXPECT_EQ(chat->format_name(), "plain text");  // stories260K has no chat template
    const runner::ChatSession& s = chat->session();
    HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t1, chat->send("Once upon a time"));
    const auto prompt1 = static_cast<int64_t>(tok.encode("Once upon a time", true).size());
    EXPECT_EQ(t1.generation.start_position, 0);
    EXPECT_EQ(t1.generation.stats.prompt_tokens, prompt1);
    ASSERT_EQ(t1.generation.tokens.size(), 16u);
    EXPECT_EQ(s.position(), prompt1 + 16);
    // Turn 2 prefills the pending answer token and its own tokens, from where turn 1 stopped.
    HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t2, chat->send("The dog barked."));
    EXPECT_EQ(t2.generation.start_position, prompt1 + 16 - 1);
    EXPECT_EQ(t2.generation.stats.prompt_tokens,
              1 + static_cast<int64_t>(tok.encode("The dog barked.", false).size()));
    HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t3, chat->send("Then"));
    EXPECT_EQ(s.turns(), 3);
    EXPECT_EQ(s.stats().turns, 3);
    const std::vector<int32_t> all = s.tokens();
    ASSERT_EQ(static_cast<int64_t>(all.size()), s.position());
    // One run over the conversation up to turn 3's answer gives that answer.
    const std::vector<int32_t> before(
        all.begin(), all.end() - static_cast<std::ptrdiff_t>(t3.generation.tokens.size()));
    HS_ASSERT_OK_AND_ASSIGN(
        runtime::RunReport once,
        engine->generate_tokens(before, {.max_new_tokens = 16, .lookahead = la}));
    EXPECT_EQ(once.generation.tokens, t3.generation.tokens);
    EXPECT_EQ(once.text, t3.text);
    EXPECT_FALSE(t3.text.empty());
  }
}

TEST(EngineChat, ContextFullStopsUntilReset) {
  HS_REQUIRE_SHARED();
  auto engine = load();
  ASSERT_NE(engine, nullptr);
  HS_ASSERT_OK_AND_ASSIGN(auto chat, engine->chat({.max_new_tokens = 40}));
  const runner::ChatSession& s = chat->session();
  HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t1, chat->send("Once upon a time"));
  EXPECT_EQ(t1.generation.stop, runner::StopReason::kMaxTokens);
  // C = 96: turn 2's answer is clamped at prompt + answer = C.
  HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t2, chat->send("The dog barked at the cat."));
  EXPECT_EQ(t2.generation.stop, runner::StopReason::kContextFull);
  EXPECT_EQ(s.position(), 96);
  auto full = chat->send("Then");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.kind(), ErrorKind::kOutOfRange);
  EXPECT_NE(full.error().message().find("context full: the conversation holds 96 tokens and this "
                                        "turn adds"),
            std::string::npos)
      << full.error().message();
  EXPECT_NE(full.error().message().find("but the prefill graph has 92 slots (context 96)"),
            std::string::npos);
  EXPECT_EQ(s.position(), 96);  // unchanged
  EXPECT_EQ(s.turns(), 2);
  chat->reset();
  EXPECT_EQ(s.position(), 0);
  HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult again, chat->send("Once upon a time"));
  EXPECT_EQ(again.generation.start_position, 0);
  EXPECT_EQ(again.text, t1.text);  // greedy: a fresh conversation repeats itself
  EXPECT_EQ(s.stats().resets, 1);
}

TEST(EngineChat, DropOldestReprefillsTheRest) {
  HS_REQUIRE_SHARED();
  auto engine = load();
  ASSERT_NE(engine, nullptr);
  HS_ASSERT_OK_AND_ASSIGN(auto chat, engine->chat({.max_new_tokens = 20,
                                                   .on_full = runner::ContextPolicy::kDropOldest}));
  const runner::ChatSession& s = chat->session();
  std::vector<runner::TurnResult> turns;
  for (const char* message : {"Once upon a time", "The dog", "The cat", "Lily smiled", "Then"}) {
    HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t, chat->send(message));
    EXPECT_NE(t.generation.stop, runner::StopReason::kContextFull) << message;
    turns.push_back(std::move(t));
  }
  // ~24 tokens per turn: four fill the 96 exactly, the fifth does not fit any more.
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(turns[i].dropped_turns, 0) << i;
  const runner::TurnResult& last = turns.back();
  ASSERT_GE(last.dropped_turns, 1);
  EXPECT_EQ(last.generation.start_position, 0);  // re-prefilled from the start
  EXPECT_EQ(s.turns(), 5 - last.dropped_turns);
  EXPECT_EQ(s.stats().dropped_turns, last.dropped_turns);
  const std::vector<int32_t> all = s.tokens();
  EXPECT_EQ(last.generation.stats.prompt_tokens,
            static_cast<int64_t>(all.size() - last.generation.tokens.size()));
  EXPECT_EQ(all.front(), engine->tokenizer().bos_id());
  // The answer is what one run over the kept conversation gives.
  const std::vector<int32_t> before(
      all.begin(), all.end() - static_cast<std::ptrdiff_t>(last.generation.tokens.size()));
  HS_ASSERT_OK_AND_ASSIGN(runtime::RunReport once,
                          engine->generate_tokens(before, {.max_new_tokens = 20}));
  EXPECT_EQ(once.generation.tokens, last.generation.tokens);
}

// Gemma's template has no system role: the system text opens the conversation's first user
// turn. When the oldest turns are dropped, the first kept turn is re-encoded with it, so the
// re-prefilled conversation is the template's rendering of the kept turns.
TEST(EngineChat, GemmaSystemTextStaysInTheFirstKeptTurn) {
  HS_REQUIRE_SHARED();
  auto engine = load();
  ASSERT_NE(engine, nullptr);
  const tokenizer::Tokenizer& tok = engine->tokenizer();
  const tokenizer::ChatTemplate gemma = tokenizer::ChatTemplate::kGemma;
  const std::string system = "Be brief.";
  runner::ChatOptions options{.chat_template = gemma,
                              .system = system,
                              .generation = {.max_new_tokens = 12},
                              .on_full = runner::ContextPolicy::kDropOldest};
  HS_ASSERT_OK_AND_ASSIGN(runner::ChatSession s,
                          runner::ChatSession::create(engine->step_model(), tok, options));
  HS_ASSERT_OK_AND_ASSIGN(runner::Sampler sampler, runner::Sampler::create({}));
  const auto encode = [&](const std::string& text) {
    return tok.encode(text, /*add_bos=*/false, /*parse_special=*/true);
  };
  const std::vector<std::string> messages = {"Once upon a time", "The dog", "The cat",
                                             "Lily smiled", "Then", "The end"};
  std::vector<std::vector<int32_t>> answers;
  int64_t dropped = 0;
  for (const std::string& m : messages) {
    HS_ASSERT_OK_AND_ASSIGN(runner::TurnResult t, s.send(m, sampler));
    answers.push_back(t.generation.tokens);
    dropped += t.dropped_turns;
  }
  ASSERT_GE(dropped, 1);  // the small context (96) forces it
  ASSERT_EQ(s.turns(), static_cast<int64_t>(messages.size()) - dropped);
  // The expected conversation: prefix, then the kept turns, the first with the system text.
  std::vector<int32_t> expected = encode(tokenizer::chat_prefix(gemma, system));
  const std::vector<int32_t> end = encode(std::string(tokenizer::chat_end_of_answer(gemma)));
  for (size_t i = static_cast<size_t>(dropped); i < messages.size(); ++i) {
    const std::vector<int32_t> user = encode(tokenizer::chat_user_turn(
        gemma, messages[i], system, /*first_turn=*/i == static_cast<size_t>(dropped)));
    expected.insert(expected.end(), user.begin(), user.end());
    expected.insert(expected.end(), answers[i].begin(), answers[i].end());
    if (i + 1 < messages.size()) expected.insert(expected.end(), end.begin(), end.end());
  }
  EXPECT_EQ(s.tokens(), expected);
  const std::string first = tokenizer::chat_user_turn(gemma, messages[static_cast<size_t>(dropped)],
                                                       system, /*first_turn=*/true);
  EXPECT_NE(first.find("Be brief.\n\n"), std::string::npos) << first;
}

}  // namespace
}  // namespace hs::engine
