/// @file noise.hpp
/// @brief The augmentation noise ξ and the augmented candidates Ñ (paper Eqs. 8–11; spec §7 F8, §6 items 2–4).
///
///   δ = sign(Pe − Ne) (faithful, from the gated factors) or sign(P − N) (fixed, item 3)
///   normalized (faithful): r̂ = r/max(‖r‖₂, 1e-12);  per_dim_uniform: r̂ = r
///   e = δ⊙r̂,  ξ = scale·m·e,  Ñ = Nh + (Ne + f⊙ξ) = N + f⊙ξ,  f = 1 (faithful) or (1−g) (augment_easy_only)
/// Backward from ∂L/∂Ñ (δ and r̂ are constants):
///   ∂/∂N += ∂Ñ,  ∂/∂m += scale Σ_j ∂Ñ_j f_j e_j,  ∂/∂g += −∂Ñ⊙ξ (augment_easy_only only).
///
/// Uniform draws come from a *uniform source*: any object callable as
/// `src(b, k, h, Scalar* out, index_t d)` (const, thread-safe) that writes d values in [0, 1).
#pragma once

#include <cmath>
#include <cstdint>

#include "ans/core/batch.hpp"
#include "ans/core/math.hpp"
#include "ans/core/mode.hpp"

namespace ans::augment {

/// splitmix64 finaliser, the mixing step of the counter-based default source.
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Counter-based uniform source: value j of (b,k,h) at `step` is a pure function of
/// (seed, step, b, k, h, j), so results do not depend on threads or call order.
struct counter_uniform_source {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  /// Row b of the batch draws as row first + b of the step: a data-parallel shard that trains rows
  /// [first, first + B) of the global batch draws the noise the single process would (ans/dist).
  index_t first = 0;

  template <class Scalar>
  void operator()(index_t b, index_t k, index_t h, Scalar* out, index_t d) const {
    std::uint64_t key = splitmix64(seed ^ 0x5851F42D4C957F2DULL);
    key = splitmix64(key ^ step);
    key = splitmix64(key ^ static_cast<std::uint64_t>(first + b));
    key = splitmix64(key ^ static_cast<std::uint64_t>(k));
    key = splitmix64(key ^ static_cast<std::uint64_t>(h));
    for (index_t j = 0; j < d; ++j) {
      const std::uint64_t x = splitmix64(key + static_cast<std::uint64_t>(j));
      if constexpr (sizeof(Scalar) <= 4)
        out[j] = Scalar(static_cast<float>(x >> 40) * 0x1.0p-24f);  // 24 bits: exactly representable, < 1
      else
        out[j] = Scalar(static_cast<double>(x >> 11) * 0x1.0p-53);
    }
  }
};

/// Source reading given draws r[B,K,H,d] (C order), e.g. `noise_uniform.npy` of a golden case.
template <class T>
struct array_uniform_source {
  const T* data = nullptr;
  batch_shape shape{};

