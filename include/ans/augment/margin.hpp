/// @file margin.hpp
/// @brief The augmentation margin m (paper Eq. 10; spec §7 F7, §6 item 1).
///
///   v = Nh⊙Ph = g²⊙N⊙P[b,h],   t = w_m·v + c_m
///   faithful_inv_sigmoid: m = σ(1/t),  dm/dt = −x²σ(x)σ(−x), x = 1/t (stable form of −m(1−m)/t²);
///                         t == 0: m = 1 (σ(+∞)) and the gradient is defined as 0 (PyTorch gives NaN); counted.
///   sigmoid_neg (1a):     m = σ(−t),   dm/dt = −m(1−m)
///   clamped (1b):         t' = sign(t)·max(|t|, τ) (sign(0) = +1), m = σ(1/t'), dm/dt = dm/dt'·[|t| > τ]
///   none (ablation):      m = 1, dm/dt = 0 (the noise is not scaled by the pair's similarity)
/// Backward from ∂L/∂m, G_t = ∂L/∂m · dm/dt:
///   ∂/∂w_m += G_t v,  ∂/∂c_m += G_t,  ∂/∂g += 2G_t w_m⊙g⊙N⊙P,  ∂/∂N += G_t w_m⊙g²⊙P,  ∂/∂P += G_t w_m⊙g²⊙N.
#pragma once

#include <cmath>
#include <limits>

#include "ans/core/batch.hpp"
#include "ans/core/math.hpp"
#include "ans/core/mode.hpp"

