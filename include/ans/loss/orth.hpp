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

namespace ans::loss {

/// O with its per-row norms. Backward ACCUMULATES into dP, dN, dg.
template <class Scalar>
class orth_loss {
 public:
  Scalar forward(const batch_shape& s, const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g,
                 bool mean_over_hops, bool safe_norm, Scalar safe_eps) {
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
            const Scalar w = (p[j] - gg[j] * p[j]) * (n[j] - gg[j] * n[j]);  // w = Pe⊙Ne
            ss += w * w;
          }
          norm_[r] = std::sqrt(safe_norm ? ss + safe_eps * safe_eps : ss);
        }
    coef_ = Scalar(1) / Scalar(mean_over_hops ? s.cand_rows() : s.B * s.K);
    Scalar total = 0;
    for (index_t i = 0; i < s.cand_rows(); ++i) total += norm_[i];
    return total * coef_;
  }

  void backward(const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g, Scalar scale,
                mref<Scalar> dP, mref<Scalar> dN, mref<Scalar> dg) const {
    const batch_shape& s = shape_;
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const Scalar c = scale * coef_;
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
            const Scalar e = Scalar(1) - gg[j];
            const Scalar wh = inv * e * e * p[j] * n[j];  // c·ŵ
            dp[j] += wh * e * e * n[j];                    // ∂/∂P += c ŵ⊙(1−g)²⊙N
            dn[j] += wh * e * e * p[j];                    // ∂/∂N += c ŵ⊙(1−g)²⊙P
            dgg[j] += Scalar(-2) * wh * e * p[j] * n[j];   // ∂/∂g += −2c ŵ⊙(1−g)⊙P⊙N
          }
        }
  }

  const vector<Scalar>& norms() const { return norm_; }

 private:
  batch_shape shape_{};
  Scalar coef_ = 0;
  vector<Scalar> norm_;
};

}  // namespace ans::loss
