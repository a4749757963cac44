/// @file impression.hpp
/// @brief Loader of ReChorus's impression (and CTR) format, `--model_mode Impression`: `train.csv`, `dev.csv`,
/// `test.csv`, tab-separated, header `user_id item_id time label [impression_id]`, ids from 1, label 1 = clicked,
/// 0 = shown but not clicked. Rows are grouped into *lists* (one impression each), as ReChorus's
/// `src/helpers/ImpressionReader.py` groups them:
///
///   - a list is the rows with the same (user_id, key), key = `time` (ReChorus's `--impression_idkey` default)
///     or `impression_id`; lists are ordered by (user, key);
///   - positives = the set of clicked items of the list, negatives = the set of the others (an item shown twice
///     counts once; an item both clicked and not clicked in one list is in both sets, as in ReChorus);
///   - a list without a positive is dropped, then a list without a negative is dropped.
///
/// The report holds the counts ReChorus logs, with its arithmetic (`rechorus_log_lines`): the positive and
/// negative sums of the averages are taken before lists without negatives are dropped and divided by the
/// number of lists kept (ImpressionReader._append_impression_info).
///
/// Ids: file id k becomes k − 1 (0 is ReChorus's padding and is rejected); n_users and n_items are the largest
/// ids over the three files (ReChorus's n_users − 1 and n_items − 1). Within a list, positives and negatives
/// are in increasing item order (ReChorus keeps Python set order, which truncation at 20 items then follows;
/// see docs/impression.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "ans/data/dataset.hpp"
#include "ans/data/parse.hpp"

namespace ans::data {

/// The lists of one split. List l has user users[l], positives pos[pos_begin[l] .. pos_begin[l+1]) and
/// negatives neg[neg_begin[l] .. neg_begin[l+1]) (0-based item ids, increasing within a list).
struct impression_lists {
  std::vector<id_type> users;
  std::vector<double> keys;                ///< the list's time (or impression_id)
  std::vector<index_t> pos_begin{0}, neg_begin{0};
  std::vector<id_type> pos, neg;

  index_t size() const { return static_cast<index_t>(users.size()); }
  index_t n_pos(index_t l) const { return pos_begin[l + 1] - pos_begin[l]; }
  index_t n_neg(index_t l) const { return neg_begin[l + 1] - neg_begin[l]; }
  const id_type* pos_of(index_t l) const { return pos.data() + pos_begin[l]; }
  const id_type* neg_of(index_t l) const { return neg.data() + neg_begin[l]; }
};

/// Which column identifies an impression (ReChorus's `--impression_idkey`).
enum class impression_key {
  time,           ///< (user_id, time): ReChorus's default, also when an impression_id column exists
  impression_id,  ///< (user_id, impression_id)
  automatic,      ///< impression_id when train.csv has that column, else time
};

struct impression_options {
  impression_key key = impression_key::time;
  load_options load;  ///< the id limit (load_options::id_density, id_floor)
};

/// Counts, per split s (0 train, 1 dev, 2 test), and the totals ReChorus logs.
struct impression_report {
  std::int64_t rows[3] = {0, 0, 0};          ///< data rows read
  std::int64_t clicks[3] = {0, 0, 0};        ///< rows with label 1
  std::int64_t groups[3] = {0, 0, 0};        ///< distinct (user, key)
  std::int64_t no_positive[3] = {0, 0, 0};   ///< lists dropped: no clicked item
  std::int64_t no_negative[3] = {0, 0, 0};   ///< lists dropped: clicked items only
  std::int64_t lists[3] = {0, 0, 0};         ///< lists kept ("request num")
  std::int64_t pos_sum_rechorus = 0, neg_sum_rechorus = 0;  ///< the averages' numerators (see the file comment)
  index_t max_user_id = 0, max_item_id = 0;  ///< largest file ids ("# user", "# item")
  std::string key;                           ///< "time" or "impression_id"

  std::int64_t entries() const { return rows[0] + rows[1] + rows[2]; }
  std::int64_t positives() const { return clicks[0] + clicks[1] + clicks[2]; }
  std::int64_t lists_total() const { return lists[0] + lists[1] + lists[2]; }
  double avg_pos() const { return double(pos_sum_rechorus) / double(std::max<std::int64_t>(1, lists_total())); }
  double avg_neg() const { return double(neg_sum_rechorus) / double(std::max<std::int64_t>(1, lists_total())); }
};

/// An impression dataset: the lists of each split, and `base`, an ordinary dataset (0-based ids,
/// n_users x n_items) whose train/dev/test are the positives of each split's kept lists (the clicked pairs the
/// impression models train on and are ranked on), for the pair-based trainers (ANS), their samplers and
/// their bookkeeping. `train_exposures` holds every train row, clicked
/// or not: ReChorus's `train_clicked_set`, from which its LightGCN builds the graph in impression mode.
struct impression_dataset {
  dataset base;
  interactions train_exposures;
  impression_lists train, dev, test;
  impression_report report;

