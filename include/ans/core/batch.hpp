/// @file batch.hpp
/// @brief Shape of one ANS batch and the C-order row indexing of the stacked tensors.
///
/// U[B,H,d] and P[B,H,d] are (B*H) x d row-major, row `b*H + h`; N[B,K,H,d] (and every per-candidate tensor:
/// gate, noise, ...) is (B*K*H) x d, row `(b*K + k)*H + h`; per-candidate scalars (margin) are length B*K*H;
/// k*[B,H] is length B*H.
#pragma once

#include <Eigen/Core>

#include "ans/config.hpp"
#include "ans/types.hpp"

namespace ans {

/// Sizes of one batch: B pairs, K candidates, H = L+1 hops, dimension d.
struct batch_shape {
  index_t B = 0, K = 0, H = 0, d = 0;

  index_t pair_rows() const { return B * H; }     ///< rows of U and P
  index_t cand_rows() const { return B * K * H; } ///< rows of N
  index_t urow(index_t b, index_t h) const { return b * H + h; }
  index_t nrow(index_t b, index_t k, index_t h) const { return (b * K + k) * H + h; }

  /// Throws ans::error unless every size is positive.
  void check() const {
    ANS_CHECK(B > 0 && K > 0 && H > 0 && d > 0,
              "batch shape must be positive, got B=" << B << " K=" << K << " H=" << H << " d=" << d);
  }
  bool operator==(const batch_shape& o) const { return B == o.B && K == o.K && H == o.H && d == o.d; }
  bool operator!=(const batch_shape& o) const { return !(*this == o); }
};

/// Read-only view of a row-major matrix (a `matrix<Scalar>`, a `matrix_map`, a row block...).
template <class Scalar>
using cref = Eigen::Ref<const matrix<Scalar>>;
/// Writable view of a row-major matrix.
template <class Scalar>
using mref = Eigen::Ref<matrix<Scalar>>;
/// Read-only view of a vector.
template <class Scalar>
using cvref = Eigen::Ref<const vector<Scalar>>;
/// Writable view of a vector.
template <class Scalar>
using vref = Eigen::Ref<vector<Scalar>>;

namespace detail {
template <class Scalar, class M>
inline void check_shape(const M& m, index_t rows, index_t cols, const char* name) {
  ANS_CHECK(m.rows() == rows && m.cols() == cols,
            name << " has shape " << m.rows() << "x" << m.cols() << ", expected " << rows << "x" << cols);
}
}  // namespace detail

}  // namespace ans
