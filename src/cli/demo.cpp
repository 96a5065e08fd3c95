// `headsplit demo`: the README's main job in one command. Exports the default model
// (../shared/models/stories260K when present, else a deterministic random model in
// stories260K's shape with a llama2.c-style tokenizer built here) to a .hsa artifact, then
// generates text from that artifact with the runtime, and says what happened at each step.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "headsplit/backend/export.h"
#include "headsplit/cli/commands.h"
#include "headsplit/engine/engine.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/runtime/run.h"
#include "headsplit/support/file.h"
#include "headsplit/support/shared_dir.h"

namespace hs::cli {
namespace {

struct DemoArgs {
  std::string dir;  // where the artifact goes; empty: a temporary directory, removed after
  std::string prompt = "Once upon a time";
  int64_t n = 48;
  std::string quant;               // "": the family recipe (stories)
  std::vector<std::string> calib;  // empty: the TinyStories sample when present
  bool random = false;
  float temperature = 0.0f;
  uint64_t seed = 0;
  int threads = 0;
  int64_t ar_len = 32;
  int64_t ctx_len = 0;
};

// Calibration text for the random model when the shared TinyStories sample is absent.
constexpr const char* kDemoText =
    "Once upon a time, there was a little girl named Lily. She liked to play in the park with "
    "her dog. One day, they found a big red ball under a tree and played until the sun went "
    "down.";

// A llama2.c-style vocabulary of `vocab` pieces (as tok512.bin is laid out): <unk>, BOS, EOS,
// the 256 byte-fallback pieces <0x00>..<0xFF>, the printable ASCII characters, then every
// prefix of common words with a leading space (" t", " th", " the"), so that greedy pair
// merges can build whole words.
tokenizer::TokenizerData demo_tokenizer(int64_t vocab) {
  static constexpr const char* kWords[] = {
      "the",  "and",  "was",  "she",   "he",  "they", "her",    "his",  "little", "one",
      "day",  "said", "to",   "a",     "in",  "it",   "with",   "play", "happy",  "friend",
      "time", "upon", "once", "there", "saw", "big",  "wanted", "girl", "boy",    "dog",
      "cat",  "ball", "park", "tree",  "mom", "sun",  "fun",    "what", "very",   "could",
      "were", "had",  "not",  "but",   "so",  "of"};
  tokenizer::TokenizerData t;
  t.kind = tokenizer::TokenizerKind::kLlama2c;
  t.pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  t.types = {tokenizer::TokenType::kUnknown, tokenizer::TokenType::kControl,
             tokenizer::TokenType::kControl};
  for (int b = 0; b < 256; ++b) {
    t.pieces.push_back(fmt::format("<0x{:02X}>", b));
    t.types.push_back(tokenizer::TokenType::kByte);
  }
  auto add = [&](const std::string& piece) {
    if (static_cast<int64_t>(t.pieces.size()) >= vocab) return;
    for (const std::string& p : t.pieces) {
      if (p == piece) return;
    }
    t.pieces.push_back(piece);
    t.types.push_back(tokenizer::TokenType::kNormal);
  };
  for (char c = ' '; c <= '~'; ++c) add(std::string(1, c));
  for (const char* word : kWords) {
    const std::string w = std::string(" ") + word;
    for (size_t len = 2; len <= w.size(); ++len) add(w.substr(0, len));
  }
  for (int i = 0; static_cast<int64_t>(t.pieces.size()) < vocab; ++i) add(fmt::format("<{}>", i));
  // Longer pieces merge first (higher score), as in SentencePiece vocabularies.
  for (const std::string& p : t.pieces) t.scores.push_back(static_cast<float>(p.size()));
  for (const std::string& p : t.pieces) {
    t.max_token_length = std::max<int32_t>(t.max_token_length, static_cast<int32_t>(p.size()));
  }
  t.bos_id = 1;
  t.eos_id = 2;
  t.extra_eos_ids = {1};
  t.unk_id = 0;
  return t;
}

struct DemoModel {
  frontend::LlamaModel model;
  std::string description;
  std::vector<std::string> calibration_files;
  std::string calibration_prompt;
};

Result<DemoModel> default_model(bool force_random) {
  const std::string bin = shared_path("models/stories260K/stories260K.bin");
  const std::string tok = shared_path("models/stories260K/tok512.bin");
  const std::string text = shared_path("data/tinystories/valid-sample.txt");
  DemoModel d;
  if (file_exists(text)) d.calibration_files.push_back(text);
  if (!force_random && file_exists(bin) && file_exists(tok)) {
    HS_ASSIGN_OR_RETURN(d.model, frontend::load_model(bin, tok));
    d.description =
        fmt::format("stories260K, the llama2.c checkpoint {} with its tokenizer {}", bin, tok);
    return d;
  }
  HS_ASSIGN_OR_RETURN(frontend::LlamaConfig config, frontend::named_config("stories260k"));
  d.model = frontend::make_random_llama(config, /*seed=*/1);
  d.model.tokenizer = demo_tokenizer(config.vocab_size);
  d.model.source = "random stories260K-shaped model (seed 1)";
  d.description = fmt::format(
      "a deterministic random model in stories260K's shape (seed 1; {}), with a "
      "llama2.c-style tokenizer built by the demo (512 pieces: specials, byte "
      "fallback, ASCII, common English word pieces): its text is noise",
      force_random ? "--random" : "../shared/models/stories260K not found");
  if (d.calibration_files.empty()) d.calibration_prompt = kDemoText;
  return d;
}

// Removes a directory (if set) when it goes out of scope, however the demo ends.
struct RemoveOnExit {
  std::filesystem::path dir;
  ~RemoveOnExit() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

Status run_demo(const DemoArgs& a) {
  HS_ASSIGN_OR_RETURN(DemoModel demo, default_model(a.random));
  std::printf("model: %s\n", demo.description.c_str());

  const bool temporary = a.dir.empty();
  const std::filesystem::path dir = temporary ? std::filesystem::temp_directory_path() /
                                                    fmt::format("headsplit-demo-{}", getpid())
                                              : std::filesystem::path(a.dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return errorf(ErrorKind::kIo, "{}: cannot create the directory: {}", dir.string(),
                  ec.message());
  const RemoveOnExit cleanup{temporary ? dir : std::filesystem::path()};
  const std::string path = (dir / "demo.hsa").string();

  backend::ExportOptions options;
  options.prefill_ar_len = a.ar_len;
  options.context_len = a.ctx_len;
  options.quant.scheme = a.quant;
  options.quant.calibration_files = a.calib.empty() ? demo.calibration_files : a.calib;
  options.quant.calibration_prompt = demo.calibration_prompt;
  backend::ExportObserver observer;
  observer.on_phase_start = [](std::string_view phase) {
    std::fprintf(stderr, "  %.*s ...\n", static_cast<int>(phase.size()), phase.data());
  };
  std::printf("\n== export ==\n");
  std::fflush(stdout);
  HS_ASSIGN_OR_RETURN(backend::ExportSummary summary,
                      backend::export_model(demo.model, path, options, observer));
  std::fputs(backend::format_export_summary(summary).c_str(), stdout);

  std::printf("\n== run (the artifact on the runtime) ==\n%s", a.prompt.c_str());
  std::fflush(stdout);
  HS_ASSIGN_OR_RETURN(auto engine,
                      engine::Engine::load({.model_path = path, .threads = a.threads}));
  engine::GenerateOptions run{.max_new_tokens = a.n};
  run.sampler.temperature = a.temperature;
  run.sampler.seed = a.seed;
  HS_ASSIGN_OR_RETURN(runtime::RunReport report,
                      engine->generate(a.prompt, run, [](std::string_view text) {
                        std::fwrite(text.data(), 1, text.size(), stdout);
                        std::fflush(stdout);
                      }));
  std::printf("\n\n== stats ==\n%s", runtime::format_run_stats(report).c_str());
  if (temporary) {
    std::printf(
        "\n(the artifact was written to a temporary directory and removed; pass --dir "
        "to keep it)\n");
  } else {
    std::printf("\nartifact kept: %s\nrun it again: headsplit run -m %s -p \"%s\"\n", path.c_str(),
                path.c_str(), a.prompt.c_str());
  }
  return ok_status();
}

}  // namespace

void register_demo(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Export the default model (../shared/models/stories260K, or a random model in its shape) "
      "to a quantized, head-split .hsa artifact and generate text from it with the runtime.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--dir", args->dir,
                  "keep the artifact in this directory (default: a temporary one, removed)");
  cmd->add_option("-p,--prompt", args->prompt, "prompt text");
  cmd->add_option("-n", args->n, "new tokens to generate")->check(CLI::NonNegativeNumber);
  cmd->add_option("--quant", args->quant,
                  "scheme (16a8w, 16a4w, 16a4w-block32, ..., none for float; default: the "
                  "stories recipe, 16a4w with an 8-bit head and KV cache)");
  cmd->add_option("--calib", args->calib,
                  "calibration text, one sample per line (default: "
                  "../shared/data/tinystories/valid-sample.txt when present)");
  cmd->add_flag("--random", args->random,
                "use the random stories260K-shaped model even when the checkpoint is present");
  cmd->add_option("--temp", args->temperature, "sampling temperature (0: greedy)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->seed, "sampler seed");
  cmd->add_option("--threads", args->threads, "runtime threads (0: every hardware thread)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ar-len", args->ar_len, "prefill AR length N (decode is AR-1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ctx-len", args->ctx_len, "context length C (0: the model's, at most 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(
      "Example, from the repository root after building:\n"
      "  build/bin/headsplit demo -p \"Once upon a time\" -n 64\n"
      "Step by step: headsplit export -m ... -o model.hsa, then headsplit run -m model.hsa.");
  set_action(*cmd, [args] { return run_demo(*args); });
}

}  // namespace hs::cli
