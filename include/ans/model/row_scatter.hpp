/// @file row_scatter.hpp
/// @brief The deterministic scatter-add of a batch's gradient rows into a node table, and the list of the
/// rows a batch touched: the glue shared by the BPR and ANS objectives.
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "ans/config.hpp"
#include "ans/types.hpp"

namespace ans::model {

/// Rows of a node table held outside it (a data-parallel MF rank's rows fetched from their owners): node r
/// with `slot[r] >= 0` is row slot[r] of `rows` (read) and of `grad_rows` (its gradient added), compact rows
/// of the table's width, instead of row r of the table and of its gradient. `slot` has one entry per node
/// (-1: the table's own row). Passed per call, never kept; a null `slot` is no overlay.
/// `list_touched = false`: the caller has the batch's rows already (it fetched them to build the overlay), so
/// the objective does not list them again; its touched_rows() is then unavailable until the next call.
template <class Scalar>
struct row_overlay {
  const index_t* slot = nullptr;
  const Scalar* rows = nullptr;
  Scalar* grad_rows = nullptr;
  bool list_touched = true;
  bool active() const { return slot != nullptr; }
};

/// The `add` that owned_scatter hands its visitor: `add(r, g, s)` does `T[r] += s·g` (w columns) if this
/// thread owns row r, and nothing otherwise; `add.owns(r)` says whether it would, so a visitor can form a
/// row only where it is added (the bipartite chains' ego rows, ans_objective::to_e0). With a row_overlay,
/// an overlaid row r is row slot[r] of its w-wide grad_rows instead.
template <class Scalar>
struct owned_row_adder {
  Scalar* T;
  index_t ldt, w, nt, me, lo, hi;
  const row_overlay<Scalar>* ov = nullptr;
  bool owns(index_t r) const { return (r >> 4) % nt == me && r >= lo && r < hi; }
  void operator()(index_t r, const Scalar* g, Scalar s) const {
    if (!owns(r)) return;
    Scalar* t = ov && ov->slot[r] >= 0 ? ov->grad_rows + ov->slot[r] * w : T + r * ldt;
    if (s == Scalar(1)) {
      for (index_t c = 0; c < w; ++c) t[c] += g[c];
    } else {
      for (index_t c = 0; c < w; ++c) t[c] += s * g[c];
    }
  }
};

/// `T[r] += s·g` for every entry (r, g, s) that `visit(add)` emits through `add(r, g, s)`, w columns each
/// (T rows `ldt` apart; `add` is an owned_row_adder). Each thread owns the target rows with (r / 16) %
/// threads == its id and applies their updates in the order `visit` emits them, so repeated rows add in a
/// fixed order: the result is bit-identical to the serial loop for every thread count. `parallel` = false
/// runs it serially. Only rows in [lo, hi) are written (a data-parallel rank's row block,
/// propagation::row_block); the default is all. `ov` (may be null): rows it overlays go to its grad_rows.
template <class Scalar, class Visit>
void owned_scatter(Scalar* T, index_t ldt, index_t w, bool parallel, Visit&& visit, index_t lo = 0,
                   index_t hi = std::numeric_limits<index_t>::max(), const row_overlay<Scalar>* ov = nullptr) {
#if ANS_HAS_OPENMP
#pragma omp parallel if (parallel)
#endif
  {
#if ANS_HAS_OPENMP
    const index_t nt = omp_get_num_threads(), me = omp_get_thread_num();
#else
    const index_t nt = 1, me = 0;
#endif
    const owned_row_adder<Scalar> add{T, ldt, w, nt, me, lo, hi, ov && ov->active() ? ov : nullptr};
    visit(add);
  }
  (void)parallel;
}

/// The sorted distinct rows of a batch. `visit(add)` emits rows through `add(r)`; the marks are an n-long
/// byte array kept between calls (no allocation once sized). Few rows: sort the list; many: scan the marks.
class touched_set {
 public:
  template <class Visit>
  const std::vector<index_t>& collect(index_t n, Visit&& visit) {
    rows_.clear();
    if (static_cast<index_t>(mark_.size()) != n) mark_.assign(static_cast<size_t>(n), 0);
    visit([&](index_t r) {
      if (!mark_[r]) mark_[r] = 1, rows_.push_back(r);
    });
    if (static_cast<index_t>(rows_.size()) * 32 < n) {
      for (auto r : rows_) mark_[r] = 0;
      std::sort(rows_.begin(), rows_.end());
    } else {
      index_t i = 0;
      for (index_t r = 0; r < n; ++r)
        if (mark_[r]) rows_[i++] = r, mark_[r] = 0;
    }
    return rows_;
  }
  void clear() { rows_.clear(); }
  const std::vector<index_t>& rows() const { return rows_; }

 private:
  std::vector<index_t> rows_;
  std::vector<char> mark_;
};

}  // namespace ans::model
