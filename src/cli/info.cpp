// `headsplit info FILE`: what `inspect` is for an artifact, for a checkpoint (llama2.c, GGUF,
// Hugging Face folder) or a vocabulary file: format, architecture and shapes, the tensors as
// stored (name, dtype, shape, bytes), the tokenizer and chat template, the recipe `export`
// would pick, and whether headsplit supports it (if not, the loader's reason). An artifact is
// described by runtime::inspect_artifact.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "headsplit/backend/export.h"
#include "headsplit/cli/commands.h"
#include "headsplit/cli/sources.h"
#include "headsplit/frontend/gguf.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/frontend/safetensors.h"
#include "headsplit/runtime/inspect.h"
#include "headsplit/tokenizer/chat.h"

namespace hs::cli {

namespace {

struct InfoArgs {
  std::string path;
  std::string tokenizer;
  bool no_tensors = false;
};

struct TensorRow {
  std::string name, dtype;
  std::vector<int64_t> shape;
  int64_t bytes = 0;
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.2f} {}", b, units[u]);
}

std::string count_text(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.2f} K", n / 1e3);
  return fmt::format("{}", n);
}

// The tensors as the file stores them (GGUF, safetensors), or as headsplit names them
// (llama2.c, f32).
Result<std::vector<TensorRow>> gguf_tensors(const frontend::GgufFile& f) {
  std::vector<TensorRow> rows;
  for (const frontend::GgufTensorInfo& t : f.tensors()) {
    const std::string_view type = frontend::ggml_type_name(t.type);
    rows.push_back({t.name, type.empty() ? fmt::format("type {}", t.type) : std::string(type),
                    t.shape(), static_cast<int64_t>(t.nbytes)});
  }
  return rows;
}

Result<std::vector<TensorRow>> safetensors_tensors(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".safetensors") files.push_back(it->path().string());
  }
  if (ec) return errorf(ErrorKind::kIo, "{}: cannot list the folder: {}", dir, ec.message());
  std::sort(files.begin(), files.end());
  std::vector<TensorRow> rows;
  for (const std::string& file : files) {
    HS_ASSIGN_OR_RETURN(frontend::SafetensorsFile f, frontend::SafetensorsFile::open(file));
    for (const frontend::SafetensorsTensor& t : f.tensors()) {
      rows.push_back({t.name, t.dtype, t.shape, static_cast<int64_t>(t.end - t.begin)});
    }
  }
  return rows;
}

std::vector<TensorRow> model_tensors(const frontend::LlamaModel& model) {
  std::vector<TensorRow> rows;
  for (const frontend::NamedWeight& w : frontend::named_weights(model)) {
    if (w.weight->shape.empty()) continue;  // absent (biases, a tied output)
    rows.push_back({w.name, "f32", w.weight->shape, w.weight->numel() * 4});
  }
  return rows;
}

void print_tensors(const std::vector<TensorRow>& rows) {
  int64_t total = 0;
  size_t width = 4;
  for (const TensorRow& r : rows) {
    total += r.bytes;
    width = std::max(width, r.name.size());
  }
  std::printf("tensors: %zu, %s\n", rows.size(), human_bytes(static_cast<double>(total)).c_str());
  for (const TensorRow& r : rows) {
    std::printf("  %-*s %-6s %-20s %12s\n", static_cast<int>(width), r.name.c_str(),
                r.dtype.c_str(), fmt::format("[{}]", fmt::join(r.shape, ", ")).c_str(),
                human_bytes(static_cast<double>(r.bytes)).c_str());
  }
}

std::string_view kind_name(tokenizer::TokenizerKind kind) {
  switch (kind) {
    case tokenizer::TokenizerKind::kLlama2c: return "llama2.c (SentencePiece scores)";
    case tokenizer::TokenizerKind::kSpm: return "SentencePiece BPE";
    case tokenizer::TokenizerKind::kByteLevelBpe: return "byte-level BPE";
  }
  return "?";
}

void print_tokenizer(const tokenizer::TokenizerData& t) {
  auto piece = [&](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < t.pieces.size()
               ? fmt::format("{} '{}'", id, escape_text(t.pieces[static_cast<size_t>(id)]))
               : std::string("none");
  };
  std::printf(
      "tokenizer: %s, %zu tokens%s, BOS %s%s, EOS %s", std::string(kind_name(t.kind)).c_str(),
      t.pieces.size(),
      t.kind == tokenizer::TokenizerKind::kByteLevelBpe
          ? fmt::format(", {} merges, pre-tokenizer {}", t.merges.size(), t.pre_tokenizer).c_str()
          : "",
      piece(t.bos_id).c_str(), t.add_bos ? " (added)" : "", piece(t.eos_id).c_str());
  for (int32_t id : t.extra_eos_ids) std::printf(", also stops at %s", piece(id).c_str());
  std::printf("\n");
  if (t.chat_template.empty()) {
    std::printf("chat template: none\n");
    return;
  }
  auto detected = tokenizer::detect_chat_template(t.chat_template);
  std::printf("chat template: %zu chars, %s\n", t.chat_template.size(),
              !detected.ok()                                  ? "not one headsplit renders"
              : *detected == tokenizer::ChatTemplate::kChatMl ? "ChatML (rendered by headsplit)"
                                                              : "Llama-3 (rendered by headsplit)");
}

