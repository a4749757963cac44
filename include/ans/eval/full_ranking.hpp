/// @file full_ranking.hpp
/// @brief Full-ranking evaluation (LightGCN / RecBole protocol): rank every item, mask known items.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/eval/metrics.hpp"
#include "ans/types.hpp"

namespace ans::eval {

/// Options of full_ranking.
struct full_ranking_options {
  std::vector<index_t> ks{20};
  std::vector<metric_kind> kinds{metric_kind::recall, metric_kind::ndcg, metric_kind::precision,
                                 metric_kind::hit};
  /// Users scored per GEMM (memory: block_users x n_items scalars per thread). 0 (default): sized from
  /// `block_bytes`, clamped to [32, 256] users.
  index_t block_users = 0;
  /// Items [0, first_item) are never ranked (e.g. 1 for RecBole's [PAD] item 0).
  index_t first_item = 0;
  std::size_t block_bytes = std::size_t(12) << 20;  ///< per-thread score buffer budget when block_users == 0
};

namespace detail {
/// The number of users scored per GEMM under `opt` for `n_items` items of type Scalar.
template <class Scalar = float>
index_t ranking_block_rows(const full_ranking_options& opt, index_t n_items) {
  if (opt.block_users > 0) return opt.block_users;
  const auto per_user = static_cast<std::size_t>(std::max<index_t>(n_items, 1)) * sizeof(Scalar);
  return std::clamp<index_t>(static_cast<index_t>(opt.block_bytes / per_user), 32, 256);
}
}  // namespace detail

/// Per-user results of full_ranking (optional output).
struct full_ranking_details {
  std::vector<index_t> users;     ///< evaluated users (those with >= 1 test item), increasing
  std::vector<metric_spec> specs;  ///< column order of `values`
  std::vector<double> values;     ///< [users.size(), specs.size()] row-major
};

/// Full ranking: for every user u with at least one item in `test`, scores all items by
/// <user_factors.row(u), item_factors.row(i)>, excludes the items of u in `train` and in every CSR of
/// `extra_masks` (e.g. the validation split when testing), sorts the rest by score descending with ties
/// broken by the lower item id (top max(K) by one heap pass), and evaluates the top max(K) against u's test items (metrics.hpp).
/// Returns the mean of each metric over the evaluated users, keyed "Recall@20", "NDCG@20", ...
///
/// Users are processed in blocks of `block_users` (by default as many as fit 12 MiB of scores per thread, 32 to
/// 256), one GEMM per block (never n_users x n_items at once),
/// blocks in parallel with OpenMP (static schedule; Eigen's GEMM runs single-threaded inside the region).
/// The result does not depend on the thread count: per-user values are stored and summed in user order.
/// NaN scores rank below every finite score. Test items that are also masked can never be hit but still
/// count in |T_u| (the usual protocol has no overlap).
template <class Scalar>
std::map<std::string, double> full_ranking(const Eigen::Ref<const matrix<Scalar>>& user_factors,
                                           const Eigen::Ref<const matrix<Scalar>>& item_factors,
                                           const data::interactions& train, const data::interactions& test,
                                           const std::vector<const data::interactions*>& extra_masks = {},
                                           const full_ranking_options& opt = {},
                                           full_ranking_details* details = nullptr) {
  const index_t n_users = train.n_users, n_items = train.n_items;
  ANS_CHECK(user_factors.rows() == n_users, "full_ranking: " << user_factors.rows() << " user rows for "
                                                             << n_users << " users in train");
  ANS_CHECK(item_factors.rows() == n_items, "full_ranking: " << item_factors.rows() << " item rows for "
                                                             << n_items << " items in train");
  ANS_CHECK(user_factors.cols() == item_factors.cols(), "full_ranking: user width " << user_factors.cols()
                                                                                    << " != item width "
                                                                                    << item_factors.cols());
  ANS_CHECK(test.n_users == n_users && test.n_items == n_items,
            "full_ranking: test is " << test.n_users << " x " << test.n_items << ", train is " << n_users
                                     << " x " << n_items);
  for (const auto* m : extra_masks)
    ANS_CHECK(m != nullptr && m->n_users == n_users && m->n_items == n_items,
              "full_ranking: an extra mask is null or not " << n_users << " x " << n_items);
  ANS_CHECK(opt.block_users >= 0, "full_ranking: block_users must be >= 0 (0 = from block_bytes)");
  ANS_CHECK(opt.first_item >= 0 && opt.first_item <= n_items, "full_ranking: bad first_item " << opt.first_item);

  const auto specs = make_specs(opt.kinds, opt.ks);
  const index_t n_spec = static_cast<index_t>(specs.size());
  const index_t top_k = max_k(specs);
  ANS_CHECK(top_k >= 1, "full_ranking: no metrics requested (empty ks or kinds)");

  std::vector<index_t> users;
  for (index_t u = 0; u < n_users; ++u)
    if (test.row_size(u) > 0) users.push_back(u);
  const index_t n_eval = static_cast<index_t>(users.size());
  std::vector<double> values(static_cast<size_t>(n_eval * n_spec), 0.0);
  const index_t B = detail::ranking_block_rows<Scalar>(opt, n_items);
  const index_t n_blocks = (n_eval + B - 1) / B;
  const index_t D = user_factors.cols();
  const Scalar neg_inf = -std::numeric_limits<Scalar>::infinity();

  bool failed = false;
  std::string message;
#if ANS_HAS_OPENMP
#pragma omp parallel if (n_blocks > 1)
#endif
  {
    // Exceptions must not leave the OpenMP constructs: record the first, keep every thread in the loop.
    auto record = [&](const std::exception& e) {
#if ANS_HAS_OPENMP
#pragma omp critical(ans_full_ranking_error)
#endif
      if (!failed) {
        failed = true;
        message = e.what();
      }
    };
    // Per-thread scratch, allocated once.
    matrix<Scalar> ublock, scores;
    std::vector<std::uint8_t> masked, rel;
    std::vector<id_type> heap;
    bool ok = true;
    try {
      ublock.resize(std::min(B, std::max<index_t>(n_eval, 1)), D);
      scores.resize(ublock.rows(), n_items);
      masked.assign(static_cast<size_t>(n_items), 0);
      heap.resize(static_cast<size_t>(top_k));
      rel.resize(static_cast<size_t>(top_k));
    } catch (const std::exception& e) {
      ok = false;
      record(e);
    }
#if ANS_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (index_t blk = 0; blk < n_blocks; ++blk) {
      if (!ok) continue;
      try {
        const index_t b0 = blk * B, nb = std::min(B, n_eval - b0);
        for (index_t r = 0; r < nb; ++r) ublock.row(r) = user_factors.row(users[b0 + r]);
        scores.topRows(nb).noalias() = ublock.topRows(nb) * item_factors.transpose();
        for (index_t r = 0; r < nb; ++r) {
          const index_t u = users[b0 + r];
          Scalar* s = scores.row(r).data();
          auto mask_row = [&](const data::interactions& m) {
            for (const id_type* p = m.row_begin(u); p != m.row_end(u); ++p) {
              masked[*p] = 1;
              s[*p] = neg_inf;
            }
          };
          mask_row(train);
          for (const auto* m : extra_masks) mask_row(*m);
          // Top-K in one sequential pass: a heap of the K best so far whose front is the worst of them.
          // Items are visited in increasing id, so an item tying the front's score has a larger id and
          // loses: ties go to the lower id, and most items are rejected by a single comparison.
          auto better = [s](id_type a, id_type b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
          index_t len = 0;
          for (index_t i = opt.first_item; i < n_items; ++i) {
            if (masked[i]) continue;
            if (std::isnan(s[i])) s[i] = neg_inf;
            const auto it = static_cast<id_type>(i);
            if (len < top_k) {
              heap[len++] = it;
              std::push_heap(heap.begin(), heap.begin() + len, better);
            } else if (better(it, heap[0])) {
              std::pop_heap(heap.begin(), heap.begin() + len, better);
              heap[len - 1] = it;
              std::push_heap(heap.begin(), heap.begin() + len, better);
            }
          }
          std::sort_heap(heap.begin(), heap.begin() + len, better);
          const id_type* tb = test.row_begin(u);
          const id_type* te = test.row_end(u);
          for (index_t q = 0; q < len; ++q) rel[q] = std::binary_search(tb, te, heap[q]);
          ranking_metrics(specs, rel.data(), len, test.row_size(u), values.data() + (b0 + r) * n_spec);
          // Undo the mask flags.
          for (const id_type* p = train.row_begin(u); p != train.row_end(u); ++p) masked[*p] = 0;
          for (const auto* m : extra_masks)
            for (const id_type* p = m->row_begin(u); p != m->row_end(u); ++p) masked[*p] = 0;
        }
      } catch (const std::exception& e) {
        record(e);
      }
    }
  }
  if (failed) throw error(message);

  std::map<std::string, double> out;
  for (index_t j = 0; j < n_spec; ++j) {
    double sum = 0;
    for (index_t r = 0; r < n_eval; ++r) sum += values[r * n_spec + j];
    out[specs[j].name()] = n_eval > 0 ? sum / static_cast<double>(n_eval) : 0.0;
  }
  if (details) {
    details->users = std::move(users);
    details->specs = specs;
    details->values = std::move(values);
  }
  return out;
}

}  // namespace ans::eval
