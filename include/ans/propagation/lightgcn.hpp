/// @file lightgcn.hpp
/// @brief LightGCN propagation: the per-hop stack `S[:, l] = Â^l E0` (l = 0..L), its backward, and the
/// sparse backward. L = 0 is plain matrix factorisation. The layer combination (readout) is readout.hpp.
///
/// Layout: `E0` is N x d row-major; the stack `S` is N x (H*d) row-major with H = L + 1, so that
/// `S[r, l*d : (l+1)*d]` is hop l of node r (the reference's `[N, H, d]` in C order).
///
/// Forward:  `S_l = Â S_{l-1}` (l = 1..L).
/// Backward: `Â` is symmetric, so `∂L/∂E0 = Σ_l Â^l G_l` where `G_l = ∂L/∂S_l`; computed by reverse Horner,
/// `acc = G_L; for l = L-1..0: acc = Â acc + G_l`: L sparse products, the same cost as the forward.
#pragma once

#include <algorithm>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/types.hpp"

namespace ans::propagation {

namespace detail {
// One output row, W columns at a time with the accumulator in registers (W a compile-time width), the
// gathered rows prefetched a few nonzeros ahead. y = (accumulate ? y : 0) + (add ? add : 0) + Σ a·x.
template <class Scalar, int W>
inline void spmm_row_fixed(const index_t* ptr, const id_type* col, const Scalar* val, index_t r,
                           const Scalar* x, index_t ldx, Scalar* yr, const Scalar* addr, bool accumulate,
                           index_t c0) {
  Scalar acc[W];
  for (int c = 0; c < W; ++c) acc[c] = accumulate ? yr[c0 + c] : Scalar(0);
  if (addr)
    for (int c = 0; c < W; ++c) acc[c] += addr[c0 + c];
  const index_t j0 = ptr[r], j1 = ptr[r + 1];
  for (index_t j = j0; j < j1; ++j) {
    if (j + 4 < j1) __builtin_prefetch(x + static_cast<index_t>(col[j + 4]) * ldx + c0);
    const Scalar a = val[j];
    const Scalar* xr = x + static_cast<index_t>(col[j]) * ldx + c0;
#if ANS_HAS_OPENMP
#pragma omp simd
#endif
    for (int c = 0; c < W; ++c) acc[c] += a * xr[c];
  }
  for (int c = 0; c < W; ++c) yr[c0 + c] = acc[c];
}
}  // namespace detail

/// `Y[r, :] = Σ_j Â[r, j] X[j, :]` for the rows r in [r0, r1) and d-wide row slices: X rows at `x + j*ldx`,
/// Y rows at `y + r*ldy` (other rows of Y are not touched). When `accumulate` is true, Y += Â X (used by the
/// backward pass); when `add` is non-null, its rows (at `add + r*ldadd`) are added too (Y = [Y +] ADD + Â X,
/// one pass instead of two). Rows are processed in parallel (OpenMP); each row's sum runs in CSR order on one
/// thread, so a row's bits depend neither on the thread count nor on the row range it is computed in (the
/// row-block propagation relies on it). Widths that are multiples of 16 run a register-blocked kernel
/// (16/32/64 columns at a time).
template <class Scalar>
void spmm_rows(const graph::normalized_adjacency<Scalar>& adj, index_t r0, index_t r1, const Scalar* x, index_t ldx,
               Scalar* y, index_t ldy, index_t d, bool accumulate = false, const Scalar* add = nullptr,
               index_t ldadd = 0) {
  ANS_CHECK(0 <= r0 && r0 <= r1 && r1 <= adj.n_nodes(),
            "spmm_rows: rows [" << r0 << ", " << r1 << ") outside the graph's " << adj.n_nodes() << " nodes");
  const index_t* ptr = adj.indptr.data();
  const id_type* col = adj.indices.data();
  const Scalar* val = adj.values.data();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 512)
#endif
  for (index_t r = r0; r < r1; ++r) {
    Scalar* yr = y + r * ldy;
    const Scalar* addr = add ? add + r * ldadd : nullptr;
    if (d % 16 == 0) {
      index_t c0 = 0;
      for (; c0 + 64 <= d; c0 += 64) detail::spmm_row_fixed<Scalar, 64>(ptr, col, val, r, x, ldx, yr, addr, accumulate, c0);
      for (; c0 + 16 <= d; c0 += 16) detail::spmm_row_fixed<Scalar, 16>(ptr, col, val, r, x, ldx, yr, addr, accumulate, c0);
      continue;
    }
    if (!accumulate) std::fill(yr, yr + d, Scalar(0));
    if (addr)
      for (index_t c = 0; c < d; ++c) yr[c] += addr[c];
    for (index_t j = ptr[r]; j < ptr[r + 1]; ++j) {
      const Scalar a = val[j];
      const Scalar* xr = x + static_cast<index_t>(col[j]) * ldx;
#if ANS_HAS_OPENMP
#pragma omp simd
#endif
      for (index_t c = 0; c < d; ++c) yr[c] += a * xr[c];
    }
  }
}

