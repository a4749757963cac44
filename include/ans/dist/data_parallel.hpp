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

#include <chrono>
#include <memory>
#include <vector>

#include "ans/dist/communicator.hpp"
#include "ans/train/shard.hpp"

namespace ans::dist {

/// Counters of the exchanges so far (per rank).
struct exchange_stats {
  std::uint64_t steps = 0;
  std::uint64_t bytes_sent = 0;      ///< this rank's contributions
  std::uint64_t rows_sent = 0;       ///< Σ |T_r| over steps
  std::uint64_t rows_union = 0;      ///< Σ |U| over steps
  double seconds = 0;                ///< wall time inside the exchange (communication and merge)
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

 private:
  communicator* comm_;
  std::vector<std::int64_t> ids_, all_ids_;
  std::vector<Scalar> rows_, all_rows_, dense_;
  std::vector<index_t> off_, row_off_, cur_;
  exchange_stats stats_;
};

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
  t.set_shard(std::move(plan));
  return ex;
}
template <class Trainer>
void make_data_parallel(Trainer&, communicator&&) = delete;

}  // namespace ans::dist
