/// @file lightgcn.hpp
/// @brief Loader of the LightGCN / NGCF text format: `train.txt` and `test.txt`, one line per user,
/// `user item item ...`, 0-based ids separated by spaces.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ans/data/dataset.hpp"
#include "ans/data/parse.hpp"

namespace ans::data {

namespace detail {

/// Reads one LightGCN text file, appending (user, item) pairs; tracks the largest ids seen.
/// A line holding only the user id is a user without items; blank lines are skipped (and counted).
inline void read_lightgcn_file(const std::string& path, std::vector<std::pair<index_t, index_t>>& pairs,
                               id_extent& users, id_extent& items, std::vector<index_t>& user_ids, load_report& rep) {
  const std::string text = read_file(path);
  line_reader lines(text);
  std::string_view line;
  std::vector<std::string_view> tok;
  while (lines.next(line)) {
    ++rep.lines_read;
    if (is_blank(line)) {
      ++rep.blank_lines;
      continue;
    }
    split_whitespace(line, tok);
    const index_t u = parse_id(tok[0], path, lines.line_no(), "user id");
    users.see(u, path, lines.line_no());
    user_ids.push_back(u);
    for (size_t k = 1; k < tok.size(); ++k) {
      const index_t i = parse_id(tok[k], path, lines.line_no(), "item id");
      items.see(i, path, lines.line_no());
      pairs.emplace_back(u, i);
    }
  }
  if (pairs.empty() && users.max < 0) parse_error(path, lines.line_no(), "no interactions in file");
}

}  // namespace detail

/// Loads a LightGCN-format folder: `DIR/train.txt` (required) and `DIR/test.txt` (optional; when absent
/// test is empty). Ids are kept as they are: n_users = max user id + 1 and n_items = max item id + 1 over
/// both files. dev is empty. Duplicate pairs are merged and counted in the report.
///
/// Errors (ans::error, `PATH:LINE: what`): unreadable train.txt, empty file, non-numeric or negative id.
inline dataset load_lightgcn(const std::string& dir, const load_options& opt = {}) {
  dataset d;
  d.name = base_name(dir);
  d.format = "lightgcn";
  std::vector<std::pair<index_t, index_t>> train, dev, test;
  id_extent users, items;
  std::vector<index_t> user_ids;
  detail::read_lightgcn_file(join_path(dir, "train.txt"), train, users, items, user_ids, d.report);
  const std::string test_path = join_path(dir, "test.txt");
  if (file_readable(test_path)) detail::read_lightgcn_file(test_path, test, users, items, user_ids, d.report);
  check_dense_ids(users, user_ids, "user", opt.id_density, opt.id_floor);
  if (items.max + 1 > opt.id_floor) {
    std::vector<index_t> item_ids;
    for (const auto* v : {&train, &test})
      for (const auto& pr : *v) item_ids.push_back(pr.second);
    check_dense_ids(items, item_ids, "item", opt.id_density, opt.id_floor);
  }
  detail::finish_dataset(d, users.max + 1, items.max + 1, train, dev, test, opt);
  return d;
}

}  // namespace ans::data
