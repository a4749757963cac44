/// @file math.hpp
/// @brief Numerically stable scalar helpers shared by the loss components.
#pragma once

#include <cmath>

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

}  // namespace ans::math
