/// @file rechorus.hpp
/// @brief Loader of the ReChorus top-k format: `train.csv`, `dev.csv`, `test.csv`, tab-separated with a header
/// `user_id\titem_id\ttime[\tneg_items]`; ids start at 1 (0 is padding); `neg_items` is a Python list literal.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "ans/data/dataset.hpp"
#include "ans/data/parse.hpp"

namespace ans::data {

namespace detail {

/// Raw content of one ReChorus file (ids still 1-based).
struct rechorus_file {
  std::vector<std::pair<index_t, index_t>> pairs;
  std::vector<std::int64_t> negatives;
  int n_neg = -1;  ///< -1: no neg_items column
};

inline void read_rechorus_file(const std::string& path, rechorus_file& out, id_extent& users, id_extent& items,
                               load_report& rep, bool require_rows) {
  const std::string text = read_file(path);
  line_reader lines(text);
  std::string_view line;
  int c_user = -1, c_item = -1, c_neg = -1;
  size_t n_fields = 0;
  char sep = '\t';
  bool have_header = false;
  std::vector<std::string_view> f;
  while (lines.next(line)) {
    ++rep.lines_read;
    if (is_blank(line)) {
      ++rep.blank_lines;
      continue;
    }
    const std::int64_t ln = lines.line_no();
    if (!have_header) {
      sep = line.find('\t') != std::string_view::npos ? '\t' : ',';
      split_char(line, sep, f);
      n_fields = f.size();
      for (size_t c = 0; c < f.size(); ++c) {
        const auto name = trim(f[c]);
        if (name == "user_id") c_user = static_cast<int>(c);
        else if (name == "item_id") c_item = static_cast<int>(c);
        else if (name == "neg_items") c_neg = static_cast<int>(c);
      }
      if (c_user < 0) parse_error(path, ln, "header has no user_id column");
      if (c_item < 0) parse_error(path, ln, "header has no item_id column");
      have_header = true;
      continue;
    }
    split_char(line, sep, f);
    if (f.size() != n_fields)
      parse_error(path, ln,
                  (f.size() < n_fields ? "missing column: row has " : "extra column: row has ") +
                      std::to_string(f.size()) + " field(s), header has " + std::to_string(n_fields));
    const index_t u = parse_id(f[c_user], path, ln, "user id");
    const index_t i = parse_id(f[c_item], path, ln, "item id");
    if (u == 0) parse_error(path, ln, "user id 0 is the padding id (ReChorus ids start at 1)");
    if (i == 0) parse_error(path, ln, "item id 0 is the padding id (ReChorus ids start at 1)");
    users.see(u, path, ln);
    items.see(i, path, ln);
    out.pairs.emplace_back(u, i);
    if (c_neg >= 0) {
      const size_t before = out.negatives.size();
      parse_int_list(f[c_neg], path, ln, "neg_items", out.negatives);
      const int k = static_cast<int>(out.negatives.size() - before);
      if (k == 0)
        parse_error(path, ln, "neg_items is empty (the sampled protocol ranks each positive among its negatives; "
                              "a row without any would score 1)");
      if (out.n_neg < 0) out.n_neg = k;
      if (k != out.n_neg)
        parse_error(path, ln, "neg_items has " + std::to_string(k) + " ids, earlier rows have " +
                                  std::to_string(out.n_neg));
      for (size_t j = before; j < out.negatives.size(); ++j) {
        const auto v = out.negatives[j];
        if (v == 0) parse_error(path, ln, "neg_items holds the padding id 0");
        if (v > INT32_MAX) parse_error(path, ln, "neg_items id " + std::to_string(v) + " is too large");
        items.see(v, path, ln);
      }
    }
  }
  if (!have_header) parse_error(path, lines.line_no(), "no header line");
  if (require_rows && out.pairs.empty()) parse_error(path, lines.line_no(), "header but no interactions");
}

}  // namespace detail

/// Loads a ReChorus top-k folder: `DIR/train.csv` (required), `DIR/dev.csv` and `DIR/test.csv` (optional).
///
/// Ids: file id k becomes k - 1 (0 is ReChorus's padding id and is rejected), so n_users = largest user id
/// and n_items = largest item id over all files, negatives included (8713 items on Grocery_and_Gourmet_Food).
/// The positives of dev/test also fill the dev/test matrices; with a `neg_items` column the rows become
/// `dev_candidates` / `test_candidates` in file order, duplicate negatives kept.
///
/// Errors (`PATH:LINE: what`): unreadable or empty file, header without user_id / item_id, a row with a
/// missing column, non-numeric / negative / zero id, malformed neg_items (not a bracketed comma-separated
/// list of ints) or a row whose neg_items count differs from the first row's.
inline dataset load_rechorus(const std::string& dir, const load_options& opt = {}) {
  dataset d;
  d.name = base_name(dir);
  d.format = "rechorus";
  detail::rechorus_file files[3];
  const char* names[3] = {"train.csv", "dev.csv", "test.csv"};
  id_extent users, items;
  for (int s = 0; s < 3; ++s) {
    const std::string path = join_path(dir, names[s]);
    if (s > 0 && !file_readable(path)) continue;
    detail::read_rechorus_file(path, files[s], users, items, d.report, s == 0);
  }
  // ids from 1: the tables have max rows (id 0 is padding)
  const index_t max_user = std::max<index_t>(users.max, 0), max_item = std::max<index_t>(items.max, 0);
  for (auto* e : {&users, &items}) {
    if (e->max <= opt.id_floor) continue;
    std::vector<index_t> ids;
    for (const auto& f : files)
      for (const auto& [u, i] : f.pairs) ids.push_back(e == &users ? u : i);
    if (e == &items)
      for (const auto& f : files) ids.insert(ids.end(), f.negatives.begin(), f.negatives.end());
    check_dense_ids(*e, ids, e == &users ? "user" : "item", opt.id_density, opt.id_floor);
  }
  std::vector<std::pair<index_t, index_t>> pairs[3];
  for (int s = 0; s < 3; ++s) {
    pairs[s].reserve(files[s].pairs.size());
    for (auto [u, i] : files[s].pairs) pairs[s].emplace_back(u - 1, i - 1);
  }
  for (int s = 1; s < 3; ++s) {
    if (files[s].n_neg < 0) continue;
    fixed_candidates c;
    c.n_neg = files[s].n_neg;
    c.users.reserve(pairs[s].size());
    c.positives.reserve(pairs[s].size());
    for (auto [u, i] : pairs[s]) {
      c.users.push_back(static_cast<id_type>(u));
      c.positives.push_back(static_cast<id_type>(i));
    }
    c.negatives.reserve(files[s].negatives.size());
    for (auto v : files[s].negatives) c.negatives.push_back(static_cast<id_type>(v - 1));
    (s == 1 ? d.dev_candidates : d.test_candidates) = std::move(c);
  }
  detail::finish_dataset(d, max_user, max_item, pairs[0], pairs[1], pairs[2], opt);
  return d;
}

}  // namespace ans::data
