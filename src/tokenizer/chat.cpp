// Chat templates: detection from a model's Jinja source, names for --chat-template, and the
// exact prompt text of the fixed forms (ChatML with its defaults, Llama-3, Llama-3.1, Granite,
// Phi).
#include "headsplit/tokenizer/chat.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <ctime>
#include <utility>

namespace hs::tokenizer {
namespace {

constexpr std::array<std::pair<ChatTemplate, std::string_view>, 9> kNames = {{
    {ChatTemplate::kChatMl, "chatml"},
    {ChatTemplate::kLlama3, "llama3"},
    {ChatTemplate::kQwen25, "qwen2.5"},
    {ChatTemplate::kQwen3, "qwen3"},
    {ChatTemplate::kLlama31, "llama3.1"},
    {ChatTemplate::kGranite, "granite"},
    {ChatTemplate::kSmolLm3, "smollm3"},
    {ChatTemplate::kGemma, "gemma"},
    {ChatTemplate::kPhi, "phi"},
}};

bool contains(std::string_view text, std::string_view marker) {
  return text.find(marker) != std::string_view::npos;
}

bool is_chatml(ChatTemplate t) {
  return t == ChatTemplate::kChatMl || t == ChatTemplate::kQwen25 || t == ChatTemplate::kQwen3 ||
         t == ChatTemplate::kSmolLm3;
}
bool is_llama(ChatTemplate t) { return t == ChatTemplate::kLlama3 || t == ChatTemplate::kLlama31; }

// Python's str.isspace() characters as UTF-8 (U+2000..U+200A are checked as a range).
constexpr std::array<std::string_view, 18> kSpaces = {
    " ",    "\t",     "\n",     "\v",     "\f",     "\r",     "\x1c",   "\x1d",   "\x1e",
    "\x1f", "\u0085", "\u00a0", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};

bool is_en_space(std::string_view three) {  // U+2000..U+200A: E2 80 80..8A
  return three.size() == 3 && three.substr(0, 2) == "\xe2\x80" &&
         static_cast<unsigned char>(three[2]) >= 0x80 &&
         static_cast<unsigned char>(three[2]) <= 0x8a;
}

size_t space_at_front(std::string_view s) {
  for (std::string_view sp : kSpaces) {
    if (s.starts_with(sp)) return sp.size();
  }
  return s.size() >= 3 && is_en_space(s.substr(0, 3)) ? 3 : 0;
}

size_t space_at_back(std::string_view s) {
  for (std::string_view sp : kSpaces) {
    if (s.ends_with(sp)) return sp.size();
  }
  return s.size() >= 3 && is_en_space(s.substr(s.size() - 3)) ? 3 : 0;
}

// Python's str.rstrip() / Jinja's `trim` (str.strip()): trailing / both ends' whitespace.
std::string_view rstrip(std::string_view text) {
  for (size_t n = space_at_back(text); n > 0; n = space_at_back(text)) text.remove_suffix(n);
  return text;
}
std::string_view trim(std::string_view text) {
  for (size_t n = space_at_front(text); n > 0; n = space_at_front(text)) text.remove_prefix(n);
  return rstrip(text);
}

// Today's UTC date as strftime(`format`) (what a template's strftime_now gives).
std::string utc_today(std::string_view format) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  return fmt::format(fmt::runtime(fmt::format("{{:{}}}", format)), utc);
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// SmolLM3: whether the system text asks for /no_think (the template checks "/no_think" first).
bool smollm3_no_think(std::optional<std::string_view> system) {
  return system && contains(*system, "/no_think");
}

// SmolLM3's system block, as its template renders it without tools.
std::string smollm3_prefix(std::optional<std::string_view> system, std::string_view today) {
  const bool no_think = smollm3_no_think(system);
  std::string custom;
  if (system) {  // system_message.replace("/no_think", "").replace("/think", "").rstrip()
    custom = rstrip(replace_all(replace_all(std::string(*system), "/no_think", ""), "/think", ""));
    if (contains(*system, "/system_override")) {
      return fmt::format("<|im_start|>system\n{}<|im_end|>\n",
                         rstrip(replace_all(custom, "/system_override", "")));
    }
  }
  if (custom.empty()) {
    custom = no_think ? kSmolLm3DefaultNoThinkPrompt : kSmolLm3DefaultThinkPrompt;
  }
  return fmt::format(
      "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: {}\n"
      "Reasoning Mode: {}\n\n## Custom Instructions\n\n{}\n\n",
      today.empty() ? utc_today("%d %B %Y") : std::string(today), no_think ? "/no_think" : "/think",
      custom);
}

}  // namespace

std::string_view chat_template_name(ChatTemplate chat_template) {
  for (const auto& [t, name] : kNames) {
    if (t == chat_template) return name;
  }
  return "unknown";
}

std::string chat_template_names(std::string_view separator) {
  std::string names;
  for (const auto& [t, name] : kNames) {
    if (!names.empty()) names += separator;
    names += name;
  }
  return names;
}

Result<ChatTemplate> detect_chat_template(std::string_view jinja_source) {
  if (contains(jinja_source, "<|start_of_role|>")) return ChatTemplate::kGranite;
  if (contains(jinja_source, "<start_of_turn>")) return ChatTemplate::kGemma;
  if (contains(jinja_source, "<|assistant|>") && contains(jinja_source, "<|end|>") &&
      !contains(jinja_source, "<|im_start|>")) {
    return ChatTemplate::kPhi;
  }
  if (contains(jinja_source, "<|start_header_id|>")) {
    return contains(jinja_source, "Cutting Knowledge Date") ? ChatTemplate::kLlama31
                                                            : ChatTemplate::kLlama3;
  }
  if (contains(jinja_source, "<|im_start|>")) {
    if (contains(jinja_source, "## Metadata") && contains(jinja_source, "Reasoning Mode")) {
      return ChatTemplate::kSmolLm3;
    }
    if (contains(jinja_source, "You are Qwen, created by Alibaba Cloud")) {
      return ChatTemplate::kQwen25;
    }
    if (contains(jinja_source, "<think>")) return ChatTemplate::kQwen3;
    return ChatTemplate::kChatMl;
  }
  if (jinja_source.empty()) {
    return errorf(ErrorKind::kUnsupported,
                  "the model has no chat template; pass --chat-template {}",
                  chat_template_names("|"));
  }
  constexpr size_t kQuoted = 60;
  const bool cut = jinja_source.size() > kQuoted;
  return errorf(ErrorKind::kUnsupported,
                "unsupported chat template \"{}{}\" (recognised: ChatML with <|im_start|>, "
                "Llama-3 with <|start_header_id|>, Granite with <|start_of_role|>, Gemma with "
                "<start_of_turn>, Phi with <|assistant|> and <|end|>)",
                jinja_source.substr(0, kQuoted), cut ? "..." : "");
}

Result<ChatTemplate> parse_chat_template_name(std::string_view name) {
  for (const auto& [t, known] : kNames) {
    if (name == known) return t;
  }
  return errorf(ErrorKind::kInvalidArgument, "unknown chat template '{}', expected one of {}", name,
                chat_template_names(", "));
}

std::string chat_prefix(ChatTemplate chat_template, std::optional<std::string_view> system,
                        std::string_view today) {
  switch (chat_template) {
    case ChatTemplate::kChatMl:
      return fmt::format("<|im_start|>system\n{}<|im_end|>\n",
                         system.value_or(kSmolLmDefaultSystemPrompt));
    case ChatTemplate::kQwen25:
      return fmt::format("<|im_start|>system\n{}<|im_end|>\n",
                         system.value_or(kQwen25DefaultSystemPrompt));
    case ChatTemplate::kQwen3:
      return system ? fmt::format("<|im_start|>system\n{}<|im_end|>\n", *system) : std::string();
    case ChatTemplate::kLlama3: {
      std::string text = "<|begin_of_text|>";
      if (system) {
        text += fmt::format("<|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>",
                            trim(*system));
      }
      return text;
    }
    case ChatTemplate::kLlama31:
      return fmt::format(
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
          "Cutting Knowledge Date: December 2023\nToday Date: {}\n\n{}<|eot_id|>",
          today.empty() ? kLlama31DefaultDate : today, trim(system.value_or("")));
    case ChatTemplate::kSmolLm3: return smollm3_prefix(system, today);
    case ChatTemplate::kGemma: return "<bos>";  // the system text goes into the first user turn
    case ChatTemplate::kPhi:
      return system ? fmt::format("<|system|>{}<|end|>", *system) : std::string();
    case ChatTemplate::kGranite: {
      const std::string date = today.empty() ? utc_today("%B %d, %Y") : std::string(today);
      const std::string text = system
                                   ? std::string(*system)
                                   : fmt::format(fmt::runtime(kGraniteDefaultSystemPrompt), date);
      return fmt::format("<|start_of_role|>system<|end_of_role|>{}<|end_of_text|>\n", text);
    }
  }
  return "";
}

std::string chat_user_turn(ChatTemplate chat_template, std::string_view user_message,
                           std::optional<std::string_view> system, bool first_turn) {
  if (is_chatml(chat_template)) {
    const bool no_think = chat_template == ChatTemplate::kSmolLm3 && smollm3_no_think(system);
    return fmt::format("<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n{}", user_message,
                       no_think ? "<think>\n\n</think>\n" : "");
  }
  if (chat_template == ChatTemplate::kGemma) {
    const std::string system_text =
        first_turn && system ? fmt::format("{}\n\n", *system) : std::string();
    return fmt::format("<start_of_turn>user\n{}{}<end_of_turn>\n<start_of_turn>model\n",
                       system_text, trim(user_message));
  }
  if (chat_template == ChatTemplate::kPhi) {
    return fmt::format("<|user|>{}<|end|><|assistant|>", user_message);
  }
  if (is_llama(chat_template)) {
    return fmt::format(
        "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        trim(user_message));
  }
  return fmt::format(
      "<|start_of_role|>user<|end_of_role|>{}<|end_of_text|>\n"
      "<|start_of_role|>assistant<|end_of_role|>",
      user_message);
}

std::string_view chat_end_of_answer(ChatTemplate chat_template) {
  if (is_chatml(chat_template)) return "<|im_end|>\n";
  if (is_llama(chat_template)) return "<|eot_id|>";
  if (chat_template == ChatTemplate::kGemma) return "<end_of_turn>\n";
  if (chat_template == ChatTemplate::kPhi) return "<|end|>";
  return "<|end_of_text|>\n";
}

std::string apply_chat_template(ChatTemplate chat_template, std::string_view user_message,
                                std::optional<std::string_view> system, std::string_view today) {
  return chat_prefix(chat_template, system, today) +
         chat_user_turn(chat_template, user_message, system, /*first_turn=*/true);
}

bool chat_template_adds_bos(ChatTemplate chat_template) {
  return is_llama(chat_template) || chat_template == ChatTemplate::kGemma;
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
      return errorf(ErrorKind::kUnsupported, "--chat: {}; pass --chat-template {} to force one",
                    detected.error().message(), chat_template_names("|"));
    }
    chat_template = *detected;
  }
  std::optional<std::string_view> system;
  if (options.system) system = *options.system;
  const std::string text = apply_chat_template(chat_template, prompt, system);
  return tokenizer.encode(text, !chat_template_adds_bos(chat_template), /*parse_special=*/true);
}

}  // namespace hs::tokenizer
