/// @file parse.hpp
/// @brief Shared helpers of the data loaders: whole-file reading, a line reader, a hand-written tokenizer
/// built on std::from_chars, and `parse_error`, which formats every data error as `PATH:LINE: what`.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ans/config.hpp"

namespace ans::data {

/// Throws ans::error with the message `PATH:LINE: what` (`PATH: what` when `line` is 0, i.e. the problem
/// is about the file as a whole, such as an unreadable path).
[[noreturn]] inline void parse_error(const std::string& path, std::int64_t line, const std::string& what) {
  std::string msg = path;
  if (line > 0) {
    msg += ':';
    msg += std::to_string(line);
  }
  msg += ": ";
  msg += what;
  throw error(msg);
}

namespace detail {

/// Quotes a token for an error message, shortening very long ones.
inline std::string quote(std::string_view s) {
  constexpr size_t max_len = 40;
  std::string out = "'";
  if (s.size() > max_len) {
    out.append(s.substr(0, max_len));
    out += "...";
  } else {
    out.append(s);
  }
  out += '\'';
  return out;
}

}  // namespace detail

/// Reads a whole file into memory. Throws `PATH: cannot open ...` when it cannot be opened or read, and
/// `PATH:1: empty file` when it holds no bytes (unless `allow_empty`).
inline std::string read_file(const std::string& path, bool allow_empty = false) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) parse_error(path, 0, std::string("cannot open file: ") + std::strerror(errno));
  std::string buf;
  char chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) buf.append(chunk, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) parse_error(path, 0, "cannot read file (is it a directory?)");
  if (buf.empty() && !allow_empty) parse_error(path, 1, "empty file");
  return buf;
}

/// True when `path` names a file that can be opened for reading.
inline bool file_readable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::fclose(f);
  return true;
}

/// Iterates over the lines of an in-memory buffer; strips a trailing `\r` (CRLF files) and counts
/// 1-based line numbers.
class line_reader {
 public:
  explicit line_reader(std::string_view text) : text_(text) {}

  /// Moves to the next line; false at the end of the buffer.
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = end + 1;
    ++line_no_;
    return true;
  }

  /// 1-based number of the line last returned by next().
  std::int64_t line_no() const { return line_no_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  std::int64_t line_no_ = 0;
};

/// True for a line holding only spaces, tabs or nothing.
inline bool is_blank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t') return false;
  return true;
}

/// Splits on runs of spaces and tabs (LightGCN text format). Clears `out` first.
inline void split_whitespace(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0, n = line.size();
  while (i < n) {
    while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= n) break;
    size_t j = i;
    while (j < n && line[j] != ' ' && line[j] != '\t') ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
}

/// Splits on one separator character, keeping empty fields. Clears `out` first.
inline void split_char(std::string_view line, char sep, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0;
  for (;;) {
    size_t j = line.find(sep, i);
    if (j == std::string_view::npos) {
      out.push_back(line.substr(i));
      return;
    }
    out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
}

/// Removes leading and trailing spaces and tabs.
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Parses a non-negative integer id. `what` names the field ("user id", "item id", ...). Errors:
/// `PATH:LINE: non-numeric item id 'x'`, `PATH:LINE: negative item id -3`, `PATH:LINE: item id ... too large`.
inline std::int64_t parse_id(std::string_view tok, const std::string& path, std::int64_t line,
                             const char* what) {
  tok = trim(tok);
  if (tok.empty()) parse_error(path, line, std::string("missing ") + what);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec == std::errc::result_out_of_range)
    parse_error(path, line, std::string(what) + " " + detail::quote(tok) + " is too large");
  if (ec != std::errc() || p != tok.data() + tok.size())
    parse_error(path, line, std::string("non-numeric ") + what + " " + detail::quote(tok));
  if (v < 0) parse_error(path, line, std::string("negative ") + what + " " + std::to_string(v));
  if (v > INT32_MAX) parse_error(path, line, std::string(what) + " " + std::to_string(v) + " is too large");
  return v;
}

