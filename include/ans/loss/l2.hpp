/// @file l2.hpp
/// @brief The regulariser R (RecBole EmbLoss; spec §7 F14, §6 item 8).
///
/// Each block is one tensor T given as a list of rows (of a table, by id, or the rows of a matrix), so a
/// duplicated id counts once per occurrence:
///   require_pow = false (faithful): R = Σ_T ‖T‖_F / B,       ∂R/∂T_row = T_row/(B‖T‖_F)  (0 if ‖T‖ = 0)
///   require_pow = true  (fixed):    R = Σ_T ‖T‖²_F / (2B),   ∂R/∂T_row = T_row/B
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "ans/core/batch.hpp"

namespace ans::loss {

/// One tensor of the regulariser: rows `ids[i]` of `table` (n rows), or rows 0..n−1 when `ids` is null.
/// `grad` (same layout as table, may be null) receives the gradient, row by row, accumulated (+=).
/// `ld` is the distance between rows of `table` and `grad` in elements (0: `d`, dense rows); a larger `ld`
/// reads the first d columns of wider rows (the hop-0 columns of a gathered [rows, H*d] batch tensor).
template <class Scalar>
struct emb_block {
  const Scalar* table = nullptr;
  index_t d = 0;
  index_t n = 0;
  const index_t* ids = nullptr;
  Scalar* grad = nullptr;
  index_t ld = 0;