  template <class Scalar>
  void operator()(index_t b, index_t k, index_t h, Scalar* out, index_t d) const {
    const T* src = data + shape.nrow(b, k, h) * shape.d;
    for (index_t j = 0; j < d; ++j) out[j] = static_cast<Scalar>(src[j]);
  }
};

/// The per-coordinate formulas of the noise and of Ñ, called by noise_model and the fused composite.
namespace noise_kernel {
/// δ_j = sign(Pe − Ne) (gated, faithful) or sign(P − N)
template <class Scalar>
inline Scalar direction(Scalar p, Scalar n, Scalar g, bool gated) {
  return gated ? math::sign((p - g * p) - (n - g * n)) : math::sign(p - n);
}
/// Ñ_j = Nh + (Ne + f·ξ), f = 1 or (1 − g) (easy only), ξ = scale·m·e
template <class Scalar>
inline Scalar augmented(Scalar n, Scalar g, Scalar xi, bool easy_only) {
  const Scalar nh = g * n;
  return nh + ((n - nh) + (easy_only ? (Scalar(1) - g) * xi : xi));
}
/// Backward of one coordinate from ∂Ñ (`dnt`): ∂N += ∂Ñ, dm_sum += ∂Ñ·f·e (times scale once per row by the
/// caller), and (easy only) ∂g −= ∂Ñ·scale·m·e.
template <class Scalar>
inline void backward(Scalar dnt, Scalar g, Scalar e, Scalar scale, Scalar m, bool easy_only, Scalar& dn, Scalar& dg,
                     Scalar& dm_sum) {
  dn += dnt;
  if (easy_only) {
    dm_sum += dnt * (Scalar(1) - g) * e;
    dg -= dnt * scale * m * e;
  } else {
    dm_sum += dnt * e;
  }
}
}  // namespace noise_kernel

/// The noise directions e = δ⊙r̂ per (b,k,h), drawn once per forward.
template <class Scalar>
class noise_model {
 public:
  /// Draws r from `src` and computes e = δ⊙r̂ for every row ((B*K*H)xd).
  template <class Source>
  void forward(const batch_shape& s, const cref<Scalar>& P, const cref<Scalar>& N, const cref<Scalar>& g,
               const Source& src, const ans_options& o) {
    s.check();
    ans::detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "noise::forward: P");
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "noise::forward: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "noise::forward: g");
    shape_ = s;
    scale_ = Scalar(o.noise_scale);
    easy_only_ = o.augment_easy_only;
    if (e_.rows() != s.cand_rows() || e_.cols() != s.d) e_.resize(s.cand_rows(), s.d);
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const bool normalized = o.noise == noise_form::normalized, gated = o.direction_from_gated;
    const Scalar nrm_eps = Scalar(o.normalize_eps);
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          Scalar* e = e_.row(r).data();
          src(b, k, h, e, d);  // e ← r
          Scalar inv = 1;
          if (normalized) {
            Scalar ss = 0;
            for (index_t j = 0; j < d; ++j) ss += e[j] * e[j];
            inv = Scalar(1) / std::max(std::sqrt(ss), nrm_eps);  // r̂ = r/max(‖r‖, 1e-12)
          }
          const Scalar* p = P.row(b * H + h).data();
          const Scalar* n = N.row(r).data();
          const Scalar* gg = g.row(r).data();
          for (index_t j = 0; j < d; ++j)  // e = δ⊙r̂, δ = sign(Pe − Ne) or sign(P − N)
            e[j] = noise_kernel::direction(p[j], n[j], gg[j], gated) * (normalized ? e[j] * inv : e[j]);
        }
  }

  /// Writes Ñ[r] = Nh + (Ne + f⊙ξ) for row r given its margin m.
  void augmented_row(index_t r, const Scalar* n, const Scalar* gg, Scalar m, Scalar* out) const {
    const Scalar* e = e_.row(r).data();
    const Scalar sm = scale_ * m;
    for (index_t j = 0; j < shape_.d; ++j) out[j] = noise_kernel::augmented(n[j], gg[j], sm * e[j], easy_only_);
  }

  /// Backward of Ñ[r] from ∂L/∂Ñ[r] (`dnt`): ∂N += ∂Ñ, returns ∂L/∂m, and (easy-only) ∂g −= ∂Ñ⊙ξ.
  Scalar backward_row(index_t r, const Scalar* dnt, const Scalar* gg, Scalar m, Scalar* dn, Scalar* dgg) const {
    const Scalar* e = e_.row(r).data();
    Scalar dm = 0;
    Scalar unused = 0;  // dgg may be null when the gate gets no gradient from the noise (not easy-only)
    for (index_t j = 0; j < shape_.d; ++j)  // ∂N += ∂Ñ, ∂m += ∂Ñ f e, easy-only ∂g −= ∂Ñ⊙ξ
      noise_kernel::backward(dnt[j], gg[j], e[j], scale_, m, easy_only_, dn[j], dgg ? dgg[j] : unused, dm);
    return scale_ * dm;  // ∂m = scale Σ ∂Ñ f e
  }

  /// Batch form of augmented_row: Ñ = N + f⊙ξ for every row ((B*K*H) x d) given the margins m (length B*K*H)
  /// of the last forward's rows.
  void augment(const cref<Scalar>& N, const cref<Scalar>& g, const cvref<Scalar>& m, mref<Scalar> out) const {
    const batch_shape& s = shape_;
    ans::detail::check_forward_done(s, "noise");  // e = δ⊙r̂ comes from the forward
    ans::detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "noise::augment: N");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "noise::augment: g");
    ans::detail::check_size(m, s.cand_rows(), "noise::augment: m");
    ans::detail::check_shape<Scalar>(out, s.cand_rows(), s.d, "noise::augment: out");
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t r = 0; r < s.cand_rows(); ++r) augmented_row(r, N.row(r).data(), g.row(r).data(), m[r], out.row(r).data());
  }

  /// Batch backward from ∂L/∂Ñ ((B*K*H)xd): accumulates into dN, dg and dm (length B*K*H).
  void backward(const cref<Scalar>& dNt, const cref<Scalar>& g, const cvref<Scalar>& m, mref<Scalar> dN,
                mref<Scalar> dg, vref<Scalar> dm) const {
    const batch_shape& s = shape_;
    ans::detail::check_forward_done(s, "noise");
    ans::detail::check_shape<Scalar>(dNt, s.cand_rows(), s.d, "noise::backward: dNt");
    ans::detail::check_shape<Scalar>(g, s.cand_rows(), s.d, "noise::backward: g");
    ans::detail::check_size(m, s.cand_rows(), "noise::backward: m");
    ans::detail::check_shape<Scalar>(dN, s.cand_rows(), s.d, "noise::backward: dN");
    ans::detail::check_shape<Scalar>(dg, s.cand_rows(), s.d, "noise::backward: dg");
    ans::detail::check_size(dm, s.cand_rows(), "noise::backward: dm");
    for (index_t r = 0; r < shape_.cand_rows(); ++r)
      dm[r] += backward_row(r, dNt.row(r).data(), g.row(r).data(), m[r], dN.row(r).data(), dg.row(r).data());
  }

  const matrix<Scalar>& direction() const { return e_; }  ///< e = δ⊙r̂ per row
  Scalar scale() const { return scale_; }
  bool easy_only() const { return easy_only_; }

 private:
  batch_shape shape_{};
  Scalar scale_ = Scalar(0.1);
  bool easy_only_ = false;
  matrix<Scalar> e_;
};

}  // namespace ans::augment
