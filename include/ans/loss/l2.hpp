/// @file l2.hpp
/// @brief The regulariser R (RecBole EmbLoss; spec §7 F14, §6 item 8).
///
/// Each block is one tensor T given as a list of rows (of a table, by id, or the rows of a matrix), so a
/// duplicated id counts once per occurrence:
///   require_pow = false (faithful): R = Σ_T ‖T‖_F / B,       ∂R/∂T_row = T_row/(B‖T‖_F)  (0 if ‖T‖ = 0)
///   require_pow = true  (fixed):    R = Σ_T ‖T‖²_F / (2B),   ∂R/∂T_row = T_row/B
#pragma once

#include <cmath>
#include <vector>

#include "ans/core/batch.hpp"

namespace ans::loss {

/// One tensor of the regulariser: rows `ids[i]` of `table` (n rows), or rows 0..n−1 when `ids` is null.
/// `grad` (same layout as table, may be null) receives the gradient, row by row, accumulated (+=).
template <class Scalar>
struct emb_block {
  const Scalar* table = nullptr;
  index_t d = 0;
  index_t n = 0;
  const index_t* ids = nullptr;
  Scalar* grad = nullptr;

  const Scalar* row(index_t i) const { return table + (ids ? ids[i] : i) * d; }
  Scalar* grad_row(index_t i) const { return grad + (ids ? ids[i] : i) * d; }
};

/// Frobenius norm of one block (duplicates counted per occurrence).
template <class Scalar>
Scalar emb_block_norm(const emb_block<Scalar>& blk) {
  // per-row SIMD partial sums (a fixed lane order), rows added in order: deterministic, vectorised
  Scalar ss = 0;
  for (index_t i = 0; i < blk.n; ++i) {
    const Scalar* r = blk.row(i);
    Scalar rs = 0;
#if ANS_HAS_OPENMP
#pragma omp simd reduction(+ : rs)
#endif
    for (index_t j = 0; j < blk.d; ++j) rs += r[j] * r[j];
    ss += rs;
  }
  return std::sqrt(ss);
}

/// R over `nb` blocks for a batch of B pairs.
template <class Scalar>
Scalar emb_loss_forward(const emb_block<Scalar>* blocks, size_t nb, index_t B, bool require_pow) {
  ANS_CHECK(B > 0, "emb_loss: B must be positive");
  Scalar total = 0;
  for (size_t ib = 0; ib < nb; ++ib) {
    const auto& blk = blocks[ib];
    const Scalar nrm = emb_block_norm(blk);
    total += require_pow ? nrm * nrm / Scalar(2) : nrm;
  }
  return total / Scalar(B);
}

/// R over the blocks for a batch of B pairs.
template <class Scalar>
Scalar emb_loss_forward(const std::vector<emb_block<Scalar>>& blocks, index_t B, bool require_pow) {
  return emb_loss_forward(blocks.data(), blocks.size(), B, require_pow);
}

/// Accumulates scale·∂R/∂row into each block's `grad` (sequential: duplicate ids are safe).
template <class Scalar>
void emb_loss_backward(const emb_block<Scalar>* blocks, size_t nb, index_t B, bool require_pow, Scalar scale) {
  for (size_t ib = 0; ib < nb; ++ib) {
    const auto& blk = blocks[ib];
    if (!blk.grad) continue;
    Scalar c = scale / Scalar(B);  // require_pow: ∂R/∂T = T/B
    if (!require_pow) {
      const Scalar nrm = emb_block_norm(blk);
      if (nrm == Scalar(0)) continue;
      c /= nrm;  // ∂R/∂T = T/(B‖T‖_F)
    }
    for (index_t i = 0; i < blk.n; ++i) {
      const Scalar* r = blk.row(i);
      Scalar* gr = blk.grad_row(i);
      for (index_t j = 0; j < blk.d; ++j) gr[j] += c * r[j];
    }
  }
}

/// Vector/array overload of emb_loss_backward.
template <class Scalar>
void emb_loss_backward(const std::vector<emb_block<Scalar>>& blocks, index_t B, bool require_pow, Scalar scale) {
  emb_loss_backward(blocks.data(), blocks.size(), B, require_pow, scale);
}

}  // namespace ans::loss
