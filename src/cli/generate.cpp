// `headsplit generate`: load a checkpoint, build the static llama graphs (prefill AR-N and
// decode AR-1), run them on the reference interpreter with the runner (SmartMask KV cache,
// sampler), stream the text to stdout and print llama.cpp-style stats to stderr.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "headsplit/cli/commands.h"
#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/tokenizer/chat.h"

namespace hs::cli {

namespace {

struct GenerateArgs {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  int64_t n = 256;
  float temperature = 0.0f;
  int64_t top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  int64_t ar_len = 32;
  int64_t ctx_len = 0;  // 0: min(model max_seq_len, 512)
  bool r3 = false;
  bool masked_softmax = false;
  std::string attention = "mha";
  std::string kv_layout = "per-layer";
  bool chat = false;
  std::string chat_template;
  std::string system;
  std::string lookahead;  // "" | N,W,G
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Result<frontend::BuildOptions> build_options(const GenerateArgs& a, int64_t context_len) {
  frontend::BuildOptions o;
  o.context_len = context_len;
  o.r3 = a.r3;
  o.mask = a.masked_softmax ? frontend::MaskKind::kMaskedSoftmax : frontend::MaskKind::kAdditive;
  o.form = a.attention == "sha" ? frontend::AttentionForm::kShaFromSource
                                : frontend::AttentionForm::kMha;
  o.cache_layout = a.kv_layout == "per-head" ? frontend::CacheLayout::kPerHead
                                             : frontend::CacheLayout::kPerLayer;
  if (o.cache_layout == frontend::CacheLayout::kPerHead &&
      o.form != frontend::AttentionForm::kShaFromSource) {
    return Error(ErrorKind::kInvalidArgument,
                 "--kv-layout per-head needs --attention sha (the MHA form keeps one cache "
                 "tensor per layer)");
  }
  return o;
}

Status run_generate(const GenerateArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, frontend::load_model(a.model, a.tokenizer));
  if (!model.tokenizer) {
    return errorf(ErrorKind::kNotFound,
                  "{}: no tokenizer found next to the checkpoint; pass "
                  "-t/--tokenizer",
                  a.model);
  }
  HS_ASSIGN_OR_RETURN(auto tokenizer, tokenizer::Tokenizer::create(*model.tokenizer));

  HS_ASSIGN_OR_RETURN(const frontend::StepLengths lengths,
                      frontend::step_lengths(model, a.ctx_len, a.ar_len));
  const int64_t context_len = lengths.context_len;
  HS_ASSIGN_OR_RETURN(frontend::BuildOptions options, build_options(a, context_len));
  std::vector<int64_t> ar_lens = lengths.ar_lens;
  // Lookahead runs on the prefill graph when it is large enough, else on one more graph.
  HS_ASSIGN_OR_RETURN(const runner::LookaheadOptions lookahead,
                      parse_lookahead_option(a.lookahead));
  if (lookahead.enabled() && a.ar_len < runner::lookahead_rows(lookahead)) {
    const int64_t t = runner::lookahead_export_ar_len(lookahead);
    if (t >= context_len) {
      return errorf(
          ErrorKind::kInvalidArgument,
          "--lookahead {} needs an ar length of {}, not smaller than the context length {}",
          a.lookahead, t, context_len);
    }
    ar_lens.push_back(t);
  }
  std::vector<ir::Graph> graphs;
  for (int64_t t : ar_lens) {
    options.ar_len = t;
    HS_ASSIGN_OR_RETURN(ir::Graph graph, frontend::build_llama(model, options));
    graphs.push_back(std::move(graph));
  }
  irexec::GraphStepModelOptions step_options;
  step_options.sliding_window = model.config.sliding_window;
  HS_ASSIGN_OR_RETURN(auto step_model,
                      irexec::GraphStepModel::create(std::move(graphs), step_options));
  HS_ASSIGN_OR_RETURN(
      runner::Sampler sampler,
      runner::Sampler::create(
          {.temperature = a.temperature, .top_k = a.top_k, .top_p = a.top_p, .seed = a.seed}));
  const double load_seconds = seconds_since(start);

