// Exception-free access to JSON documents (config.json, tokenizer.json, safetensors headers).
// nlohmann::json throws on type mismatches; these helpers check types first and return
// Results whose messages name the file and the key. Private to the frontend readers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "headsplit/support/result.h"

namespace hs::frontend::json {

using Json = nlohmann::json;

// Documents nested deeper than this are refused (kParse) before parsing: config.json and
// tokenizer.json need about 5 levels.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; `what` names the document in errors (kParse).
Result<Json> parse(std::string_view text, const std::string& what);
// Reads and parses a file (kNotFound when it does not exist).
Result<Json> read_file(const std::string& path);

// Member `key` of `obj`, or nullptr when `obj` is not an object, or the key is absent or null.
const Json* member(const Json& obj, std::string_view key);

// Typed members. `what` names the document. Absent (or null) members give kNotFound for the
// required forms and `fallback` for the *_or forms; a member of another type gives kParse.
Result<int64_t> get_int(const Json& obj, std::string_view key, const std::string& what);
Result<int64_t> get_int_or(const Json& obj, std::string_view key, int64_t fallback,
                           const std::string& what);
Result<double> get_number_or(const Json& obj, std::string_view key, double fallback,
                             const std::string& what);
Result<bool> get_bool_or(const Json& obj, std::string_view key, bool fallback,
                         const std::string& what);
Result<std::string> get_string(const Json& obj, std::string_view key, const std::string& what);
Result<std::string> get_string_or(const Json& obj, std::string_view key, std::string fallback,
                                  const std::string& what);

// An integer JSON value as int64 (kParse naming `what` when it is not one or does not fit).
Result<int64_t> as_int(const Json& value, const std::string& what);
// Compact JSON text of a value for messages, clipped to ~96 bytes (clip_for_message; never
// throws: invalid UTF-8 is replaced).
std::string text(const Json& value);
// "string", "integer", "array", ... for messages.
std::string_view type_name(const Json& value);

}  // namespace hs::frontend::json
