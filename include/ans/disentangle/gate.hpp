/// @file gate.hpp
/// @brief The disentanglement gate of ANS (paper Eqs. 3, 4, 6; spec §7 F1–F4, §8 gate path).
///
/// Forward, for every (b, k, h):
///   a_u[b,h]   = W_u U[b,h] + b_u                       (one (B*H)xd · dxd GEMM)
///   a_n[b,k,h] = W_i N[b,k,h] + b_i                     (one (B*K*H)xd · dxd GEMM)
///   g = σ(z),  z = a_n ⊙ a_u[b,h]
///   Nh = g⊙N,  Ne = N − Nh,  Ph = g⊙P[b,h],  Pe = P[b,h] − Ph
/// Backward from ∂L/∂g:
///   ḡ_z = ∂L/∂g ⊙ g ⊙ (1−g),  ḡ_an = ḡ_z ⊙ a_u[b,h],  ḡ_au[b,h] = Σ_k ḡ_z ⊙ a_n[b,k,h]
///   ∂L/∂W_i += Σ ḡ_an ⊗ N,  ∂L/∂b_i += Σ ḡ_an,  ∂L/∂N += W_iᵀ ḡ_an
///   ∂L/∂W_u += Σ ḡ_au ⊗ U,  ∂L/∂b_u += Σ ḡ_au,  ∂L/∂U += W_uᵀ ḡ_au
/// Every backward ACCUMULATES (+=) into the caller's buffers. Layout: see ans/core/batch.hpp.
#pragma once

#include "ans/core/batch.hpp"
#include "ans/core/math.hpp"

namespace ans::disentangle {

/// x ← σ(x) over a contiguous row of n values, vectorised (Eigen's packet exp): σ(z) = 1/(1 + e^{−z}).
/// For z → −∞, e^{−z} = +inf gives exactly 0; agrees with math::sigmoid to a few ulp.
template <class Scalar>
inline void sigmoid_inplace(Scalar* x, index_t n) {
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>> a(x, n);
  a = (Scalar(1) + (-a).exp()).inverse();
}

/// The per-coordinate backward of the gate's elementwise part, called by gate and the fused composite:
///   ḡ_z = ∂g·g(1−g),  ḡ_an = ḡ_z·a_u (written),  ḡ_au += ḡ_z·a_n.
namespace gate_kernel {
template <class Scalar>
inline void backward(Scalar dg, Scalar g, Scalar au, Scalar an, Scalar& gan, Scalar& gau) {
  const Scalar gz = dg * g * (Scalar(1) - g);
  gan = gz * au;
  gau += gz * an;
}
}  // namespace gate_kernel

/// The gate g = σ((W_i n + b_i) ⊙ (W_u u + b_u)) over a whole batch, with its cached activations.
/// Workspaces are sized on the first call and reused while the shape stays the same.
template <class Scalar>
class gate {
 public:
  /// Computes a_u, a_n and g for all (b, k, h). U is (B*H)xd, N is (B*K*H)xd, W_* are [out,in] = dxd.
  void forward(const batch_shape& s, const cref<Scalar>& U, const cref<Scalar>& N, const cref<Scalar>& W_u,
               const cvref<Scalar>& b_u, const cref<Scalar>& W_i, const cvref<Scalar>& b_i) {
    s.check();
    detail::check_shape<Scalar>(U, s.pair_rows(), s.d, "gate: U");
    detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "gate: N");
    detail::check_shape<Scalar>(W_u, s.d, s.d, "gate: W_u");
    detail::check_shape<Scalar>(W_i, s.d, s.d, "gate: W_i");
    ANS_CHECK(b_u.size() == s.d && b_i.size() == s.d, "gate: bias size must be d = " << s.d);
    resize(s);
    a_u_.noalias() = U * W_u.transpose();  // a_u = U W_uᵀ + b_u
    a_u_.rowwise() += b_u.transpose();
    a_n_.noalias() = N * W_i.transpose();  // a_n = N W_iᵀ + b_i
    a_n_.rowwise() += b_i.transpose();
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const Scalar* au = a_u_.row(b * H + h).data();
          const index_t r = (b * K + k) * H + h;
          const Scalar* an = a_n_.row(r).data();
          Scalar* gg = g_.row(r).data();
          for (index_t j = 0; j < d; ++j) gg[j] = an[j] * au[j];  // g = σ(a_n ⊙ a_u)
          sigmoid_inplace(gg, d);
        }
  }

  /// Accumulates the gradients of L given ∂L/∂g ((B*K*H)xd) into dU, dN, dW_u, db_u, dW_i, db_i.
  /// U, N, W_u, W_i must be the arguments of the last forward.
  void backward(const cref<Scalar>& U, const cref<Scalar>& N, const cref<Scalar>& W_u, const cref<Scalar>& W_i,
                const cref<Scalar>& grad_g, mref<Scalar> dU, mref<Scalar> dN, mref<Scalar> dW_u, vref<Scalar> db_u,
                mref<Scalar> dW_i, vref<Scalar> db_i) {
    const batch_shape& s = shape_;
    ANS_CHECK(s.B > 0, "gate::backward called before forward");
    detail::check_shape<Scalar>(grad_g, s.cand_rows(), s.d, "gate: grad_g");
    detail::check_shape<Scalar>(dU, s.pair_rows(), s.d, "gate: dU");
    detail::check_shape<Scalar>(dN, s.cand_rows(), s.d, "gate: dN");
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t h = 0; h < H; ++h) {
        const Scalar* au = a_u_.row(b * H + h).data();
        Scalar* gu = gau_.row(b * H + h).data();
        for (index_t j = 0; j < d; ++j) gu[j] = Scalar(0);
        for (index_t k = 0; k < K; ++k) {
          const index_t r = (b * K + k) * H + h;
          const Scalar* gg = g_.row(r).data();
          const Scalar* dg = grad_g.row(r).data();
          const Scalar* an = a_n_.row(r).data();
          Scalar* gn = gan_.row(r).data();
          for (index_t j = 0; j < d; ++j)  // ḡ_z = ∂L/∂g ⊙ g(1−g), ḡ_an = ḡ_z ⊙ a_u, ḡ_au = Σ_k ḡ_z ⊙ a_n
            gate_kernel::backward(dg[j], gg[j], au[j], an[j], gn[j], gu[j]);
        }
      }
    dW_i.noalias() += gan_.transpose() * N;  // ∂L/∂W_i = Σ ḡ_an ⊗ N
    db_i.noalias() += gan_.colwise().sum().transpose();
    dN.noalias() += gan_ * W_i;               // ∂L/∂N += W_iᵀ ḡ_an
    dW_u.noalias() += gau_.transpose() * U;  // ∂L/∂W_u = Σ ḡ_au ⊗ U
    db_u.noalias() += gau_.colwise().sum().transpose();
    dU.noalias() += gau_ * W_u;               // ∂L/∂U += W_uᵀ ḡ_au
  }

  const matrix<Scalar>& g() const { return g_; }      ///< gate, (B*K*H)xd
  const matrix<Scalar>& a_u() const { return a_u_; }  ///< W_u U + b_u, (B*H)xd
  const matrix<Scalar>& a_n() const { return a_n_; }  ///< W_i N + b_i, (B*K*H)xd
  const batch_shape& shape() const { return shape_; }

 private:
  void resize(const batch_shape& s) {
    if (s == shape_) return;
    shape_ = s;
    a_u_.resize(s.pair_rows(), s.d);
    gau_.resize(s.pair_rows(), s.d);
    a_n_.resize(s.cand_rows(), s.d);
    g_.resize(s.cand_rows(), s.d);
    gan_.resize(s.cand_rows(), s.d);
  }
  batch_shape shape_{};
  matrix<Scalar> a_u_, a_n_, g_, gan_, gau_;
};

