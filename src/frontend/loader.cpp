// load_model: format detection and dispatch to the llama2.c, GGUF and Hugging Face readers.
#include "headsplit/frontend/loader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "headsplit/frontend/gguf.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/llama2c.h"
#include "headsplit/support/file.h"

namespace hs::frontend {

namespace {

bool starts_with_gguf_magic(const std::string& path) {
  auto file = MappedFile::open(path);  // regular files only, never blocks
  return file.ok() && (*file)->size() >= 4 && std::memcmp((*file)->data(), "GGUF", 4) == 0;
}

// tokenizer.bin, then tok<V>.bin, in the checkpoint's folder; "" when neither exists.
Result<std::string> find_llama2c_tokenizer(const std::string& bin_path) {
  HS_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(bin_path));
  const std::filesystem::path dir = std::filesystem::path(bin_path).parent_path();
  std::vector<std::string> candidates = {(dir / "tokenizer.bin").string()};
  if (file->size() >= kLlama2cHeaderBytes) {
    int32_t vocab = 0;
    std::memcpy(&vocab, file->data() + 20, 4);
    const int64_t v = vocab < 0 ? -int64_t{vocab} : vocab;
    candidates.push_back((dir / fmt::format("tok{}.bin", v)).string());
  }
  for (const std::string& c : candidates) {
    if (file_exists(c)) return c;
  }
  return std::string();
}

// Whether every element is finite: x * 0 is +-0 for finite x and NaN for inf or NaN, so a
// sum of such products is NaN exactly when some element is not finite (4 SSE2 lanes x 4
// accumulators; one pass at memory speed over the weights).
bool all_finite(std::span<const float> v) {
  size_t i = 0;
  bool ok = true;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  __m128 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  for (; i + 16 <= v.size(); i += 16) {
    a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(v.data() + i), zero));
    a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(v.data() + i + 4), zero));
    a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_loadu_ps(v.data() + i + 8), zero));
    a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_loadu_ps(v.data() + i + 12), zero));
  }
  const __m128 a = _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3));
  ok = _mm_movemask_ps(_mm_cmpunord_ps(a, a)) == 0;
#endif
  for (; i < v.size(); ++i) ok &= std::isfinite(v[i]);
  return ok;
}

// A NaN or infinite weight, named with the source file, the tensor and the element (kCorrupt):
// found once at load rather than as "calibration saw NaN" in some cache value later.
Status check_finite_weights(const LlamaModel& model) {
  const std::string what = model.source.empty() ? model.config.name : model.source;
  for (const NamedWeight& nw : named_weights(model)) {
    const Weight& w = *nw.weight;
    if (w.empty()) continue;
    std::span<const float> v = w.f32();
    if (all_finite(v)) continue;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        return errorf(ErrorKind::kCorrupt,
                      "{}: tensor '{}' has {} at element {} of {}; the checkpoint is damaged", what,
                      nw.name, v[i], i, v.size());
      }
    }
  }
  return ok_status();
}

}  // namespace

Result<ModelFormat> detect_model_format(const std::string& path) {
  if (is_directory(path)) return ModelFormat::kHuggingFace;
  if (!path_exists(path))
    return errorf(ErrorKind::kNotFound, "{}: no such file or directory", path);
  HS_TRY(check_regular_file(path));  // a FIFO, device or socket: say which
  if (path.ends_with(".gguf") || starts_with_gguf_magic(path)) return ModelFormat::kGguf;
  return ModelFormat::kLlama2c;
}

Result<LlamaModel> load_model(const std::string& path, const std::string& tokenizer_path) {
  HS_ASSIGN_OR_RETURN(ModelFormat format, detect_model_format(path));
  LlamaModel model;
  switch (format) {
    case ModelFormat::kHuggingFace: {
      HS_ASSIGN_OR_RETURN(model, load_hf_model(path));
      break;
    }
    case ModelFormat::kGguf: {
      HS_ASSIGN_OR_RETURN(model, load_gguf_model(path));
      break;
    }
    case ModelFormat::kLlama2c: {
      std::string tok = tokenizer_path;
      if (tok.empty()) {
        HS_ASSIGN_OR_RETURN(tok, find_llama2c_tokenizer(path));
      }
      HS_ASSIGN_OR_RETURN(model, load_llama2c_model(path, tok));
      break;
    }
  }
  HS_TRY(check_finite_weights(model));
  return model;
}

}  // namespace hs::frontend
