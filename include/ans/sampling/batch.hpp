/// @file batch.hpp
/// @brief Epoch-shuffled minibatches of training pairs, and parallel negative sampling for a batch.
#pragma once

#include <cstdint>
#include <algorithm>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/sampling/sampler.hpp"

namespace ans::sampling {

/// One minibatch: `size` (user, positive item) pairs, views into the batcher's epoch arrays (valid until
/// the next start_epoch).
struct pair_batch {
  const id_type* users = nullptr;
  const id_type* items = nullptr;
  index_t size = 0;
  index_t epoch = 0;  ///< epoch this batch belongs to
  index_t index = 0;  ///< batch number within the epoch
  /// Position of row 0 within the batch the pairs were cut from (0 for a whole batch; a data-parallel shard
  /// of rows [first, first + size) draws its candidates as those rows of the whole batch: ans/dist).
  index_t first = 0;

  /// Rows [lo, hi) of this batch, as a batch that keeps their positions (first).
  pair_batch slice(index_t lo, index_t hi) const {
    ANS_CHECK(0 <= lo && lo <= hi && hi <= size, "pair_batch::slice: [" << lo << ", " << hi << ") outside [0, " << size << ")");
    return pair_batch{users + lo, items + lo, hi - lo, epoch, index, first + lo};
  }
};

/// How an epoch's nnz training pairs are drawn.
enum class pair_order {
  shuffle,      ///< every training pair once, in a shuffled order (RecBole, ReChorus, MixGCF, DENS)
  user_uniform  ///< nnz draws of a uniform user, then one of its training items uniformly, with replacement
                ///< (LightGCN-PyTorch's UniformSample_original; users without items are redrawn)
};

/// Serves an epoch of training pairs in batches of `batch_size`: all nnz pairs shuffled (pair_order::shuffle)
/// or nnz user-uniform draws (pair_order::user_uniform).
///
/// The order of epoch e is driven by `stream(seed, tag, e)` (a Fisher–Yates shuffle of [0, nnz), or the
/// draws), so it depends only on (seed, epoch). The last batch is smaller when batch_size does not divide nnz,
/// unless `drop_last` is set. Memory: 3 arrays of nnz entries, allocated once.
class pair_batcher {
 public:
  pair_batcher(const data::interactions& train, index_t batch_size, std::uint64_t seed, bool drop_last = false,
               pair_order order = pair_order::shuffle)
      : batch_size_(batch_size), seed_(seed), drop_last_(drop_last), order_(order),
        indptr_(train.indptr.begin(), train.indptr.end()) {
    ANS_CHECK(batch_size >= 1, "pair_batcher: batch_size must be >= 1, got " << batch_size);
    const index_t n = train.nnz();
    row_of_.resize(n);
    item_of_.assign(train.indices.begin(), train.indices.end());
    for (index_t u = 0; u < train.n_users; ++u)
      for (index_t j = train.indptr[u]; j < train.indptr[u + 1]; ++j) row_of_[j] = static_cast<id_type>(u);
    perm_.resize(n);
    users_.resize(n);
    items_.resize(n);
    start_epoch(0);
  }

  /// Builds the shuffled order of epoch `epoch` (any epoch can be (re)built at any time).
  void start_epoch(index_t epoch) {
    epoch_ = epoch;
    const index_t n = nnz();
    if (order_ == pair_order::user_uniform) {
      auto r = stream(seed_, 0x55534552ULL /* "USER" */, static_cast<std::uint64_t>(epoch));
      const auto nu = static_cast<std::uint64_t>(indptr_.size() - 1);
      for (index_t i = 0; i < n; ++i) {
        index_t u, deg;
        do {
          u = static_cast<index_t>(r.uniform_int(nu));
          deg = indptr_[u + 1] - indptr_[u];
        } while (deg == 0);  // n > 0, so some user has items
        const index_t j = indptr_[u] + static_cast<index_t>(r.uniform_int(static_cast<std::uint64_t>(deg)));
        perm_[i] = j;
        users_[i] = static_cast<id_type>(u);
        items_[i] = item_of_[j];
      }
      return;
    }
    std::iota(perm_.begin(), perm_.end(), index_t{0});
    auto r = stream(seed_, 0x5348554646ULL /* "SHUFF" */, static_cast<std::uint64_t>(epoch));
    for (index_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<index_t>(r.uniform_int(static_cast<std::uint64_t>(i + 1)));
      std::swap(perm_[i], perm_[j]);
    }
    for (index_t i = 0; i < n; ++i) {
      users_[i] = row_of_[perm_[i]];
      items_[i] = item_of_[perm_[i]];
    }
  }

