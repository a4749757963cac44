/// @file shard.hpp
/// @brief The data-parallel hook of train::trainer (MPI-free; ans/dist/data_parallel.hpp fills it with MPI).
///
/// With a shard plan (rank r of P), every step of the trainer's composed path trains rows [lo, hi) of the global
/// batch of B pairs, lo = ⌊B·r/P⌋, hi = ⌊B·(r+1)/P⌋: the same seeded permutation on every rank, and the
/// candidates and the ANS noise of each row drawn as that row of the whole batch (pair_batch::first,
/// counter_uniform_source::first). The objective's gradients are means over the shard; the trainer scales
/// them by w = (hi − lo)/B, so that the sum over ranks is the global batch's gradient, and calls `exchange`,
/// which must leave on every rank the global gradient on the union of the touched rows and the global dense
/// gradients, and return the global loss. Then every rank takes the same optimiser step.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/types.hpp"

namespace ans::train {

/// What a step hands the exchange.
template <class Scalar>
struct shard_exchange {
  matrix<Scalar>* grad_e0 = nullptr;       ///< in: this shard's (scaled) gradient rows; out: the global ones
  std::vector<index_t>* touched = nullptr; ///< in: this shard's rows (sorted); out: the union over ranks (sorted)
  Scalar* const* params = nullptr;         ///< the dense gradient blocks (ANS gate and margin), scaled; out: global
  const index_t* param_sizes = nullptr;
  int n_params = 0;
  double loss = 0;                         ///< this shard's loss (mean over its rows) times w
};

/// A process's part in data-parallel training.
template <class Scalar>
struct shard_plan {
  int rank = 0, size = 1;
  /// Returns the global loss; see the file comment.
  std::function<double(shard_exchange<Scalar>&)> exchange;
  /// LightGCN (n_layers >= 1): an in-place all-gather of row blocks. In the rows x width array `buf`, rank r
  /// wrote rows [offsets[r], offsets[r+1]); on return every rank holds every rank's rows.
  std::function<void(Scalar* buf, index_t width, const std::vector<index_t>& offsets)> sync_rows;
  /// MF on owned rows (mf_schedule::owned): recv_count[r] = what rank r passes for this rank in send_count.
  std::function<void(const std::vector<index_t>& send_count, std::vector<index_t>& recv_count)> alltoall_counts;
  /// MF on owned rows: rank by rank, send_count[r] ids (rows: scalars) of `send` go to rank r and recv_count[r]
  /// from rank r land in `recv`, rank by rank.
  std::function<void(const std::int64_t* send, const std::vector<index_t>& send_count, std::int64_t* recv,
                     const std::vector<index_t>& recv_count)> alltoall_ids;
  std::function<void(const Scalar* send, const std::vector<index_t>& send_count, Scalar* recv,
                     const std::vector<index_t>& recv_count)> alltoall_rows;
  /// The row-block all-gather of per-row counters: the lazy Adam's row step counts (width 1); LightGCN: the
  /// batch's candidate ids (width K, blocks = the shards' pairs), so that each rank draws its own rows only.
  std::function<void(std::int64_t* buf, index_t width, const std::vector<index_t>& offsets)> sync_counts;
  /// How MF exchanges (n_layers 0): `allgather` = every rank gets every shard's touched rows and steps the
  /// optimiser on their union; `owned` = rank r owns the node block [off[r], off[r+1]) (mf_node_blocks): it
  /// fetches the rows of its shard that others own, sends their gradients to the owners, and steps the
  /// optimiser on its own block only. automatic = owned when the plan has the all-to-alls. Both give the
  /// same bits.
  enum class mf_schedule { automatic, allgather, owned };
  mf_schedule mf = mf_schedule::automatic;
  /// LightGCN on two ranks (the bipartite chains): sends n_send scalars to the other rank and receives n_recv
  /// from it.
  std::function<void(const Scalar* send, index_t n_send, Scalar* recv, index_t n_recv)> swap_rows;
  /// How LightGCN's propagation is split (propagation::row_block): automatic = the bipartite chains on two
  /// ranks (no exchange inside the propagation; needs swap_rows), row blocks otherwise. Both give the same bits.
  enum class schedule { automatic, rows, bipartite };
  schedule lightgcn = schedule::automatic;
  /// LightGCN with row blocks: the P + 1 offsets of the ranks' node blocks, the same on every rank (empty: node_blocks()).
  /// They change only the speed: every row is computed as one process computes it, so the parameters are
  /// the same bits for any blocks (dist::measured_node_blocks balances them on timed products).
  std::vector<index_t> node_offsets;
  /// ANS: adds n doubles over the ranks in rank order (the same bits on every rank); once per epoch, for the
  /// epoch's loss terms and saturated-margin fraction (trainer::epoch_terms). Needed when size > 1 and the
  /// sampler is ANS.
  std::function<void(double* x, index_t n)> sum_diagnostics;
};

/// The row blocks of the graph's nodes for P ranks (LightGCN data-parallel: rank r computes rows
/// [off[r], off[r+1]) of every propagation product and owns their optimiser step). Contiguous blocks of
/// about equal cost, a node costing its nonzeros (the SpMM gathers) plus `row_cost` (its output row and its
/// Adam update); P + 1 offsets, a deterministic function of the graph and P.
inline std::vector<index_t> node_blocks(const std::vector<index_t>& indptr, int P, double row_cost = 2.0) {
  ANS_CHECK(P >= 1 && !indptr.empty(), "node_blocks: " << P << " ranks over " << indptr.size() << " row pointers");
  const index_t n = static_cast<index_t>(indptr.size()) - 1;
  const double total = double(indptr.back() - indptr.front()) + row_cost * double(n);
  std::vector<index_t> off(static_cast<size_t>(P) + 1, n);
  off[0] = 0;
  index_t r = 0;
  auto prefix = [&](index_t i) { return double(indptr[i] - indptr.front()) + row_cost * double(i); };
  for (int k = 1; k < P; ++k) {  // the boundary whose prefix cost is closest to k/P of the total
    const double target = total * double(k) / double(P);
    while (r < n && prefix(r) < target) ++r;
    if (r > off[k - 1] && target - prefix(r - 1) < prefix(r) - target) --r;
    off[k] = r;
  }
  return off;
}

/// Rows [lo, hi) of a batch of B pairs for rank r of P.
inline std::pair<index_t, index_t> shard_rows(index_t B, int r, int P) {
  return {B * r / P, B * (r + 1) / P};
}

/// MF's node blocks for the owned schedule: contiguous blocks of about equal expected optimiser work, a node
/// costing the probability that a batch touches it, 1 − exp(−λ), with λ_u = B·deg_u/nnz for a user (pairs
/// are drawn uniformly) and λ_i = B·deg_i/nnz + B·K/n_items for an item (its positives and K uniform
/// candidates per pair). P + 1 offsets over users then items; a deterministic function of the data.
inline std::vector<index_t> mf_node_blocks(const data::interactions& train, index_t B, index_t K, int P) {
  ANS_CHECK(P >= 1 && train.nnz() > 0, "mf_node_blocks: " << P << " ranks over " << train.nnz() << " pairs");
  const index_t nu = train.n_users, ni = train.n_items, n = nu + ni;
  std::vector<double> deg(static_cast<size_t>(n), 0.0);
  for (index_t u = 0; u < nu; ++u) deg[u] = double(train.row_size(u));
  for (auto i : train.indices) deg[nu + i] += 1;
  const double nnz = double(train.nnz()), per_item = double(B) * double(K) / double(std::max<index_t>(1, ni));
  std::vector<index_t> prefix(static_cast<size_t>(n) + 1, 0);  // cost in units of 2^-20, as node_blocks' indptr
  for (index_t v = 0; v < n; ++v) {
    const double lambda = double(B) * deg[v] / nnz + (v >= nu ? per_item : 0.0);
    prefix[v + 1] = prefix[v] + static_cast<index_t>(std::ldexp(1.0 - std::exp(-lambda), 20));
  }
  return node_blocks(prefix, P, 0.0);
}

}  // namespace ans::train
