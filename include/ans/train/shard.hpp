/// @file shard.hpp
/// @brief The data-parallel hook of train::trainer (MPI-free; ans/dist/data_parallel.hpp fills it with MPI).
///
/// With a shard plan (rank r of P), every step of the trainer's composed path trains rows [lo, hi) of the global
/// batch of B pairs, lo = ⌊B·r/P⌋, hi = ⌊B·(r+1)/P⌋: the same seeded permutation on every rank, and the
/// candidates and the ANS noise of each row drawn as that row of the whole batch (pair_batch::first,
/// counter_uniform_source::first). The objective's gradients are means over the shard; the trainer scales
/// them by w = (hi − lo)/B, so that the sum over ranks is the global batch's gradient, and calls `exchange`,
/// which must leave on every rank the global gradient on the union of the touched rows and the global dense
/// gradients, and return the global loss. Then every rank takes the same optimiser step.
#pragma once

#include <functional>
#include <vector>

#include "ans/config.hpp"
#include "ans/types.hpp"

namespace ans::train {

/// What a step hands the exchange.
template <class Scalar>
struct shard_exchange {
  matrix<Scalar>* grad_e0 = nullptr;       ///< in: this shard's (scaled) gradient rows; out: the global ones
  std::vector<index_t>* touched = nullptr; ///< in: this shard's rows (sorted); out: the union over ranks (sorted)
  Scalar* const* params = nullptr;         ///< the dense gradient blocks (ANS gate and margin), scaled; out: global
  const index_t* param_sizes = nullptr;
  int n_params = 0;
  double loss = 0;                         ///< this shard's loss (mean over its rows) times w
};

/// A process's part in data-parallel training.
template <class Scalar>
struct shard_plan {
  int rank = 0, size = 1;
  /// Returns the global loss; see the file comment.
  std::function<double(shard_exchange<Scalar>&)> exchange;
};

/// Rows [lo, hi) of a batch of B pairs for rank r of P.
inline std::pair<index_t, index_t> shard_rows(index_t B, int r, int P) {
  return {B * r / P, B * (r + 1) / P};
}

}  // namespace ans::train
