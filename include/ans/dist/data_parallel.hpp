/// @file data_parallel.hpp
/// @brief Data-parallel training over MPI (ANS_WITH_MPI): `make_data_parallel(trainer, comm)` gives the trainer
/// a shard plan (train/shard.hpp) whose exchange is a **sparse** all-gather of the touched embedding rows.
///
/// Per step, rank r holds its shard's gradient on its touched rows T_r (sorted ids) and the dense gate/margin
/// gradients (ANS). The exchange:
///   1. all-gathers the ids T_r and their rows (|T_r|·d scalars) from every rank (MPI_Allgatherv);
///   2. merges the P sorted id lists into the union U = ∪_r T_r and sums each row's contributions in rank order
///      (0 + g_0 + g_1 + ...): the same bits on every rank, independent of MPI's reduction algorithm;
///   3. sums the dense gradients and the loss in rank order (allreduce_sum_ordered).
/// Then every rank takes the same lazy Adam (or Adam, SGD) step on U. No N x d allreduce.
///
/// Bytes sent per step by rank r: 8·|T_r| + s·d·|T_r| + s·n_dense + 8 (+ small counts), s = sizeof(Scalar);
/// received: the sum over ranks of the same. Deterministic mode: with the same seed and P, runs are bit-
/// identical; against one process the gradients differ only by the rounding of the shard means (w·(g/B_r)
/// instead of g/B) and of the summation order (docs/distributed.md states the measured tolerance).
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "ans/dist/communicator.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/optim/adam.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/train/shard.hpp"

namespace ans::dist {

/// Counters of the exchanges so far (per rank).
struct exchange_stats {
  std::uint64_t steps = 0;
  std::uint64_t bytes_sent = 0;      ///< this rank's contributions
  std::uint64_t rows_sent = 0;       ///< Σ |T_r| over steps
  std::uint64_t rows_union = 0;      ///< Σ |U| over steps
  double seconds = 0;                ///< wall time inside the exchange (communication and merge)
  // LightGCN (row-block propagation): the all-gathers of row blocks (layers, per-row gradients, E0, moments)
  std::uint64_t syncs = 0;           ///< row-block all-gathers
  std::uint64_t sync_bytes = 0;      ///< this rank's blocks in them (also counted in bytes_sent)
  double sync_seconds = 0;           ///< wall time inside them (also counted in seconds)
  // LightGCN on the bipartite chains: the rows each rank's shard needs from the other chain
  std::uint64_t swaps = 0;
  std::uint64_t swap_bytes = 0;      ///< also counted in bytes_sent
  double swap_seconds = 0;           ///< also counted in seconds
};

template <class Scalar>
class sparse_row_exchange {
 public:
  explicit sparse_row_exchange(communicator& comm) : comm_(&comm) {}

  double operator()(train::shard_exchange<Scalar>& ex) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t b0 = comm_->bytes_sent();
    matrix<Scalar>& G = *ex.grad_e0;
    std::vector<index_t>& T = *ex.touched;
    const index_t d = G.cols(), n = static_cast<index_t>(T.size());
    ids_.assign(T.begin(), T.end());
    rows_.resize(static_cast<size_t>(n * d));
    for (index_t k = 0; k < n; ++k)
      for (index_t j = 0; j < d; ++j) rows_[k * d + j] = G(T[k], j);
    comm_->allgatherv(ids_.data(), n, all_ids_, off_);
    comm_->allgatherv(rows_.data(), n * d, all_rows_, row_off_);
    // P-way merge of the sorted id lists; each union row is summed in rank order
    const int P = comm_->size();
    cur_.assign(off_.begin(), off_.end() - 1);
    T.clear();
    for (;;) {
      std::int64_t m = -1;
      for (int r = 0; r < P; ++r)
        if (cur_[r] < off_[r + 1] && (m < 0 || all_ids_[cur_[r]] < m)) m = all_ids_[cur_[r]];
      if (m < 0) break;
      Scalar* g = G.row(m).data();
      for (index_t j = 0; j < d; ++j) g[j] = Scalar(0);
      for (int r = 0; r < P; ++r)
        if (cur_[r] < off_[r + 1] && all_ids_[cur_[r]] == m) {
          const Scalar* src = all_rows_.data() + cur_[r] * d;  // row offsets: id offset × d
          for (index_t j = 0; j < d; ++j) g[j] += src[j];
          ++cur_[r];
        }
      T.push_back(m);
    }
    // the dense gradients and the loss, in rank order
    index_t total = 0;
    for (int i = 0; i < ex.n_params; ++i) total += ex.param_sizes[i];
    if (total > 0) {
      dense_.resize(static_cast<size_t>(total));
      index_t o = 0;
      for (int i = 0; i < ex.n_params; ++i)
        for (index_t j = 0; j < ex.param_sizes[i]; ++j) dense_[o++] = ex.params[i][j];
      comm_->allreduce_sum_ordered(dense_.data(), total);
      o = 0;
      for (int i = 0; i < ex.n_params; ++i)
        for (index_t j = 0; j < ex.param_sizes[i]; ++j) ex.params[i][j] = dense_[o++];
    }
    double loss = ex.loss;
    comm_->allreduce_sum_ordered(&loss, 1);
    ++stats_.steps;
    stats_.bytes_sent += comm_->bytes_sent() - b0;
    stats_.rows_sent += static_cast<std::uint64_t>(n);
    stats_.rows_union += static_cast<std::uint64_t>(T.size());
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return loss;
  }
  const exchange_stats& stats() const { return stats_; }