/// Hard and easy factors: Nh = g⊙N, Ne = N − Nh, Ph = g⊙P[b,h], Pe = P[b,h] − Ph (all (B*K*H)xd).
template <class Scalar>
void gate_factors(const batch_shape& s, const cref<Scalar>& g, const cref<Scalar>& N, const cref<Scalar>& P,
                  mref<Scalar> Nh, mref<Scalar> Ne, mref<Scalar> Ph, mref<Scalar> Pe) {
  for (index_t b = 0; b < s.B; ++b)
    for (index_t k = 0; k < s.K; ++k)
      for (index_t h = 0; h < s.H; ++h) {
        const index_t r = s.nrow(b, k, h), u = s.urow(b, h);
        for (index_t j = 0; j < s.d; ++j) {
          Nh(r, j) = g(r, j) * N(r, j);
          Ne(r, j) = N(r, j) - Nh(r, j);
          Ph(r, j) = g(r, j) * P(u, j);
          Pe(r, j) = P(u, j) - Ph(r, j);
        }
      }
}

/// Backward of gate_factors: from ∂L/∂{Nh,Ne,Ph,Pe} accumulate
///   ∂L/∂N += ∂Ne + g⊙(∂Nh − ∂Ne),  ∂L/∂P[b,h] += Σ_k ∂Pe + g⊙(∂Ph − ∂Pe),
///   ∂L/∂g += N⊙(∂Nh − ∂Ne) + P⊙(∂Ph − ∂Pe).
template <class Scalar>
void gate_factors_backward(const batch_shape& s, const cref<Scalar>& g, const cref<Scalar>& N,
                           const cref<Scalar>& P, const cref<Scalar>& dNh, const cref<Scalar>& dNe,
                           const cref<Scalar>& dPh, const cref<Scalar>& dPe, mref<Scalar> dg, mref<Scalar> dN,
                           mref<Scalar> dP) {
  for (index_t b = 0; b < s.B; ++b)
    for (index_t k = 0; k < s.K; ++k)
      for (index_t h = 0; h < s.H; ++h) {
        const index_t r = s.nrow(b, k, h), u = s.urow(b, h);
        for (index_t j = 0; j < s.d; ++j) {
          const Scalar dn = dNh(r, j) - dNe(r, j), dp = dPh(r, j) - dPe(r, j);
          dN(r, j) += dNe(r, j) + g(r, j) * dn;
          dP(u, j) += dPe(r, j) + g(r, j) * dp;
          dg(r, j) += N(r, j) * dn + P(u, j) * dp;
        }
      }
}

}  // namespace ans::disentangle
