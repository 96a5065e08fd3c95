// Chat templates: detection, names, and the exact prompt text of each format.
#include "headsplit/tokenizer/chat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "headsplit/tokenizer/pre_tokenizer.h"
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

TEST(ChatTemplate, GemmaTurnFormat) {
  // Abridged from gemma-3-1b-it's chat_template (Gemma's is the same turn format).
  HS_ASSERT_OK_AND_ASSIGN(
      ChatTemplate gemma,
      detect_chat_template("{{ bos_token }}{%- for message in loop_messages -%}{{ "
                           "'<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first "
                           "else \"\") }}{% endfor %}"));
  EXPECT_EQ(gemma, ChatTemplate::kGemma);
  EXPECT_EQ(*parse_chat_template_name("gemma"), ChatTemplate::kGemma);
  // The template's rendering of [user] and [system, user] with add_generation_prompt: the
  // message trimmed; Gemma3 puts the system text and "\n\n" at the start of the first turn.
  EXPECT_EQ(apply_chat_template(ChatTemplate::kGemma, " Hi! "),
            "<bos><start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kGemma, "Hi!", std::string_view("Be brief.")),
            "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(chat_end_of_answer(ChatTemplate::kGemma), "<end_of_turn>\n");
  EXPECT_TRUE(chat_template_adds_bos(ChatTemplate::kGemma));  // "<bos>" is in the text
  // Multi-turn: prefix + turn + answer + end + turn.
  EXPECT_EQ(chat_prefix(ChatTemplate::kGemma, std::nullopt) +
                chat_user_turn(ChatTemplate::kGemma, "a", std::nullopt) + "b" +
                std::string(chat_end_of_answer(ChatTemplate::kGemma)) +
                chat_user_turn(ChatTemplate::kGemma, "c", std::nullopt),
            "<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
            "<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n");
  // With a system text: only the first turn carries it.
  EXPECT_EQ(chat_prefix(ChatTemplate::kGemma, "S") +
                chat_user_turn(ChatTemplate::kGemma, "a", "S", /*first_turn=*/true) + "b" +
                std::string(chat_end_of_answer(ChatTemplate::kGemma)) +
                chat_user_turn(ChatTemplate::kGemma, "c", "S"),
            "<bos><start_of_turn>user\nS\n\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
            "<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n");
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

namespace hs::tokenizer {
namespace {

// A tiny vocabulary with the ChatML specials as control tokens, bytes as pieces.
TokenizerData chatml_vocab(std::string chat_template) {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre_tokenizer = "gpt2";
  // Byte-level BPE pieces are the GPT-2 unicode forms of the bytes.
  for (int b = 0; b < 256; ++b) {
    d.pieces.push_back(bytes_to_unicode(std::string(1, static_cast<char>(b))));
  }
  d.types.assign(256, TokenType::kNormal);
  for (const char* special : {"<|im_start|>", "<|im_end|>"}) {
    d.pieces.push_back(special);
    d.types.push_back(TokenType::kControl);
  }
  d.bos_id = 256;
  d.eos_id = 257;
  d.add_bos = false;
  d.chat_template = std::move(chat_template);
  return d;
}

TEST(EncodePrompt, PlainAddsBosOnly) {
  auto tok = Tokenizer::create(chatml_vocab("")).value();
  auto ids = encode_prompt(*tok, "hi", PromptOptions{});
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, tok->encode("hi", true));
}

TEST(EncodePrompt, ChatDetectsTemplateAndParsesSpecials) {
  auto tok = Tokenizer::create(chatml_vocab("{% for m in messages %}<|im_start|>{{m.role}}")).value();
  PromptOptions o;
  o.chat = true;
  o.system = std::string("S");
  auto ids = encode_prompt(*tok, "hi", o);
  ASSERT_TRUE(ids.ok()) << ids.error().message();
  const std::vector<int32_t> expected = tok->encode(
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
      true, true);
  EXPECT_EQ(*ids, expected);
  EXPECT_EQ((*ids)[0], 256);  // <|im_start|> as one control token
}

TEST(EncodePrompt, UnknownTemplateIsAnErrorSuggestingTheFlag) {
  auto tok = Tokenizer::create(chatml_vocab("{{ bos_token }}{% for m in messages %}[INST]")).value();
  PromptOptions o;
  o.chat = true;
  auto ids = encode_prompt(*tok, "hi", o);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.kind(), ErrorKind::kUnsupported);
  EXPECT_NE(ids.error().message().find("--chat-template"), std::string::npos);
  EXPECT_NE(ids.error().message().find("[INST]"), std::string::npos) << ids.error().message();
  o.chat_template = "chatml";  // forcing one works
  EXPECT_TRUE(encode_prompt(*tok, "hi", o).ok());
}

}  // namespace
}  // namespace hs::tokenizer

