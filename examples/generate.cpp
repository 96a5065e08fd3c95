// An application embedding headsplit through its engine API (include/headsplit/engine/engine.h):
// load a .hsa artifact, stream a greedy generation (with and without lookahead decoding: the
// same text), then hold a two-turn chat that keeps its KV cache between turns. It links the
// engine only (runtime, runner, tokenizer: no compiler code).
//
//   usage: example_generate <model.hsa> [prompt]
#include <cstdio>
#include <string>
#include <string_view>

#include "headsplit/engine/engine.h"

namespace {

void print(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int fail(const hs::Error& error) {
  std::fprintf(stderr, "example_generate: error: %s\n", error.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <model.hsa> [prompt]\n", argv[0]);
    return 2;
  }
  const std::string prompt = argc > 2 ? argv[2] : "Once upon a time";
  auto engine = hs::engine::Engine::load({.model_path = argv[1], .threads = 1});
  if (!engine.ok()) return fail(engine.error());

  // 1. Generate, streaming the text as it is decoded.
  hs::engine::GenerateOptions options{.max_new_tokens = 32};
  std::printf("== generate\n%s", prompt.c_str());
  auto plain = (*engine)->generate(prompt, options, print);
  if (!plain.ok()) return fail(plain.error());
  std::printf("\n%s", hs::runtime::format_run_stats(*plain).c_str());

  // 2. The same with lookahead decoding (N=2, W=2, G=2: 4 rows, run on the smallest graph that
  //    has them, here the AR-4 prefill graph): the same greedy text in fewer steps.
  options.lookahead = {.ngram = 2, .window = 2, .guesses = 2};
  auto ahead = (*engine)->generate(prompt, options);
  if (!ahead.ok()) return fail(ahead.error());
  const auto& s = ahead->generation.stats;
  std::printf("== lookahead: %lld tokens in %lld steps, same text: %s\n",
              static_cast<long long>(s.decode_tokens), static_cast<long long>(s.decode_steps),
              ahead->text == plain->text ? "yes" : "NO");
  if (ahead->text != plain->text) return 1;

  // 3. Two chat turns: the second prefills only its own tokens.
  auto chat = (*engine)->chat({.max_new_tokens = 16});
  if (!chat.ok()) return fail(chat.error());
  for (const char* message : {prompt.c_str(), "The next day"}) {
    std::printf("== chat (%.*s) > %s\n", static_cast<int>((*chat)->format_name().size()),
                (*chat)->format_name().data(), message);
    auto turn = (*chat)->send(message, print);
    if (!turn.ok()) return fail(turn.error());
    std::printf("\n   (%lld tokens prefilled from position %lld)\n",
                static_cast<long long>(turn->generation.stats.prompt_tokens),
                static_cast<long long>(turn->generation.start_position));
  }
  return 0;
}
