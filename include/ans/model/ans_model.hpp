/// @file ans_model.hpp
/// @brief The whole ANS objective on a graph: `E0 → propagation → gather (U, P, N) → ans_loss →
/// scatter → propagation backward → ∂L/∂E0`, plus the gate and margin parameter gradients.
///
/// This is spec §7 F0–F15 end to end, with the gradient of §8 "Back to E0":
///   1. `G_S[u_b, h] += ∂L/∂U[b,h]`, `G_S[n_u+p_b, h] += ∂L/∂P[b,h]`, `G_S[n_u+c_bk, h] += ∂L/∂N[b,k,h]`
///      (repeated ids accumulate once per occurrence);
///   2. `∂L/∂E0 = Σ_h Â^h G_S[:, h]` (ans::propagation::lightgcn::backward_sparse, reverse Horner);
///   3. the regulariser acts on the ego rows `S[:, 0] = E0`: its gradient enters `G_S[:, 0]`, which reaches
///      `∂L/∂E0` unpropagated. The gradient stack is never held as an N x (H*d) matrix: step 2 scatters each
///      hop's batch rows into N x d Horner buffers (the layers' memory, dead after the gather).
/// The forward keeps S_1..S_L hop-major (lightgcn::forward_layers: compact N x d blocks, E0 not copied) and
/// gathers each batch row [S_0 | ... | S_L] from H places.
///
/// Pooled mode (a weighted readout, e.g. mean, with L ≥ 1; fixed mode on LightGCN by default in the trainer):
/// the loss runs on the pooled rows ū = Σ_h α_h Â^h E0[u] (and p̄, n̄), one gate pass of width d instead of H,
/// as the framework LightGCN scores; hop h of every row gets α_h times its pooled gradient, and R acts on the
/// ego rows (gathered separately, their gradient added at hop 0).
///
/// With L = 0 (MF) no propagation runs: the stack is E0 itself and the gradient is scattered straight into
/// the touched rows of `∂L/∂E0`; `touched_rows()` lists them so a row-sparse optimiser updates only those.
/// With L ≥ 1 every node can receive gradient and `touched_rows()` is empty (meaning "all rows").
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ans/graph/adjacency.hpp"
#include "ans/model/ans_loss.hpp"
#include "ans/model/row_scatter.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/propagation/readout.hpp"

namespace ans::model {

/// The ids of one training batch: B users, B positive items, B*K candidate items (item ids, not node ids,
/// candidate-minor: `cands[b*K + k]`).
struct batch_ids {
  const id_type* users = nullptr;
  const id_type* pos_items = nullptr;
  const id_type* cand_items = nullptr;
  index_t B = 0, K = 0;
};

/// The ANS objective over a user-item graph, with its workspaces (sized once per shape, then reused).
/// Not thread-safe; the kernels inside run multithreaded.
template <class Scalar>
class ans_objective {
 public:
  /// `readout`: concat (the reference: per-hop rows [S_0 | ... | S_L], H gate passes) or a weighted readout
  /// (pooled rows, one pass); irrelevant for L = 0.
  ans_objective(int n_layers, const ans_options& opts,
                propagation::readout_kind readout = propagation::readout_kind::concat)
      : prop_(n_layers), loss_(opts), pooled_(n_layers > 0 && readout != propagation::readout_kind::concat),
        alpha_(propagation::readout_weights<Scalar>(readout, n_layers)) {}

  /// True when the loss runs on pooled rows (a weighted readout with L >= 1).
  bool pooled() const { return pooled_; }

  int n_layers() const { return prop_.n_layers(); }
  ans_loss<Scalar>& loss() { return loss_; }
  const ans_loss<Scalar>& loss() const { return loss_; }
  propagation::lightgcn<Scalar>& propagation() { return prop_; }

  /// Propagates `E0` (skipped for L = 0), gathers the batch and runs the loss forward.
  /// `E0` and the parameters must stay unchanged until backward.
  template <class Source>
  const ans_terms<Scalar>& forward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                   const batch_ids& ids, const ans_params<Scalar>& params, const Source& source,
                                   const index_t* frozen_k_star = nullptr) {
    const ego_rows<Scalar> ego = propagate_and_gather(adj, e0, ids);
    return loss_.forward(shape_, U_.data(), P_.data(), N_.data(), params, source, frozen_k_star, ego);
  }

