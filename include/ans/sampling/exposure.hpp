/// @file exposure.hpp
/// @brief Exposure candidates for impression data: the K candidates of a training pair (user, clicked item) are
/// drawn from the items the user was shown and did not click in the same impression list.
///
/// For pair (u, i) the *pool* is the union of the negatives of the train lists of u in which i is a positive
/// (one list in practice). Per pair:
///   - pool size m >= K: K distinct pool items, uniformly (Floyd's algorithm, no allocation);
///   - m < K: the m pool items (in pool order), then K − m uniform draws over the items outside the user's
///     clicked train items (uniform_sampler's rule), so a short list is topped up as the issue asks.
/// A pair that is not a positive of any train list has an empty pool and gets K uniform draws.
///
/// The sampler copies what it needs (the clicked train CSR and the pools): it keeps no address.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/impression.hpp"
#include "ans/sampling/sampler.hpp"
#include "ans/sampling/uniform.hpp"

namespace ans::sampling {

class exposure_sampler {
 public:
  /// `d.base.train` are the training pairs; the pools come from `d.train`'s lists.
  explicit exposure_sampler(const data::impression_dataset& d) : train_(d.base.train) {
    const auto& lists = d.train;
    std::vector<std::pair<index_t, id_type>> entries;  // (nnz index of the pair, pool item)
    for (index_t l = 0; l < lists.size(); ++l) {
      const index_t u = lists.users[l];
      ANS_CHECK(u >= 0 && u < train_.n_users, "exposure_sampler: list " << l << ": user " << u << " outside [0, "
                                                                       << train_.n_users << ")");
      for (index_t p = 0; p < lists.n_pos(l); ++p) {
        const id_type i = lists.pos_of(l)[p];
        const id_type* it = std::lower_bound(train_.row_begin(u), train_.row_end(u), i);
        ANS_CHECK(it != train_.row_end(u) && *it == i,
                  "exposure_sampler: list " << l << ": positive (" << u << ", " << i << ") is not a training pair");
        const index_t nz = train_.indptr[u] + (it - train_.row_begin(u));
        for (index_t j = 0; j < lists.n_neg(l); ++j) entries.emplace_back(nz, lists.neg_of(l)[j]);
      }
    }
    std::sort(entries.begin(), entries.end());
    entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
    ptr_.assign(static_cast<size_t>(train_.nnz()) + 1, 0);
    pool_.reserve(entries.size());
    for (const auto& [nz, item] : entries) ++ptr_[nz + 1], pool_.push_back(item);
    for (index_t k = 0; k < train_.nnz(); ++k) ptr_[k + 1] += ptr_[k];
  }
  exposure_sampler(data::impression_dataset&&) = delete;  ///< consistent with the other samplers' rule

  /// The pool of pair (user, item): [first, last) of item ids (empty when the pair is not a training pair).
  std::pair<const id_type*, const id_type*> pool(index_t user, index_t item) const {
    if (user < 0 || user >= train_.n_users) return {nullptr, nullptr};
    const id_type* it = std::lower_bound(train_.row_begin(user), train_.row_end(user), static_cast<id_type>(item));
    if (it == train_.row_end(user) || *it != item) return {nullptr, nullptr};
    const index_t nz = train_.indptr[user] + (it - train_.row_begin(user));
    return {pool_.data() + ptr_[nz], pool_.data() + ptr_[nz + 1]};
  }
  /// Mean pool size over the training pairs.
  double mean_pool() const { return train_.nnz() ? double(pool_.size()) / double(train_.nnz()) : 0.0; }
  /// Fraction of candidate slots filled by uniform draws when K candidates are drawn per pair.
  double uniform_fraction(index_t K) const {
    double fill = 0;
    for (index_t k = 0; k < train_.nnz(); ++k) fill += double(std::max<index_t>(0, K - (ptr_[k + 1] - ptr_[k])));
    return train_.nnz() ? fill / (double(K) * double(train_.nnz())) : 0.0;
  }

  template <class Rng>
  void sample(index_t user, index_t pos_item, Rng& rng, item_span out) const {
    const auto [b, e] = pool(user, pos_item);
    const index_t m = static_cast<index_t>(e - b), K = out.size();
    if (m >= K) {
      // Floyd: for j = m−K .. m−1, t = uniform in [0, j]; take t unless taken, else j (K distinct of m)
      for (index_t n = 0, j = m - K; j < m; ++j, ++n) {
        const index_t t = static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(j + 1)));
        const id_type v = b[t];
        out[n] = std::find(out.begin(), out.begin() + n, v) != out.begin() + n ? b[j] : v;
      }
      return;
    }
    for (index_t k = 0; k < m; ++k) out[k] = b[k];
    const uniform_sampler uni(train_);
    for (index_t k = m; k < K; ++k) out[k] = uni.draw(user, rng);
  }
  void prefetch(index_t user) const {
    if (user >= 0 && user < train_.n_users) ANS_PREFETCH(train_.row_begin(user));
  }

 private:
  data::interactions train_;  ///< the clicked training pairs (a copy)
  std::vector<index_t> ptr_;  ///< per training nonzero: its pool's range in pool_
  std::vector<id_type> pool_;
};

}  // namespace ans::sampling
