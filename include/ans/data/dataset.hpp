/// @file dataset.hpp
/// @brief A loaded dataset: train/dev/test interaction matrices sharing one shape, optional fixed candidate
/// negatives (ReChorus), optional raw-id maps (RecBole tokens), and a load report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"

namespace ans::data {

/// Fixed evaluation candidates of a dev or test split (ReChorus format): row r holds user `users[r]`, the
/// positive item `positives[r]` and the `n_neg` negatives `negatives[r*n_neg .. (r+1)*n_neg)`.
/// Row order is the file's; duplicate negatives within a row are kept (ReChorus samples with replacement).
struct fixed_candidates {
  std::vector<id_type> users;
  std::vector<id_type> positives;
  std::vector<id_type> negatives;  ///< rows() x n_neg, row-major
  int n_neg = 0;

  index_t rows() const { return static_cast<index_t>(users.size()); }
  bool empty() const { return users.empty(); }
  /// Pointer to the n_neg negatives of row r.
  const id_type* negatives_of(index_t r) const { return negatives.data() + r * n_neg; }
};

/// Raw token <-> dense id map. Dense ids are given in order of first appearance.
struct id_map {
  std::vector<std::string> to_raw;                        ///< dense id -> raw token
  std::unordered_map<std::string, id_type> to_dense; ///< raw token -> dense id

  index_t size() const { return static_cast<index_t>(to_raw.size()); }

  /// Dense id of `token`, assigning the next free id when it is new.
  id_type get_or_add(std::string_view token) {
    std::string key(token);
    auto it = to_dense.find(key);
    if (it != to_dense.end()) return it->second;
    const auto id = static_cast<id_type>(to_raw.size());
    to_dense.emplace(key, id);
    to_raw.push_back(std::move(key));
    return id;
  }

  /// Dense id of `token`, or -1 when it is unknown.
  id_type find(std::string_view token) const {
    auto it = to_dense.find(std::string(token));
    return it == to_dense.end() ? -1 : it->second;
  }
};

/// One interaction with its timestamp (input of leave_one_out, kept by loaders that see a time column).
struct timed_interaction {
  id_type user = 0;
  id_type item = 0;
  double time = 0;
};

/// What to do with a dev/test interaction whose item (or user) never occurs in train.
enum class unseen_policy {
  keep,       ///< keep it in dev/test (default; counted in `load_report::unseen_*`)
  set_aside,  ///< move it out of dev/test into `dataset::set_aside` (counted in `load_report::set_aside_*`)
};

/// Options shared by the loaders.
struct load_options {
  unseen_policy unseen = unseen_policy::keep;
  /// The id limit of formats whose ids are row indices (LightGCN, ReChorus): the largest id + 1 may exceed
  /// 2^20 only up to `id_density` times the number of distinct ids, so that a stray huge id is a `file:line`
  /// error instead of a multi-GB table (ans-train `--id_density`). 0: no limit.
  double id_density = 64;
  /// Tables of up to this many rows are always allowed, whatever the density (default 2^20). The fuzz targets
  /// lower it so that the check runs on small inputs without allocating large tables.
  index_t id_floor = index_t(1) << 20;
};

/// Counts that describe how a dataset was loaded. Nothing is dropped silently: every interaction read is
/// either in a matrix (possibly merged with a duplicate, see `merged_*`) or listed in `dataset::set_aside`
/// (see `set_aside_*`).
///
/// "Unseen" means: a dev/test interaction whose item (or user) has no interaction in train. Such an item
/// has an id (it is inside n_items) but a model never sees it during training. With the default
/// `unseen_policy::keep` these stay in dev/test and are only counted in `unseen_*`; with
/// `unseen_policy::set_aside` they are moved out of the dev/test matrices into `dataset::set_aside` and
/// counted in `set_aside_*` as well. A fixed-candidate row (ReChorus) is never removed.
struct load_report {
  std::int64_t lines_read = 0;  ///< lines read over all files, headers and blank lines included
  std::int64_t blank_lines = 0; ///< blank lines skipped
  std::int64_t raw_train = 0, raw_dev = 0, raw_test = 0;  ///< interactions read per split, before merging
  std::int64_t merged_train = 0, merged_dev = 0, merged_test = 0;  ///< duplicate pairs merged per split
  std::int64_t unseen_item_dev = 0, unseen_item_test = 0;  ///< dev/test interactions with an item absent from train
  std::int64_t unseen_user_dev = 0, unseen_user_test = 0;  ///< ... with a user absent from train (item seen)
  std::int64_t set_aside_item_dev = 0, set_aside_item_test = 0;  ///< moved out of dev/test: unseen item
  std::int64_t set_aside_user_dev = 0, set_aside_user_test = 0;  ///< moved out of dev/test: unseen user
  std::int64_t users_without_train = 0;  ///< users with no train interaction
  std::int64_t users_without_test = 0;   ///< users with no test interaction (and no fixed test row)
  bool has_split = true;  ///< false when the source had no split (everything is in train)

