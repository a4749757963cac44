// Shared helpers for the component tests.
#pragma once

#include <random>
#include <vector>

#include "ans/ans.hpp"

namespace ans_test {

using ans::index_t;
using mat = ans::matrix<double>;
using vec = ans::vector<double>;

inline mat randn(index_t r, index_t c, std::mt19937_64& rng, double sd = 0.5) {
  std::normal_distribution<double> nd(0.0, sd);
  mat m(r, c);
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}
inline vec randv(index_t n, std::mt19937_64& rng, double sd = 0.5) {
  std::normal_distribution<double> nd(0.0, sd);
  vec v(n);
  for (index_t i = 0; i < n; ++i) v[i] = nd(rng);
  return v;
}
inline mat randu(index_t r, index_t c, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> ud(lo, hi);
  mat m(r, c);
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = ud(rng);
  return m;
}

inline ans::testing::param_block blk(const char* name, mat& x, const mat& g) {
  return {name, x.data(), x.size(), g.data()};
}
inline ans::testing::param_block blk(const char* name, vec& x, const vec& g) {
  return {name, x.data(), x.size(), g.data()};
}

/// Moves each P[b,h]_j away from every N[b,k,h]_j by at least `gap` (keeps sign(P − N) fixed under FD).
inline void separate(const ans::batch_shape& s, const mat& P, mat& N, double gap = 1e-2) {
  for (index_t b = 0; b < s.B; ++b)
    for (index_t k = 0; k < s.K; ++k)
      for (index_t h = 0; h < s.H; ++h)
        for (index_t j = 0; j < s.d; ++j) {
          double& n = N(s.nrow(b, k, h), j);
          const double p = P(s.urow(b, h), j);
          if (std::abs(p - n) < gap) n = p + (n >= p ? gap : -gap);
        }
}

}  // namespace ans_test