  index_t stride() const { return ld > 0 ? ld : d; }
  const Scalar* row(index_t i) const { return table + (ids ? ids[i] : i) * stride(); }
  Scalar* grad_row(index_t i) const { return grad + (ids ? ids[i] : i) * stride(); }
};

namespace detail {
// Rows per partial sum of emb_block_norm: a fixed partition (not the thread count), partials added in order.
constexpr index_t kNormChunk = 1024;
}  // namespace detail

/// ‖r‖² of one row of d entries: per-row SIMD partial sums in a fixed lane order (deterministic, vectorised).
template <class Scalar>
inline Scalar row_sq_norm(const Scalar* r, index_t d) {
  Scalar rs = 0;
#if ANS_HAS_OPENMP
#pragma omp simd reduction(+ : rs)
#endif
  for (index_t j = 0; j < d; ++j) rs += r[j] * r[j];
  return rs;
}

/// ‖T‖_F from the rows' squared norms sq[0..n) (row_sq_norm), summed exactly as emb_block_norm sums them
/// (rows in order within chunks of kNormChunk, chunk partials in order): the same bits for the same rows.
template <class Scalar>
Scalar norm_from_row_squares(const Scalar* sq, index_t n) {
  Scalar ss = 0;
  for (index_t c0 = 0; c0 < n; c0 += detail::kNormChunk) {
    Scalar part = 0;
    for (index_t i = c0; i < std::min(n, c0 + detail::kNormChunk); ++i) part += sq[i];
    ss += part;
  }
  return std::sqrt(ss);
}

/// The factor c of a block's gradient rows, ∂(scale·R)/∂T_row = c·T_row: scale/B (require_pow) or
/// scale/(B‖T‖_F) (0 when ‖T‖ = 0).
template <class Scalar>
inline Scalar emb_loss_coef(Scalar scale, index_t B, bool require_pow, Scalar norm) {
  const Scalar c = scale / Scalar(B);  // require_pow: ∂R/∂T = T/B
  if (require_pow) return c;
  return norm == Scalar(0) ? Scalar(0) : c / norm;  // ∂R/∂T = T/(B‖T‖_F)
}

/// Frobenius norm of one block (duplicates counted per occurrence). Parallel over fixed chunks of rows whose
/// partial sums are added in chunk order, so the result does not depend on the thread count.
template <class Scalar>
Scalar emb_block_norm(const emb_block<Scalar>& blk) {
  const index_t nch = (blk.n + detail::kNormChunk - 1) / detail::kNormChunk;
  Scalar part_small[64];
  std::vector<Scalar> part_big;
  Scalar* part = part_small;
  if (nch > 64) part_big.resize(static_cast<size_t>(nch)), part = part_big.data();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (nch > 4)
#endif
  for (index_t c = 0; c < nch; ++c) {
    // per-row SIMD partial sums (a fixed lane order), rows added in order: deterministic, vectorised
    Scalar ss = 0;
    const index_t i1 = std::min(blk.n, (c + 1) * detail::kNormChunk);
    for (index_t i = c * detail::kNormChunk; i < i1; ++i) ss += row_sq_norm(blk.row(i), blk.d);
    part[c] = ss;
  }
  Scalar ss = 0;
  for (index_t c = 0; c < nch; ++c) ss += part[c];
  return std::sqrt(ss);
}

/// R over the blocks for a batch of B pairs. `norms`, when non-null (length nb), receives ‖T‖_F of each
/// block, so the backward of the same rows need not recompute them.
template <class Scalar>
Scalar emb_loss_forward(const emb_block<Scalar>* blocks, size_t nb, index_t B, bool require_pow,
                        Scalar* norms = nullptr) {
  ANS_CHECK(B > 0, "emb_loss: B must be positive");
  Scalar total = 0;
  for (size_t ib = 0; ib < nb; ++ib) {
    const auto& blk = blocks[ib];
    const Scalar nrm = emb_block_norm(blk);
    if (norms) norms[ib] = nrm;
    total += require_pow ? nrm * nrm / Scalar(2) : nrm;
  }
  return total / Scalar(B);
}

/// R over the blocks for a batch of B pairs.
template <class Scalar>
Scalar emb_loss_forward(const std::vector<emb_block<Scalar>>& blocks, index_t B, bool require_pow) {
  return emb_loss_forward(blocks.data(), blocks.size(), B, require_pow);
}

/// One row of the regulariser's gradient: gr += c·r, with c from emb_loss_coef (the row kernel of
/// emb_loss_backward; a data-parallel process uses it for rows another process's shard regularises).
template <class Scalar>
inline void emb_loss_row_backward(Scalar c, const Scalar* r, Scalar* gr, index_t d) {
  for (index_t j = 0; j < d; ++j) gr[j] += c * r[j];  // ∂(scale·R)/∂T_row = c·T_row
}

/// Accumulates scale·∂R/∂row into each block's `grad`. `norms`: the block norms of the forward on the same
/// rows (null: recomputed). Blocks with `ids` run sequentially (duplicate ids are safe); blocks of distinct
/// rows (no `ids`) run in parallel.
template <class Scalar>
void emb_loss_backward(const emb_block<Scalar>* blocks, size_t nb, index_t B, bool require_pow, Scalar scale,
                       const Scalar* norms = nullptr) {
  for (size_t ib = 0; ib < nb; ++ib) {
    const auto& blk = blocks[ib];
    if (!blk.grad) continue;
    const Scalar nrm = require_pow ? Scalar(1) : norms ? norms[ib] : emb_block_norm(blk);
    const Scalar c = emb_loss_coef(scale, B, require_pow, nrm);
    if (c == Scalar(0)) continue;
    auto rows = [&](index_t i0, index_t i1) {
      for (index_t i = i0; i < i1; ++i) emb_loss_row_backward(c, blk.row(i), blk.grad_row(i), blk.d);
    };
    if (blk.ids) {
      rows(0, blk.n);
      continue;
    }
    const index_t nch = (blk.n + detail::kNormChunk - 1) / detail::kNormChunk;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (nch > 4)
#endif
    for (index_t ch = 0; ch < nch; ++ch)
      rows(ch * detail::kNormChunk, std::min(blk.n, (ch + 1) * detail::kNormChunk));
  }
}

/// Vector/array overload of emb_loss_backward.
template <class Scalar>
void emb_loss_backward(const std::vector<emb_block<Scalar>>& blocks, index_t B, bool require_pow, Scalar scale) {
  emb_loss_backward(blocks.data(), blocks.size(), B, require_pow, scale);
}

}  // namespace ans::loss
