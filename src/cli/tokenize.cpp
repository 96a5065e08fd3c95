// `headsplit tokenize`: text -> token ids (or ids -> text with --detokenize) with the tokenizer
// of any source headsplit reads, printed as llama.cpp's llama-tokenize does:
//      1 -> '<s>'        (control tokens decode to nothing: their piece is shown)
//  15043 -> ' Hello'     20 48 65 6c 6c 6f
// one token per line: its id, its text after the previous token (decode_token), its bytes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headsplit/cli/commands.h"
#include "headsplit/cli/sources.h"
#include "headsplit/support/file.h"

namespace hs::cli {

namespace {

struct TokenizeArgs {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  std::string file;
  bool ids = false;
  bool json = false;
  bool no_bos = false;
  bool special = false;
  bool detokenize = false;
  bool prompt_given = false;
};

std::string hex_bytes(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{}{:02x}", out.empty() ? "" : " ", c);
  return out;
}

// "1 15043 3186", "[1, 15043, 3186]" or "1,15043": the ids, each within [0, V).
Result<std::vector<int32_t>> parse_ids(std::string_view text, int64_t vocab_size) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == ',' || c == '[' || c == ']' || c == '\n' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || end == text.data() + i) {
      return errorf(ErrorKind::kInvalidArgument,
                    "--detokenize: '{}' at offset {} is not a token id (expected ids separated by "
                    "spaces or commas, e.g. \"1 15043 3186\")",
                    text.substr(i, std::min<size_t>(16, text.size() - i)), i);
    }
    if (v < 0 || v >= vocab_size) {
      return errorf(ErrorKind::kInvalidArgument,
                    "--detokenize: token id {} is outside the vocabulary [0, {})", v, vocab_size);
    }
    ids.push_back(static_cast<int32_t>(v));
    i = static_cast<size_t>(end - text.data());
  }
  return ids;
}

void print_tokens(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& ids,
                  const TokenizeArgs& a) {
  if (a.ids) {
    std::printf("[%s]\n", fmt::format("{}", fmt::join(ids, ", ")).c_str());
    return;
  }
  if (a.json) {
    nlohmann::json j;
    j["ids"] = ids;
    j["tokens"] = nlohmann::json::array();
    int32_t prev = -1;
    for (int32_t id : ids) {
      const std::string text = tok.decode_token(prev, id);
      std::vector<int> bytes(text.begin(), text.end());
      for (int& b : bytes) b &= 0xff;
      j["tokens"].push_back({{"id", id},
                             {"piece", tok.data().pieces[static_cast<size_t>(id)]},
                             {"text", text},
                             {"bytes", bytes}});
      prev = id;
    }
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  int32_t prev = -1;
  for (int32_t id : ids) {
    // Control tokens (BOS, <|im_start|>) decode to nothing: show their piece, with no bytes.
    const std::string text = tok.decode_token(prev, id);
    const bool control = tok.token_type(id) == tokenizer::TokenType::kControl;
    const std::string shown =
        text.empty() && control ? tok.data().pieces[static_cast<size_t>(id)] : text;
    const std::string bytes = hex_bytes(text);
    std::printf("%6d -> '%s'%s%s\n", id, escape_text(shown).c_str(), bytes.empty() ? "" : "  ",
                bytes.c_str());
    prev = id;
  }
}

Status run_tokenize(const TokenizeArgs& a) {
  if (a.prompt_given == !a.file.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "give the text with -p TEXT or -f FILE (one of them)");
  }
  std::string text = a.prompt;
  if (!a.file.empty()) {
    HS_ASSIGN_OR_RETURN(text, read_text_file(a.file));
  }
  HS_ASSIGN_OR_RETURN(tokenizer::TokenizerData data, load_source_tokenizer(a.model, a.tokenizer));
  HS_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(std::move(data)));
  if (a.detokenize) {
    HS_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(text, tok->vocab_size()));
    const std::string decoded = tok->decode(ids);
    if (a.json) {
      std::puts(nlohmann::json{{"ids", ids}, {"text", decoded}}
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    .c_str());
    } else {
      std::fwrite(decoded.data(), 1, decoded.size(), stdout);
      std::fputc('\n', stdout);
    }
    return ok_status();
  }
  print_tokens(*tok, tok->encode(text, !a.no_bos, a.special), a);
  return ok_status();
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Text -> token ids with the tokenizer of a model, artifact or vocabulary file (like "
      "llama.cpp's llama-tokenize); --detokenize for ids -> text.");
  cmd->add_option("-m,--model", args->model,
                  "what holds the tokenizer: .hsa artifact, .gguf (vocabulary-only files too), "
                  "Hugging Face folder or tokenizer.json, llama2.c tokenizer.bin or checkpoint")
      ->required();
  cmd->add_option("-t,--tokenizer", args->tokenizer,
                  "tokenizer.bin for a llama2.c checkpoint (default: next to it)");
  cmd->add_option("-p,--prompt", args->prompt, "the text (with --detokenize: the ids)")
      ->each([args](const std::string&) { args->prompt_given = true; });
  cmd->add_option("-f,--file", args->file, "read the text (or the ids) from this file, as is");
  cmd->add_flag("--ids", args->ids, "print only the ids, as a list [1, 2, 3]");
  cmd->add_flag("--json", args->json, "print JSON: ids and per token id, piece, text, bytes");
  cmd->add_flag("--no-bos", args->no_bos, "do not prepend BOS (even when the vocabulary asks)");
  cmd->add_flag("--special", args->special,
                "parse special tokens written in the text (<s>, <|im_start|>, ...)");
  cmd->add_flag("--detokenize", args->detokenize,
                "the input is token ids (\"1 15043\" or \"[1, 15043]\"); print their text");
  cmd->footer(
      "Each line: id -> 'text of the token' and its bytes in hex. Examples:\n"
      "  headsplit tokenize -m ../shared/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf -p \"Hello "
      "world\"\n"
      "  headsplit tokenize -m ../shared/models/stories260K/tok512.bin -p \"Once upon a time\" "
      "--ids\n"
      "  headsplit tokenize -m stories260K.hsa -f story.txt --json\n"
      "  headsplit tokenize -m SmolLM2-135M/ -p \"<|im_start|>user\" --special --no-bos\n"
      "  headsplit tokenize -m ../shared/tokenizers/llama-spm/ggml-vocab-llama-spm.gguf "
      "--detokenize -p \"1 15043 3186\"");
  set_action(*cmd, [args] { return run_tokenize(*args); });
}

}  // namespace hs::cli
