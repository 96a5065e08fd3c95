// Fuzz entry point(s): GGUF (see fuzz_entries.h).
#include "fuzz_entries.h"
#include "headsplit/frontend/gguf.h"

namespace hs::fuzz {

int gguf(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.gguf", {data, size});
  auto file = frontend::GgufFile::open(path);
  if (!file.ok()) return 0;
  for (const auto& [key, value] : file->metadata()) {
    (void)file->get_string(key);
    (void)file->get_uint(key);
    (void)file->get_float(key);
    (void)file->get_string_array(key);
    (void)file->get_int_array(key);
    (void)file->get_f32_array(key);
  }
  for (const auto& t : file->tensors()) (void)file->load_tensor(t.name);
  auto tok = frontend::load_gguf_tokenizer(*file);
  if (tok.ok()) exercise_tokenizer(*tok);
  (void)frontend::load_gguf_model(path);
  return 0;
}

}  // namespace hs::fuzz
