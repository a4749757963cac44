/// @file split.hpp
/// @brief Dataset splits: per-user random ratio split (RecBole's `RS` grouped by user), a per-user validation
/// hold-out (holdout_split) and leave-one-out by time (ReChorus). All are deterministic for a seed / an input order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/dataset.hpp"
#include "ans/data/interactions.hpp"
#include "ans/data/random.hpp"

namespace ans::data {

/// Fractions of a random split; normalised by their sum, each must be >= 0 and train > 0.
struct split_ratios {
  double train = 0.8, dev = 0.1, test = 0.1;
};

namespace detail {

/// Appends rows to a CSR in user order, keeping per-nonzero counts.
struct csr_builder {
  interactions m;
  csr_builder(index_t n_users, index_t n_items) {
    m.n_users = n_users;
    m.n_items = n_items;
    m.indptr.assign(static_cast<size_t>(n_users) + 1, 0);
  }
  /// Sets row u (rows must be added in increasing u; skipped rows stay empty) from (item, count) pairs.
  void set_row(index_t u, std::vector<std::pair<id_type, std::uint32_t>>& row) {
    std::sort(row.begin(), row.end());
    for (auto [i, c] : row) {
      if (!m.indices.empty() && m.indptr[u] < static_cast<index_t>(m.indices.size()) && m.indices.back() == i) {
        m.counts.back() += c;
      } else {
        m.indices.push_back(i);
        m.counts.push_back(c);
      }
    }
    for (index_t v = u + 1; v <= m.n_users; ++v) m.indptr[v] = static_cast<index_t>(m.indices.size());
  }
};

/// Row u of `m` as (item, count) pairs in `items`, shuffled by `rng` (the first step of every random split).
inline void shuffled_row(const interactions& m, index_t u, rng_t& rng,
                         std::vector<std::pair<id_type, std::uint32_t>>& items) {
  items.clear();
  for (index_t j = m.indptr[u]; j < m.indptr[u + 1]; ++j)
    items.emplace_back(m.indices[j], m.counts.empty() ? 1u : m.counts[j]);
  shuffle(items.begin(), items.end(), rng);
}

/// How many of `n` interactions go to train, dev and test (RecBole's split_by_ratio rule: dev/test get
/// floor(ratio * n), train the rest; a split whose share is in (0, 1) still gets one while train keeps > 1).
inline void ratio_counts(index_t n, const split_ratios& r, index_t cnt[3]) {
  const double sum = r.train + r.dev + r.test;
  const double q[3] = {r.train / sum, r.dev / sum, r.test / sum};
  cnt[1] = static_cast<index_t>(q[1] * static_cast<double>(n));
  cnt[2] = static_cast<index_t>(q[2] * static_cast<double>(n));
  cnt[0] = n - cnt[1] - cnt[2];
  for (int k = 2; k >= 1; --k) {  // RecBole walks from the last split backwards
    if (cnt[0] <= 1) break;
    const double share = q[k] * static_cast<double>(n);
    if (share > 0 && share < 1) {
      ++cnt[k];
      --cnt[0];
    }
  }
}

}  // namespace detail

/// Random per-user ratio split of `m` (like RecBole's `RS` with `group_by: user`, random order): each user's
/// items are shuffled with a std::mt19937_64 seeded by `seed` (users in increasing order, one engine), then the
/// first part goes to train, the next to dev, the rest to test (sizes by detail::ratio_counts). Counts of
/// merged duplicates travel with their item. Returns a dataset with format "split" and the three matrices;
/// the splits are disjoint and their union is `m`.
inline dataset random_split(const interactions& m, const split_ratios& ratios = {}, std::uint64_t seed = 2020) {
  ANS_CHECK(ratios.train > 0 && ratios.dev >= 0 && ratios.test >= 0,
            "bad split ratios " << ratios.train << "/" << ratios.dev << "/" << ratios.test);
  rng_t rng(seed);
  detail::csr_builder b[3] = {{m.n_users, m.n_items}, {m.n_users, m.n_items}, {m.n_users, m.n_items}};
  std::vector<std::pair<id_type, std::uint32_t>> items, part;
  for (index_t u = 0; u < m.n_users; ++u) {
    detail::shuffled_row(m, u, rng, items);
    index_t cnt[3];
    detail::ratio_counts(static_cast<index_t>(items.size()), ratios, cnt);
    index_t at = 0;
    for (int s = 0; s < 3; ++s) {
      part.assign(items.begin() + at, items.begin() + at + cnt[s]);
      at += cnt[s];
      b[s].set_row(u, part);
    }
  }
  dataset d;
  d.format = "split";
  d.train = std::move(b[0].m);
  d.dev = std::move(b[1].m);
  d.test = std::move(b[2].m);
  d.report.raw_train = d.train.nnz();
  d.report.raw_dev = d.dev.nnz();
  d.report.raw_test = d.test.nnz();
  for (index_t u = 0; u < m.n_users; ++u) {
    if (d.train.row_size(u) == 0) ++d.report.users_without_train;
    if (d.test.row_size(u) == 0) ++d.report.users_without_test;
  }
  return d;
}

/// The number of a user's `n` interactions that holdout_split sets aside: round(ratio·n) (halves up), at most
/// n − 1, none for n <= 1. Over a dataset this is ratio of the interactions up to rounding (Beauty, 0.1: 9.97%),
/// unlike the RecBole rule of detail::ratio_counts, which gives every user with a share in (0, 1) one item
/// (Beauty, 0.1: 13.4%, since most users have fewer than 10 training items).
inline index_t holdout_count(index_t n, double ratio) {
  if (n <= 1) return 0;
  return std::min<index_t>(n - 1, static_cast<index_t>(std::floor(static_cast<double>(n) * ratio + 0.5)));
}

/// Seeded per-user hold-out of `m` (a validation split carved from the training interactions): each user's
/// items are shuffled with a std::mt19937_64 seeded by `seed` (users in increasing order, one engine) and the
/// first holdout_count(n, ratio) go to `dev`, the rest to `train`; `test` is empty. The same rule as the PyTorch
/// reference (benchmarks/reference/ans_ref.py), so both train on the same amount of data.
inline dataset holdout_split(const interactions& m, double ratio, std::uint64_t seed) {
  ANS_CHECK(ratio >= 0 && ratio < 1, "holdout ratio must be in [0, 1), got " << ratio);
  rng_t rng(seed);
  detail::csr_builder tr{m.n_users, m.n_items}, dv{m.n_users, m.n_items};
  std::vector<std::pair<id_type, std::uint32_t>> items, part;
  for (index_t u = 0; u < m.n_users; ++u) {
    detail::shuffled_row(m, u, rng, items);
    const index_t nv = holdout_count(static_cast<index_t>(items.size()), ratio);
    part.assign(items.begin(), items.begin() + nv);
    dv.set_row(u, part);
    part.assign(items.begin() + nv, items.end());
    tr.set_row(u, part);
  }
  dataset d;
  d.format = "split";
  d.train = std::move(tr.m);
  d.dev = std::move(dv.m);
  d.test = interactions{};
  d.test.n_users = m.n_users;
  d.test.n_items = m.n_items;
  d.test.indptr.assign(static_cast<size_t>(m.n_users) + 1, 0);
  d.report.raw_train = d.train.nnz();
  d.report.raw_dev = d.dev.nnz();
  return d;
}

/// Leave-one-out split by time (ReChorus): per user, interactions are ordered by time (ties keep input
/// order); the last goes to test, the second-to-last to dev, the rest to train. A user with 2 interactions
/// gets train + test, one with 1 only train. Duplicate (user, item) pairs inside train are merged and
/// counted (report.merged_train). Every id must be inside [0, n_users) x [0, n_items).
inline dataset leave_one_out(index_t n_users, index_t n_items, const std::vector<timed_interaction>& events) {
  std::vector<index_t> ptr(static_cast<size_t>(n_users) + 1, 0);
  for (const auto& e : events) {
    ANS_CHECK(e.user >= 0 && e.user < n_users, "user id " << e.user << " outside [0, " << n_users << ")");
    ANS_CHECK(e.item >= 0 && e.item < n_items, "item id " << e.item << " outside [0, " << n_items << ")");
    ++ptr[e.user + 1];
  }
  for (index_t u = 0; u < n_users; ++u) ptr[u + 1] += ptr[u];
  std::vector<std::int64_t> order(events.size());  // event indices grouped by user, input order kept
  {
    std::vector<index_t> fill(ptr.begin(), ptr.end() - 1);
    for (size_t k = 0; k < events.size(); ++k) order[fill[events[k].user]++] = static_cast<std::int64_t>(k);
  }
  std::vector<std::pair<index_t, index_t>> pairs[3];
  for (index_t u = 0; u < n_users; ++u) {
    auto b = order.begin() + ptr[u], e = order.begin() + ptr[u + 1];
    std::stable_sort(b, e, [&](std::int64_t x, std::int64_t y) { return events[x].time < events[y].time; });
    const index_t n = ptr[u + 1] - ptr[u];
    const index_t n_test = n >= 2 ? 1 : 0, n_dev = n >= 3 ? 1 : 0;
    for (index_t k = 0; k < n; ++k) {
      const auto& ev = events[b[k]];
      const int s = k >= n - n_test ? 2 : (k >= n - n_test - n_dev ? 1 : 0);
      pairs[s].emplace_back(ev.user, ev.item);
    }
  }
  dataset d;
  d.format = "split";
  d.train = from_pairs(n_users, n_items, pairs[0]);
  d.dev = from_pairs(n_users, n_items, pairs[1]);
  d.test = from_pairs(n_users, n_items, pairs[2]);
  d.report.raw_train = static_cast<std::int64_t>(pairs[0].size());
  d.report.raw_dev = static_cast<std::int64_t>(pairs[1].size());
  d.report.raw_test = static_cast<std::int64_t>(pairs[2].size());
  d.report.merged_train = d.train.merged_duplicates();
  for (index_t u = 0; u < n_users; ++u) {
    if (d.train.row_size(u) == 0) ++d.report.users_without_train;
    if (d.test.row_size(u) == 0) ++d.report.users_without_test;
  }
  return d;
}

}  // namespace ans::data