  tokenizer::PromptOptions prompt_options;
  prompt_options.chat = a.chat || !a.chat_template.empty();
  prompt_options.chat_template = a.chat_template;
  if (!a.system.empty()) prompt_options.system = a.system;
  HS_ASSIGN_OR_RETURN(const std::vector<int32_t> prompt,
                      tokenizer::encode_prompt(*tokenizer, a.prompt, prompt_options));
  if (prompt.empty()) {
    return errorf(ErrorKind::kInvalidArgument,
                  "the prompt is empty and the vocabulary has no BOS token to start from");
  }
  const frontend::LlamaConfig& c = model.config;
  std::string graphs_text =
      a.ar_len == 1 ? std::string("AR-1") : fmt::format("AR-{} + AR-1", a.ar_len);
  if (ar_lens.size() > (a.ar_len == 1 ? 1u : 2u)) {
    graphs_text += fmt::format(" + AR-{} (lookahead)", ar_lens.back());
  }
  std::fprintf(stderr,
               "model: %s (L=%lld D=%lld H=%lld Hkv=%lld V=%lld), context %lld, graphs %s, "
               "%s, %s caches%s%s\n",
               model.source.c_str(), static_cast<long long>(c.n_layers),
               static_cast<long long>(c.dim), static_cast<long long>(c.n_heads),
               static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.vocab_size),
               static_cast<long long>(context_len), graphs_text.c_str(),
               a.attention == "sha" ? "SHA from source" : "MHA", a.kv_layout.c_str(),
               a.r3 ? ", r3" : "", a.masked_softmax ? ", masked softmax" : "");

  std::fputs(a.prompt.c_str(), stdout);
  std::fflush(stdout);
  runner::Generator generator(*step_model, *tokenizer);
  HS_ASSIGN_OR_RETURN(
      runner::GenerationResult result,
      generator.generate(prompt, sampler, {.max_new_tokens = a.n, .lookahead = lookahead},
                         [](int32_t, std::string_view text) {
                           std::fwrite(text.data(), 1, text.size(), stdout);
                           std::fflush(stdout);
                         }));
  std::fputs("\n", stdout);
  std::fflush(stdout);
  result.stats.load_seconds = load_seconds;
  std::fputs("\n", stderr);
  print_generation_stats(result, stderr);
  return ok_status();
}

}  // namespace

void register_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Generate text from a checkpoint: build the static graphs and run them on the reference "
      "interpreter with the SmartMask KV cache.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", args->model,
                  "checkpoint: llama2.c .bin, .gguf file or Hugging Face folder")
      ->required();
  cmd->add_option("-t,--tokenizer", args->tokenizer,
                  "tokenizer.bin for llama2.c checkpoints (default: tokenizer.bin or tok<V>.bin "
                  "next to the checkpoint)");
  cmd->add_option("-p,--prompt", args->prompt, "prompt text (empty: generate from BOS)");
  cmd->add_option("-n", args->n,
                  "new tokens to generate (clamped so that prompt + new tokens fit the context)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", args->temperature, "sampling temperature (0: greedy)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", args->top_k, "keep the k most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", args->top_p, "keep the smallest set of tokens reaching p (1: all)")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--seed", args->seed, "sampler seed (same seed, same text)");
  cmd->add_option("--ar-len", args->ar_len,
                  "prefill AR length N: the prompt runs N tokens per step, then decode runs "
                  "AR-1 (1: AR-1 only)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ctx-len", args->ctx_len,
                  "context length C (0: the model's max_seq_len, at most 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--r3", args->r3, "rotate q and k by a Hadamard matrix after RoPE (SpinQuant R3)");
  cmd->add_flag("--masked-softmax", args->masked_softmax,
                "masked softmax (where(mask == 0, s, rowmin(s) - 20)) instead of an additive mask");
  cmd->add_option("--attention", args->attention,
                  "attention form: mha, or sha (per-head graph built from source)")
      ->check(CLI::IsMember({"mha", "sha"}));
  cmd->add_option("--kv-layout", args->kv_layout,
                  "cache I/O: per-layer (2L tensors) or per-head (2*L*Hkv, needs --attention sha)")
      ->check(CLI::IsMember({"per-layer", "per-head"}));
  cmd->add_flag("--chat", args->chat,
                "wrap the prompt in the model's chat template (ChatML, Qwen2.5, Qwen3, Llama-3, "
                "Llama-3.1, Granite, Gemma, detected from its tokenizer_config.json / GGUF "
                "metadata)");
  cmd->add_option("--chat-template", args->chat_template,
                  "force a chat template (implies --chat): " + tokenizer::chat_template_names(", "))
      ->check(CLI::IsMember(
          {"chatml", "llama3", "qwen2.5", "qwen3", "llama3.1", "granite", "smollm3", "gemma"}));
  cmd->add_option("--system", args->system,
                  "system prompt for --chat (default: the template's own, e.g. SmolLM2's or "
                  "Qwen2.5's)");
  add_lookahead_option(*cmd, args->lookahead);
  cmd->footer(
      "Text goes to stdout, the stats to stderr. Example:\n"
      "  headsplit generate -m ../shared/models/stories260K/stories260K.bin \\\n"
      "      -t ../shared/models/stories260K/tok512.bin -p \"Once upon a time\" -n 64 --ar-len 8");
  set_action(*cmd, [args] { return run_generate(*args); });
}

}  // namespace hs::cli
