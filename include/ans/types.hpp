/// @file types.hpp
/// @brief Dense matrix aliases used across the library.
///
/// Embedding tables and batch tensors are row-major, so one row (one node, or one sample) is contiguous.
/// Batch tensors use the C-order layout of the reference: U[B,H,d] is a (B*H) x d row-major block,
/// N[B,K,H,d] is (B*K*H) x d, and the propagation stack S[N,H,d] is N x (H*d).
#pragma once

#include <algorithm>

#include <Eigen/Core>

#include "ans/config.hpp"

namespace ans {

template <class Scalar>
using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Scalar>
using vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
template <class Scalar>
using matrix_map = Eigen::Map<matrix<Scalar>>;
template <class Scalar>
using const_matrix_map = Eigen::Map<const matrix<Scalar>>;

/// Sets p[0..n) to zero, in parallel chunks when n is large (a serial memset of an N x d table is a visible
/// share of a training step). Element-wise: the result does not depend on the thread count.
template <class Scalar>
inline void parallel_zero(Scalar* p, index_t n) {
  constexpr index_t chunk = 1 << 14;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (n > 4 * chunk)
#endif
  for (index_t c = 0; c < n; c += chunk) std::fill(p + c, p + std::min(n, c + chunk), Scalar(0));
}

}  // namespace ans
