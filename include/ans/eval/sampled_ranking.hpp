/// @file sampled_ranking.hpp
/// @brief Sampled-candidate evaluation, ReChorus protocol: one positive against fixed negatives.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/eval/metrics.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/types.hpp"

namespace ans::eval {

/// Evaluation rows: row r is (users[r], positives[r], negatives[r*n_neg .. (r+1)*n_neg)).
/// Negatives may repeat (ReChorus samples with replacement); each occurrence counts.
struct sampled_rows {
  index_t n_neg = 99;
  std::vector<index_t> users;
  std::vector<id_type> positives;
  std::vector<id_type> negatives;  ///< [n_rows, n_neg] row-major

  index_t size() const { return static_cast<index_t>(users.size()); }
};

/// The positive's 1-based rank among {pos} ∪ negatives: rank = #{c : score(c) >= score(pos)}, counting the
/// positive itself (so rank >= 1), counting ties against the positive and duplicated negatives once per
/// occurrence. A NaN positive score gets the worst rank n_neg + 1; NaN negatives never outrank.
template <class Scalar>
index_t sampled_rank(Scalar pos_score, const Scalar* neg_scores, index_t n_neg) {
  if (std::isnan(pos_score)) return n_neg + 1;
  index_t rank = 1;
  for (index_t j = 0; j < n_neg; ++j) rank += neg_scores[j] >= pos_score;
  return rank;
}

/// Options of sampled_ranking. The ReChorus defaults: HR and NDCG at {5, 10, 20, 50}.
struct sampled_ranking_options {
  std::vector<index_t> ks{5, 10, 20, 50};
  std::vector<metric_kind> kinds{metric_kind::hit, metric_kind::ndcg};
};

/// Mean metrics over rows from precomputed 1-based ranks (HR@K = [rank<=K], NDCG@K = [rank<=K]/log2(rank+1),
/// MRR@K = [rank<=K]/rank).
inline std::map<std::string, double> sampled_metrics_from_ranks(const std::vector<index_t>& ranks,
                                                                 const sampled_ranking_options& opt = {}) {
  const auto specs = make_specs(opt.kinds, opt.ks);
  std::map<std::string, double> out;
  for (const auto& s : specs) {
    double sum = 0;
    for (auto r : ranks) sum += sampled_metric_value(s, r);
    out[s.name()] = ranks.empty() ? 0.0 : sum / static_cast<double>(ranks.size());
  }
  return out;
}

/// Ranks of every row with score(u, i) = <user_factors.row(u), item_factors.row(i)>; parallel over rows.
template <class Scalar>
std::vector<index_t> sampled_ranks(const Eigen::Ref<const matrix<Scalar>>& user_factors,
                                   const Eigen::Ref<const matrix<Scalar>>& item_factors, const sampled_rows& rows) {
  const index_t n = rows.size(), K = rows.n_neg;
  ANS_CHECK(user_factors.cols() == item_factors.cols(),
            "sampled_ranking: user width " << user_factors.cols() << " != item width " << item_factors.cols());
  ANS_CHECK(static_cast<index_t>(rows.positives.size()) == n && static_cast<index_t>(rows.negatives.size()) == n * K,
            "sampled_ranking: rows hold " << n << " users, " << rows.positives.size() << " positives and "
                                          << rows.negatives.size() << " negatives (expected " << n * K << ")");
  for (index_t r = 0; r < n; ++r) {
    ANS_CHECK(rows.users[r] >= 0 && rows.users[r] < user_factors.rows(),
              "sampled_ranking: row " << r << ": user " << rows.users[r] << " outside [0, " << user_factors.rows() << ")");
    ANS_CHECK(rows.positives[r] >= 0 && rows.positives[r] < item_factors.rows(),
              "sampled_ranking: row " << r << ": item " << rows.positives[r] << " outside [0, "
                                      << item_factors.rows() << ")");
    for (index_t j = 0; j < K; ++j) {
      const auto it = rows.negatives[r * K + j];
      ANS_CHECK(it >= 0 && it < item_factors.rows(),
                "sampled_ranking: row " << r << ": negative " << it << " outside [0, " << item_factors.rows() << ")");
    }
  }
  std::vector<index_t> ranks(static_cast<size_t>(n));
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (n > 256)
#endif
  for (index_t r = 0; r < n; ++r) {
    const auto u = user_factors.row(rows.users[r]);
    const Scalar ps = u.dot(item_factors.row(rows.positives[r]));
    index_t rank = 1;
    if (std::isnan(ps)) {
      rank = K + 1;
    } else {
      for (index_t j = 0; j < K; ++j) rank += u.dot(item_factors.row(rows.negatives[r * K + j])) >= ps;
    }
    ranks[r] = rank;
  }
  return ranks;
}

/// ReChorus sampled ranking: mean HR@K / NDCG@K (keys "HR@5", "NDCG@5", ...) over all rows.
/// Deterministic and thread-count independent (ranks are integers; means are summed in row order).
template <class Scalar>
std::map<std::string, double> sampled_ranking(const Eigen::Ref<const matrix<Scalar>>& user_factors,
                                              const Eigen::Ref<const matrix<Scalar>>& item_factors,
                                              const sampled_rows& rows, const sampled_ranking_options& opt = {}) {
  return sampled_metrics_from_ranks(sampled_ranks<Scalar>(user_factors, item_factors, rows), opt);
}

/// Draws `n_neg` negatives per row, with replacement, uniformly from [first_item, n_items) excluding every
/// item of the row's user in any CSR of `exclude` (ReChorus excludes train ∪ dev ∪ test). Row r draws
/// from `stream(seed, r)`, so the result depends only on (seed, rows). A user with no admissible item
/// raises ans::error. Fills rows.negatives and sets rows.n_neg.
inline void draw_sampled_negatives(sampled_rows& rows, const std::vector<const data::interactions*>& exclude,
                                   index_t n_items, index_t n_neg, std::uint64_t seed, index_t first_item = 0) {
  ANS_CHECK(n_neg >= 0, "draw_sampled_negatives: n_neg must be >= 0");
  ANS_CHECK(first_item >= 0 && first_item < n_items,
            "draw_sampled_negatives: first_item " << first_item << " outside [0, " << n_items << ")");
  for (const auto* m : exclude)
    ANS_CHECK(m != nullptr && m->n_items == n_items, "draw_sampled_negatives: an exclusion CSR is null or has "
                                                         << (m ? m->n_items : -1) << " items, not " << n_items);
  const index_t n = rows.size();
  rows.n_neg = n_neg;
  rows.negatives.assign(static_cast<size_t>(n * n_neg), 0);
  auto excluded = [&](index_t u, index_t i) {
    for (const auto* m : exclude)
      if (m->contains(u, i)) return true;
    return false;
  };
  const auto range = static_cast<std::uint64_t>(n_items - first_item);
  std::vector<id_type> free_items;  // built lazily, only for users where rejection keeps failing
  for (index_t r = 0; r < n; ++r) {
    const index_t u = rows.users[r];
    auto rng = sampling::stream(seed, static_cast<std::uint64_t>(r));
    bool have_free = false;
    for (index_t j = 0; j < n_neg; ++j) {
      index_t pick = -1;
      for (int t = 0; t < 64 && pick < 0; ++t) {
        const auto i = first_item + static_cast<index_t>(rng.uniform_int(range));
        if (!excluded(u, i)) pick = i;
      }
      if (pick < 0) {
        if (!have_free) {
          free_items.clear();
          for (index_t i = first_item; i < n_items; ++i)
            if (!excluded(u, i)) free_items.push_back(static_cast<id_type>(i));
          have_free = true;
        }
        if (free_items.empty())
          ANS_THROW("draw_sampled_negatives: user " << u << " (row " << r
                                                    << ") has interacted with every item; no negative exists");
        pick = free_items[rng.uniform_int(free_items.size())];
      }
      rows.negatives[r * n_neg + j] = static_cast<id_type>(pick);
    }
  }
}

}  // namespace ans::eval