namespace ans::augment {

/// m as a function of t under `form` (clamp τ for margin_form::clamped): the one definition, used by
/// margin_model and by the fused composite.
template <class Scalar>
inline Scalar margin_value(margin_form form, Scalar tau, Scalar t) {
  switch (form) {
    case margin_form::sigmoid_neg: return math::sigmoid(-t);
    case margin_form::none: return Scalar(1);  // ablation: m = 1
    case margin_form::clamped: {
      const Scalar tc = t >= Scalar(0) ? std::max(t, tau) : std::min(t, -tau);
      return math::sigmoid(Scalar(1) / tc);
    }
    default:
      if (t == Scalar(0)) return Scalar(1);  // σ(1/+0) = σ(+∞)
      return math::sigmoid(Scalar(1) / t);
  }
}

/// dm/dt at t under `form` (0 at the pole and inside the clamp).
template <class Scalar>
inline Scalar margin_derivative(margin_form form, Scalar tau, Scalar t) {
  switch (form) {
    case margin_form::sigmoid_neg: {
      const Scalar m = math::sigmoid(-t);
      return -m * (Scalar(1) - m);  // dm/dt = −m(1−m)
    }
    case margin_form::none: return Scalar(0);  // dm/dt = 0
    case margin_form::clamped:
      if (std::abs(t) <= tau) return Scalar(0);
      return math::inv_sigmoid_derivative(Scalar(1) / t);
    default:
      if (t == Scalar(0)) return Scalar(0);
      return math::inv_sigmoid_derivative(Scalar(1) / t);  // dm/dt = −x²σ(x)σ(−x)
  }
}

/// The per-coordinate formulas of t = w_m·v + c_m, v = (g⊙N)⊙(g⊙P), called by margin_model and the composite.
namespace margin_kernel {
/// w_j·v_j
template <class Scalar>
inline Scalar term(Scalar n, Scalar p, Scalar g, Scalar w) {
  return w * ((g * n) * (g * p));
}
/// Backward of one coordinate from G_t: ∂w_m += G_t v, ∂g += 2G_t w g N P, ∂N += G_t w g² P, ∂P += G_t w g² N.
template <class Scalar>
inline void backward(Scalar Gt, Scalar n, Scalar p, Scalar g, Scalar w, Scalar& dw, Scalar& dg, Scalar& dn,
                     Scalar& dp) {
  const Scalar g2 = g * g;
  dw += Gt * g2 * n * p;
  dg += Scalar(2) * Gt * w * g * n * p;
  dn += Gt * w * g2 * p;
  dp += Gt * w * g2 * n;
}
}  // namespace margin_kernel

/// The margin model over a batch; caches t and m per (b,k,h).
template <class Scalar>
class margin_model {
 public:
  /// Computes t and m for all (b,k,h). Returns the number of rows with t == 0 (pole events).
  index_t forward(const batch_shape& s, const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g,
                  const cvref<Scalar>& w_m, Scalar c_m, margin_form form, Scalar clamp_tau) {
    s.check();
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "margin::forward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "margin::forward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "margin::forward: g");
    ans::detail::check_size(w_m, s.d, "margin::forward: w_m");
    shape_ = s;
    form_ = form;
    tau_ = clamp_tau;
    t_.resize(s.cand_rows());
    m_.resize(s.cand_rows());
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    index_t poles = 0;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) reduction(+ : poles)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          const Scalar* p = P.row(b * H + h).data();
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          Scalar t = 0;
          for (index_t j = 0; j < d; ++j) t += margin_kernel::term(n[j], p[j], gg[j], w_m[j]);  // w·(Nh⊙Ph)
          t += c_m;
          t_[r] = t;
          m_[r] = value(t);
          if (form != margin_form::sigmoid_neg && form != margin_form::none && t == Scalar(0)) ++poles;
        }
    poles_ = poles;
    return poles;
  }

  /// m as a function of t under the configured form.
  Scalar value(Scalar t) const { return margin_value(form_, tau_, t); }

  /// dm/dt at t under the configured form (0 at the pole).
  Scalar derivative(Scalar t) const { return margin_derivative(form_, tau_, t); }

  /// Backward of one row r = (b,k,h) given ∂L/∂m (`dm`). Accumulates into the row pointers and the
  /// parameter gradients (dw_m has length d). Used by the composite for the selected rows only.
  void backward_row(index_t r, const Scalar* p, const Scalar* n, const Scalar* gg, const Scalar* w_m, Scalar dm,
                    Scalar* dp, Scalar* dn, Scalar* dgg, Scalar* dw_m, Scalar& dc_m) const {
    const Scalar Gt = dm * derivative(t_[r]);  // G_t = ∂L/∂m · dm/dt
    if (Gt == Scalar(0)) return;
    const index_t d = shape_.d;
    for (index_t j = 0; j < d; ++j)  // G_t v, 2G_t w⊙g⊙N⊙P, G_t w⊙g²⊙P, G_t w⊙g²⊙N
      margin_kernel::backward(Gt, n[j], p[j], gg[j], w_m[j], dw_m[j], dgg[j], dn[j], dp[j]);
    dc_m += Gt;  // ∂/∂c_m += G_t
  }

  /// Batch backward from ∂L/∂m (length B*K*H). Serial over rows so the parameter sums are deterministic.
  void backward(const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g, const cvref<Scalar>& w_m,
                const cvref<Scalar>& dm, mref<Scalar> dP, mref<Scalar> dN, mref<Scalar> dg, vref<Scalar> dw_m,
                Scalar& dc_m) const {
    const batch_shape& s = shape_;
    ans::detail::check_forward_done(s, "margin");
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "margin::backward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "margin::backward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "margin::backward: g");
    ans::detail::check_size(w_m, s.d, "margin::backward: w_m");
    ans::detail::check_size(dm, s.cand_rows(), "margin::backward: dm");
    ans::detail::check_shape<Scalar>(dP, s.pair_rows(), s.d, "margin::backward: dP");
    ans::detail::check_shape<Scalar>(dN, s.cand_rows(), s.d, "margin::backward: dN");
    ans::detail::check_shape<Scalar>(dg, s.cand_rows(), s.d, "margin::backward: dg");
    ans::detail::check_size(dw_m, s.d, "margin::backward: dw_m");
    for (index_t b = 0; b < s.B; ++b)
      for (index_t k = 0; k < s.K; ++k)
        for (index_t h = 0; h < s.H; ++h) {
          const index_t r = s.nrow(b, k, h);
          if (dm[r] == Scalar(0)) continue;
          backward_row(r, P.row(s.urow(b, h)).data(), N.row(r).data(), g.row(r).data(), w_m.data(), dm[r],
                       dP.row(s.urow(b, h)).data(), dN.row(r).data(), dg.row(r).data(), dw_m.data(), dc_m);
        }
  }

  const vector<Scalar>& t() const { return t_; }  ///< t per (b,k,h)
  const vector<Scalar>& m() const { return m_; }  ///< margin per (b,k,h)
  index_t pole_events() const { return poles_; }

 private:
  batch_shape shape_{};
  margin_form form_ = margin_form::faithful_inv_sigmoid;
  Scalar tau_ = Scalar(0.1);
  index_t poles_ = 0;
  vector<Scalar> t_, m_;
};

}  // namespace ans::augment
