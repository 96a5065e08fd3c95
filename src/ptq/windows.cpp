// Text for calibration and evaluation, and one window of tokens through a StepModel with the
// runner's SmartMask KV loop (prefill in AR-N chunks, then teacher-forced AR-T_d decode).
#include <fmt/ranges.h>

#include <algorithm>

#include "headsplit/ptq/calibrate.h"
#include "headsplit/runner/kv_manager.h"
#include "headsplit/support/file.h"

namespace hs::ptq {

namespace {

bool has_content(std::string_view line) {
  return line.find_first_not_of(" \t\r\n\f\v") != std::string_view::npos;
}

// Lines with content; a trailing '\r' (CRLF files) is dropped.
std::vector<std::string> content_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (has_content(line)) lines.emplace_back(line);
    start = end + 1;
  }
  return lines;
}

}  // namespace

Result<std::vector<std::string>> read_lines(const std::string& path) {
  HS_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return content_lines(text);
}

Result<std::vector<std::string>> calibration_texts(std::span<const std::string> files,
                                                   const std::string& prompt) {
  std::vector<std::string> texts;
  for (const std::string& file : files) {
    HS_ASSIGN_OR_RETURN(std::vector<std::string> lines, read_lines(file));
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  if (has_content(prompt)) texts.push_back(prompt);
  if (texts.empty()) {
    return errorf(ErrorKind::kInvalidArgument,
                  "empty calibration input: no non-empty line in {} and no prompt (give --calib "
                  "<file> with one sample per line, or a prompt)",
                  files.empty() ? std::string("(no calibration file)")
                                : fmt::format("{}", fmt::join(files, ", ")));
  }
  return texts;
}

std::vector<std::vector<int32_t>> encode_texts(const tokenizer::Tokenizer& tokenizer,
                                               std::span<const std::string> texts) {
  std::vector<std::vector<int32_t>> out;
  for (const std::string& t : texts) {
    std::vector<int32_t> ids = tokenizer.encode(t, /*add_bos=*/true);
    if (!ids.empty()) out.push_back(std::move(ids));
  }
  return out;
}

std::vector<std::span<const int32_t>> split_windows(std::span<const int32_t> tokens,
                                                    int64_t window) {
  HS_CHECK(window >= 1, "split_windows: window must be positive");
  std::vector<std::span<const int32_t>> windows;
  const auto w = static_cast<size_t>(window);
  for (size_t start = 0; start < tokens.size(); start += w) {
    windows.push_back(tokens.subspan(start, std::min(w, tokens.size() - start)));
  }
  return windows;
}

int64_t window_length(const runner::StepModelInfo& info) {
  if (info.ar_lens.empty()) return 0;
  return info.context_len - *std::max_element(info.ar_lens.begin(), info.ar_lens.end());
}

Status run_window(runner::StepModel& model, std::span<const int32_t> window, int64_t decode_tokens,
                  const LogitsCallback& on_logits, WindowStats* stats) {
  const runner::StepModelInfo& info = model.info();
  if (info.ar_lens.empty()) {
    return Error(ErrorKind::kInvalidArgument, "run window: the step model has no ar length");
  }
  const auto [lo, hi] = std::minmax_element(info.ar_lens.begin(), info.ar_lens.end());
  const int64_t n_big = *hi, t_dec = *lo, c = info.context_len, v = info.vocab_size;
  const auto w = static_cast<int64_t>(window.size());
  if (w > c - n_big) {
    return errorf(ErrorKind::kInvalidArgument,
                  "run window: {} tokens do not fit context {} with prefill ar length {} (at most "
                  "{})",
                  w, c, n_big, c - n_big);
  }
  for (size_t i = 0; i < window.size(); ++i) {
    if (window[i] < 0 || window[i] >= v) {
      return errorf(ErrorKind::kInvalidArgument,
                    "run window: token {} has id {}, outside the vocabulary [0, {})", i, window[i],
                    v);
    }
  }
  if (w == 0) return ok_status();
  const int64_t d = t_dec < n_big ? std::clamp<int64_t>(decode_tokens, 0, w - 1) : 0;
  HS_ASSIGN_OR_RETURN(runner::KvManager kv, runner::KvManager::create(info.kv_shape(t_dec, n_big)));
  kv.clear();
  std::vector<int32_t> tokens, positions;
  std::vector<float> logits(static_cast<size_t>(n_big * v));  // [T, V]

  // Runs one step of AR length t on window[pos, pos + n) (rows past n are padding, token 0).
  auto step = [&](int64_t t, int64_t pos, int64_t n, runner::StepMasks& mask) -> Status {
    tokens.assign(static_cast<size_t>(t), 0);
    positions.resize(static_cast<size_t>(t));
    for (int64_t i = 0; i < t; ++i) {
      if (i < n) tokens[static_cast<size_t>(i)] = window[static_cast<size_t>(pos + i)];
      positions[static_cast<size_t>(i)] = static_cast<int32_t>(pos + i);
    }
    std::span<float> out(logits.data(), static_cast<size_t>(t * v));
    HS_TRY_CTX(model.step(t, tokens, positions, mask.data(), kv, out),
               fmt::format("ar length {} step at position {}", t, pos));
    if (on_logits) {
      for (int64_t i = 0; i < n; ++i)
        on_logits(pos + i, out.subspan(static_cast<size_t>(i * v), static_cast<size_t>(v)));
    }
    HS_TRY(kv.update(pos, n));
    mask.unmask(pos, n);
    return ok_status();
  };

  const int64_t n_pre = w - d;
  HS_TRY(kv.rearrange(n_big, 0));
  runner::StepMasks prefill_mask(n_big, c, info.sliding_window);
  prefill_mask.init_causal(0);
  WindowStats s;
  for (int64_t pos = 0; pos < n_pre; pos += n_big) {
    HS_TRY(step(n_big, pos, std::min(n_big, n_pre - pos), prefill_mask));
    ++s.prefill_steps;
  }
  s.prefill_tokens = n_pre;
  if (d > 0) {
    HS_TRY(kv.rearrange(t_dec, n_pre));
    runner::StepMasks decode_mask(t_dec, c, info.sliding_window);
    decode_mask.init_causal(n_pre);
    for (int64_t pos = n_pre; pos < w; ++pos) {
      HS_TRY(step(t_dec, pos, 1, decode_mask));
      ++s.decode_steps;
    }
    s.decode_tokens = d;
  }
  if (stats != nullptr) {
    stats->prefill_tokens += s.prefill_tokens;
    stats->decode_tokens += s.decode_tokens;
    stats->prefill_steps += s.prefill_steps;
    stats->decode_steps += s.decode_steps;
  }
  return ok_status();
}

}  // namespace hs::ptq
