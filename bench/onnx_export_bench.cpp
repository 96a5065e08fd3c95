// Benchmark: the ONNX export against the .hsa export of the same random-weight model in a
// named shape (issue 15). One process per format, to be timed from outside:
//   /usr/bin/time -v taskset -c 0 onnx_export_bench --shape smollm2-135m --format onnx -o DIR
//   /usr/bin/time -v taskset -c 0 onnx_export_bench --shape smollm2-135m --format hsa -o F.hsa
// Both run the same pipeline (random weights seed 1, 16a8w, 8 x 128 calibration tokens,
// AR-32 prefill + AR-1 decode, C = 1024, split) and differ only in the writer. Prints the
// export summary and, for onnx, the models written (nodes, layer-0 attention projections
// H + 2*Hkv + 1, 2L cache inputs).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"
#include "headsplit/backend/export.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/onnx/export.h"

int main(int argc, char** argv) {
  std::string shape = "smollm2-135m", format = "onnx", output, scheme = "16a8w";
  int samples = 8, seq_len = 128;
  int64_t ar_len = 32, context_len = 1024;
  bool no_split = false;
  CLI::App app{"ONNX vs .hsa export of a random-weight model in a named shape"};
  app.add_option("--shape", shape, "stories260k, smollm2-135m, llama3.2-1b");
  app.add_option("--format", format, "onnx or hsa")->check(CLI::IsMember({"onnx", "hsa"}));
  app.add_option("-o,--output", output, "folder (onnx) or file (hsa)")->required();
  app.add_option("--quant", scheme, "scheme");
  app.add_option("--samples", samples, "calibration sequences");
  app.add_option("--seq-len", seq_len, "tokens per calibration sequence");
  app.add_option("--ar-len", ar_len, "prefill AR length N");
  app.add_option("--ctx-len", context_len, "context length C");
  app.add_flag("--no-split", no_split, "keep multi-head attention");
  CLI11_PARSE(app, argc, argv);
  namespace fe = hs::frontend;
  const fe::LlamaConfig config = hs::bench::must(fe::named_config(shape), "shape");
  fe::LlamaModel model = fe::make_random_llama(config, 1);
  model.tokenizer = hs::bench::synthetic_tokenizer(config.vocab_size);
  model.source = "random " + shape + " (seed 1)";
  hs::backend::ExportOptions o;
  o.prefill_ar_len = ar_len;
  o.context_len = context_len;
  o.quant.scheme = scheme;
  o.quant.progress = false;
  o.preprocess.split = !no_split;
  for (int i = 0; i < samples; ++i) {
    o.quant.calibration_samples.push_back(
        hs::bench::token_sequence(1000 + static_cast<uint64_t>(i), seq_len, config.vocab_size));
  }
  auto prepared = hs::bench::must(hs::backend::prepare_export(model, o), "export");
  if (format == "hsa") {
    auto summary = hs::bench::must(hs::backend::write_export(prepared, output), "write");
    std::fputs(hs::backend::format_export_summary(summary).c_str(), stdout);
  } else {
    std::fputs(hs::backend::format_export_summary(prepared.summary).c_str(), stdout);
    auto summary = hs::bench::must(hs::onnx::write_onnx(prepared, output), "onnx");
    std::fputs(hs::onnx::format_onnx_summary(summary).c_str(), stdout);
  }
  return 0;
}
