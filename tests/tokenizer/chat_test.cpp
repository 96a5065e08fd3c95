// Chat templates: detection, names, and the exact prompt text of each format.
#include "headsplit/tokenizer/chat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/testing.h"

namespace hs::tokenizer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ChatTemplate, Detects) {
  // Abridged from SmolLM2's and Llama-3.2's tokenizer_config.json.
  HS_ASSERT_OK_AND_ASSIGN(
      ChatTemplate chatml,
      detect_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] + "
                           "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"));
  EXPECT_EQ(chatml, ChatTemplate::kChatMl);
  HS_ASSERT_OK_AND_ASSIGN(
      ChatTemplate llama3,
      detect_chat_template("{{- bos_token }}{{- '<|start_header_id|>' + message['role'] + "
                           "'<|end_header_id|>\\n\\n' }}"));
  EXPECT_EQ(llama3, ChatTemplate::kLlama3);
}

TEST(ChatTemplate, RejectsUnknownQuotingSixtyChars) {
  const std::string jinja =
      "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %} and much more text "
      "beyond sixty characters";
  auto r = detect_chat_template(jinja);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(r.error().message(), HasSubstr(fmt::format("\"{}...\"", jinja.substr(0, 60))));
  EXPECT_THAT(r.error().message(), Not(HasSubstr(jinja.substr(0, 61))));
  auto empty = detect_chat_template("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.kind(), ErrorKind::kUnsupported);
  EXPECT_THAT(empty.error().message(), HasSubstr("no chat template"));
}

TEST(ChatTemplate, ParsesNames) {
  EXPECT_EQ(*parse_chat_template_name("chatml"), ChatTemplate::kChatMl);
  EXPECT_EQ(*parse_chat_template_name("llama3"), ChatTemplate::kLlama3);
  auto bad = parse_chat_template_name("mistral");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("'mistral'"));
  EXPECT_EQ(chat_template_name(ChatTemplate::kLlama3), "llama3");
}

TEST(ChatTemplate, ChatMlText) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::kChatMl, "Hi!", std::string_view("Be brief.")),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kChatMl, "What is 2+2?"),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(chat_template_adds_bos(ChatTemplate::kChatMl));
}

TEST(ChatTemplate, Llama3Text) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::kLlama3, "Hi!"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kLlama3, "Hi!", std::string_view("Be brief.")),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_TRUE(chat_template_adds_bos(ChatTemplate::kLlama3));
}

}  // namespace
}  // namespace hs::tokenizer
