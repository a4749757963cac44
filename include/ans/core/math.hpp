/// @file math.hpp
/// @brief Numerically stable scalar helpers shared by the loss components.
#pragma once

#include <cmath>
#include <cstddef>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace ans::math {

/// σ(z) = 1/(1+e^{−z}) without overflow for either sign of z.
template <class Scalar>
inline Scalar sigmoid(Scalar z) {
  if (z >= Scalar(0)) return Scalar(1) / (Scalar(1) + std::exp(-z));
  const Scalar e = std::exp(z);
  return e / (Scalar(1) + e);
}

/// log(1 + e^z) without overflow.
template <class Scalar>
inline Scalar softplus(Scalar z) {
  return z > Scalar(0) ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

/// sign(z) ∈ {−1, 0, +1} as Scalar (torch.sign).
template <class Scalar>
inline Scalar sign(Scalar z) {
  return Scalar((z > Scalar(0)) - (z < Scalar(0)));
}

/// d/dt σ(1/t) = −x²σ(x)σ(−x) with x = 1/t, evaluated as −exp(2 log|x| − |x|)/(1 + e^{−|x|})² so it is
/// finite for every finite x and tends to 0 as |x| → ∞ (no x² overflow in float). Returns 0 for non-finite x
/// (t == 0: the reference's NaN is defined as 0).
template <class Scalar>
inline Scalar inv_sigmoid_derivative(Scalar x) {
  if (!std::isfinite(x)) return Scalar(0);
  const Scalar ax = std::abs(x);
  if (ax == Scalar(0)) return Scalar(0);
  const Scalar e = std::exp(-ax);
  const Scalar den = Scalar(1) + e;
  return -std::exp(Scalar(2) * std::log(ax) - ax) / (den * den);
}

/// Sum of 16 per-lane partial sums as a fixed pairwise tree (8 + 8, 4 + 4, 2 + 2, 1 + 1): vector adds instead
/// of 15 dependent scalar ones (those were ~13 % of the ANS forward), in the same order on every call, so the
/// result is deterministic. Overwrites `a`.
template <class Scalar>
inline Scalar lane_sum(Scalar (&a)[16]) {
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) a[l] += a[l + w];
  return a[0];
}

/// out[i] = sqrt(in[i]) for i < n, correctly rounded (IEEE sqrt) in every lane: the vector body (AVX-512 or
/// AVX sqrt instructions) and the scalar tail give the same bits, so the result of an entry never depends on
/// where a caller splits an array. (Eigen's packet sqrt under EIGEN_FAST_MATH is an rsqrt + Newton
/// approximation for float: the bits of an entry then depend on whether it falls in a packet or the tail.)
inline void sqrt_exact(const float* in, float* out, std::ptrdiff_t n) {
  std::ptrdiff_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_sqrt_ps(_mm512_loadu_ps(in + i)));
#elif defined(__AVX__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_sqrt_ps(_mm256_loadu_ps(in + i)));
#endif
  for (; i < n; ++i) out[i] = std::sqrt(in[i]);
}
/// Double-precision sqrt_exact.
inline void sqrt_exact(const double* in, double* out, std::ptrdiff_t n) {
  std::ptrdiff_t i = 0;
#if defined(__AVX512F__)
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(out + i, _mm512_sqrt_pd(_mm512_loadu_pd(in + i)));
#elif defined(__AVX__)
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(out + i, _mm256_sqrt_pd(_mm256_loadu_pd(in + i)));
#endif
  for (; i < n; ++i) out[i] = std::sqrt(in[i]);
}

/// The row value of a norm term from ss = Σ_j x_j²: ss (squared form) or sqrt(ss + ε²) / sqrt(ss) (ε inside the
/// norm or not). D and O (loss/distance.hpp, loss/orth.hpp) both use it.
template <class Scalar>
inline Scalar norm_value(Scalar ss, Scalar eps, bool eps_inside, bool squared) {
  return squared ? ss : std::sqrt(eps_inside ? ss + eps * eps : ss);
}
/// The factor c' with ∂(c·value)/∂x = c'·x for the value of norm_value: c/value (0 at value 0, the subgradient)
/// or 2c (squared).
template <class Scalar>
inline Scalar norm_scale(Scalar c, Scalar value, bool squared) {
  return squared ? Scalar(2) * c : value != Scalar(0) ? c / value : Scalar(0);
}

}  // namespace ans::math
