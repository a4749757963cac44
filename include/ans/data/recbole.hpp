/// @file recbole.hpp
/// @brief Loader of RecBole atomic `.inter` files: TSV with a typed header (`user_id:token\titem_id:token\t
/// rating:float\ttimestamp:float`). Ids are tokens, mapped to dense ids in order of first appearance.
#pragma once

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "ans/data/dataset.hpp"
#include "ans/data/parse.hpp"

namespace ans::data {

namespace detail {

/// Columns of a RecBole header that the loader uses (-1: absent).
struct recbole_header {
  int user = -1, item = -1, time = -1;
  size_t n_fields = 0;
};

/// Parses the typed header line; requires `user_id` and `item_id`, each field `name:type` with type one of
/// token, token_seq, float, float_seq.
inline recbole_header parse_recbole_header(std::string_view line, const std::string& path, std::int64_t line_no) {
  std::vector<std::string_view> fields;
  split_char(line, '\t', fields);
  recbole_header h;
  h.n_fields = fields.size();
  for (size_t c = 0; c < fields.size(); ++c) {
    const std::string_view f = trim(fields[c]);
    const size_t colon = f.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      parse_error(path, line_no, "header field " + quote(f) + " is not of the form name:type");
    const std::string_view name = f.substr(0, colon), type = f.substr(colon + 1);
    if (type != "token" && type != "token_seq" && type != "float" && type != "float_seq")
      parse_error(path, line_no, "header field " + quote(f) + " has unknown type " + quote(type) +
                                     " (expected token, token_seq, float or float_seq)");
    if (name == "user_id") h.user = static_cast<int>(c);
    else if (name == "item_id") h.item = static_cast<int>(c);
    else if (name == "timestamp") h.time = static_cast<int>(c);
  }
  if (h.user < 0) parse_error(path, line_no, "header has no user_id field");
  if (h.item < 0) parse_error(path, line_no, "header has no item_id field");
  return h;
}

/// Reads one `.inter` file, mapping tokens through the dataset's id maps and appending pairs (and, when
/// `events` is not null and the file has a timestamp column, timestamped interactions).
inline void read_recbole_file(const std::string& path, dataset& d, std::vector<std::pair<index_t, index_t>>& pairs,
                              std::vector<timed_interaction>* events, bool require_rows) {
  const std::string text = read_file(path);
  line_reader lines(text);
  std::string_view line;
  recbole_header h;
  bool have_header = false;
  std::vector<std::string_view> f;
  auto& rep = d.report;
  while (lines.next(line)) {
    ++rep.lines_read;
    if (is_blank(line)) {
      ++rep.blank_lines;
      continue;
    }
    if (!have_header) {
      h = parse_recbole_header(line, path, lines.line_no());
      have_header = true;
      if (h.time < 0) events = nullptr;
      continue;
    }
    split_char(line, '\t', f);
    if (f.size() < h.n_fields) {
      const char* missing = static_cast<size_t>(h.user) >= f.size()   ? "user_id"
                            : static_cast<size_t>(h.item) >= f.size() ? "item_id"
                                                                      : "a";
      parse_error(path, lines.line_no(),
                  std::string("missing column: row has ") + std::to_string(f.size()) + " field(s), header has " +
                      std::to_string(h.n_fields) + " (no " + missing + " value)");
    }
    if (f.size() > h.n_fields)
      parse_error(path, lines.line_no(),
                  "row has " + std::to_string(f.size()) + " fields, header has " + std::to_string(h.n_fields));
    const std::string_view ut = trim(f[h.user]), it = trim(f[h.item]);
    if (ut.empty()) parse_error(path, lines.line_no(), "empty user_id");
    if (it.empty()) parse_error(path, lines.line_no(), "empty item_id");
    const index_t u = d.user_ids->get_or_add(ut);
    const index_t i = d.item_ids->get_or_add(it);
    pairs.emplace_back(u, i);
    if (events) {
      const double t = parse_number(f[h.time], path, lines.line_no(), "timestamp");
      if (!std::isfinite(t))
        parse_error(path, lines.line_no(), "timestamp " + detail::quote(trim(f[h.time])) + " is not finite");
      events->push_back({static_cast<id_type>(u), static_cast<id_type>(i), t});
    }
  }
  if (!have_header) parse_error(path, lines.line_no(), "no header line");
  if (require_rows && pairs.empty()) parse_error(path, lines.line_no(), "header but no interactions");
}

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace detail

/// Loads RecBole atomic interactions.
///
/// `path_or_dir` is either a `.inter` file or a folder. For a folder `DIR/NAME` the file is `DIR/NAME/NAME.inter`
/// (or the only `*.inter` file in it). When `NAME.train.inter` exists next to it, the split files are loaded
/// instead: `NAME.train.inter` -> train, `NAME.valid.inter` -> dev, `NAME.test.inter` -> test (the last two
/// optional). Without split files everything goes to train (`report.has_split == false`) and, when the
/// header has `timestamp`, `dataset::events` keeps (user, item, time) for leave_one_out.
///
/// Ids: `user_id` and `item_id` are tokens; dense ids follow the order of first appearance (train file
/// first). The maps are in `user_ids` / `item_ids`. Other columns are ignored (rating is not thresholded).
///
/// Errors (`PATH:LINE: what`): unreadable path, empty file, header field without `:type` or of unknown
/// type, no `user_id` / `item_id` in the header, a row with missing columns, an empty id, a non-numeric
/// timestamp.
inline dataset load_recbole(const std::string& path_or_dir, const load_options& opt = {}) {
  namespace fs = std::filesystem;
  std::string dir, name, inter;
  std::error_code ec;
  if (fs::is_directory(path_or_dir, ec)) {
    dir = path_or_dir;
    name = base_name(path_or_dir);
    inter = join_path(dir, name + ".inter");
    if (!fs::exists(inter, ec) && !fs::exists(join_path(dir, name + ".train.inter"), ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string fn = e.path().filename().string();
        if (detail::ends_with(fn, ".inter")) found.push_back(fn);
      }
      if (found.size() == 1 && !detail::ends_with(found[0], ".train.inter")) {
        name = found[0].substr(0, found[0].size() - 6);
        inter = join_path(dir, found[0]);
      } else {
        bool split = false;
        for (const auto& fn : found)
          if (detail::ends_with(fn, ".train.inter")) name = fn.substr(0, fn.size() - 12), split = true;
        if (found.empty()) parse_error(path_or_dir, 0, "no .inter file in folder");
        if (!split) {
          std::string list;
          for (const auto& fn : found) list += (list.empty() ? "" : ", ") + fn;
          parse_error(path_or_dir, 0, std::to_string(found.size()) + " .inter files in the folder (" + list +
                                          ") and none named " + name + ".inter: pass the path of the one to load");
        }
        inter = join_path(dir, name + ".inter");
      }
    }
  } else {
    inter = path_or_dir;
    const fs::path p(path_or_dir);
    dir = p.has_parent_path() ? p.parent_path().string() : std::string(".");
    std::string fn = p.filename().string();
    for (const char* suf : {".train.inter", ".valid.inter", ".test.inter", ".inter"})
      if (detail::ends_with(fn, suf)) {
        fn = fn.substr(0, fn.size() - std::string(suf).size());
        break;
      }
    name = fn;
  }
  dataset d;
  d.name = name;
  d.format = "recbole";
  d.user_ids.emplace();
  d.item_ids.emplace();
  std::vector<std::pair<index_t, index_t>> train, dev, test;
  const std::string train_path = join_path(dir, name + ".train.inter");
  if (file_readable(train_path)) {
    detail::read_recbole_file(train_path, d, train, nullptr, true);
    const std::string valid_path = join_path(dir, name + ".valid.inter");
    const std::string test_path = join_path(dir, name + ".test.inter");
    if (file_readable(valid_path)) detail::read_recbole_file(valid_path, d, dev, nullptr, false);
    if (file_readable(test_path)) detail::read_recbole_file(test_path, d, test, nullptr, false);
  } else {
    detail::read_recbole_file(inter, d, train, &d.events, true);
    d.report.has_split = false;
  }
  detail::finish_dataset(d, d.user_ids->size(), d.item_ids->size(), train, dev, test, opt);
  return d;
}

}  // namespace ans::data
