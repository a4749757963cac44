/// @file embedding_table.hpp
/// @brief An embedding table with the batch glue every training loop needs: the gather of a batch's rows,
/// the duplicate-safe scatter-add of their gradients (an embedding-bag backward), and the sorted list of the
/// rows a batch touched (what a row-sparse optimiser updates).
///
///   gather:  out[j] = W[ids[j]]                         (j < n; ids checked against [0, rows))
///   scatter: G[ids[j]] += s·dout[j]  for every j          (a repeated id adds once per occurrence)
///   ∂L/∂W[r] = Σ_{j: ids[j] = r} ∂L/∂out[j]               (the backward of the gather)
/// The scatter is parallel by row ownership (model/row_scatter.hpp): repeated rows add in the order of j for
/// every thread count, so the result is deterministic. touched() lists the distinct rows of the scatters
/// since the last clear_touched(), sorted: optim::sparse_adam::step_table(W, touched, G) then updates exactly
/// those rows, reads their gradient once and zeroes it.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "ans/core/batch.hpp"
#include "ans/model/row_scatter.hpp"

namespace ans::model {

template <class Scalar>
class embedding_table {
 public:
  /// A rows x d table of zeros, with a zero gradient table of the same shape.
  embedding_table(index_t rows, index_t d) : W_(matrix<Scalar>::Zero(rows, d)), G_(matrix<Scalar>::Zero(rows, d)) {
    ANS_CHECK(rows > 0 && d > 0, "embedding_table: shape must be positive, got " << rows << "x" << d);
  }

  index_t rows() const { return W_.rows(); }
  index_t dim() const { return W_.cols(); }
  matrix<Scalar>& weights() { return W_; }
  const matrix<Scalar>& weights() const { return W_; }
  matrix<Scalar>& grad() { return G_; }
  const matrix<Scalar>& grad() const { return G_; }

  /// out.row(j) = W.row(ids[j]) for j < n; `out` must be n x d. Any integer id type.
  template <class Id>
  void gather(const Id* ids, index_t n, mref<Scalar> out) const {
    static_assert(std::is_integral_v<Id>, "embedding_table::gather: ids must be integers");
    detail::check_shape<Scalar>(out, n, dim(), "embedding_table::gather: out");
    check_ids(ids, n, "gather");
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (n * dim() > (1 << 15))
#endif
    for (index_t j = 0; j < n; ++j) out.row(j) = W_.row(static_cast<index_t>(ids[j]));
  }

  /// grad.row(ids[j]) += s·dout.row(j) for j < n (`dout` n x d), and the rows join touched().
  template <class Id>
  void scatter_add(const Id* ids, index_t n, const cref<Scalar>& dout, Scalar s = Scalar(1)) {
    static_assert(std::is_integral_v<Id>, "embedding_table::scatter_add: ids must be integers");
    detail::check_shape<Scalar>(dout, n, dim(), "embedding_table::scatter_add: dout");
    check_ids(ids, n, "scatter_add");
    const index_t d = dim();
    owned_scatter(G_.data(), d, d, n * d > (1 << 14), [&](auto&& add) {
      for (index_t j = 0; j < n; ++j) add(static_cast<index_t>(ids[j]), dout.row(j).data(), s);
    });
    for (index_t j = 0; j < n; ++j) pending_.push_back(static_cast<index_t>(ids[j]));
  }

  /// The sorted distinct rows scattered into since the last clear_touched().
  const std::vector<index_t>& touched() {
    touched_.collect(rows(), [&](auto&& add) {
      for (index_t r : pending_) add(r);
    });
    return touched_.rows();
  }
  /// Forgets the touched rows (call after the optimiser step that consumed them).
  void clear_touched() { pending_.clear(), touched_.clear(); }

 private:
  template <class Id>
  void check_ids(const Id* ids, index_t n, const char* what) const {
    ANS_CHECK(n == 0 || ids != nullptr, "embedding_table::" << what << ": null ids");
    for (index_t j = 0; j < n; ++j)
      ANS_CHECK(static_cast<index_t>(ids[j]) >= 0 && static_cast<index_t>(ids[j]) < rows(),
                "embedding_table::" << what << ": id " << static_cast<index_t>(ids[j]) << " at position " << j
                                    << " outside [0, " << rows() << ")");
  }

  matrix<Scalar> W_, G_;
  std::vector<index_t> pending_;
  touched_set touched_;
};

}  // namespace ans::model
