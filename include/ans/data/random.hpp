/// @file random.hpp
/// @brief Portable, seed-deterministic random helpers on std::mt19937_64 (the standard distributions'
/// output is implementation-defined, so the data layer never uses them).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>

namespace ans::data {

/// The engine used by the data layer (its output sequence is fixed by the standard).
using rng_t = std::mt19937_64;

/// Uniform integer in [0, n) by rejection sampling (unbiased; n > 0).
inline std::uint64_t uniform_index(rng_t& rng, std::uint64_t n) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // largest multiple of n, exclusive
  std::uint64_t x;
  do x = rng(); while (x >= limit);
  return x % n;
}

/// Uniform double in [0, 1) with 53 random bits.
inline double uniform01(rng_t& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// Uniform double in (0, 1): never 0, safe for log().
inline double uniform_open01(rng_t& rng) { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }

/// Standard normal variate (Box-Muller, one value per call).
inline double standard_normal(rng_t& rng) {
  const double u1 = uniform_open01(rng), u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// Fisher-Yates shuffle of [first, last) with uniform_index.
template <class It>
void shuffle(It first, It last, rng_t& rng) {
  const auto n = static_cast<std::uint64_t>(last - first);
  for (std::uint64_t i = n; i > 1; --i) {
    const auto j = uniform_index(rng, i);
    using std::swap;
    swap(first[i - 1], first[j]);
  }
}

}  // namespace ans::data
