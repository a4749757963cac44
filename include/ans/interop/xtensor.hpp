/// @file xtensor.hpp
/// @brief N-d views between xtensor arrays and the library's batch tensors (optional: needs xtensor 0.24).
///
/// The reference holds the batch as U, P [B,H,d] and N [B,K,H,d] in C order; the kernels take the same memory
/// as (B*H) x d and (B*K*H) x d row blocks (ans/core/batch.hpp). These helpers convert without copying:
///   batch_shape_of(U, N)  {B, K, H, d} from the two shapes, checked against each other;
///   rows_of(t)            a const_rows view (leading dims flattened) x (last dim) of a row-major container;
///   as_tensor<R>(m, shape) an xt::adapt view of a matrix (e.g. dN as [B,K,H,d]), no ownership.
/// Only this header includes xtensor: the kernels work on rows (pointer + shape, checked), which Eigen maps
/// and our own views give without xtensor's expression machinery in every translation unit (docs/components.md).
#pragma once

#include <array>
#include <cstddef>

#include <xtensor/xadapt.hpp>
#include <xtensor/xcontainer.hpp>
#include <xtensor/xlayout.hpp>

#include "ans/core/batch.hpp"

namespace ans::interop {

/// The batch shape of U [B,H,d] and N [B,K,H,d]; throws ans::error naming both shapes when they disagree.
template <class EU, class EN>
batch_shape batch_shape_of(const xt::xcontainer<EU>& U, const xt::xcontainer<EN>& N) {
  const auto& su = U.shape();
  const auto& sn = N.shape();
  ANS_CHECK(su.size() == 3 && sn.size() == 4,
            "batch_shape_of: U must be [B,H,d] and N [B,K,H,d], got " << su.size() << "-d and " << sn.size() << "-d");
  const batch_shape s{static_cast<index_t>(su[0]), static_cast<index_t>(sn[1]), static_cast<index_t>(su[1]),
                      static_cast<index_t>(su[2])};
  ANS_CHECK(static_cast<index_t>(sn[0]) == s.B && static_cast<index_t>(sn[2]) == s.H &&
                static_cast<index_t>(sn[3]) == s.d,
            "batch_shape_of: U is [" << su[0] << "," << su[1] << "," << su[2] << "], N is [" << sn[0] << "," << sn[1]
                                     << "," << sn[2] << "," << sn[3] << "]: B, H and d must agree");
  s.check();
  return s;
}

/// The rows of a row-major container as (product of the leading dims) x (last dim), no copy. A temporary
/// container does not compile (the view would outlive it).
template <class E>
const_rows<typename E::value_type> rows_of(const xt::xcontainer<E>& t) {
  const auto& sh = t.shape();
  ANS_CHECK(sh.size() >= 1, "rows_of: a 0-d tensor has no rows");
  ANS_CHECK(static_cast<const E&>(t).layout() == xt::layout_type::row_major || sh.size() == 1,
            "rows_of: the tensor must be row-major (C order)");
  index_t rows = 1;
  for (std::size_t i = 0; i + 1 < sh.size(); ++i) rows *= static_cast<index_t>(sh[i]);
  return const_rows<typename E::value_type>(t.data(), rows, static_cast<index_t>(sh.back()));
}
template <class E>
const_rows<typename E::value_type> rows_of(xt::xcontainer<E>&& t) = delete;

/// An R-d xtensor view of a matrix's values (C order), no ownership: `as_tensor<4>(dN, {B, K, H, d})`.
template <std::size_t R, class Scalar>
auto as_tensor(matrix<Scalar>& m, const std::array<std::size_t, R>& shape) {
  std::size_t n = 1;
  for (std::size_t v : shape) n *= v;
  ANS_CHECK(static_cast<index_t>(n) == m.size(), "as_tensor: " << m.rows() << "x" << m.cols() << " has " << m.size()
                                                               << " values, the shape asks for " << n);
  return xt::adapt(m.data(), n, xt::no_ownership(), shape);
}
template <std::size_t R, class Scalar>
auto as_tensor(matrix<Scalar>&& m, const std::array<std::size_t, R>& shape) = delete;

}  // namespace ans::interop
