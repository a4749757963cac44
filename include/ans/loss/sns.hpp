/// @file sns.hpp
/// @brief The contrastive term L_c ("sns_loss", paper Eq. 5; spec §7 F9, §6 item 9).
///
///   Δ[b,k,h] = <U[b,h], Ne − Nh> = <U[b,h], (1−2g)⊙N[b,k,h]>
///   L_c = 1/(BH) Σ_{b,h} log(1 + Σ_k exp Δ[b,k,h])
///   faithful: log(1 + Σ exp Δ) as written (overflows in float32 for Δ > ~88);
///   stable:   M = max(0, max_k Δ_k),  L = log(e^{−M} + Σ_k e^{Δ_k−M}) + M (same value).
/// Gradient, with α[b,k,h] = scale/(BH) · e^{Δ}/(1 + Σ_k' e^{Δ_k'}):
///   ∂/∂U[b,h] += Σ_k α(1−2g)⊙N,  ∂/∂N += α(1−2g)⊙U,  ∂/∂g += −2α U⊙N.
#pragma once

#include <algorithm>
#include <cmath>

#include "ans/core/batch.hpp"

namespace ans::loss {

/// The per-coordinate formulas of L_c, called by sns_loss and the fused composite.
namespace sns_kernel {
/// The coordinate's parts of <U,Nh> and <U,Ne>: hard += u·(g n), easy += u·(n − g n); Δ = easy − hard.
template <class Scalar>
inline void parts(Scalar u, Scalar n, Scalar g, Scalar& hard, Scalar& easy) {
  const Scalar nh = g * n;
  hard += u * nh;
  easy += u * (n - nh);
}
/// Backward of one coordinate with α the row's weight: ∂U += α(1−2g)N, ∂N += α(1−2g)U, ∂g += −2α U N.
template <class Scalar>
inline void backward(Scalar u, Scalar n, Scalar g, Scalar a, Scalar& du, Scalar& dn, Scalar& dg) {
  const Scalar w = a * (Scalar(1) - Scalar(2) * g);
  du += w * n;
  dn += w * u;
  dg += Scalar(-2) * a * u * n;
}
}  // namespace sns_kernel

/// L_c with its per-row cache. Backward ACCUMULATES into dU, dN, dg.
template <class Scalar>
class sns_loss {
 public:
  /// Value of L_c for U (B*H x d), N and g (B*K*H x d).
  Scalar forward(const batch_shape& s, const cref<Scalar>& U, const cref<Scalar>& N, const cref<Scalar>& g,
                 bool stable) {
    s.check();
    ans::detail::check_shape<Scalar>(U, s.pair_rows(), s.d, "sns::forward: U");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "sns::forward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "sns::forward: g");
    shape_ = s;
    delta_.resize(s.cand_rows());
    per_hop_.resize(s.pair_rows());
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t h = 0; h < H; ++h) {
        const Scalar* u = U.row(b * H + h).data();
        Scalar mx = Scalar(0);
        for (index_t k = 0; k < K; ++k) {
          const index_t r = (b * K + k) * H + h;
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar hard = 0, easy = 0;
          for (index_t j = 0; j < d; ++j) sns_kernel::parts(u[j], n[j], gg[j], hard, easy);
          delta_[r] = easy - hard;  // Δ = <U,Ne> − <U,Nh>
          mx = std::max(mx, delta_[r]);
        }
        Scalar v;
        if (stable) {
          Scalar sum = std::exp(-mx);
          for (index_t k = 0; k < K; ++k) sum += std::exp(delta_[(b * K + k) * H + h] - mx);
          v = std::log(sum) + mx;
        } else {
          Scalar sum = 0;
          for (index_t k = 0; k < K; ++k) sum += std::exp(delta_[(b * K + k) * H + h]);
          v = std::log(Scalar(1) + sum);
        }
        per_hop_[b * H + h] = v;
      }
    Scalar total = 0;
    for (index_t i = 0; i < s.pair_rows(); ++i) total += per_hop_[i];
    return total / Scalar(s.pair_rows());
  }

  /// Accumulates scale·∂L_c into dU, dN, dg (inputs as in the last forward).
  void backward(const cref<Scalar>& U, const cref<Scalar>& N, const cref<Scalar>& g, Scalar scale,
                mref<Scalar> dU, mref<Scalar> dN, mref<Scalar> dg) const {
    const batch_shape& s = shape_;
    ans::detail::check_forward_done(s, "sns");
    ans::detail::check_shape<Scalar>(U, s.pair_rows(), s.d, "sns::backward: U");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "sns::backward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "sns::backward: g");
    ans::detail::check_shape<Scalar>(dU, s.pair_rows(), s.d, "sns::backward: dU");
    ans::detail::check_shape<Scalar>(dN, s.cand_rows(), s.d, "sns::backward: dN");
    ans::detail::check_shape<Scalar>(dg, s.cand_rows(), s.d, "sns::backward: dg");
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const Scalar c = scale / Scalar(s.pair_rows());
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t h = 0; h < H; ++h) {
        const Scalar* u = U.row(b * H + h).data();
        Scalar* du = dU.row(b * H + h).data();
        Scalar mx = Scalar(0);
        for (index_t k = 0; k < K; ++k) mx = std::max(mx, delta_[(b * K + k) * H + h]);
        Scalar den = std::exp(-mx);
        for (index_t k = 0; k < K; ++k) den += std::exp(delta_[(b * K + k) * H + h] - mx);
        for (index_t k = 0; k < K; ++k) {
          const index_t r = (b * K + k) * H + h;
          const Scalar a = c * std::exp(delta_[r] - mx) / den;  // α = c·e^Δ/(1+Σe^Δ)
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar* dn = dN.row(r).data();
          Scalar* dgg = dg.row(r).data();
          for (index_t j = 0; j < d; ++j)  // α(1−2g)⊙N, α(1−2g)⊙U, −2α U⊙N
            sns_kernel::backward(u[j], n[j], gg[j], a, du[j], dn[j], dgg[j]);
        }
      }
  }

  const vector<Scalar>& delta() const { return delta_; }  ///< Δ per (b,k,h)

 private:
  batch_shape shape_{};
  vector<Scalar> delta_, per_hop_;
};

}  // namespace ans::loss