  std::int64_t merged_duplicates() const { return merged_train + merged_dev + merged_test; }
  std::int64_t set_aside_total() const {
    return set_aside_item_dev + set_aside_item_test + set_aside_user_dev + set_aside_user_test;
  }
};

/// A dev/test interaction moved out of its split (see unseen_policy::set_aside).
struct set_aside_interaction {
  enum split_t : std::uint8_t { dev, test } split = test;
  enum reason_t : std::uint8_t { unseen_item, unseen_user } reason = unseen_item;
  id_type user = 0;
  id_type item = 0;
};

/// A loaded (or generated, or split) dataset. train, dev and test all have shape n_users x n_items.
struct dataset {
  std::string name;    ///< e.g. the folder name ("gowalla")
  std::string format;  ///< "lightgcn", "recbole", "rechorus", "synthetic", "split"
  interactions train, dev, test;
  std::optional<fixed_candidates> dev_candidates, test_candidates;  ///< ReChorus fixed negatives
  std::optional<id_map> user_ids, item_ids;  ///< raw token maps (RecBole); absent when ids are used as is
  std::vector<timed_interaction> events;     ///< timestamped interactions, kept only for a source with a
                                             ///< time column and no split (input for leave_one_out)
  std::vector<set_aside_interaction> set_aside;
  load_report report;

  index_t n_users() const { return train.n_users; }
  index_t n_items() const { return train.n_items; }
};

namespace detail {

/// Builds train/dev/test from collected pairs, applies the unseen policy and fills the report counts
/// (merged duplicates, unseen / set aside, users without train/test). A user with a fixed test candidate
/// row (d.test_candidates, set before the call) counts as having a test item.
inline void finish_dataset(dataset& d, index_t n_users, index_t n_items,
                           std::vector<std::pair<index_t, index_t>>& train_pairs,
                           std::vector<std::pair<index_t, index_t>>& dev_pairs,
                           std::vector<std::pair<index_t, index_t>>& test_pairs, const load_options& opt) {
  auto& r = d.report;
  r.raw_train = static_cast<std::int64_t>(train_pairs.size());
  r.raw_dev = static_cast<std::int64_t>(dev_pairs.size());
  r.raw_test = static_cast<std::int64_t>(test_pairs.size());
  d.train = from_pairs(n_users, n_items, train_pairs);
  std::vector<char> item_seen(static_cast<size_t>(n_items), 0), user_seen(static_cast<size_t>(n_users), 0);
  for (index_t u = 0; u < n_users; ++u) {
    if (d.train.row_size(u) > 0) user_seen[u] = 1;
    for (auto p = d.train.row_begin(u); p != d.train.row_end(u); ++p) item_seen[*p] = 1;
  }
  auto filter = [&](std::vector<std::pair<index_t, index_t>>& pairs, set_aside_interaction::split_t split,
                    std::int64_t& unseen_item, std::int64_t& unseen_user, std::int64_t& aside_item,
                    std::int64_t& aside_user) {
    size_t w = 0;
    for (size_t k = 0; k < pairs.size(); ++k) {
      const auto [u, i] = pairs[k];
      const bool in_range = u >= 0 && u < n_users && i >= 0 && i < n_items;  // from_pairs reports others
      int reason = -1;
      if (in_range && !item_seen[i]) {
        ++unseen_item;
        reason = set_aside_interaction::unseen_item;
      } else if (in_range && !user_seen[u]) {
        ++unseen_user;
        reason = set_aside_interaction::unseen_user;
      }
      if (reason >= 0 && opt.unseen == unseen_policy::set_aside) {
        (reason == set_aside_interaction::unseen_item ? aside_item : aside_user)++;
        d.set_aside.push_back({split, static_cast<set_aside_interaction::reason_t>(reason),
                               static_cast<id_type>(u), static_cast<id_type>(i)});
      } else {
        pairs[w++] = pairs[k];
      }
    }
    pairs.resize(w);
  };
  filter(dev_pairs, set_aside_interaction::dev, r.unseen_item_dev, r.unseen_user_dev, r.set_aside_item_dev,
         r.set_aside_user_dev);
  filter(test_pairs, set_aside_interaction::test, r.unseen_item_test, r.unseen_user_test,
         r.set_aside_item_test, r.set_aside_user_test);
  d.dev = from_pairs(n_users, n_items, dev_pairs);
  d.test = from_pairs(n_users, n_items, test_pairs);
  r.merged_train = d.train.merged_duplicates();
  r.merged_dev = d.dev.merged_duplicates();
  r.merged_test = d.test.merged_duplicates();
  r.users_without_train = 0;
  r.users_without_test = 0;
  std::vector<char> has_test_row(static_cast<size_t>(n_users), 0);
  if (d.test_candidates)
    for (auto u : d.test_candidates->users) has_test_row[u] = 1;
  for (index_t u = 0; u < n_users; ++u) {
    if (d.train.row_size(u) == 0) ++r.users_without_train;
    if (d.test.row_size(u) == 0 && !has_test_row[u]) ++r.users_without_test;
  }
}

}  // namespace detail

}  // namespace ans::data
