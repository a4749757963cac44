/// @file json.hpp
/// @brief A minimal JSON reader (objects, arrays, numbers, strings, bools, null) and a tiny writer.
///
/// Enough for manifest files and small configs; errors are `ans::error`s naming the source, the byte offset
/// and the line.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ans/config.hpp"

namespace ans::io {

/// A JSON value. Objects keep their keys sorted (std::map); a duplicate key is a parse error.
class json_value {
 public:
  enum class type { null, boolean, number, string, array, object };

  json_value() = default;
  static json_value make_bool(bool b) { json_value v; v.t_ = type::boolean; v.b_ = b; return v; }
  static json_value make_number(double d) { json_value v; v.t_ = type::number; v.n_ = d; return v; }
  static json_value make_string(std::string s) { json_value v; v.t_ = type::string; v.s_ = std::move(s); return v; }
  static json_value make_array() { json_value v; v.t_ = type::array; return v; }
  static json_value make_object() { json_value v; v.t_ = type::object; return v; }

  type kind() const { return t_; }
  bool is_null() const { return t_ == type::null; }
  bool is_number() const { return t_ == type::number; }
  bool is_string() const { return t_ == type::string; }
  bool is_array() const { return t_ == type::array; }
  bool is_object() const { return t_ == type::object; }
  bool is_bool() const { return t_ == type::boolean; }

  double as_number() const { if (t_ != type::number) ANS_THROW("json: value is not a number"); return n_; }
  /// The number as an integer; throws when it is not one exactly (1.5, 1e300, NaN) or outside ±2^53 (where
  /// doubles stop representing every integer).
  index_t as_int() const {
    const double x = as_number();
    if (!(std::fabs(x) <= 9007199254740992.0) || x != std::floor(x))
      ANS_THROW("json: " << x << " is not an integer in [-2^53, 2^53]");
    return static_cast<index_t>(x);
  }
  bool as_bool() const { if (t_ != type::boolean) ANS_THROW("json: value is not a bool"); return b_; }
  const std::string& as_string() const { if (t_ != type::string) ANS_THROW("json: value is not a string"); return s_; }
  const std::vector<json_value>& as_array() const { if (t_ != type::array) ANS_THROW("json: value is not an array"); return a_; }
  const std::map<std::string, json_value>& as_object() const { if (t_ != type::object) ANS_THROW("json: value is not an object"); return o_; }
  std::vector<json_value>& array() { t_ = type::array; return a_; }
  std::map<std::string, json_value>& object() { t_ = type::object; return o_; }

  bool contains(const std::string& key) const { return t_ == type::object && o_.count(key) > 0; }
  /// Member `key` of an object; throws naming the key when absent.
  const json_value& at(const std::string& key) const {
    const auto& o = as_object();
    const auto it = o.find(key);
    if (it == o.end()) ANS_THROW("json: missing key '" << key << "'");
    return it->second;
  }
  /// Number member with a default.
  double number_or(const std::string& key, double def) const {
    return contains(key) && at(key).is_number() ? at(key).as_number() : def;
  }

 private:
  type t_ = type::null;
  bool b_ = false;
  double n_ = 0;
  std::string s_;
  std::vector<json_value> a_;
  std::map<std::string, json_value> o_;
};

namespace detail {
class json_parser {
 public:
  json_parser(const std::string& text, std::string source) : s_(text), src_(std::move(source)) {}