  /// The plan's sum_diagnostics: n doubles added in rank order, once per epoch (ANS's terms and saturation for
  /// the epoch's report). Not training traffic: not counted in stats() (8·n bytes per epoch).
  void sum_diagnostics(double* x, index_t n) { comm_->allreduce_sum_ordered(x, n); }

  /// The plan's all-to-alls (MF on owned rows), counted in bytes_sent and seconds.
  void alltoall_counts(const std::vector<index_t>& send, std::vector<index_t>& recv) {
    timed([&] { comm_->alltoall_counts(send, recv); });
  }
  template <class T>
  void alltoallv(const T* send, const std::vector<index_t>& sc, T* recv, const std::vector<index_t>& rc) {
    timed([&] { comm_->alltoallv(send, sc, recv, rc); });
  }
  /// Per-row counters in row blocks (the lazy Adam's row step counts).
  void sync_counts(std::int64_t* buf, index_t width, const std::vector<index_t>& offsets) {
    timed([&] { comm_->allgather_blocks(buf, width, offsets); });
  }
  /// The plan's swap_rows (LightGCN on the bipartite chains, two ranks): rows to and from the other rank.
  void swap_rows(const Scalar* send, index_t n_send, Scalar* recv, index_t n_recv) {
    ++stats_.swaps;
    timed([&] { comm_->sendrecv(1 - comm_->rank(), send, n_send, recv, n_recv); }, &stats_.swap_bytes, &stats_.swap_seconds);
  }

  /// The plan's sync_rows (LightGCN): an in-place all-gather of the rank's row block of a rows x width array.
  void sync_rows(Scalar* buf, index_t width, const std::vector<index_t>& offsets) {
    ++stats_.syncs;
    timed([&] { comm_->allgather_blocks(buf, width, offsets); }, &stats_.sync_bytes, &stats_.sync_seconds);
  }

 private:
  // Runs f, adding the bytes it sent and its wall time to the totals and, when given, to a kind's counters.
  template <class F>
  void timed(F&& f, std::uint64_t* bytes = nullptr, double* seconds = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t b0 = comm_->bytes_sent();
    f();
    const std::uint64_t sent = comm_->bytes_sent() - b0;
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats_.bytes_sent += sent, stats_.seconds += sec;
    if (bytes) *bytes += sent;
    if (seconds) *seconds += sec;
  }
  communicator* comm_;
  std::vector<std::int64_t> ids_, all_ids_;
  std::vector<Scalar> rows_, all_rows_, dense_;
  std::vector<index_t> off_, row_off_, cur_;
  exchange_stats stats_;
};

