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
/// Throws ans::error unless `m` is rows x cols; the message names the component and argument (`name`, e.g.
/// "sns: dN") and both shapes.
template <class Scalar, class M>
inline void check_shape(const M& m, index_t rows, index_t cols, const char* name) {
  ANS_CHECK(m.rows() == rows && m.cols() == cols,
            name << " has shape " << m.rows() << "x" << m.cols() << ", expected " << rows << "x" << cols);
}
/// Throws ans::error unless `v` has n entries (a per-row vector or a parameter of length d).
template <class V>
inline void check_size(const V& v, index_t n, const char* name) {
  ANS_CHECK(static_cast<index_t>(v.size()) == n, name << " has " << v.size() << " entries, expected " << n);
}
/// Throws ans::error unless a forward has set the component's shape (a backward must follow a forward).
inline void check_forward_done(const batch_shape& s, const char* component) {
  ANS_CHECK(s.B > 0, component << "::backward called before forward (no batch shape recorded)");
}
}  // namespace detail

/// A read-only view of `rows` x `cols` contiguous row-major values (row stride = cols) that never owns them:
/// what an API takes when it keeps the address until a later call (ans_loss::forward reads U, P, N again in
/// backward). It binds to an lvalue `matrix<Scalar>`, to an `Eigen::Map`, and to a row block or `Eigen::Ref`
/// over contiguous rows (checked by check(), at run time). A temporary matrix does not compile (its storage
/// would be freed before the later call reads it), nor does an Eigen expression that would be evaluated into
/// one (a product, a transpose, a column-major matrix).
template <class Scalar>
class const_rows {
 public:
  const_rows(const Scalar* data, index_t rows, index_t cols) : data_(data), rows_(rows), cols_(cols) {}
  const_rows(const matrix<Scalar>& m) : const_rows(m.data(), m.rows(), m.cols()) {}  // NOLINT: implicit by design
  const_rows(const matrix<Scalar>&&) = delete;  ///< a temporary: its storage dies before backward reads it
  /// A Map, a row block, a Ref: any Eigen object with direct access (no copy is made).
  template <class Derived>
  const_rows(const Eigen::MapBase<Derived, Eigen::ReadOnlyAccessors>& m)  // NOLINT: implicit by design
      : data_(m.data()), rows_(m.rows()), cols_(m.cols()),
        contiguous_(m.innerStride() == 1 && (m.rows() <= 1 || m.cols() <= 1 ||
                                             (Derived::IsRowMajor && m.outerStride() == m.cols()))) {}
  /// A temporary Ref<const ...> may own the copy Eigen made for it.
  template <class T, int Options, class Stride>
  const_rows(const Eigen::Ref<const T, Options, Stride>&&) = delete;

  const Scalar* data() const { return data_; }
  index_t rows() const { return rows_; }
  index_t cols() const { return cols_; }

  /// Throws ans::error unless the view is rows x cols with contiguous rows; names `name` and both shapes.
  void check(index_t rows, index_t cols, const char* name) const {
    detail::check_shape<Scalar>(*this, rows, cols, name);
    ANS_CHECK(contiguous_, name << " (" << rows_ << "x" << cols_
                                << ") is not a block of contiguous row-major rows (a column-major matrix or a "
                                   "column block): copy it into a matrix<Scalar> first");
    ANS_CHECK(data_ != nullptr || rows_ * cols_ == 0, name << " is null");
  }

 private:
  const Scalar* data_ = nullptr;
  index_t rows_ = 0, cols_ = 0;
  bool contiguous_ = true;
};

}  // namespace ans
