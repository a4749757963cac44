/// @file popularity.hpp
/// @brief Popularity-biased negative sampling: weights proportional to count^alpha, Walker/Vose alias
/// table, exact rejection of the user's training positives.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/sampling/sampler.hpp"

namespace ans::sampling {

/// Item training counts: the number of users per item (`use_raw_counts = false`) or the number of raw
/// interactions including merged duplicates (`true`).
inline std::vector<double> item_counts(const data::interactions& train, bool use_raw_counts = false) {
  std::vector<double> c(static_cast<size_t>(train.n_items), 0.0);
  for (index_t j = 0; j < train.nnz(); ++j)
    c[train.indices[j]] += use_raw_counts && !train.counts.empty() ? static_cast<double>(train.counts[j]) : 1.0;
  return c;
}

/// Samples item i with probability w_i / sum_{j not in row(u)} w_j, where w_i = count_i^alpha.
///
/// Draws come from an O(1) alias table over all items; a draw that hits a training positive of the user
/// is rejected and redrawn (exact conditioning). After `max_tries` rejections the sampler falls back to an
/// exact O(n_items) inverse-CDF walk over the complement of the row, so it never hangs. A user whose
/// complement has zero total weight raises ans::error naming the user. Items with weight 0 (for
/// alpha > 0: items never seen in training) are never returned. alpha = 0 gives uniform sampling
/// (0^0 = 1, every item weight 1). The sampler keeps a pointer to `train`, which must outlive it.
class popularity_sampler {
 public:
  /// Weights from item training counts (users per item) raised to `alpha`.
  popularity_sampler(const data::interactions& train, double alpha = 1.0, int max_tries = 64)
      : popularity_sampler(train, weights_from_counts(item_counts(train), alpha), max_tries) {}

  /// Explicit non-negative weights, one per item.
  popularity_sampler(const data::interactions& train, std::vector<double> weights, int max_tries)
      : train_(&train), w_(std::move(weights)), max_tries_(max_tries) {
    ANS_CHECK(static_cast<index_t>(w_.size()) == train.n_items,
              "popularity_sampler: " << w_.size() << " weights for " << train.n_items << " items");
    ANS_CHECK(max_tries >= 0, "popularity_sampler: max_tries must be >= 0, got " << max_tries);
    build_alias();
  }

  /// The sampler keeps the address of `train`: a temporary does not compile.
  popularity_sampler(data::interactions&&, double = 1.0, int = 64) = delete;
  popularity_sampler(data::interactions&&, std::vector<double>, int) = delete;

  static std::vector<double> weights_from_counts(std::vector<double> counts, double alpha) {
    for (auto& c : counts) c = std::pow(c, alpha);
    return counts;
  }

  const std::vector<double>& weights() const { return w_; }
  index_t n_items() const { return train_->n_items; }

  template <class Rng>
  void sample(index_t user, index_t /*pos_item*/, Rng& rng, item_span out) const {
    for (index_t k = 0; k < out.size(); ++k) out[k] = draw(user, rng);
  }

  template <class Rng>
  id_type draw(index_t user, Rng& rng) const {
    ANS_CHECK(user >= 0 && user < train_->n_users,
              "popularity_sampler: user " << user << " outside [0, " << train_->n_users << ")");
    for (int t = 0; t < max_tries_; ++t) {
      const id_type i = draw_unconditional(rng);
      if (!train_->contains(user, i)) return i;
    }
    return draw_exact(user, rng);
  }

  /// One draw from the alias table, ignoring the user.
  template <class Rng>
  id_type draw_unconditional(Rng& rng) const {
    const auto i = static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(prob_.size())));
    return rng.template uniform01<double>() < prob_[i] ? static_cast<id_type>(i) : alias_[i];
  }

  /// Exact inverse-CDF draw over the complement of the user's row.
  template <class Rng>
  id_type draw_exact(index_t user, Rng& rng) const {
    const id_type* b = train_->row_begin(user);
    const id_type* e = train_->row_end(user);
    double row_w = 0;
    for (const id_type* p = b; p != e; ++p) row_w += w_[*p];
    const double free_w = total_ - row_w;
    if (!(free_w > total_ * 1e-12))
      ANS_THROW("popularity_sampler: user " << user
                                            << " has interacted with every item of nonzero weight, so no "
                                               "negative item can be sampled");
    const double target = rng.template uniform01<double>() * free_w;
    double acc = 0;
    index_t last = -1;
    const id_type* p = b;
    for (index_t i = 0; i < train_->n_items; ++i) {
      if (p != e && *p == i) { ++p; continue; }
      if (w_[i] <= 0) continue;
      acc += w_[i];
      last = i;
      if (target < acc) return static_cast<id_type>(i);
    }
    return static_cast<id_type>(last);  // rounding: target landed past the summed weight
  }

 private:
  void build_alias() {
    const index_t n = static_cast<index_t>(w_.size());
    ANS_CHECK(n > 0, "popularity_sampler: no items");
    total_ = 0;
    for (index_t i = 0; i < n; ++i) {
      ANS_CHECK(std::isfinite(w_[i]) && w_[i] >= 0,
                "popularity_sampler: weight of item " << i << " is " << w_[i] << " (must be finite, >= 0)");
      total_ += w_[i];
    }
    ANS_CHECK(total_ > 0, "popularity_sampler: all item weights are zero");
    // Vose's alias method.
    prob_.assign(n, 0.0);
    alias_.assign(n, 0);
    std::vector<double> scaled(n);
    std::vector<id_type> small, large;
    for (index_t i = 0; i < n; ++i) {
      scaled[i] = w_[i] * static_cast<double>(n) / total_;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<id_type>(i));
    }
    while (!small.empty() && !large.empty()) {
      const id_type s = small.back(), l = large.back();
      small.pop_back();
      prob_[s] = scaled[s];
      alias_[s] = l;
      scaled[l] = (scaled[l] + scaled[s]) - 1.0;
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (auto l : large) { prob_[l] = 1.0; alias_[l] = l; }
    // Leftovers in `small` are rounding residue of weight ~1: keep them (never alias to a zero-weight item).
    const auto heaviest = static_cast<id_type>(std::max_element(w_.begin(), w_.end()) - w_.begin());
    for (auto s : small) {
      prob_[s] = w_[s] > 0 ? 1.0 : 0.0;
      alias_[s] = w_[s] > 0 ? s : heaviest;
    }
  }

  const data::interactions* train_;
  std::vector<double> w_;
  std::vector<double> prob_;
  std::vector<id_type> alias_;
  double total_ = 0;
  int max_tries_;
};

}  // namespace ans::sampling
