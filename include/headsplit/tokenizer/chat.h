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
  kChatMl,   // <|im_start|>role\n...<|im_end|>\n, SmolLM2's default system prompt
  kLlama3,   // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> (Llama 3)
  kQwen25,   // ChatML with Qwen2.5's default system prompt
  kQwen3,    // ChatML without a default system prompt (Qwen3, thinking enabled)
  kLlama31,  // Llama 3 with the "Cutting Knowledge Date" system block (Llama 3.1 / 3.2)
  kGranite,  // <|start_of_role|>role<|end_of_role|>...<|end_of_text|>\n (Granite 3.x)
  kSmolLm3,  // ChatML with SmolLM3's "## Metadata" system block, reasoning mode /think
  kGemma,    // <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n (Gemma, Gemma3)
  kPhi,      // <|role|>...<|end|> (Phi-3 / Phi-4-mini), no default system prompt
};

// "chatml", "llama3", "qwen2.5", "qwen3", "llama3.1", "granite", "smollm3", "gemma", "phi".
std::string_view chat_template_name(ChatTemplate chat_template);

// Recognises a Jinja chat template by its markers:
//   <|start_of_role|>                                      granite
//   <start_of_turn>                                        gemma
//   <|assistant|> and <|end|> (no <|im_start|>)            phi
//   <|start_header_id|> with "Cutting Knowledge Date"      llama3.1 (3.1 and 3.2), else llama3
//   <|im_start|> with "## Metadata" and "Reasoning Mode"  smollm3
//   <|im_start|> with "You are Qwen, created by Alibaba Cloud"  qwen2.5
//   <|im_start|> with "<think>"                            qwen3
//   <|im_start|> otherwise                                 chatml
// Anything else (or an empty template) is kUnsupported, quoting its first 60 chars.
Result<ChatTemplate> detect_chat_template(std::string_view jinja_source);
// Parses a --chat-template value: one of the names above.
Result<ChatTemplate> parse_chat_template_name(std::string_view name);
// The names accepted by parse_chat_template_name, joined with `separator`.
std::string chat_template_names(std::string_view separator);

// The prompt for one user turn, ending with the assistant header (the generation prompt), as
// the family's Jinja template renders [system?, user] with add_generation_prompt:
//   ChatML:   "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{msg}<|im_end|>\n"
//             "<|im_start|>assistant\n"; without a system prompt the family's default is used
//             (chatml: SmolLM2's, qwen2.5: Qwen's); qwen3 has none and then no system block
//   Llama-3:  "<|begin_of_text|>" [system block when given]
//             "<|start_header_id|>user<|end_header_id|>\n\n{msg}<|eot_id|>"
//             "<|start_header_id|>assistant<|end_header_id|>\n\n" (system and msg trimmed)
//   Llama-3.1: as Llama-3 with the system block always there:
//             "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December"
//             " 2023\nToday Date: {today}\n\n{system}<|eot_id|>"
//   Phi:      ["<|system|>{system}<|end|>"] "<|user|>{msg}<|end|><|assistant|>" (Phi-4-mini's
//             template without tools; no default system prompt)
//   Granite:  "<|start_of_role|>system<|end_of_role|>{system}<|end_of_text|>\n"
//             "<|start_of_role|>user<|end_of_role|>{msg}<|end_of_text|>\n"
//             "<|start_of_role|>assistant<|end_of_role|>", the default system being
//             kGraniteDefaultSystemPrompt with {today}
//   SmolLM3 (enable_thinking, the template's default): "<|im_start|>system\n## Metadata\n\n"
//             "Knowledge Cutoff Date: June 2025\nToday Date: {today}\nReasoning Mode: /think\n\n"
//             "## Custom Instructions\n\n{system}\n\n" (the template leaves this block without
//             <|im_end|> when there are no tools), then the ChatML user turn; {system} defaults
//             to kSmolLm3DefaultThinkPrompt, a given one loses "/think" and "/no_think" and its
//             trailing spaces; "/no_think" in it switches to Reasoning Mode /no_think, the short
//             default kSmolLm3DefaultNoThinkPrompt and a generation prompt followed by
//             "<think>\n\n</think>\n"; "/system_override" replaces the whole block by the
//             system text and <|im_end|>\n
//   Gemma:    "<bos><start_of_turn>user\n" [system "\n\n" (Gemma3 puts the system text at the
//             start of the first user turn)] "{msg}<end_of_turn>\n<start_of_turn>model\n"
//             (msg trimmed)
// `today` is the date the template would take from strftime_now; empty: Llama-3.1's template
// fallback "26 Jul 2024", for Granite and SmolLM3 the current UTC date as their strftime
// formats ("%B %d, %Y", "%d %B %Y").
// Encode the result with parse_special.
std::string apply_chat_template(ChatTemplate chat_template, std::string_view user_message,
                                std::optional<std::string_view> system = std::nullopt,
                                std::string_view today = {});