  index_t nnz() const { return static_cast<index_t>(row_of_.size()); }
  index_t batch_size() const { return batch_size_; }
  index_t epoch() const { return epoch_; }
  std::uint64_t seed() const { return seed_; }

  /// Number of batches in an epoch.
  index_t n_batches() const {
    return drop_last_ ? nnz() / batch_size_ : (nnz() + batch_size_ - 1) / batch_size_;
  }

  /// Batch b of the current epoch.
  pair_batch batch(index_t b) const {
    ANS_CHECK(b >= 0 && b < n_batches(), "pair_batcher: batch " << b << " outside [0, " << n_batches() << ")");
    const index_t begin = b * batch_size_;
    const index_t end = std::min(nnz(), begin + batch_size_);
    return pair_batch{users_.data() + begin, items_.data() + begin, end - begin, epoch_, b, 0};
  }

  pair_order order() const { return order_; }
  /// The epoch's order: position -> nonzero index in the CSR (a permutation for pair_order::shuffle).
  const std::vector<index_t>& permutation() const { return perm_; }

 private:
  index_t batch_size_;
  std::uint64_t seed_;
  bool drop_last_;
  pair_order order_;
  std::vector<index_t> indptr_;
  index_t epoch_ = 0;
  std::vector<id_type> row_of_;
  std::vector<id_type> item_of_;
  std::vector<index_t> perm_;
  std::vector<id_type> users_;
  std::vector<id_type> items_;
};

/// The K candidates of pair b of `batch` into out[0..K): row b draws from
/// `stream(seed, "NEG", batch.epoch, batch.index, batch.first + b)` (the row kernel of sample_batch).
template <class Sampler>
inline void sample_pair(const Sampler& sampler, const pair_batch& batch, index_t b, index_t K, std::uint64_t seed,
                        id_type* out) {
  auto r = stream(seed, 0x4E4547ULL /* "NEG" */, static_cast<std::uint64_t>(batch.epoch),
                  static_cast<std::uint64_t>(batch.index), static_cast<std::uint64_t>(batch.first + b));
  sampler.sample(batch.users[b], batch.items[b], r, item_span(out, K));
}

/// Fills `out[b*K + k]` (layout [B, K], row-major) with K candidates for every pair of `batch`.
///
/// Row b draws from `stream(seed, tag, batch.epoch, batch.index, b)`: counter-based, so the result is the
/// same for any number of threads. `out` must hold batch.size * K entries. Parallel over rows (OpenMP,
/// static schedule); no allocation.
template <class Sampler>
void sample_batch(const Sampler& sampler, const pair_batch& batch, index_t K, std::uint64_t seed,
                  id_type* out) {
  static_assert(is_sampler_v<Sampler>, "sample_batch: Sampler does not model the sampler concept");
  ANS_CHECK(K >= 1, "sample_batch: K must be >= 1, got " << K);
  const index_t B = batch.size;
  // Exceptions must not escape an OpenMP region: capture the first and rethrow.
  bool failed = false;
  std::string message;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (index_t b = 0; b < B; ++b) {
    try {
      sample_pair(sampler, batch, b, K, seed, out + b * K);
    } catch (const std::exception& e) {
#if ANS_HAS_OPENMP
#pragma omp critical(ans_sample_batch_error)
#endif
      if (!failed) {
        failed = true;
        message = e.what();
      }
    }
  }
  if (failed) throw error(message);
}

}  // namespace ans::sampling