/// `spmm_rows` over every row: `Y = [Y +] [ADD +] Â X`.
template <class Scalar>
void spmm(const graph::normalized_adjacency<Scalar>& adj, const Scalar* x, index_t ldx, Scalar* y, index_t ldy,
          index_t d, bool accumulate = false, const Scalar* add = nullptr, index_t ldadd = 0) {
  spmm_rows(adj, 0, adj.n_nodes(), x, ldx, y, ldy, d, accumulate, add, ldadd);
}

/// Which rows of each propagation product this process computes (data-parallel training,
/// ans/dist/data_parallel.hpp). Level l is the forward's S_l = Â S_{l-1} (l = 1..L) and the backward's
/// acc_l = Â acc_{l+1} + G_l (l = L-1..0, acc_L = G_L, acc_0 = ∂L/∂E0). Each row is computed exactly as the
/// whole product computes it (spmm_rows), so every row a process holds has the bits one process would give.
/// - `rows` (any number of processes): rows [lo, hi) of every level, then `sync(Y, width)` fills the other
///   rows of the N x width block Y from the processes that computed them (an all-gather of row blocks).
/// - `bipartite` (two processes over the user-item graph, users [0, n_users), items [n_users, N)): Â only
///   links users with items, so the propagation splits into two independent alternating chains. Process
///   `side` (0: users, 1: items) computes, at level l, the rows of side (side + l) mod 2: its E0 side → the
///   other side's S_1 → its S_2 → ..., and backward the chain that ends at its own side of ∂L/∂E0. Nothing is
///   exchanged inside the propagation, and each process runs exactly one product over each side per layer
///   (forward and backward together): half the work, whatever a user row costs against an item row. The
///   caller fetches the rows of the other chain it needs (ans_objective::forward_backward_shard).
/// Unset (`none`): every row, no exchange.
template <class Scalar>
struct row_block {
  enum class kind { none, rows, bipartite };
  kind k = kind::none;
  index_t lo = 0, hi = 0;                               ///< rows
  std::function<void(Scalar* y, index_t width)> sync;  ///< rows
  int side = 0;                                         ///< bipartite: 0 = users, 1 = items
  index_t n_users = 0, n_nodes = 0;                     ///< bipartite

  static row_block blocks(index_t lo, index_t hi, std::function<void(Scalar*, index_t)> sync) {
    row_block b;
    b.k = kind::rows, b.lo = lo, b.hi = hi, b.sync = std::move(sync);
    return b;
  }
  static row_block bipartite_chain(int side, index_t n_users, index_t n_nodes) {
    row_block b;
    b.k = kind::bipartite, b.side = side, b.n_users = n_users, b.n_nodes = n_nodes;
    return b;
  }
  bool active() const { return k != kind::none; }
  /// Bipartite: the side (0 users, 1 items) whose rows this process holds at level l.
  int side_at(index_t l) const { return static_cast<int>((side + l) % 2); }
  /// The rows [first, second) this process computes at level l.
  std::pair<index_t, index_t> level(index_t l) const {
    if (k == kind::rows) return {lo, hi};
    return side_at(l) == 0 ? std::pair<index_t, index_t>{0, n_users} : std::pair<index_t, index_t>{n_users, n_nodes};
  }
  /// The rows the hop-h gradient G_h must be added to (top = L): level h, except acc_L = G_L under `rows`,
  /// which every row of the first backward product reads.
  std::pair<index_t, index_t> scatter_rows(index_t h, index_t top) const {
    if (k == kind::none || (k == kind::rows && h == top)) return {0, std::numeric_limits<index_t>::max()};
    return level(h);
  }
};

/// Forward and backward of the LightGCN stack. Holds the scratch buffer the backward pass needs, so
/// repeated calls allocate nothing once the sizes are fixed.
template <class Scalar>
class lightgcn {
 public:
  explicit lightgcn(int n_layers = 0) : n_layers_(n_layers) {
    ANS_CHECK(n_layers >= 0, "n_layers must be >= 0, got " << n_layers);
  }
  int n_layers() const { return n_layers_; }
  int n_hops() const { return n_layers_ + 1; }

