// Multi-turn chat text: prefix + user turn + answer + end of answer, per format, against the text
// the models' own Jinja templates render for a two-turn conversation (written out by hand), and
// the single-turn template as prefix + first turn.
#include <gtest/gtest.h>

#include <string>

#include "headsplit/tokenizer/chat.h"

namespace hs::tokenizer {
namespace {

std::string two_turns(ChatTemplate t, std::optional<std::string_view> system) {
  return chat_prefix(t, system) + chat_user_turn(t, "Hi!") + "Hello." +
         std::string(chat_end_of_answer(t)) + chat_user_turn(t, "Bye?");
}

TEST(ChatTurns, ChatMlRendersLikeTheJinjaTemplate) {
  // SmolLM2: '<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n' per message, then the
  // generation prompt '<|im_start|>assistant\n'.
  EXPECT_EQ(two_turns(ChatTemplate::kChatMl, std::string_view("Be brief.")),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\nBye?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTurns, Llama3RendersLikeTheJinjaTemplate) {
  // Llama 3: bos, then '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content +
  // '<|eot_id|>' per message, then the assistant header.
  EXPECT_EQ(two_turns(ChatTemplate::kLlama3, std::nullopt),
            "<|begin_of_text|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTurns, PrefixAndFirstTurnAreTheSingleTurnTemplate) {
  for (ChatTemplate t : {ChatTemplate::kChatMl, ChatTemplate::kLlama3}) {
    for (std::optional<std::string_view> system :
         {std::optional<std::string_view>(), std::optional<std::string_view>("S")}) {
      EXPECT_EQ(chat_prefix(t, system) + chat_user_turn(t, "q"),
                apply_chat_template(t, "q", system));
    }
  }
}

}  // namespace
}  // namespace hs::tokenizer
