// Text clean-up before byte-level BPE: invalid UTF-8 -> U+FFFD (maximal subparts, as a
// Unicode string in Hugging Face's reference gets it) and NFC normalization (ICU).
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

#include "headsplit/tokenizer/pre_tokenizer.h"

namespace hs::tokenizer {
namespace {

constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD

// Length of the well-formed UTF-8 sequence at text[i] (Unicode Table 3-7), or the length of
// its maximal subpart as a negative number (-1 for a byte that starts nothing valid).
int sequence_at(std::string_view text, size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return 1;
  int n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;  // C0, C1, F5..FF, stray continuation bytes
  }
  for (int k = 1; k < n; ++k) {
    if (i + k >= text.size()) return -k;
    const auto b = static_cast<unsigned char>(text[i + k]);
    const unsigned char min = k == 1 ? lo : 0x80;
    const unsigned char max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) return -k;
  }
  return n;
}

bool all_ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const int n = sequence_at(text, i);
    if (n > 0) {
      out.append(text.substr(i, static_cast<size_t>(n)));
      i += static_cast<size_t>(n);
    } else {
      out.append(kReplacement);
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const int n = sequence_at(text, i);
    if (n < 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

std::string nfc_normalize(std::string_view text) {
  if (all_ascii(text)) return std::string(text);  // ASCII is always NFC
  const std::string valid = is_valid_utf8(text) ? std::string(text) : to_valid_utf8(text);
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfc = unorm2_getNFCInstance(&status);
  // UTF-8 -> UTF-16 (at most one unit per byte).
  std::vector<UChar> utf16(valid.size() + 1);
  int32_t n16 = 0;
  if (U_SUCCESS(status)) {
    u_strFromUTF8(utf16.data(), static_cast<int32_t>(utf16.size()), &n16, valid.data(),
                  static_cast<int32_t>(valid.size()), &status);
  }
  // NFC can grow a string (up to 3x in UTF-16); retry once with the size ICU asks for.
  std::vector<UChar> normalized(static_cast<size_t>(n16) * 3 + 16);
  int32_t nn = 0;
  if (U_SUCCESS(status)) {
    nn = unorm2_normalize(nfc, utf16.data(), n16, normalized.data(),
                          static_cast<int32_t>(normalized.size()), &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      status = U_ZERO_ERROR;
      normalized.resize(static_cast<size_t>(nn));
      nn = unorm2_normalize(nfc, utf16.data(), n16, normalized.data(), nn, &status);
    }
  }
  std::string out(static_cast<size_t>(nn) * 3, '\0');
  int32_t n8 = 0;
  if (U_SUCCESS(status)) {
    u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &n8, normalized.data(), nn, &status);
  }
  if (U_FAILURE(status)) return valid;  // ICU out of memory only: leave the text as it was
  out.resize(static_cast<size_t>(n8));
  return out;
}

}  // namespace hs::tokenizer
