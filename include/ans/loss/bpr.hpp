/// @file bpr.hpp
/// @brief The BPR term M on per-pair scores (spec §7 F12–F13).
///
///   x_b = pos_b − neg_b
///   faithful: M = −1/B Σ_b log(σ(x_b) + δ),  ∂M/∂x_b = −σ(x)σ(−x)/(B(σ(x)+δ))   (δ = 1e-10, RecBole)
///   stable:   M = 1/B Σ_b softplus(−x_b),   ∂M/∂x_b = −σ(−x_b)/B
/// ∂M/∂pos_b = ∂M/∂x_b,  ∂M/∂neg_b = −∂M/∂x_b.
#pragma once

#include <cmath>

#include "ans/core/batch.hpp"
#include "ans/core/math.hpp"

namespace ans::loss {

/// One pair's term of B·M: −log(σ(x) + δ) (faithful) or softplus(−x) (stable).
template <class Scalar>
inline Scalar bpr_term(Scalar x, bool stable, Scalar delta) {
  return stable ? math::softplus(-x) : -std::log(math::sigmoid(x) + delta);
}

/// Value of M for `B` pairs of scores.
template <class Scalar>
Scalar bpr_forward(index_t B, const Scalar* pos, const Scalar* neg, bool stable, Scalar delta) {
  Scalar total = 0;
  for (index_t b = 0; b < B; ++b) total += bpr_term(pos[b] - neg[b], stable, delta);
  return total / Scalar(B);
}

/// ∂(scale·M)/∂x_b for one pair (x_b = pos_b − neg_b). This is −β_b·scale in the notation of spec §8.
template <class Scalar>
Scalar bpr_dx(index_t B, Scalar x, bool stable, Scalar delta, Scalar scale = Scalar(1)) {
  const Scalar sp = math::sigmoid(x), sn = math::sigmoid(-x);
  return stable ? -scale * sn / Scalar(B) : -scale * sp * sn / (Scalar(B) * (sp + delta));
}

/// Accumulates scale·∂M/∂pos into dpos and scale·∂M/∂neg into dneg (length B each).
template <class Scalar>
void bpr_backward(index_t B, const Scalar* pos, const Scalar* neg, bool stable, Scalar delta, Scalar scale,
                  Scalar* dpos, Scalar* dneg) {
  for (index_t b = 0; b < B; ++b) {
    const Scalar gx = bpr_dx(B, pos[b] - neg[b], stable, delta, scale);
    dpos[b] += gx;  // ∂M/∂pos = ∂M/∂x
    dneg[b] -= gx;  // ∂M/∂neg = −∂M/∂x
  }
}

}  // namespace ans::loss
