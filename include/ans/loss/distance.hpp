/// @file distance.hpp
/// @brief The "distance" half of L_d (paper Eq. 7; spec §7 F5, §6 item 11).
///
///   D = 1/(BKH) Σ_{b,k,h} ‖y‖₂ (or ‖y‖₂² with `squared`),  faithful: y = Nh − Ph + δ·1 = g⊙(N−P[b,h]) + δ  (F.pairwise_distance)
///                                 fixed:    ‖y‖ := sqrt(‖g⊙(N−P)‖² + δ²)
/// Gradient, ŷ = y/‖y‖ (fixed: g⊙(N−P)/sqrt(·)), c = scale/(BKH):
///   ∂/∂N += c g⊙ŷ,  ∂/∂P[b,h] −= c g⊙ŷ,  ∂/∂g += c (N−P)⊙ŷ   (squared: ŷ := 2y).
#pragma once

#include <cmath>

#include "ans/core/batch.hpp"
#include "ans/core/math.hpp"

namespace ans::loss {

/// The per-coordinate and per-row formulas of D: the one place they are written. distance_loss below and the
/// fused composite (model/ans_loss.hpp) both call them.
namespace distance_kernel {
/// y_j = g⊙N − g⊙P + off, off = δ (faithful: δ added per coordinate) or 0 (fixed: δ inside the norm)
template <class Scalar>
inline Scalar residual(Scalar n, Scalar p, Scalar g, Scalar off) {
  return g * n - g * p + off;
}
// The row's value (‖y‖, sqrt(‖y‖² + δ²) or ‖y‖²) and its gradient factor are math::norm_value / norm_scale.
/// Backward of one coordinate, yh = c'·y:  ∂N += g·yh,  ∂P −= g·yh,  ∂g += (N − P)·yh.
template <class Scalar>
inline void backward(Scalar n, Scalar p, Scalar g, Scalar yh, Scalar& dn, Scalar& dp, Scalar& dg) {
  dn += g * yh;
  dp -= g * yh;
  dg += (n - p) * yh;
}
}  // namespace distance_kernel

/// D with its per-row norms. Backward ACCUMULATES into dN, dP, dg. `squared` (ans_options::distance_squared)
/// takes D = 1/(BKH) Σ ‖y‖² instead (gradient 2c·y).
template <class Scalar>
class distance_loss {
 public:
  Scalar forward(const batch_shape& s, const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g,
                 Scalar eps, bool eps_in_norm, bool squared = false) {
    s.check();
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "distance::forward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "distance::forward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "distance::forward: g");
    shape_ = s;
    eps_ = eps;
    eps_in_norm_ = eps_in_norm;
    squared_ = squared;
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
          const Scalar off = eps_in_norm ? Scalar(0) : eps;
          Scalar ss = 0;
          for (index_t j = 0; j < d; ++j) {
            const Scalar y = distance_kernel::residual(n[j], p[j], gg[j], off);
            ss += y * y;
          }
          norm_[r] = math::norm_value(ss, eps, eps_in_norm, squared);
        }
    Scalar total = 0;
    for (index_t i = 0; i < s.cand_rows(); ++i) total += norm_[i];
    return total / Scalar(s.cand_rows());
  }

  void backward(const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g, Scalar scale,
                mref<Scalar> dP, mref<Scalar> dN, mref<Scalar> dg) const {
    const batch_shape& s = shape_;
    ans::detail::check_forward_done(s, "distance");
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "distance::backward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "distance::backward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "distance::backward: g");
    ans::detail::check_shape<Scalar>(dP, s.pair_rows(), s.d, "distance::backward: dP");
    ans::detail::check_shape<Scalar>(dN, s.cand_rows(), s.d, "distance::backward: dN");
    ans::detail::check_shape<Scalar>(dg, s.cand_rows(), s.d, "distance::backward: dg");
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const Scalar c = scale / Scalar(s.cand_rows());
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          const Scalar inv = math::norm_scale(c, norm_[r], squared_);  // c/‖y‖ | 2c
          if (inv == Scalar(0)) continue;  // subgradient 0
          const Scalar* p = P.row(b * H + h).data();
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar* dp = dP.row(b * H + h).data();
          Scalar* dn = dN.row(r).data();
          Scalar* dgg = dg.row(r).data();
          const Scalar off = eps_in_norm_ ? Scalar(0) : eps_;
          for (index_t j = 0; j < d; ++j) {
            const Scalar yh = inv * distance_kernel::residual(n[j], p[j], gg[j], off);  // c·ŷ
            distance_kernel::backward(n[j], p[j], gg[j], yh, dn[j], dp[j], dgg[j]);   // c g⊙ŷ, −c g⊙ŷ, c (N−P)⊙ŷ
          }
        }
  }

  const vector<Scalar>& norms() const { return norm_; }  ///< ‖y‖ per row (‖y‖² when squared)

 private:
  batch_shape shape_{};
  Scalar eps_ = 0;
  bool eps_in_norm_ = false, squared_ = false;
  vector<Scalar> norm_;
};

}  // namespace ans::loss
