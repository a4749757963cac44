/// @file types.hpp
/// @brief Dense matrix aliases used across the library.
///
/// Embedding tables and batch tensors are row-major, so one row (one node, or one sample) is contiguous.
/// Batch tensors use the C-order layout of the reference: U[B,H,d] is a (B*H) x d row-major block,
/// N[B,K,H,d] is (B*K*H) x d, and the propagation stack S[N,H,d] is N x (H*d).
#pragma once

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

}  // namespace ans
