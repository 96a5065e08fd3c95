// Helpers shared by the runner tests: typed views of KV buffers and a tokenizer for fake models.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "headsplit/tokenizer/tokenizer.h"

namespace hs::runner::testing {

template <typename E>
std::vector<E> read(std::span<const std::byte> bytes) {
  std::vector<E> out(bytes.size() / sizeof(E));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(E));
  return out;
}

template <typename E>
void write(std::span<std::byte> bytes, const std::vector<E>& values) {
  ASSERT_EQ(bytes.size(), values.size() * sizeof(E));
  std::memcpy(bytes.data(), values.data(), bytes.size());
}

// A vocabulary of pieces " t0" .. " t{V-1}", BOS 1, EOS `eos`.
inline std::unique_ptr<tokenizer::Tokenizer> fake_tokenizer(int32_t vocab, int32_t eos) {
  tokenizer::TokenizerData data;
  data.kind = tokenizer::TokenizerKind::kLlama2c;
  for (int i = 0; i < vocab; ++i) data.pieces.push_back(" t" + std::to_string(i));
  data.scores.assign(static_cast<size_t>(vocab), 0.0f);
  data.bos_id = 1;
  data.eos_id = eos;
  auto t = tokenizer::Tokenizer::create(std::move(data));
  EXPECT_TRUE(t.ok());
  return std::move(t).value();
}

}  // namespace hs::runner::testing