/// LightGCN's node blocks balanced on measured cost (train::shard_plan::node_offsets). Rank 0 times one SpMM
/// (d columns) over each of 256 contiguous row chunks, the fastest of 3 passes, and a dense Adam update of
/// 4096 rows; a chunk costs (2L − 1) products (L forward, L − 1 backward) plus its rows' Adam update, and the
/// blocks split the summed cost evenly. The offsets are broadcast, so every rank uses rank 0's. Rows do not
/// cost their nonzeros alike (on Gowalla a user row's gather costs more per nonzero than an item row's),
/// which the nonzero count of train::node_blocks misses. The blocks change only the speed, never the bits.
template <class Scalar>
std::vector<index_t> measured_node_blocks(const graph::normalized_adjacency<Scalar>& adj, index_t d, int n_layers,
                                          communicator& comm) {
  const int P = comm.size();
  const index_t n = adj.n_nodes();
  std::vector<std::int64_t> off(static_cast<size_t>(P) + 1, 0);
  // on every rank (the same arguments everywhere): a check on rank 0 alone would leave the others in the Bcast
  ANS_CHECK(adj.has_edges() && n_layers >= 1 && d >= 1,
            "measured_node_blocks: a graph with edges, L >= 1 and d >= 1 (got L = " << n_layers << ", d = " << d << ")");
  if (comm.rank() == 0) {
    const index_t n_chunks = std::min<index_t>(256, n);
    matrix<Scalar> x = matrix<Scalar>::Constant(n, d, Scalar(0.5)), y(n, d);
    std::vector<double> cost(static_cast<size_t>(n_chunks), 0.0);
    auto chunk_lo = [&](index_t c) { return n * c / n_chunks; };
    for (index_t c = 0; c < n_chunks; ++c) {
      double best = 1e30;
      for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        propagation::spmm_rows(adj, chunk_lo(c), chunk_lo(c + 1), x.data(), d, y.data(), d, d);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      cost[c] = double(2 * n_layers - 1) * best;
    }
    {  // the Adam update's cost per row
      const index_t rows = std::min<index_t>(4096, n);
      std::vector<Scalar> p(static_cast<size_t>(rows * d), Scalar(0.1)), g(p), m(p), v(p);
      double best = 1e30;
      for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        optim::detail::adam_update_corrected(p.data(), g.data(), m.data(), v.data(), rows * d, 0.1, 0.001,
                                             optim::adam_options{});
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      for (index_t c = 0; c < n_chunks; ++c) cost[c] += best / double(rows) * double(chunk_lo(c + 1) - chunk_lo(c));
    }
    double total = 0;
    for (double c : cost) total += c;
    // block k ends where the prefix cost reaches (k/P)·total, interpolated inside the chunk
    double prefix = 0;
    index_t c = 0;
    for (int k = 1; k < P; ++k) {
      const double target = total * double(k) / double(P);
      while (c < n_chunks && prefix + cost[c] < target) prefix += cost[c++];
      const double frac = c < n_chunks && cost[c] > 0 ? (target - prefix) / cost[c] : 0.0;
      const index_t lo = c < n_chunks ? chunk_lo(c) : n, hi = c < n_chunks ? chunk_lo(c + 1) : n;
      off[k] = std::max<std::int64_t>(off[k - 1], lo + static_cast<index_t>(frac * double(hi - lo)));
    }
    off[P] = n;
  }
  detail::check(MPI_Bcast(off.data(), P + 1, MPI_INT64_T, 0, comm.handle()), "Bcast (node blocks)");
  return std::vector<index_t>(off.begin(), off.end());
}

/// Makes `t` train data-parallel over `comm` (every rank calls it with the same trainer configuration and
/// data). Returns the exchange, whose stats() count bytes and time; it lives as long as the trainer's plan.
/// `comm` must outlive the trainer's training (the exchange keeps its address; a temporary does not compile).
template <class Trainer>
std::shared_ptr<sparse_row_exchange<typename Trainer::scalar_type>> make_data_parallel(Trainer& t, communicator& comm) {
  using Scalar = typename Trainer::scalar_type;
  auto ex = std::make_shared<sparse_row_exchange<Scalar>>(comm);
  train::shard_plan<Scalar> plan;
  plan.rank = comm.rank();
  plan.size = comm.size();
  plan.exchange = [ex](train::shard_exchange<Scalar>& e) { return (*ex)(e); };
  plan.sync_rows = [ex](Scalar* buf, index_t width, const std::vector<index_t>& off) { ex->sync_rows(buf, width, off); };
  plan.alltoall_counts = [ex](const std::vector<index_t>& sc, std::vector<index_t>& rc) { ex->alltoall_counts(sc, rc); };
  plan.alltoall_ids = [ex](const std::int64_t* send, const std::vector<index_t>& sc, std::int64_t* recv,
                           const std::vector<index_t>& rc) { ex->alltoallv(send, sc, recv, rc); };
  plan.alltoall_rows = [ex](const Scalar* send, const std::vector<index_t>& sc, Scalar* recv,
                            const std::vector<index_t>& rc) { ex->alltoallv(send, sc, recv, rc); };
  plan.sync_counts = [ex](std::int64_t* buf, index_t width, const std::vector<index_t>& off) { ex->sync_counts(buf, width, off); };
  plan.sum_diagnostics = [ex](double* x, index_t n) { ex->sum_diagnostics(x, n); };
  if (comm.size() == 2)
    plan.swap_rows = [ex](const Scalar* send, index_t ns, Scalar* recv, index_t nr) { ex->swap_rows(send, ns, recv, nr); };
  if (t.config().n_layers > 0 && comm.size() > 1)  // for row blocks (two ranks run the bipartite chains by default)
    plan.node_offsets = measured_node_blocks(t.graph(), t.config().dim, t.config().n_layers, comm);
  t.set_shard(std::move(plan));
  return ex;
}
template <class Trainer>
void make_data_parallel(Trainer&, communicator&&) = delete;

}  // namespace ans::dist
