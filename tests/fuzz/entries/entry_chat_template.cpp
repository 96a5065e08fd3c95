// Fuzz entry point(s): chat template renderer (see fuzz_entries.h).
#include "fuzz_entries.h"
#include "headsplit/tokenizer/chat.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::fuzz {

int chat_template(const uint8_t* data, size_t size) {
  std::string_view text = as_text(data, size);
  (void)tokenizer::detect_chat_template(text);
  (void)tokenizer::parse_chat_template_name(text);
  for (auto t : {tokenizer::ChatTemplate::kChatMl, tokenizer::ChatTemplate::kLlama3}) {
    (void)tokenizer::apply_chat_template(t, text, text.substr(0, text.size() / 2));
    (void)tokenizer::chat_prefix(t, text);
    (void)tokenizer::chat_user_turn(t, text);
  }
  // Rendered prompts encoded with special tokens, as generate --chat does.
  static const auto tok = [] {
    tokenizer::TokenizerData d;
    d.kind = tokenizer::TokenizerKind::kByteLevelBpe;
    d.pre_tokenizer = "gpt2";
    for (int b = 0; b < 256; ++b) d.pieces.push_back(std::string(1, static_cast<char>(b)));
    for (const char* s : {"<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
                          "<|end_header_id|>", "<|eot_id|>"}) {
      d.pieces.push_back(s);
    }
    d.types.assign(d.pieces.size(), tokenizer::TokenType::kNormal);
    for (size_t i = 256; i < d.pieces.size(); ++i) d.types[i] = tokenizer::TokenType::kControl;
    d.chat_template = "<|im_start|>";
    return tokenizer::Tokenizer::create(d);
  }();
  if (tok.ok()) {
    (void)tokenizer::encode_prompt(**tok, text, {.chat = true});
    (void)tokenizer::encode_prompt(**tok, text, {.chat = true, .chat_template = "llama3"});
  }
  return 0;
}

}  // namespace hs::fuzz
