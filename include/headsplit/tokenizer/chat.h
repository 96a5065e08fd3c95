// Chat templates: recognising a model's Jinja chat template and producing the exact prompt
// text (with the generation prompt appended) for the formats headsplit supports.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::tokenizer {

enum class ChatTemplate {
  kChatMl,  // <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen)
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> (Llama 3.x)
};

std::string_view chat_template_name(ChatTemplate chat_template);  // "chatml", "llama3"

// Recognises a Jinja chat template: `<|im_start|>` means ChatML, `<|start_header_id|>`
// Llama-3. Anything else (or an empty template) is kUnsupported, quoting its first 60 chars.
Result<ChatTemplate> detect_chat_template(std::string_view jinja_source);
// Parses a --chat-template value: "chatml" or "llama3".
Result<ChatTemplate> parse_chat_template_name(std::string_view name);

// The prompt for one user turn, ending with the assistant header (the generation prompt).
//   ChatML: "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{msg}<|im_end|>\n"
//           "<|im_start|>assistant\n"; without a system prompt SmolLM2's default one is used.
//   Llama-3: "<|begin_of_text|>" [system block when given]
//           "<|start_header_id|>user<|end_header_id|>\n\n{msg}<|eot_id|>"
//           "<|start_header_id|>assistant<|end_header_id|>\n\n"
// Encode the result with parse_special.
std::string apply_chat_template(ChatTemplate chat_template, std::string_view user_message,
                                std::optional<std::string_view> system = std::nullopt);

// The pieces of a multi-turn conversation: chat_prefix, then per turn chat_user_turn(message),
// the model's answer and chat_end_of_answer. prefix + first user turn is apply_chat_template.
//   ChatML:  prefix "<|im_start|>system\n{system}<|im_end|>\n" (SmolLM2's default system prompt
//            when none is given); turn
//            "<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n"; end of answer
//            "<|im_end|>\n"
//   Llama-3: prefix "<|begin_of_text|>" [system block]; turn "<|start_header_id|>user
//            <|end_header_id|>\n\n{msg}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
//            end of answer "<|eot_id|>"
std::string chat_prefix(ChatTemplate chat_template,
                        std::optional<std::string_view> system = std::nullopt);
std::string chat_user_turn(ChatTemplate chat_template, std::string_view user_message);
std::string_view chat_end_of_answer(ChatTemplate chat_template);

// The system prompt ChatML uses when none is given (SmolLM2's template default).
inline constexpr std::string_view kSmolLmDefaultSystemPrompt =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

// True when the template text already starts with the BOS token (Llama-3's
// <|begin_of_text|>): encode it without adding BOS again.
bool chat_template_adds_bos(ChatTemplate chat_template);

// How a user's prompt becomes token ids (shared by `generate` and `run`).
struct PromptOptions {
  bool chat = false;                  // wrap the prompt in the model's chat template
  std::string chat_template;          // "chatml" / "llama3" forces one; empty: detect
  std::optional<std::string> system;  // system prompt for the template
};

// Plain: BOS + the text. Chat: the template (forced, or detected from the vocabulary's
// chat_template; an unknown or missing one is an error naming it and suggesting
// --chat-template) applied to the prompt, encoded with special tokens, BOS added unless the
// template already starts with it.
Result<std::vector<int32_t>> encode_prompt(const Tokenizer& tokenizer, std::string_view prompt,
                                           const PromptOptions& options);

}  // namespace hs::tokenizer
