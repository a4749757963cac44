/// @file distance.hpp
/// @brief The "distance" half of L_d (paper Eq. 7; spec §7 F5, §6 item 11).
///
///   D = 1/(BKH) Σ_{b,k,h} ‖y‖₂,  faithful: y = Nh − Ph + δ·1 = g⊙(N−P[b,h]) + δ  (F.pairwise_distance)
///                                 fixed:    ‖y‖ := sqrt(‖g⊙(N−P)‖² + δ²)
/// Gradient, ŷ = y/‖y‖ (fixed: g⊙(N−P)/sqrt(·)), c = scale/(BKH):
///   ∂/∂N += c g⊙ŷ,  ∂/∂P[b,h] −= c g⊙ŷ,  ∂/∂g += c (N−P)⊙ŷ.
#pragma once

#include <cmath>

#include "ans/core/batch.hpp"

namespace ans::loss {

/// D with its per-row norms. Backward ACCUMULATES into dN, dP, dg.
template <class Scalar>
class distance_loss {
 public:
  Scalar forward(const batch_shape& s, const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g,
                 Scalar eps, bool eps_in_norm) {
    shape_ = s;
    eps_ = eps;
    eps_in_norm_ = eps_in_norm;
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
            const Scalar y = eps_in_norm ? gg[j] * n[j] - gg[j] * p[j] : gg[j] * n[j] - gg[j] * p[j] + eps;
            ss += y * y;
          }
          norm_[r] = std::sqrt(eps_in_norm ? ss + eps * eps : ss);
        }
    Scalar total = 0;
    for (index_t i = 0; i < s.cand_rows(); ++i) total += norm_[i];
    return total / Scalar(s.cand_rows());
  }

  void backward(const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g, Scalar scale,
                mref<Scalar> dP, mref<Scalar> dN, mref<Scalar> dg) const {
    const batch_shape& s = shape_;
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const Scalar c = scale / Scalar(s.cand_rows());
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          if (norm_[r] == Scalar(0)) continue;  // subgradient 0
          const Scalar inv = c / norm_[r];
          const Scalar* p = P.row(b * H + h).data();
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar* dp = dP.row(b * H + h).data();
          Scalar* dn = dN.row(r).data();
          Scalar* dgg = dg.row(r).data();
          for (index_t j = 0; j < d; ++j) {
            const Scalar y = eps_in_norm_ ? gg[j] * n[j] - gg[j] * p[j] : gg[j] * n[j] - gg[j] * p[j] + eps_;
            const Scalar yh = inv * y;     // c·ŷ
            dn[j] += gg[j] * yh;           // ∂/∂N += c g⊙ŷ
            dp[j] -= gg[j] * yh;           // ∂/∂P −= c g⊙ŷ
            dgg[j] += (n[j] - p[j]) * yh;  // ∂/∂g += c (N−P)⊙ŷ
          }
        }
  }

  const vector<Scalar>& norms() const { return norm_; }

 private:
  batch_shape shape_{};
  Scalar eps_ = 0;
  bool eps_in_norm_ = false;
  vector<Scalar> norm_;
};

}  // namespace ans::loss
