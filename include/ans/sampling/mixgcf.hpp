/// @file mixgcf.hpp
/// @brief MixGCF (Huang et al., KDD 2021) negative synthesis: positive mixing, then hop mixing.
///
/// Inputs are stacked per-hop embeddings laid out [rows, H*d] (hop h occupies columns [h*d, (h+1)*d)).
/// For one training pair (u, p) with candidates n_1..n_K:
///   1. positive mixing:  n'_{k,h} = α_h ⊙ p_h + (1 − α_h) ⊙ n_{k,h}, α ~ U[0,1);
///   2. hop mixing:       k*_h = argmax_k <u_h, n'_{k,h}> (ties to the first k),
///                        and the synthetic negative is n*_h = n'_{k*_h, h}.
/// The α draw granularity is `mix_alpha`: `per_hop` (MixGCF's code: one α per (pair, hop), shared by all
/// K candidates and all d dimensions — `torch.rand(B, 1, H, 1)`), `per_dimension` (one α per (pair, hop,
/// dim), shared by the candidates) or `per_sample` (one α per pair for every hop). All modes share α
/// across candidates, so the selection compares candidates under the same mixing.
#pragma once

#include <cstdint>

#include "ans/config.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/types.hpp"

namespace ans::sampling {

/// Granularity of the mixing coefficient α.
enum class mix_alpha { per_hop, per_dimension, per_sample };

/// Draws α into `alpha_out` (H*d entries, α broadcast to the chosen granularity), consuming from `rng`
/// H, H*d or 1 uniforms respectively (hop-major, then dimension).
template <class Scalar, class Rng>
void mixgcf_draw_alpha(Rng& rng, mix_alpha mode, index_t H, index_t d, Scalar* alpha_out) {
  switch (mode) {
    case mix_alpha::per_sample: {
      const Scalar a = rng.template uniform01<Scalar>();
      for (index_t j = 0; j < H * d; ++j) alpha_out[j] = a;
      break;
    }
    case mix_alpha::per_hop:
      for (index_t h = 0; h < H; ++h) {
        const Scalar a = rng.template uniform01<Scalar>();
        for (index_t j = 0; j < d; ++j) alpha_out[h * d + j] = a;
      }
      break;
    case mix_alpha::per_dimension:
      for (index_t j = 0; j < H * d; ++j) alpha_out[j] = rng.template uniform01<Scalar>();
      break;
  }
}

/// Hop-wise selection given α: for each hop, picks k*_h maximising <u_h, α_h⊙p_h + (1−α_h)⊙n_{k,h}> and
/// writes the mixed vector n*_h into `out_neg[h*d .. (h+1)*d)` and k*_h into `out_k[h]`.
/// `user_row`, `pos_row`, `alpha` and `out_neg` have H*d entries; `items` is [n_items, H*d].
/// Gradients for the trainer: ∂n*_h/∂p_h = diag(α_h), ∂n*_h/∂n_{k*_h,h} = diag(1 − α_h).
/// `pooled_user` = true (MixGCF's and DENS's code with a mean/sum/last pool): `user_row` is the pooled user
/// (d entries) and every hop is scored against it, <ū, α_h⊙p_h + (1−α_h)⊙n_{k,h}>.
template <class Scalar, class ItemTable>
void mixgcf_select(const Scalar* user_row, const Scalar* pos_row, const ItemTable& items,
                   const id_type* candidates, index_t K, index_t H, const Scalar* alpha,
                   Scalar* out_neg, index_t* out_k, bool pooled_user = false) {
  ANS_CHECK(K >= 1, "mixgcf_select: need at least one candidate, got K = " << K);
  ANS_CHECK(H >= 1 && items.cols() % H == 0,
            "mixgcf_select: item width " << items.cols() << " is not a multiple of H = " << H);
  const index_t d = items.cols() / H;
  for (index_t h = 0; h < H; ++h) {
    const Scalar* u = user_row + (pooled_user ? 0 : h * d);
    const Scalar* p = pos_row + h * d;
    const Scalar* a = alpha + h * d;
    // <u, α⊙p> is common to all candidates but is kept so scores equal the mixed inner products exactly.
    Scalar up = 0;
    for (index_t j = 0; j < d; ++j) up += u[j] * a[j] * p[j];
    index_t best = 0;
    Scalar best_score = 0;
    for (index_t k = 0; k < K; ++k) {
      const Scalar* n = items.row(candidates[k]).data() + h * d;
      Scalar s = up;
      for (index_t j = 0; j < d; ++j) s += u[j] * (Scalar(1) - a[j]) * n[j];
      if (k == 0 || s > best_score) {
        best_score = s;
        best = k;
      }
    }
    out_k[h] = best;
    const Scalar* n = items.row(candidates[best]).data() + h * d;
    for (index_t j = 0; j < d; ++j) out_neg[h * d + j] = a[j] * p[j] + (Scalar(1) - a[j]) * n[j];
  }
}

/// Convenience: draws α with `mode` into `alpha_out` (H*d scratch owned by the caller) and then runs
/// mixgcf_select. `user_row`/`pos_row` are the stacked rows of u and p.
template <class Scalar, class ItemTable, class Rng>
void mixgcf_sample(const Scalar* user_row, const Scalar* pos_row, const ItemTable& items,
                   const id_type* candidates, index_t K, index_t H, Rng& rng, mix_alpha mode,
                   Scalar* alpha_out, Scalar* out_neg, index_t* out_k, bool pooled_user = false) {
  ANS_CHECK(H >= 1 && items.cols() % H == 0,
            "mixgcf_sample: item width " << items.cols() << " is not a multiple of H = " << H);
  mixgcf_draw_alpha(rng, mode, H, items.cols() / H, alpha_out);
  mixgcf_select(user_row, pos_row, items, candidates, K, H, alpha_out, out_neg, out_k, pooled_user);
}

}  // namespace ans::sampling