namespace hs::tokenizer {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr ChatTemplate kAll[] = {ChatTemplate::kChatMl,  ChatTemplate::kLlama3,
                                 ChatTemplate::kQwen25,  ChatTemplate::kQwen3,
                                 ChatTemplate::kLlama31, ChatTemplate::kGranite,
                                 ChatTemplate::kSmolLm3, ChatTemplate::kGemma,
                                 ChatTemplate::kPhi};

TEST(ChatTemplate, DetectsEachFamilyByItsMarkers) {
  // Abridged from each family's tokenizer_config.json chat_template.
  EXPECT_EQ(*detect_chat_template("{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba "
                                  "Cloud. You are a helpful assistant.<|im_end|>\\n' }}"),
            ChatTemplate::kQwen25);
  EXPECT_EQ(*detect_chat_template("{{- '<|im_start|>' + message.role + '\\n<think>\\n' }}"),
            ChatTemplate::kQwen3);
  EXPECT_EQ(*detect_chat_template("{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
                                  "{{- \"Cutting Knowledge Date: December 2023\\n\" }}"),
            ChatTemplate::kLlama31);
  EXPECT_EQ(*detect_chat_template("{{- '<|start_of_role|>system<|end_of_role|>' }}"),
            ChatTemplate::kGranite);
  EXPECT_EQ(
      *detect_chat_template("{{- \"<|im_start|>system\\n\" -}}{{- \"## Metadata\\n\\n\" -}}<think>"
                            "{{- \"Reasoning Mode: \" + reasoning_mode + \"\\n\\n\" -}}"),
      ChatTemplate::kSmolLm3);
}

TEST(ChatTemplate, NamesRoundTrip) {
  for (ChatTemplate t : kAll) {
    HS_ASSERT_OK_AND_ASSIGN(ChatTemplate parsed, parse_chat_template_name(chat_template_name(t)));
    EXPECT_EQ(parsed, t);
  }
  EXPECT_EQ(chat_template_names("|"),
            "chatml|llama3|qwen2.5|qwen3|llama3.1|granite|smollm3|gemma|phi");
  auto bad = parse_chat_template_name("qwen2");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("expected one of chatml, llama3, qwen2.5"));
}

TEST(ChatTemplate, QwenDefaults) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::kQwen25, "Hi!"),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kQwen3, "Hi!"),
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kQwen3, " Hi! ", std::string_view(" S ")),
            "<|im_start|>system\n S <|im_end|>\n<|im_start|>user\n Hi! <|im_end|>\n"
            "<|im_start|>assistant\n");  // ChatML keeps spaces
  EXPECT_FALSE(chat_template_adds_bos(ChatTemplate::kQwen3));
}

TEST(ChatTemplate, Llama31SystemBlockWithDate) {
  const std::string header =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
      "December 2023\nToday Date: ";
  const std::string user =
      "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(apply_chat_template(ChatTemplate::kLlama31, "Hi!"),
            header + "26 Jul 2024\n\n<|eot_id|>" + user);
  // System and message are trimmed (Jinja `| trim`), Unicode spaces too.
  EXPECT_EQ(apply_chat_template(ChatTemplate::kLlama31, "\t Hi!\n\u3000",
                                std::string_view("  Be brief.\n"), "02 Dec 2026"),
            header + "02 Dec 2026\n\nBe brief.<|eot_id|>" + user);
  EXPECT_TRUE(chat_template_adds_bos(ChatTemplate::kLlama31));
  EXPECT_EQ(chat_end_of_answer(ChatTemplate::kLlama31), "<|eot_id|>");
}

TEST(ChatTemplate, GraniteDefaultSystemWithDate) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::kGranite, "Hi!", std::nullopt, "April 09, 2025"),
            "<|start_of_role|>system<|end_of_role|>Knowledge Cutoff Date: April 2024. Today's "
            "Date: April 09, 2025. You are Granite, developed by IBM. You are a helpful AI "
            "assistant.<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Hi!<|end_of_text|>\n"
            "<|start_of_role|>assistant<|end_of_role|>");
  // Without a date: today's, as strftime_now("%B %d, %Y").
  EXPECT_THAT(chat_prefix(ChatTemplate::kGranite),
              MatchesRegex(".*Today's Date: [A-Z][a-z]+ [0-3][0-9], 2[0-9][0-9][0-9]\\. You "
                           "are Granite.*"));
  EXPECT_EQ(chat_prefix(ChatTemplate::kGranite, std::string_view("S")),
            "<|start_of_role|>system<|end_of_role|>S<|end_of_text|>\n");
  EXPECT_EQ(chat_end_of_answer(ChatTemplate::kGranite), "<|end_of_text|>\n");
  EXPECT_FALSE(chat_template_adds_bos(ChatTemplate::kGranite));
}