  const impression_lists& split(const std::string& name) const {
    ANS_CHECK(name == "train" || name == "dev" || name == "test",
              "impression_dataset: split must be train, dev or test, got '" << name << "'");
    return name == "train" ? train : name == "dev" ? dev : test;
  }
};

namespace detail {

struct impression_row {
  id_type user, item;
  double key;
  std::uint8_t label;
};

/// Reads one file's rows. `key` names the grouping column. Errors: `PATH:LINE: what`.
inline void read_impression_file(const std::string& path, impression_key& key, std::vector<impression_row>& out,
                                 id_extent& users, id_extent& items) {
  const std::string text = read_file(path);
  line_reader lines(text);
  std::string_view line;
  int c_user = -1, c_item = -1, c_time = -1, c_label = -1, c_imp = -1;
  size_t n_fields = 0;
  bool have_header = false;
  std::vector<std::string_view> f;
  int c_key = -1;
  while (lines.next(line)) {
    if (is_blank(line)) continue;
    const std::int64_t ln = lines.line_no();
    if (!have_header) {
      split_char(line, '\t', f);
      n_fields = f.size();
      for (size_t c = 0; c < f.size(); ++c) {
        const auto name = trim(f[c]);
        const int ci = static_cast<int>(c);
        if (name == "user_id") c_user = ci;
        else if (name == "item_id") c_item = ci;
        else if (name == "time") c_time = ci;
        else if (name == "label") c_label = ci;
        else if (name == "impression_id") c_imp = ci;
      }
      if (c_user < 0) parse_error(path, ln, "header has no user_id column (impression files are tab-separated)");
      if (c_item < 0) parse_error(path, ln, "header has no item_id column");
      if (c_label < 0)
        parse_error(path, ln, "header has no label column: impression data must have binary labels "
                              "(ReChorus ImpressionReader; the top-k format has neg_items instead)");
      if (key == impression_key::automatic) key = c_imp >= 0 ? impression_key::impression_id : impression_key::time;
      if (key == impression_key::time && c_time < 0)
        parse_error(path, ln, "header has no time column (the lists are grouped by user_id and time)");
      if (key == impression_key::impression_id && c_imp < 0)
        parse_error(path, ln, "header has no impression_id column (--impression_idkey impression_id)");
      c_key = key == impression_key::time ? c_time : c_imp;
      have_header = true;
      continue;
    }
    split_char(line, '\t', f);
    if (f.size() != n_fields)
      parse_error(path, ln,
                  (f.size() < n_fields ? "missing column: row has " : "extra column: row has ") +
                      std::to_string(f.size()) + " field(s), header has " + std::to_string(n_fields));
    const auto u = parse_id(f[c_user], path, ln, "user id");
    const auto i = parse_id(f[c_item], path, ln, "item id");
    if (u == 0) parse_error(path, ln, "user id 0 is the padding id (ReChorus ids start at 1)");
    if (i == 0) parse_error(path, ln, "item id 0 is the padding id (ReChorus ids start at 1)");
    const auto lab = trim(f[c_label]);
    if (lab != "0" && lab != "1")
      parse_error(path, ln, "label " + detail::quote(lab) + " is not 0 or 1 (impression labels are binary clicks)");
    const double k = parse_number(f[c_key], path, ln, key == impression_key::time ? "time" : "impression_id");
    if (!std::isfinite(k)) parse_error(path, ln, "non-finite " + std::string(key == impression_key::time ? "time" : "impression_id"));
    users.see(u, path, ln);
    items.see(i, path, ln);
    out.push_back({static_cast<id_type>(u), static_cast<id_type>(i), k, static_cast<std::uint8_t>(lab == "1")});
  }
  if (!have_header) parse_error(path, lines.line_no(), "no header line");
}

/// Groups one split's rows into lists (ids still 1-based in `rows`, 0-based in `out`).
inline void group_impressions(std::vector<impression_row>& rows, impression_lists& out, impression_report& rep,
                              int s) {
  std::sort(rows.begin(), rows.end(), [](const impression_row& a, const impression_row& b) {
    if (a.user != b.user) return a.user < b.user;
    if (a.key != b.key) return a.key < b.key;
    if (a.label != b.label) return a.label > b.label;
    return a.item < b.item;
  });
  std::vector<id_type> pos, neg;
  for (size_t r = 0; r < rows.size();) {
    size_t e = r;
    while (e < rows.size() && rows[e].user == rows[r].user && rows[e].key == rows[r].key) ++e;
    ++rep.groups[s];
    pos.clear();
    neg.clear();
    for (size_t j = r; j < e; ++j) (rows[j].label ? pos : neg).push_back(rows[j].item - 1);
    pos.erase(std::unique(pos.begin(), pos.end()), pos.end());  // sorted by item within a label
    neg.erase(std::unique(neg.begin(), neg.end()), neg.end());
    if (pos.empty()) {
      ++rep.no_positive[s];
    } else {
      // ReChorus sums pos_num and neg_num before it drops the lists without negatives
      rep.pos_sum_rechorus += static_cast<std::int64_t>(pos.size());
      rep.neg_sum_rechorus += static_cast<std::int64_t>(neg.size());
      if (neg.empty()) {
        ++rep.no_negative[s];
      } else {
        out.users.push_back(rows[r].user - 1);
        out.keys.push_back(rows[r].key);
        out.pos.insert(out.pos.end(), pos.begin(), pos.end());
        out.neg.insert(out.neg.end(), neg.begin(), neg.end());
        out.pos_begin.push_back(static_cast<index_t>(out.pos.size()));
        out.neg_begin.push_back(static_cast<index_t>(out.neg.size()));
      }
    }
    r = e;
  }
  rep.lists[s] = out.size();
}

}  // namespace detail

/// True when `dir/train.csv` is an impression file (its header has a `label` column).
inline bool is_impression_folder(const std::string& dir) {
  std::FILE* f = std::fopen(join_path(dir, "train.csv").c_str(), "rb");
  if (!f) return false;
  char buf[4096];
  const size_t n = std::fread(buf, 1, sizeof(buf), f);
  std::fclose(f);
  std::string_view head(buf, n);
  head = head.substr(0, head.find('\n'));
  std::vector<std::string_view> cols;
  split_char(head, '\t', cols);
  for (auto c : cols)
    if (trim(c) == "label") return true;
  return false;
}

/// Loads an impression folder: `DIR/train.csv`, `DIR/dev.csv` and `DIR/test.csv` (all three required: ReChorus
/// reads all three). Errors (`PATH:LINE: what`): unreadable or empty file, a header without user_id, item_id,
/// label or the key column, a ragged row, a label other than 0/1, an id that is non-numeric, negative, 0 or
/// past the id limit, a non-numeric key, a split without any list left.
inline impression_dataset load_impression(const std::string& dir, const impression_options& opt = {}) {
  impression_dataset d;
  const char* names[3] = {"train.csv", "dev.csv", "test.csv"};
  std::vector<detail::impression_row> rows[3];
  id_extent users, items;
  impression_key key = opt.key;
  for (int s = 0; s < 3; ++s) {
    const std::string path = join_path(dir, names[s]);
    detail::read_impression_file(path, key, rows[s], users, items);
    d.report.rows[s] = static_cast<std::int64_t>(rows[s].size());
    for (const auto& r : rows[s]) d.report.clicks[s] += r.label;
    if (rows[s].empty()) parse_error(path, 2, "header but no rows");
  }
  d.report.key = key == impression_key::time ? "time" : "impression_id";
  for (auto* e : {&users, &items}) {
    if (e->max <= opt.load.id_floor) continue;
    std::vector<index_t> ids;
    for (const auto& v : rows)
      for (const auto& r : v) ids.push_back(e == &users ? r.user : r.item);
    check_dense_ids(*e, ids, e == &users ? "user" : "item", opt.load.id_density, opt.load.id_floor);
  }
  const index_t nu = std::max<index_t>(users.max, 0), ni = std::max<index_t>(items.max, 0);
  d.report.max_user_id = nu;
  d.report.max_item_id = ni;
  std::vector<std::pair<index_t, index_t>> clicked[3], exposed;  // the lists' positives; every train row
  for (const auto& r : rows[0]) exposed.emplace_back(r.user - 1, r.item - 1);
  impression_lists* out[3] = {&d.train, &d.dev, &d.test};
  for (int s = 0; s < 3; ++s) {
    detail::group_impressions(rows[s], *out[s], d.report, s);
    if (out[s]->size() == 0)
      parse_error(join_path(dir, names[s]), 1,
                  "no impression list has both a clicked and a not-clicked item (ReChorus drops such lists; "
                  "nothing would be left to train or rank)");
    const auto& L = *out[s];
    for (index_t l = 0; l < L.size(); ++l)
      for (index_t p = 0; p < L.n_pos(l); ++p) clicked[s].emplace_back(L.users[l], L.pos_of(l)[p]);
  }
  d.base.name = base_name(dir);
  d.base.format = "rechorus-impression";
  detail::finish_dataset(d.base, nu, ni, clicked[0], clicked[1], clicked[2], opt.load);
  d.train_exposures = from_pairs(nu, ni, exposed);
  return d;
}

/// The lines ReChorus's ImpressionReader logs for this dataset (same wording and rounding), one per line.
inline std::string rechorus_log_lines(const impression_dataset& d) {
  const auto& r = d.report;
  char buf[512];
  std::string s;
  std::snprintf(buf, sizeof buf, "Update impression data -- \"# user\": %lld, \"# item\": %lld, \"# entry\": %lld\n",
                (long long)r.max_user_id, (long long)r.max_item_id, (long long)r.entries());
  s += buf;
  std::snprintf(buf, sizeof buf, "\"# positive interaction\": %lld (%.1f%%)\n", (long long)r.positives(),
                100.0 * double(r.positives()) / double(std::max<std::int64_t>(1, r.entries())));
  s += buf;
  std::snprintf(buf, sizeof buf, "train, dev, test request num: %lld %lld %lld\n", (long long)r.lists[0],
                (long long)r.lists[1], (long long)r.lists[2]);
  s += buf;
  std::snprintf(buf, sizeof buf, "Average positive items / impression = %.3f, negative items / impression = %.3f\n",
                r.avg_pos(), r.avg_neg());
  s += buf;
  return s;
}

}  // namespace ans::data