/// Where the largest id of one kind (users or items) was read, for the density check of formats whose ids are
/// row indices (LightGCN, ReChorus): `see` it for every id as it is parsed.
struct id_extent {
  index_t max = -1;
  std::string path;
  std::int64_t line = 0;
  void see(index_t v, const std::string& p, std::int64_t l) {
    if (v > max) max = v, path = p, line = l;
  }
};

/// Ids that are row indices make a table of max + 1 rows (the CSR's row pointers, the embedding table). A
/// stray line with a huge id (e.g. 2147483646 in a 50-line file) would allocate gigabytes or end in an
/// out-of-memory kill, so: `PATH:LINE: item id X would make a table of ...` when max + 1 exceeds both `floor`
/// (2^20 by default) and `density` times the number of distinct ids (`ids`, any order, duplicates allowed;
/// consumed). density 0: no limit (load_options::id_density, load_options::id_floor).
inline void check_dense_ids(const id_extent& e, std::vector<index_t>& ids, const char* what, double density,
                            index_t floor = index_t(1) << 20) {
  if (e.max + 1 <= floor || density <= 0) return;
  std::sort(ids.begin(), ids.end());
  const auto distinct = static_cast<index_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
  if (double(e.max + 1) <= density * double(distinct)) return;
  std::ostringstream os;
  os << what << " id " << e.max << " would make a table of " << e.max + 1 << " rows for " << distinct << " distinct "
     << what << " ids: this format's ids are row indices 0..n-1, and the limit is " << density
     << " rows per distinct id above ";
  int log2 = 0;
  while (log2 < 62 && (index_t(1) << log2) < floor) ++log2;
  if ((index_t(1) << log2) == floor) os << "2^" << log2;
  else os << floor;
  os << " rows (re-index the data, remove the stray line, or raise the limit: "
        "ans-train --id_density, data::load_options::id_density; 0 = none)";
  parse_error(e.path, e.line, os.str());
}

/// Parses a floating-point number (timestamps, ratings). Error: `PATH:LINE: non-numeric time 'x'`.
inline double parse_number(std::string_view tok, const std::string& path, std::int64_t line, const char* what) {
  tok = trim(tok);
  if (tok.empty()) parse_error(path, line, std::string("missing ") + what);
  double v = 0;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec != std::errc() || p != tok.data() + tok.size())
    parse_error(path, line, std::string("non-numeric ") + what + " " + detail::quote(tok));
  return v;
}

/// Parses a Python list literal of non-negative integers, `[1, 2, 3]` (spaces optional, `[]` allowed), and
/// appends the values to `out`. Errors name the line: `PATH:LINE: malformed neg_items: ...`.
inline void parse_int_list(std::string_view tok, const std::string& path, std::int64_t line, const char* what,
                           std::vector<std::int64_t>& out) {
  const std::string_view orig = tok;
  auto fail = [&](const std::string& why) {
    parse_error(path, line, std::string("malformed ") + what + " " + detail::quote(orig) +
                                ": " + why + " (expected a bracketed comma-separated list of ints)");
  };
  tok = trim(tok);
  if (tok.size() < 2 || tok.front() != '[' || tok.back() != ']') fail("not bracketed");
  tok = trim(tok.substr(1, tok.size() - 2));
  if (tok.empty()) return;
  const char* p = tok.data();
  const char* end = tok.data() + tok.size();
  for (;;) {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    std::int64_t v = 0;
    auto [q, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) fail("element is not an integer");
    if (v < 0) fail("negative element " + std::to_string(v));
    out.push_back(v);
    p = q;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    if (p == end) break;
    if (*p != ',') fail(std::string("unexpected character '") + *p + "'");
    ++p;
  }
}

/// Joins a directory and a file name with one '/'.
inline std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + '/' + name;
}

/// The last component of a path, ignoring trailing slashes ("data/gowalla/" -> "gowalla").
inline std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

}  // namespace ans::data
