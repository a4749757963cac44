/// @file rng.hpp
/// @brief Fast deterministic random numbers: splitmix64, xoshiro256**, Lemire bounded integers, and
/// counter-based stream derivation.
///
/// Determinism model: every random decision in the library draws from an ans::sampling::rng created by
/// `stream(seed, key...)`, where `key...` names the decision's place in the computation (for example
/// epoch, batch and row). Results therefore depend on the master seed only, never on the number of
/// threads or on scheduling.
#pragma once

#include <cstdint>
#include <limits>

#include "ans/config.hpp"

namespace ans::sampling {

/// One step of splitmix64 (Steele, Lea, Flood 2014): advances `state` and returns the next output.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Stateless 64-bit mixer (the splitmix64 finaliser applied to x + golden ratio): a bijection with good
/// avalanche, used to hash keys into seeds.
inline std::uint64_t mix64(std::uint64_t x) {
  std::uint64_t s = x;
  return splitmix64(s);
}

/// Combines a running key with one more component (order-sensitive).
inline std::uint64_t combine_key(std::uint64_t key, std::uint64_t component) {
  return mix64(key ^ mix64(component + 0x632BE59BD9B4E019ULL));
}

/// xoshiro256** 1.0 (Blackman, Vigna 2018). 256-bit state, period 2^256 - 1; satisfies the
/// UniformRandomBitGenerator requirements, so it also works with <random> distributions.
class xoshiro256ss {
 public:
  using result_type = std::uint64_t;

  /// Seeds the four state words from splitmix64(seed), as the authors recommend (never all zero).
  explicit xoshiro256ss(std::uint64_t seed = 0) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  /// Next raw 64-bit output.
  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform integer in [0, n), exactly unbiased (Lemire 2019, "Fast random integer generation in an
  /// interval"). Requires n > 0; n == 0 returns 0.
  std::uint64_t uniform_int(std::uint64_t n) {
    if (n == 0) return 0;
    std::uint64_t x = (*this)();
    __uint128_t m = static_cast<__uint128_t>(x) * n;
    auto l = static_cast<std::uint64_t>(m);
    if (l < n) {
      const std::uint64_t t = (0 - n) % n;
      while (l < t) {
        x = (*this)();
        m = static_cast<__uint128_t>(x) * n;
        l = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  /// Uniform value in [0, 1): the top 24 (float) or 53 (double) bits scaled by 2^-24 / 2^-53, so 1 is
  /// never returned.
  template <class Scalar>
  Scalar uniform01() {
    if constexpr (sizeof(Scalar) <= 4) {
      return static_cast<Scalar>((*this)() >> 40) * static_cast<Scalar>(0x1.0p-24);
    } else {
      return static_cast<Scalar>(static_cast<double>((*this)() >> 11) * 0x1.0p-53);
    }
  }

  /// Uniform value in [lo, hi).
  template <class Scalar>
  Scalar uniform(Scalar lo, Scalar hi) {
    return lo + (hi - lo) * uniform01<Scalar>();
  }

  bool operator==(const xoshiro256ss& o) const {
    return s_[0] == o.s_[0] && s_[1] == o.s_[1] && s_[2] == o.s_[2] && s_[3] == o.s_[3];
  }
  bool operator!=(const xoshiro256ss& o) const { return !(*this == o); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

/// The library's default generator.
using rng = xoshiro256ss;

/// Hashes a master seed and any number of integer key components into one 64-bit seed.
inline std::uint64_t stream_key(std::uint64_t seed) { return mix64(seed); }
template <class... Ids>
std::uint64_t stream_key(std::uint64_t seed, std::uint64_t id, Ids... rest) {
  return stream_key(combine_key(seed, id), static_cast<std::uint64_t>(rest)...);
}

/// An independent generator for (seed, id...): e.g. `stream(seed, thread)` or, counter-based and
/// thread-count independent, `stream(seed, epoch, batch, row)`. Different keys give statistically
/// independent streams; the same key always gives the same stream. Cheap (five 64-bit mixes).
template <class... Ids>
rng stream(std::uint64_t seed, Ids... ids) {
  return rng(stream_key(seed, static_cast<std::uint64_t>(ids)...));
}

}  // namespace ans::sampling
