// Chat templates: detection from a model's Jinja source, names for --chat-template, and the
// exact prompt text of one user turn for ChatML and Llama-3.
#include "headsplit/tokenizer/chat.h"

#include <fmt/format.h>

namespace hs::tokenizer {

std::string_view chat_template_name(ChatTemplate chat_template) {
  switch (chat_template) {
    case ChatTemplate::kChatMl: return "chatml";
    case ChatTemplate::kLlama3: return "llama3";
  }
  return "unknown";
}

Result<ChatTemplate> detect_chat_template(std::string_view jinja_source) {
  if (jinja_source.find("<|im_start|>") != std::string_view::npos) return ChatTemplate::kChatMl;
  if (jinja_source.find("<|start_header_id|>") != std::string_view::npos) {
    return ChatTemplate::kLlama3;
  }
  if (jinja_source.empty()) {
    return Error(ErrorKind::kUnsupported,
                 "the model has no chat template; pass --chat-template chatml|llama3");
  }
  constexpr size_t kQuoted = 60;
  const bool cut = jinja_source.size() > kQuoted;
  return errorf(ErrorKind::kUnsupported,
                "unsupported chat template \"{}{}\" (recognised: chatml with <|im_start|>, "
                "llama3 with <|start_header_id|>)",
                jinja_source.substr(0, kQuoted), cut ? "..." : "");
}

Result<ChatTemplate> parse_chat_template_name(std::string_view name) {
  if (name == "chatml") return ChatTemplate::kChatMl;
  if (name == "llama3") return ChatTemplate::kLlama3;
  return errorf(ErrorKind::kInvalidArgument,
                "unknown chat template '{}', expected chatml or llama3", name);
}

std::string chat_prefix(ChatTemplate chat_template, std::optional<std::string_view> system) {
  switch (chat_template) {
    case ChatTemplate::kChatMl:
      return fmt::format("<|im_start|>system\n{}<|im_end|>\n",
                         system.value_or(kSmolLmDefaultSystemPrompt));
    case ChatTemplate::kLlama3: {
      std::string text = "<|begin_of_text|>";
      if (system) {
        text += fmt::format("<|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>", *system);
      }
      return text;
    }
  }
  return "";
}

std::string chat_user_turn(ChatTemplate chat_template, std::string_view user_message) {
  switch (chat_template) {
    case ChatTemplate::kChatMl:
      return fmt::format("<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n", user_message);
    case ChatTemplate::kLlama3:
      return fmt::format(
          "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n",
          user_message);
  }
  return std::string(user_message);
}

std::string_view chat_end_of_answer(ChatTemplate chat_template) {
  switch (chat_template) {
    case ChatTemplate::kChatMl: return "<|im_end|>\n";
    case ChatTemplate::kLlama3: return "<|eot_id|>";
  }
  return "";
}

std::string apply_chat_template(ChatTemplate chat_template, std::string_view user_message,
                                std::optional<std::string_view> system) {
  return chat_prefix(chat_template, system) + chat_user_turn(chat_template, user_message);
}

bool chat_template_adds_bos(ChatTemplate chat_template) {
  return chat_template == ChatTemplate::kLlama3;
}

Result<std::vector<int32_t>> encode_prompt(const Tokenizer& tokenizer, std::string_view prompt,
                                           const PromptOptions& options) {
  if (!options.chat) return tokenizer.encode(prompt, /*add_bos=*/true);
  ChatTemplate chat_template;
  if (!options.chat_template.empty()) {
    HS_ASSIGN_OR_RETURN(chat_template, parse_chat_template_name(options.chat_template));
  } else {
    auto detected = detect_chat_template(tokenizer.data().chat_template);
    if (!detected.ok()) {
      if (tokenizer.data().chat_template.empty()) return std::move(detected).error().with_context("--chat");
      return errorf(ErrorKind::kUnsupported, "--chat: {}; pass --chat-template chatml|llama3 to "
                    "force one", detected.error().message());
    }
    chat_template = *detected;
  }
  std::optional<std::string_view> system;
  if (options.system) system = *options.system;
  const std::string text = apply_chat_template(chat_template, prompt, system);
  return tokenizer.encode(text, !chat_template_adds_bos(chat_template), /*parse_special=*/true);
}

}  // namespace hs::tokenizer