  json_value parse_document() {
    json_value v = parse_value(0);
    skip_ws();
    if (p_ != s_.size()) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::size_t line = 1;
    for (std::size_t i = 0; i < p_ && i < s_.size(); ++i) line += s_[i] == '\n';
    ANS_THROW(src_ << ": JSON error at offset " << p_ << " (line " << line << "): " << what);
  }
  void skip_ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
  }
  bool literal(const char* lit) {
    const std::size_t n = std::char_traits<char>::length(lit);
    if (s_.compare(p_, n, lit) == 0) { p_ += n; return true; }
    return false;
  }
  json_value parse_value(int depth) {
    if (depth > 256) fail("nesting too deep");
    skip_ws();
    if (p_ >= s_.size()) fail("unexpected end of input");
    const char c = s_[p_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return json_value::make_string(parse_string());
    if (literal("true")) return json_value::make_bool(true);
    if (literal("false")) return json_value::make_bool(false);
    if (literal("null")) return json_value{};
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    fail(std::string("unexpected character '") + c + "'");
  }
  json_value parse_number() {
    const std::size_t start = p_;
    if (s_[p_] == '-') ++p_;
    while (p_ < s_.size() && ((s_[p_] >= '0' && s_[p_] <= '9') || s_[p_] == '.' || s_[p_] == 'e' ||
                              s_[p_] == 'E' || s_[p_] == '+' || s_[p_] == '-'))
      ++p_;
    const std::string tok = s_.substr(start, p_ - start);
    char* end = nullptr;
    const double v = std::strtod(tok.c_str(), &end);
    if (tok.empty() || end != tok.c_str() + tok.size()) { p_ = start; fail("malformed number '" + tok + "'"); }
    return json_value::make_number(v);
  }
  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
    else { out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
  }
  unsigned hex4() {
    if (p_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[p_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') v |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= unsigned(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }
  std::string parse_string() {
    ++p_;  // opening quote
    std::string out;
    while (true) {
      if (p_ >= s_.size()) fail("unterminated string");
      const char c = s_[p_++];
      if (c == '"') return out;
      if (c != '\\') { out += c; continue; }
      if (p_ >= s_.size()) fail("unterminated escape");
      const char e = s_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && p_ + 1 < s_.size() && s_[p_] == '\\' && s_[p_ + 1] == 'u') {
            p_ += 2;
            const unsigned lo = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: --p_; fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }
  json_value parse_array(int depth) {
    ++p_;
    json_value v = json_value::make_array();
    skip_ws();
    if (p_ < s_.size() && s_[p_] == ']') { ++p_; return v; }
    while (true) {
      v.array().push_back(parse_value(depth + 1));
      skip_ws();
      if (p_ >= s_.size()) fail("unterminated array");
      if (s_[p_] == ',') { ++p_; continue; }
      if (s_[p_] == ']') { ++p_; return v; }
      fail("expected ',' or ']' in array");
    }
  }
  json_value parse_object(int depth) {
    ++p_;
    json_value v = json_value::make_object();
    skip_ws();
    if (p_ < s_.size() && s_[p_] == '}') { ++p_; return v; }
    while (true) {
      skip_ws();
      if (p_ >= s_.size() || s_[p_] != '"') fail("expected a string key in object");
      const std::size_t key_at = p_;
      std::string key = parse_string();
      if (v.contains(key)) {
        p_ = key_at;
        fail("duplicate key \"" + key + "\" in object");
      }
      skip_ws();
      if (p_ >= s_.size() || s_[p_] != ':') fail("expected ':' after object key");
      ++p_;
      v.object()[key] = parse_value(depth + 1);
      skip_ws();
      if (p_ >= s_.size()) fail("unterminated object");
      if (s_[p_] == ',') { ++p_; continue; }
      if (s_[p_] == '}') { ++p_; return v; }
      fail("expected ',' or '}' in object");
    }
  }

  const std::string& s_;
  std::string src_;
  std::size_t p_ = 0;
};
}  // namespace detail

/// Parses JSON text; `source` names it in error messages.
inline json_value parse_json(const std::string& text, const std::string& source = "<string>") {
  return detail::json_parser(text, source).parse_document();
}

/// Reads and parses a JSON file; errors name the path.
inline json_value read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ANS_THROW(path << ": cannot open JSON file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_json(ss.str(), path);
}

/// Escapes a string as a JSON string literal (with quotes).
inline std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
        else out += char(c);
    }
  }
  return out + "\"";
}

/// Serialises a value (compact; numbers with 17 significant digits so doubles round-trip).
inline std::string to_json(const json_value& v) {
  switch (v.kind()) {
    case json_value::type::null: return "null";
    case json_value::type::boolean: return v.as_bool() ? "true" : "false";
    case json_value::type::number: {
      const double d = v.as_number();
      if (!std::isfinite(d)) return "null";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      return buf;
    }
    case json_value::type::string: return json_quote(v.as_string());
    case json_value::type::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : v.as_array()) { if (!first) out += ","; first = false; out += to_json(e); }
      return out + "]";
    }
    default: {
      std::string out = "{";
      bool first = true;
      for (const auto& kv : v.as_object()) {
        if (!first) out += ",";
        first = false;
        out += json_quote(kv.first) + ":" + to_json(kv.second);
      }
      return out + "}";
    }
  }
}

}  // namespace ans::io