// SmolLM3's template (HuggingFaceTB/SmolLM3-3B tokenizer_config.json), traced by hand for
// [system?, user] with add_generation_prompt and no tools: the system block is
//   "<|im_start|>system\n" "## Metadata\n\n" "Knowledge Cutoff Date: June 2025\n"
//   "Today Date: " ~ strftime_now("%d %B %Y") ~ "\n" "Reasoning Mode: " + mode + "\n\n"
//   "## Custom Instructions\n\n" + (custom_instructions or the mode's default) + "\n\n"
// with no <|im_end|> (that is emitted only inside the tools branch), the system message is not
// rendered again in the loop, users are '<|im_start|>user\n' + content + '<|im_end|>\n', and
// the generation prompt is "<|im_start|>assistant\n" (+ "<think>\n\n</think>\n" in /no_think).
TEST(ChatTemplate, SmolLm3MetadataBlockAndReasoningModes) {
  const std::string head =
      "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: 02 "
      "December 2026\nReasoning Mode: ";
  EXPECT_EQ(apply_chat_template(ChatTemplate::kSmolLm3, "Hi!", std::nullopt, "02 December 2026"),
            head + "/think\n\n## Custom Instructions\n\n" +
                std::string(kSmolLm3DefaultThinkPrompt) +
                "\n\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kSmolLm3, "Hi!", std::string_view("/no_think"),
                                "02 December 2026"),
            head +
                "/no_think\n\n## Custom Instructions\n\nYou are a helpful AI assistant named "
                "SmolLM, trained by Hugging Face.\n\n<|im_start|>user\nHi!<|im_end|>\n"
                "<|im_start|>assistant\n<think>\n\n</think>\n");
  // A system prompt loses its flags and trailing spaces; /think keeps the thinking mode.
  EXPECT_EQ(apply_chat_template(ChatTemplate::kSmolLm3, "q",
                                std::string_view(" Be brief. /think \n"), "02 December 2026"),
            head +
                "/think\n\n## Custom Instructions\n\n Be brief.\n\n<|im_start|>user\nq"
                "<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kSmolLm3, "q",
                                std::string_view("Only this. /system_override /no_think")),
            "<|im_start|>system\nOnly this.<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n");
  EXPECT_THAT(chat_prefix(ChatTemplate::kSmolLm3),
              MatchesRegex(".*Today Date: [0-3][0-9] [A-Z][a-z]+ 2[0-9][0-9][0-9]\nReasoning.*"));
  EXPECT_EQ(chat_end_of_answer(ChatTemplate::kSmolLm3), "<|im_end|>\n");
}

// Phi-4-mini's template (without tools): "<|" + role + "|>" + content + "<|end|>" per message,
// then "<|assistant|>"; no default system prompt, no trimming.
TEST(ChatTemplate, PhiText) {
  const std::string jinja =
      "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
      "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + "
      "'<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + "
      "message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if "
      "add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}";
  EXPECT_EQ(*detect_chat_template(jinja), ChatTemplate::kPhi);
  EXPECT_EQ(apply_chat_template(ChatTemplate::kPhi, " Hi! "), "<|user|> Hi! <|end|><|assistant|>");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kPhi, "Hi", "Be brief."),
            "<|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>");
  EXPECT_EQ(chat_end_of_answer(ChatTemplate::kPhi), "<|end|>");
  EXPECT_FALSE(chat_template_adds_bos(ChatTemplate::kPhi));
}

TEST(ChatTemplate, PrefixAndFirstTurnAreTheSingleTurnTemplateForEveryForm) {
  for (ChatTemplate t : kAll) {
    for (std::optional<std::string_view> system :
         {std::optional<std::string_view>(), std::optional<std::string_view>(" S "),
          std::optional<std::string_view>("S /no_think")}) {
      EXPECT_EQ(chat_prefix(t, system, "D") + chat_user_turn(t, " q ", system, /*first_turn=*/true),
                apply_chat_template(t, " q ", system, "D"))
          << chat_template_name(t);
    }
  }
}

}  // namespace
}  // namespace hs::tokenizer