  /// `S[:, l] = Â^l E0`. `stack` is resized to N x (H*d) when needed. Each SpMM gathers its input rows from a
  /// compact N x d copy of the previous layer (E0 itself for l = 1; one N x d buffer held by this object for
  /// L >= 2), not from the 1 KiB-strided rows of the stack (Gowalla, 2 threads: 34.3 → 29.6 ms at L = 3,
  /// 15.3 → 8.0 ms at L = 1; docs/performance.md). That buffer makes concurrent calls on one object unsafe.
  void forward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
               matrix<Scalar>& stack) const {
    const index_t n = adj.n_nodes(), d = e0.cols(), h = n_hops();
    ANS_CHECK(e0.rows() == n, "E0 has " << e0.rows() << " rows, the graph has " << n << " nodes");
    ANS_CHECK(h == 1 || adj.has_edges(), "propagation with L = " << (h - 1) << " over a graph without edges "
                                                                 "(graph::node_counts_only is for L = 0)");
    if (stack.rows() != n || stack.cols() != h * d) stack.resize(n, h * d);
    stack.leftCols(d) = e0;
    if (h > 2 && (prev_.rows() != n || prev_.cols() != d)) prev_.resize(n, d);
    const Scalar* prev = e0.data();
    for (int l = 1; l < h; ++l) {
      spmm(adj, prev, d, stack.data() + l * d, h * d, d);
      if (l + 1 < h) {  // the next layer gathers from a compact copy of this one
        prev_ = stack.middleCols(l * d, d);
        prev = prev_.data();
      }
    }
  }

  /// The propagated layers hop-major, without copying E0: `layers + (l-1)·N·d` receives `S_l = Â^l E0` as a
  /// compact N x d block (l = 1..L; the caller provides L·N·d scalars). Each SpMM then gathers its input rows
  /// from a compact N x d block (18 MB for Gowalla at d = 64: L3-resident) instead of the 1 KiB-strided rows of
  /// the node-major stack (72 MB at H = 4): the layout ans_objective trains with.
  void forward_layers(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0, Scalar* layers) const {
    const index_t n = adj.n_nodes(), d = e0.cols();
    ANS_CHECK(e0.rows() == n, "E0 has " << e0.rows() << " rows, the graph has " << n << " nodes");
    ANS_CHECK(n_layers_ == 0 || adj.has_edges(), "propagation with L = " << n_layers_ << " over a graph without edges "
                                                                          "(graph::node_counts_only is for L = 0)");
    ANS_CHECK(n_layers_ == 0 || layers, "lightgcn::forward_layers: null output");
    const Scalar* prev = e0.data();
    for (int l = 1; l <= n_layers_; ++l) {
      Scalar* cur = layers + static_cast<index_t>(l - 1) * n * d;
      product(adj, l, prev, cur, d);  // S_l = Â S_{l-1} (with a row block: this process's rows, then the sync)
      sync(cur, d);
      prev = cur;
    }
  }

  /// `grad_e0 += Σ_l Â^l G[:, l]` (reverse Horner). `grad_stack` is N x (H*d); `grad_e0` is N x d and is
  /// accumulated into, so the regulariser's rows can be added before or after.
  void backward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& grad_stack,
                matrix<Scalar>& grad_e0) {
    const index_t n = adj.n_nodes(), h = n_hops();
    ANS_CHECK(grad_stack.rows() == n && grad_stack.cols() % h == 0,
              "grad_stack is " << grad_stack.rows() << " x " << grad_stack.cols() << ", expected " << n
                               << " x (" << h << "*d)");
    const index_t d = grad_stack.cols() / h;
    ANS_CHECK(grad_e0.rows() == n && grad_e0.cols() == d, "grad_e0 must be " << n << " x " << d);
    ANS_CHECK(h == 1 || adj.has_edges(), "propagation with L = " << (h - 1) << " over a graph without edges "
                                                                 "(graph::node_counts_only is for L = 0)");
    if (h == 1) {
      grad_e0 += grad_stack;
      return;
    }
    if (acc_.rows() != n || acc_.cols() != d) acc_.resize(n, d);
    if (tmp_.rows() != n || tmp_.cols() != d) tmp_.resize(n, d);
    // acc = G_L (read in place from the stack); acc = G_l + Â acc for l = L-1..1 (one fused pass each);
    // last step grad_e0 += G_0 + Â acc. Same sums in the same order as "copy G_l, then Y += Â acc".
    const Scalar* G = grad_stack.data();
    const Scalar* src = G + (h - 1) * d;
    index_t ld = h * d;
    for (index_t l = h - 2; l >= 1; --l) {
      spmm(adj, src, ld, tmp_.data(), d, d, /*accumulate=*/false, G + l * d, h * d);
      acc_.swap(tmp_);
      src = acc_.data();
      ld = d;
    }
    spmm(adj, src, ld, grad_e0.data(), d, d, /*accumulate=*/true, G, h * d);
  }

  /// The same `grad_e0 += Σ_l Â^l G_l` when the per-hop gradients are sparse (a batch's rows) and never held
  /// as an N x (H*d) matrix: `add_hop(l, Y, ldy)` must add G_l into the N x d rows at Y (row stride ldy).
  /// Reverse Horner: `acc = G_L; acc = Â acc + G_l (l = L-1..1); grad_e0 += Â acc + G_0`.
  /// `workspace`, when non-null, is 2·N·d scalars the call may overwrite (e.g. a stack that is no longer
  /// needed); otherwise two N x d buffers held by this object are used.
  /// With a row block (set_row_block), add_hop must add the *whole* batch's G_l (every process the same) into
  /// at least the rows row_block::scatter_rows(l, L) gives; each product computes this process's rows of its
  /// level (synced under `rows`), so only the level-0 rows of grad_e0 receive ∂L/∂E0 (+=).
  template <class AddHop>
  void backward_sparse(const graph::normalized_adjacency<Scalar>& adj, index_t d, AddHop&& add_hop,
                       matrix<Scalar>& grad_e0, Scalar* workspace = nullptr) {
    const index_t n = adj.n_nodes(), h = n_hops();
    ANS_CHECK(grad_e0.rows() == n && grad_e0.cols() == d, "grad_e0 must be " << n << " x " << d);
    ANS_CHECK(h == 1 || adj.has_edges(), "propagation with L = " << (h - 1) << " over a graph without edges "
                                                                 "(graph::node_counts_only is for L = 0)");
    if (h == 1) {
      add_hop(index_t(0), grad_e0.data(), d);
      return;
    }
    Scalar *acc = workspace, *tmp = workspace ? workspace + n * d : nullptr;
    if (!workspace) {
      if (acc_.rows() != n || acc_.cols() != d) acc_.resize(n, d);
      if (tmp_.rows() != n || tmp_.cols() != d) tmp_.resize(n, d);
      acc = acc_.data(), tmp = tmp_.data();
    }
    {  // acc = 0 on the rows the first product reads (bipartite: the level-L side; otherwise all)
      const auto [z0, z1] = block_.k == row_block<Scalar>::kind::bipartite ? block_.level(h - 1)
                                                                            : std::pair<index_t, index_t>{0, n};
      parallel_zero(acc + z0 * d, (z1 - z0) * d);
    }
    add_hop(h - 1, acc, d);  // acc = G_L
    for (index_t l = h - 2; l >= 1; --l) {
      product(adj, l, acc, tmp, d);  // tmp = Â acc
      add_hop(l, tmp, d);            //     + G_l
      sync(tmp, d);                  // (rows: the other processes' rows of tmp)
      std::swap(acc, tmp);
    }
    product(adj, 0, acc, grad_e0.data(), d, /*accumulate=*/true);  // grad_e0 += Â acc
    add_hop(index_t(0), grad_e0.data(), d);                        //          + G_0
  }

  /// Row-block propagation (see row_block): forward_layers and backward_sparse then compute this process's
  /// rows of every level (and sync the others under `rows`). `forward` and `backward` (the N x (H·d) stacks)
  /// ignore it.
  void set_row_block(row_block<Scalar> rb) { block_ = std::move(rb); }
  const row_block<Scalar>& get_row_block() const { return block_; }

 private:
  // Y = [Y +] Â X on this process's rows (all rows without a row block)
  void product(const graph::normalized_adjacency<Scalar>& adj, index_t level, const Scalar* x, Scalar* y, index_t d,
               bool accumulate = false) const {
    if (!block_.active()) return spmm(adj, x, d, y, d, d, accumulate);
    const auto [r0, r1] = block_.level(level);
    spmm_rows(adj, r0, r1, x, d, y, d, d, accumulate);
  }
  void sync(Scalar* y, index_t d) const {
    if (block_.k == row_block<Scalar>::kind::rows) block_.sync(y, d);
  }

  int n_layers_;
  row_block<Scalar> block_;
  matrix<Scalar> acc_, tmp_;
  mutable matrix<Scalar> prev_;  ///< forward: the previous layer, compact (L >= 2)
};

// The layer combinations (mean, sum, last, concat) with their gradients: ans/propagation/readout.hpp.

}  // namespace ans::propagation