void print_model(const frontend::LlamaModel& model) {
  const frontend::LlamaConfig& c = model.config;
  std::printf("architecture: llama (%s)\n", c.name.c_str());
  std::printf(
      "  L=%lld D=%lld F=%lld H=%lld Hkv=%lld Dh=%lld V=%lld, trained context %lld\n"
      "  rope theta %g%s, rms eps %g, %s embeddings%s\n",
      static_cast<long long>(c.n_layers), static_cast<long long>(c.dim),
      static_cast<long long>(c.hidden_dim), static_cast<long long>(c.n_heads),
      static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.head_dim),
      static_cast<long long>(c.vocab_size), static_cast<long long>(c.max_seq_len), c.rope_theta,
      c.rope_scaling ? " (llama3 scaling)" : "", c.rms_eps, c.tied_embeddings ? "tied" : "untied",
      c.attention_bias ? ", q/k/v biases" : "");
  int64_t params = 0;
  for (const frontend::NamedWeight& w : frontend::named_weights(model)) {
    if (!w.weight->shape.empty()) params += w.weight->numel();
  }
  std::printf("parameters: %s\n", count_text(params).c_str());
}

// The recipe export would pick (backend::default_recipe / quant_config with no options).
void print_recipe(const frontend::LlamaModel& model) {
  const std::string recipe = backend::default_recipe(model);
  backend::QuantOptions options;
  options.scheme = "";
  auto config = backend::quant_config(model, options);
  std::string what = "?";
  if (config.ok()) {
    what = quant::scheme_name(config->scheme);
    for (const quant::Rule& r : config->rules) what += ", " + r.text;
    what += fmt::format(", {}-bit KV", config->kv_bits);
  }
  std::printf("export would use: %s (%s)\n", what.c_str(),
              recipe.empty() ? "no recipe fits the name: the default scheme"
                             : fmt::format("recipe {}", recipe).c_str());
}

Status run_info(const InfoArgs& a) {
  HS_ASSIGN_OR_RETURN(SourceKind kind, detect_source(a.path));
  if (kind == SourceKind::kArtifact) {
    HS_ASSIGN_OR_RETURN(std::string text, runtime::inspect_artifact(a.path, {}));
    std::fputs(text.c_str(), stdout);
    return ok_status();
  }
  std::printf("file: %s\nformat: %s\n", a.path.c_str(),
              std::string(source_kind_name(kind)).c_str());
  std::optional<std::vector<TensorRow>> tensors;
  if (kind == SourceKind::kGguf) {
    HS_ASSIGN_OR_RETURN(frontend::GgufFile f, frontend::GgufFile::open(a.path));
    const frontend::GgufValue* arch = f.find("general.architecture");
    std::printf(
        "gguf: version %u, %zu metadata keys, %zu tensors, general.architecture %s\n", f.version(),
        f.metadata().size(), f.tensors().size(),
        arch != nullptr && arch->type == frontend::GgufType::kString ? arch->s.c_str() : "(none)");
    HS_ASSIGN_OR_RETURN(tensors, gguf_tensors(f));
  } else if (kind == SourceKind::kHuggingFace) {
    HS_ASSIGN_OR_RETURN(tensors, safetensors_tensors(a.path));
  }

  // The tokenizer on its own (vocabulary files have nothing else).
  auto tok = load_source_tokenizer(a.path, a.tokenizer);
  const bool tokenizer_only = kind == SourceKind::kLlama2cTokenizer ||
                              kind == SourceKind::kTokenizerJson ||
                              (kind == SourceKind::kGguf && tensors && tensors->empty());
  if (tokenizer_only) {
    if (!tok.ok()) return tok.error();
    print_tokenizer(*tok);
    std::printf("supported: as a tokenizer only (a vocabulary file has no weights)\n");
    return ok_status();
  }

  auto model = frontend::load_model(a.path, a.tokenizer);
  if (model.ok()) {
    print_model(*model);
    if (!tensors) tensors = model_tensors(*model);
  }
  if (!a.no_tensors && tensors) print_tensors(*tensors);
  if (model.ok() && model->tokenizer) {
    print_tokenizer(*model->tokenizer);
  } else if (tok.ok()) {
    print_tokenizer(*tok);
  } else {
    std::printf("tokenizer: none (%s)\n", tok.error().message().c_str());
  }
  if (!model.ok()) {
    std::printf("supported: no: %s\n", model.error().message().c_str());
    return ok_status();
  }
  print_recipe(*model);
  if (!model->tokenizer) {
    std::printf("supported: the weights load, but export and run need a tokenizer (pass -t)\n");
  } else {
    std::printf("supported: yes (headsplit export -m %s)\n", a.path.c_str());
  }
  return ok_status();
}

}  // namespace

void register_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "info",
      "Describe a checkpoint (llama2.c, GGUF, Hugging Face folder) or a vocabulary file: "
      "architecture, shapes, tensors with dtypes and sizes, tokenizer, chat template, the "
      "recipe export would pick and whether headsplit supports it. For a .hsa artifact it "
      "prints what 'inspect' prints.");
  cmd->add_option("file", args->path, "the checkpoint, folder, vocabulary file or artifact")
      ->required();
  cmd->add_option("-t,--tokenizer", args->tokenizer,
                  "tokenizer.bin for a llama2.c checkpoint (default: next to it)");
  cmd->add_flag("--no-tensors", args->no_tensors, "leave out the tensor list");
  cmd->footer(
      "Examples:\n"
      "  headsplit info ../shared/models/stories260K/stories260K.bin\n"
      "  headsplit info ../shared/models/stories260K/stories260K.gguf --no-tensors\n"
      "  headsplit info SmolLM2-135M-Instruct/\n"
      "  headsplit info ../shared/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf");
  set_action(*cmd, [args] { return run_info(*args); });
}

}  // namespace hs::cli
