/// @file uniform.hpp
/// @brief Uniform negative sampling (RNS) with exact rejection of the user's training positives.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/sampling/sampler.hpp"

namespace ans::sampling {

/// Uniform sampler over the item range [first_item, n_items) that rejects the user's training
/// positives (binary search in the sorted CSR row).
///
/// Each of the K slots is an independent draw, so duplicates among the K candidates are allowed (as in
/// RecBole). The distribution of every draw is exactly uniform over the complement of the user's row:
/// up to `max_tries` rejection rounds are tried, then the sampler falls back to drawing r uniform in
/// [0, n_free) and returning the r-th item of the complement (an O(|row|) merge walk, no allocation), so it
/// never hangs even for users who interacted with almost every item. A user with no free item raises
/// ans::error naming the user.
///
/// `first_item = 1` reproduces RecBole, whose item 0 is the [PAD] token; the default 0 uses every item.
/// The sampler keeps a pointer to `train`, which must outlive it.
class uniform_sampler {
 public:
  uniform_sampler(const data::interactions& train, index_t first_item = 0, int max_tries = 64)
      : train_(&train), first_(first_item), max_tries_(max_tries) {
    ANS_CHECK(first_item >= 0 && first_item < train.n_items,
              "uniform_sampler: first_item " << first_item << " outside [0, " << train.n_items << ")");
    ANS_CHECK(max_tries >= 0, "uniform_sampler: max_tries must be >= 0, got " << max_tries);
  }

  uniform_sampler(data::interactions&&, index_t = 0, int = 64) = delete;  ///< it would keep a dangling address

  index_t n_items() const { return train_->n_items; }
  index_t first_item() const { return first_; }

  /// Fills `out` with out.size() independent draws for `user`. `pos_item` is not used (it is one of the
  /// training positives, which are all rejected).
  template <class Rng>
  void sample(index_t user, index_t /*pos_item*/, Rng& rng, item_span out) const {
    for (index_t k = 0; k < out.size(); ++k) out[k] = draw(user, rng);
  }

  /// Cache hint for a later draw for `user` (its row of the training matrix).
  void prefetch(index_t user) const {
    if (user >= 0 && user < train_->n_users) ANS_PREFETCH(train_->row_begin(user));
  }

  /// One candidate for `user`.
  template <class Rng>
  id_type draw(index_t user, Rng& rng) const {
    ANS_CHECK(user >= 0 && user < train_->n_users,
              "uniform_sampler: user " << user << " outside [0, " << train_->n_users << ")");
    const auto range = static_cast<std::uint64_t>(train_->n_items - first_);
    for (int t = 0; t < max_tries_; ++t) {
      const auto i = first_ + static_cast<index_t>(rng.uniform_int(range));
      if (!train_->contains(user, i)) return static_cast<id_type>(i);
    }
    return draw_exact(user, rng);
  }

  /// The exact fallback: uniform over the complement of the row by enumeration.
  template <class Rng>
  id_type draw_exact(index_t user, Rng& rng) const {
    const id_type* b = std::lower_bound(train_->row_begin(user), train_->row_end(user),
                                             static_cast<id_type>(first_));
    const id_type* e = train_->row_end(user);
    const index_t n_free = (train_->n_items - first_) - static_cast<index_t>(e - b);
    if (n_free <= 0)
      ANS_THROW("uniform_sampler: user " << user << " has interacted with every item in [" << first_
                                         << ", " << train_->n_items
                                         << "), so no negative item can be sampled");
    // The r-th free item: start at first + r and skip over each row item at or below the candidate.
    index_t cand = first_ + static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(n_free)));
    for (const id_type* p = b; p != e && *p <= cand; ++p) ++cand;
    return static_cast<id_type>(cand);
  }

 private:
  const data::interactions* train_;
  index_t first_;
  int max_tries_;
};

}  // namespace ans::sampling