// The pieces of a multi-turn conversation: chat_prefix, then per turn chat_user_turn(message),
// the model's answer and chat_end_of_answer. prefix + first user turn (first_turn = true) is
// apply_chat_template.
//   ChatML (all three): prefix = the system block (if any); turn
//            "<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n"; end of answer
//            "<|im_end|>\n"
//   Llama-3 / 3.1: prefix "<|begin_of_text|>" [system block]; turn "<|start_header_id|>user
//            <|end_header_id|>\n\n{msg}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
//            end of answer "<|eot_id|>"
//   SmolLM3: prefix the system block; turn as ChatML (with "<think>\n\n</think>\n" after it in
//            /no_think mode); end of answer "<|im_end|>\n"
//   Gemma:   prefix "<bos>"; turn "<start_of_turn>user\n" [system "\n\n" in the first turn]
//            "{msg}<end_of_turn>\n<start_of_turn>model\n"; end of answer "<end_of_turn>\n"
//   Phi:     prefix the system block (if any); turn "<|user|>{msg}<|end|><|assistant|>"; end of
//            answer "<|end|>"
//   Granite: prefix the system block; turn "<|start_of_role|>user<|end_of_role|>{msg}"
//            "<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>"; end of answer
//            "<|end_of_text|>\n"
std::string chat_prefix(ChatTemplate chat_template,
                        std::optional<std::string_view> system = std::nullopt,
                        std::string_view today = {});
// `system` matters to SmolLM3 (its /no_think flag changes the generation prompt) and, in the
// conversation's first turn (`first_turn`), to Gemma: Gemma3's template has no system role and
// writes the system text and "\n\n" at the start of the first user turn.
std::string chat_user_turn(ChatTemplate chat_template, std::string_view user_message,
                           std::optional<std::string_view> system = std::nullopt,
                           bool first_turn = false);
std::string_view chat_end_of_answer(ChatTemplate chat_template);

// The system prompt ChatML uses when none is given (SmolLM2's template default).
inline constexpr std::string_view kSmolLmDefaultSystemPrompt =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
// Qwen2.5's template default.
inline constexpr std::string_view kQwen25DefaultSystemPrompt =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
// Granite 3.3's template default ({} is today's date).
inline constexpr std::string_view kGraniteDefaultSystemPrompt =
    "Knowledge Cutoff Date: April 2024. Today's Date: {}. You are Granite, developed by IBM. "
    "You are a helpful AI assistant.";
// SmolLM3's template defaults for the custom instructions, by reasoning mode.
inline constexpr std::string_view kSmolLm3DefaultNoThinkPrompt =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face.";
inline constexpr std::string_view kSmolLm3DefaultThinkPrompt =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an "
    "assistant involves thoroughly exploring questions through a systematic thinking process "
    "before providing the final precise and accurate solutions. This requires engaging in a "
    "comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, "
    "backtracking, and iteration to develop well-considered thinking process. Please structure "
    "your response into two main sections: Thought and Solution using the specified format: "
    "<think> Thought section </think> Solution section. In the Thought section, detail your "
    "reasoning process in steps. Each step should include detailed considerations such as "
    "analysing questions, summarizing relevant findings, brainstorming new ideas, verifying the "
    "accuracy of the current steps, refining any errors, and revisiting previous steps. In the "
    "Solution section, based on various attempts, explorations, and reflections from the "
    "Thought section, systematically present the final solution that you deem correct. The "
    "Solution section should be logical, accurate, and concise and detail necessary steps "
    "needed to reach the conclusion.";
// Llama-3.1/3.2's date when the template has no strftime_now.
inline constexpr std::string_view kLlama31DefaultDate = "26 Jul 2024";

// True when the template text already starts with the BOS token (Llama-3's
// <|begin_of_text|>): encode it without adding BOS again.
bool chat_template_adds_bos(ChatTemplate chat_template);

// How a user's prompt becomes token ids (shared by `generate` and `run`).
struct PromptOptions {
  bool chat = false;                  // wrap the prompt in the model's chat template
  std::string chat_template;          // a chat_template_name forces one; empty: detect
  std::optional<std::string> system;  // system prompt for the template
};

// Plain: BOS + the text. Chat: the template (forced, or detected from the vocabulary's
// chat_template; an unknown or missing one is an error naming it and suggesting
// --chat-template) applied to the prompt, encoded with special tokens, BOS added unless the
// template already starts with it.
Result<std::vector<int32_t>> encode_prompt(const Tokenizer& tokenizer, std::string_view prompt,
                                           const PromptOptions& options);

}  // namespace hs::tokenizer
