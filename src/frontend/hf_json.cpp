// Exception-free JSON access helpers for the Hugging Face and safetensors readers.
#include "hf_json.h"

#include "headsplit/support/file.h"
#include "headsplit/support/message.h"

namespace hs::frontend::json {

namespace {

// Rejects documents nested deeper than kMaxJsonDepth before nlohmann sees them: the parse is
// iterative, but printing or walking a value recurses once per level.
Status check_depth(std::string_view text, const std::string& what) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return errorf(ErrorKind::kParse,
                      "{}: JSON nested deeper than {} levels (at byte {}); refusing to parse it",
                      what, kMaxJsonDepth, i);
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return {};
}

}  // namespace

Result<Json> parse(std::string_view text, const std::string& what) {
  HS_TRY(check_depth(text, what));
  Json j = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return errorf(ErrorKind::kParse, "{}: not valid JSON", what);
  return j;
}

Result<Json> read_file(const std::string& path) {
  HS_TRY(check_regular_file(path));
  HS_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse(text, path);
}

const Json* member(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string text(const Json& value) {
  return clip_for_message(value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::string_view type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return "number";
    case Json::value_t::binary: return "binary";
    case Json::value_t::discarded: return "discarded";
  }
  return "unknown";
}

namespace {
Error wrong_type(const Json& value, std::string_view key, const std::string& what,
                 std::string_view expected) {
  return errorf(ErrorKind::kParse, "{}: '{}' is a {}, expected {}", what, key, type_name(value),
                expected);
}
Error missing(std::string_view key, const std::string& what) {
  return errorf(ErrorKind::kNotFound, "{}: '{}' is missing", what, key);
}
}  // namespace

Result<int64_t> as_int(const Json& value, const std::string& what) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return errorf(ErrorKind::kParse, "{}: integer {} does not fit in 64 bits", what, u);
    }
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return errorf(ErrorKind::kParse, "{}: is a {}, expected an integer", what, type_name(value));
}

Result<int64_t> get_int(const Json& obj, std::string_view key, const std::string& what) {
  const Json* v = member(obj, key);
  if (v == nullptr) return missing(key, what);
  if (!v->is_number_integer()) return wrong_type(*v, key, what, "an integer");
  return as_int(*v, fmt::format("{}: '{}'", what, key));
}

Result<int64_t> get_int_or(const Json& obj, std::string_view key, int64_t fallback,
                           const std::string& what) {
  if (member(obj, key) == nullptr) return fallback;
  return get_int(obj, key, what);
}

Result<double> get_number_or(const Json& obj, std::string_view key, double fallback,
                             const std::string& what) {
  const Json* v = member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) return wrong_type(*v, key, what, "a number");
  return v->get<double>();
}

Result<bool> get_bool_or(const Json& obj, std::string_view key, bool fallback,
                         const std::string& what) {
  const Json* v = member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return wrong_type(*v, key, what, "a boolean");
  return v->get<bool>();
}

Result<std::string> get_string(const Json& obj, std::string_view key, const std::string& what) {
  const Json* v = member(obj, key);
  if (v == nullptr) return missing(key, what);
  if (!v->is_string()) return wrong_type(*v, key, what, "a string");
  return v->get<std::string>();
}

Result<std::string> get_string_or(const Json& obj, std::string_view key, std::string fallback,
                                  const std::string& what) {
  if (member(obj, key) == nullptr) return fallback;
  return get_string(obj, key, what);
}

}  // namespace hs::frontend::json