  /// `forward` keeps the addresses of the graph, E0 and the parameters for backward(): temporaries are
  /// rejected at compile time.
  template <class Source, class... Rest>
  const ans_terms<Scalar>& forward(graph::normalized_adjacency<Scalar>&&, const matrix<Scalar>&, const batch_ids&,
                                   const ans_params<Scalar>&, const Source&, Rest&&...) = delete;
  template <class Source, class... Rest>
  const ans_terms<Scalar>& forward(const graph::normalized_adjacency<Scalar>&, matrix<Scalar>&&, const batch_ids&,
                                   const ans_params<Scalar>&, const Source&, Rest&&...) = delete;
  template <class Source, class... Rest>
  const ans_terms<Scalar>& forward(const graph::normalized_adjacency<Scalar>&, const matrix<Scalar>&,
                                   const batch_ids&, ans_params<Scalar>&&, const Source&, Rest&&...) = delete;

  /// forward() and backward() in one call, what a training step needs: the loss runs its fused
  /// ans_loss::forward_backward (no (B*K*H) x d gate arrays, no zeroing pass over dU, dP, dN). Accumulates
  /// `∂L/∂E0` (+=) and the parameter gradients (+=) exactly as forward() + backward() would (bit-identical).
  template <class Source>
  const ans_terms<Scalar>& forward_backward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                            const batch_ids& ids, const ans_params<Scalar>& params,
                                            const Source& source, matrix<Scalar>& grad_e0,
                                            ans_params<Scalar>& grads) {
    ANS_CHECK(grad_e0.rows() == e0.rows() && grad_e0.cols() == e0.cols(),
              "grad_e0 must be " << e0.rows() << " x " << e0.cols());  // before any work
    const ego_rows<Scalar> ego = propagate_and_gather(adj, e0, ids);
    const index_t d = shape_.d, H = shape_.H, B = shape_.B, K = shape_.K;
    size(dU_, B, H * d), size(dP_, B, H * d), size(dN_, B * K, H * d);  // written, not accumulated
    const auto& t = loss_.forward_backward(shape_, U_.data(), P_.data(), N_.data(), params, source, dU_.data(),
                                           dP_.data(), dN_.data(), grads, ego, ego_grads_of_batch());
    to_e0(grad_e0);
    return t;
  }

  /// Accumulates `∂L/∂E0` (N x d, +=) and the parameter gradients (+=). For L = 0 only the rows in
  /// `touched_rows()` change.
  void backward(matrix<Scalar>& grad_e0, ans_params<Scalar>& grads) {
    ANS_CHECK(adj_ != nullptr, "ans_objective::backward called before forward");
    const index_t d = shape_.d, H = shape_.H, B = shape_.B, K = shape_.K;
    ANS_CHECK(grad_e0.rows() == e0_->rows() && grad_e0.cols() == d, "grad_e0 must be " << e0_->rows() << " x " << d);
    zero(dU_, B, H * d);
    zero(dP_, B, H * d);
    zero(dN_, B * K, H * d);
    loss_.backward(dU_.data(), dP_.data(), dN_.data(), grads, ego_grads_of_batch());
    to_e0(grad_e0);
  }

  /// Sorted node ids whose E0 gradient the last backward changed (L = 0); empty for L ≥ 1 (all rows).
  const std::vector<index_t>& touched_rows() const { return touched_.rows(); }
  const batch_shape& shape() const { return shape_; }
  /// The gathered batch tensors of the last forward (U: B x H*d, N: B*K x H*d).
  const matrix<Scalar>& U() const { return U_; }
  const matrix<Scalar>& P() const { return P_; }
  const matrix<Scalar>& N() const { return N_; }

 private:
  // F0 and the gather: propagates E0 (L >= 1), checks the ids, gathers U, P, N; returns the regulariser's rows.
  ego_rows<Scalar> propagate_and_gather(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                        const batch_ids& ids) {
    ANS_CHECK(ids.B > 0 && ids.K > 0, "empty batch: B = " << ids.B << ", K = " << ids.K);
    ANS_CHECK(e0.rows() == adj.n_nodes(),
              "E0 has " << e0.rows() << " rows, the graph has " << adj.n_nodes() << " nodes");
    adj_ = &adj;
    e0_ = &e0;
    ids_ = ids;
    const index_t d = e0.cols(), H = prop_.n_hops(), B = ids.B, K = ids.K;
    shape_ = batch_shape{B, K, pooled_ ? index_t(1) : H, d};
    // F0: S_1..S_L hop-major (compact N x d blocks; S_0 = E0 is read in place)
    const index_t nn = adj.n_nodes();
    if (H > 1) {
      if (layers_.rows() != (H - 1) * nn || layers_.cols() != d) layers_.resize((H - 1) * nn, d);
      prop_.forward_layers(adj, e0, layers_.data());
    }

    // Gather: U is B x (H*d), row b = [S_0 | S_1 | ... | S_L] of node u_b (the reference's stack row); N is
    // (B*K) x (H*d); the ego rows are hop 0 of these rows (S[:, 0] = E0: read with row stride H*d, no second
    // gather).
    const index_t Hd = pooled_ ? d : H * d;  // width of a gathered row
    U_.resize(B, Hd);
    P_.resize(B, Hd);
    N_.resize(B * K, Hd);
    const index_t nu = adj.n_users;
    for (index_t b = 0; b < B; ++b) {  // validate first (serial: an exception must not leave a parallel region)
      const index_t u = ids.users[b], p = nu + ids.pos_items[b];
      ANS_CHECK(u >= 0 && u < nu, "batch user id " << u << " outside [0, " << nu << ")");
      ANS_CHECK(p >= nu && p < nn, "batch item id " << ids.pos_items[b] << " outside [0, " << adj.n_items << ")");
    }
    for (index_t j = 0; j < B * K; ++j) {
      const index_t c = nu + ids.cand_items[j];
      ANS_CHECK(c >= nu && c < nn, "candidate item id " << ids.cand_items[j] << " outside [0, " << adj.n_items << ")");
    }
    const Scalar* E = e0.data();
    const Scalar* Ld = layers_.data();
    const bool with_reg = loss_.options().reg_weight != 0.0;
    if (pooled_ && with_reg) U0_.resize(B, d), P0_.resize(B, d), N0_.resize(B * K, d);
    auto hop_row = [&](index_t node, index_t l) { return l == 0 ? E + node * d : Ld + ((l - 1) * nn + node) * d; };
    auto row = [&](index_t node, Scalar* out) {
      if (pooled_) {  // ē = Σ_h α_h S_h[node]
        propagation::readout_row([&](index_t l) { return hop_row(node, l); }, alpha_.data(), H, d, out);
        return;
      }
      std::copy(E + node * d, E + (node + 1) * d, out);  // [S_0 | S_1 | ... | S_L]
      for (index_t l = 1; l < H; ++l) {
        const Scalar* src = Ld + ((l - 1) * nn + node) * d;
        std::copy(src, src + d, out + l * d);
      }
    };
    const bool ego_copy = pooled_ && with_reg;  // pooled rows are not E0: R needs its own copy of the ego rows
    auto ego = [&](index_t node, matrix<Scalar>& dst, index_t r) {
      std::copy(E + node * d, E + (node + 1) * d, dst.row(r).data());
    };
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t j = 0; j < B * K; ++j) {  // row j = b*K + k; the pair rows ride along at k == 0
      row(nu + ids.cand_items[j], N_.data() + j * Hd);
      if (ego_copy) ego(nu + ids.cand_items[j], N0_, j);
      if (j % K == 0) {
        const index_t b = j / K;
        row(ids.users[b], U_.data() + b * Hd);
        row(nu + ids.pos_items[b], P_.data() + b * Hd);
        if (ego_copy) ego(ids.users[b], U0_, b), ego(nu + ids.pos_items[b], P0_, b);
      }
    }
    ego_rows<Scalar> rows{};
    if (with_reg && pooled_) rows = ego_rows<Scalar>{U0_.data(), P0_.data(), N0_.data(), d};
    else if (with_reg) rows = ego_rows<Scalar>{U_.data(), P_.data(), N_.data(), Hd};
    return rows;
  }

  // R acts on hop 0 (S[:, 0] = E0): its gradient goes into the hop-0 columns of dU/dP/dN, which reach ∂L/∂E0
  // unpropagated (the G_0 term of step 2), so one scatter serves every term
  // (pooled: separate ego gradient rows, zeroed here, added at hop 0 by to_e0)
  ego_grads<Scalar> ego_grads_of_batch() {
    if (loss_.options().reg_weight == 0.0) return ego_grads<Scalar>{};
    if (pooled_) {
      zero(dU0_, shape_.B, shape_.d), zero(dP0_, shape_.B, shape_.d), zero(dN0_, shape_.B * shape_.K, shape_.d);
      return ego_grads<Scalar>{dU0_.data(), dP0_.data(), dN0_.data(), shape_.d};
    }
    return ego_grads<Scalar>{dU_.data(), dP_.data(), dN_.data(), shape_.H * shape_.d};
  }

  // Steps 1–2: dU, dP, dN of the batch into ∂L/∂E0 (+=).
  void to_e0(matrix<Scalar>& grad_e0) {
    const index_t d = shape_.d, H = shape_.H;
    touched_.clear();
    if (pooled_) {
      // hop h: α_h × the pooled rows' gradient; hop 0 also R's gradient on the ego rows (unpropagated)
      const bool with_reg = loss_.options().reg_weight != 0.0;
      prop_.backward_sparse(
          *adj_, d,
          [&](index_t h, Scalar* Y, index_t ldy) {
            if (alpha_[h] != Scalar(0)) scatter(Y, ldy, 0, d, alpha_[h]);
            if (h == 0 && with_reg) scatter_rows(Y, ldy, 0, d, Scalar(1), dU0_, dP0_, dN0_);
          },
          grad_e0, prop_.n_hops() > 2 ? layers_.data() : nullptr);
      return;
    }
    if (H == 1) {
      // MF: the stack is E0, scatter straight into the gradient rows.
      scatter(grad_e0.data(), d, 0, d);
      collect_touched(adj_->n_users, e0_->rows());
    } else {
      // without an N x (H*d) gradient stack: reverse Horner over N x d buffers, each hop's batch rows scattered
      // in when that hop's term enters; the layers (dead after the gather) are the workspace when L >= 2
      prop_.backward_sparse(
          *adj_, d, [&](index_t h, Scalar* Y, index_t ldy) { scatter(Y, ldy, h * d, d); }, grad_e0,
          H > 2 ? layers_.data() : nullptr);
    }
  }

  static void size(matrix<Scalar>& m, index_t rows, index_t cols) {
    if (m.rows() != rows || m.cols() != cols) m.resize(rows, cols);
  }

  // Resizes (no-op when the shape is unchanged) and zeroes in parallel.
  static void zero(matrix<Scalar>& m, index_t rows, index_t cols) {
    size(m, rows, cols);
    parallel_zero(m.data(), m.size());
  }

  // T[u_b] += dU[b], T[n_u+p_b] += dP[b], T[n_u+c_j] += dN[j], columns c0..c0+w of the gradient rows into
  // the w-wide rows of T (row stride ldt), in the serial order (users and positives by b, then candidates by
  // j) for every thread count (owned_scatter).
  void scatter(Scalar* T, index_t ldt, index_t c0, index_t w, Scalar s = Scalar(1)) const {
    scatter_rows(T, ldt, c0, w, s, dU_, dP_, dN_);
  }
  // The same for any three gradient arrays laid out as dU, dP, dN, scaled by s.
  void scatter_rows(Scalar* T, index_t ldt, index_t c0, index_t w, Scalar s, const matrix<Scalar>& gU,
                    const matrix<Scalar>& gP, const matrix<Scalar>& gN) const {
    const index_t nu = adj_->n_users, B = ids_.B, BK = ids_.B * ids_.K, lds = gU.cols();
    const Scalar *GU = gU.data() + c0, *GP = gP.data() + c0, *GN = gN.data() + c0;
    owned_scatter(T, ldt, w, BK * w > (1 << 14), [&](auto&& add) {
      for (index_t b = 0; b < B; ++b) {
        add(ids_.users[b], GU + b * lds, s);
        add(nu + ids_.pos_items[b], GP + b * lds, s);
      }
      for (index_t j = 0; j < BK; ++j) add(nu + ids_.cand_items[j], GN + j * lds, s);
    });
  }

  // The sorted distinct rows of the batch.
  void collect_touched(index_t nu, index_t n) {
    touched_.collect(n, [&](auto&& add) {
      for (index_t b = 0; b < ids_.B; ++b) add(ids_.users[b]), add(nu + ids_.pos_items[b]);
      for (index_t j = 0; j < ids_.B * ids_.K; ++j) add(nu + ids_.cand_items[j]);
    });
  }

  propagation::lightgcn<Scalar> prop_;
  ans_loss<Scalar> loss_;
  const graph::normalized_adjacency<Scalar>* adj_ = nullptr;
  const matrix<Scalar>* e0_ = nullptr;
  batch_ids ids_{};
  batch_shape shape_{};
  matrix<Scalar> layers_;  ///< S_1..S_L hop-major ((L*N) x d); after the gather, the backward's workspace
  matrix<Scalar> U_, P_, N_, dU_, dP_, dN_;
  bool pooled_ = false;
  std::vector<Scalar> alpha_;                  ///< readout weights (pooled mode)
  matrix<Scalar> U0_, P0_, N0_, dU0_, dP0_, dN0_;  ///< pooled mode: the ego rows R acts on, and their gradient
  touched_set touched_;
};

}  // namespace ans::model
