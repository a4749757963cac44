/// @file orth.hpp
/// @brief The "orth" half of L_d (spec §7 F6, §6 item 10): the norm of the Hadamard product of easy factors.
///
///   w = Pe⊙Ne = (1−g)²⊙P[b,h]⊙N[b,k,h]
///   faithful: O = 1/(BK)  Σ_{b,k,h} ‖w‖₂       (summed over hops; subgradient 0 at w = 0)
///   fixed:    O = 1/(BKH) Σ_{b,k,h} sqrt(‖w‖² + ε²)   (mean over hops, safe norm)
/// Gradient, ŵ = w/‖w‖, c = scale·(1/(BK) or 1/(BKH)):
///   ∂/∂P[b,h] += c ŵ⊙(1−g)²⊙N,  ∂/∂N += c ŵ⊙(1−g)²⊙P,  ∂/∂g += −2c ŵ⊙(1−g)⊙P⊙N.
#pragma once

#include <cmath>

#include "ans/core/batch.hpp"
#include "ans/core/math.hpp"

namespace ans::loss {

/// The per-coordinate and per-row formulas of O, called by orth_loss and the fused composite.
namespace orth_kernel {
/// w_j = Pe⊙Ne = (P − g⊙P)(N − g⊙N)
template <class Scalar>
inline Scalar product(Scalar p, Scalar n, Scalar g) {
  return (p - g * p) * (n - g * n);
}
// The row's value (‖w‖, sqrt(‖w‖² + ε²) or ‖w‖²) and its gradient factor are math::norm_value / norm_scale.
/// Backward of one coordinate with inv = c': wh = inv·(1−g)²PN (= c'·w);
///   ∂P += wh(1−g)²N,  ∂N += wh(1−g)²P,  ∂g += −2·wh(1−g)PN.
template <class Scalar>
inline void backward(Scalar p, Scalar n, Scalar g, Scalar inv, Scalar& dp, Scalar& dn, Scalar& dg) {
  const Scalar e = Scalar(1) - g;
  const Scalar wh = inv * e * e * p * n;
  dp += wh * e * e * n;
  dn += wh * e * e * p;
  dg += Scalar(-2) * wh * e * p * n;
}
}  // namespace orth_kernel

/// O with its per-row norms. Backward ACCUMULATES into dP, dN, dg. `squared` (ans_options::orth_squared)
/// takes ‖w‖² per row instead of ‖w‖ (gradient 2c·w).
template <class Scalar>
class orth_loss {
 public:
  Scalar forward(const batch_shape& s, const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g,
                 bool mean_over_hops, bool safe_norm, Scalar safe_eps, bool squared = false) {
    s.check();
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "orth::forward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "orth::forward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "orth::forward: g");
    shape_ = s;
    norm_.resize(s.cand_rows());
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          const Scalar* p = P.row(b * H + h).data();
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar ss = 0;
          for (index_t j = 0; j < d; ++j) {
            const Scalar w = orth_kernel::product(p[j], n[j], gg[j]);  // w = Pe⊙Ne
            ss += w * w;
          }
          norm_[r] = math::norm_value(ss, safe_eps, safe_norm, squared);
        }
    coef_ = Scalar(1) / Scalar(mean_over_hops ? s.cand_rows() : s.B * s.K);
    squared_ = squared;
    Scalar total = 0;
    for (index_t i = 0; i < s.cand_rows(); ++i) total += norm_[i];
    return total * coef_;
  }

  void backward(const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g, Scalar scale,
                mref<Scalar> dP, mref<Scalar> dN, mref<Scalar> dg) const {
    const batch_shape& s = shape_;
    ans::detail::check_forward_done(s, "orth");
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "orth::backward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "orth::backward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "orth::backward: g");
    ans::detail::check_shape<Scalar>(dP, s.pair_rows(), s.d, "orth::backward: dP");
    ans::detail::check_shape<Scalar>(dN, s.cand_rows(), s.d, "orth::backward: dN");
    ans::detail::check_shape<Scalar>(dg, s.cand_rows(), s.d, "orth::backward: dg");
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const Scalar c = scale * coef_;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          const Scalar inv = math::norm_scale(c, norm_[r], squared_);  // c/‖w‖ | 2c
          if (inv == Scalar(0)) continue;  // subgradient 0
          const Scalar* p = P.row(b * H + h).data();
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar* dp = dP.row(b * H + h).data();
          Scalar* dn = dN.row(r).data();
          Scalar* dgg = dg.row(r).data();
          for (index_t j = 0; j < d; ++j)  // c ŵ⊙(1−g)²⊙N, c ŵ⊙(1−g)²⊙P, −2c ŵ⊙(1−g)⊙P⊙N
            orth_kernel::backward(p[j], n[j], gg[j], inv, dp[j], dn[j], dgg[j]);
        }
  }

  const vector<Scalar>& norms() const { return norm_; }

 private:
  batch_shape shape_{};
  Scalar coef_ = 0;
  bool squared_ = false;
  vector<Scalar> norm_;
};

}  // namespace ans::loss
