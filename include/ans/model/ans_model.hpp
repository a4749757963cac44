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
#include <limits>
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
  /// `upstream` scales every gradient: ∂(upstream·L) (the data-parallel MF step passes its shard's share
  /// w = B_shard/B of the batch's mean, folded into the loss's row coefficients rather than a pass over the rows).
  /// `overlay` (L = 0 only): the rows it overlays are read from its `rows` and their gradient is added into its
  /// `grad_rows` instead of E0's and grad_e0's (a data-parallel MF rank's fetched rows, used where they arrived);
  /// touched_rows() still lists them unless the overlay's `list_touched` is false.
  template <class Source>
  const ans_terms<Scalar>& forward_backward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                            const batch_ids& ids, const ans_params<Scalar>& params,
                                            const Source& source, matrix<Scalar>& grad_e0,
                                            ans_params<Scalar>& grads, Scalar upstream = Scalar(1),
                                            const row_overlay<Scalar>& overlay = row_overlay<Scalar>{}) {
    ANS_CHECK(grad_e0.rows() == e0.rows() && grad_e0.cols() == e0.cols(),
              "grad_e0 must be " << e0.rows() << " x " << e0.cols());  // before any work
    ANS_CHECK(!overlay.active() || (prop_.n_layers() == 0 && overlay.rows && overlay.grad_rows),
              "ans_objective::forward_backward: a row overlay needs L = 0 (L = " << prop_.n_layers()
                                                                                << ") and both its row arrays");
    const ego_rows<Scalar> ego = propagate_and_gather(adj, e0, ids, [] {}, overlay);
    const index_t d = shape_.d, H = shape_.H, B = shape_.B, K = shape_.K;
    size(dU_, B, H * d), size(dP_, B, H * d), size(dN_, B * K, H * d);  // written, not accumulated
    const auto& t = loss_.forward_backward(shape_, U_.data(), P_.data(), N_.data(), params, source, dU_.data(),
                                           dP_.data(), dN_.data(), grads, ego, ego_grads_of_batch(), nullptr, upstream);
    to_e0(grad_e0, {}, overlay);
    return t;
  }

  /// The data-parallel step of a LightGCN model (L >= 1; ans/dist/data_parallel.hpp): this process runs the
  /// loss on rows [lo, hi) of the global batch `ids`, with the propagation's row block (set_row_block on
  /// propagation()) computing this process's rows of every level:
  /// - `rows`: the layers are synced inside the propagation;
  /// - `bipartite` (two processes, rank = side): after its chain, this process sends the other the rows it
  ///   computed of the nodes the other's shard gathers, and receives those its own shard needs, through
  ///   `swap(send, n_send, recv, n_recv)` (scalars; both processes know the whole batch, so no ids travel).
  ///   The E0 rows received (the other side's, which only the other process updates) are written into `e0`.
  /// `complete_ids()` runs after the propagation (which reads no id) and before anything reads another shard's
  /// candidates: it fills them into `ids.cand_items` (the ranks' all-gather of the candidates each drew for its
  /// rows), so the imbalance of one step's backward and the next step's forward (the two chains split their
  /// products' costs in opposite ways) meets at one synchronisation point, not two. This shard's candidates
  /// must be there on entry.
  /// Its per-row gradients ∂L_shard/∂(U, P, N) times w (the shard's mean → its share of the batch's mean,
  /// w = (hi − lo)/B) are then gathered from every process by `gather(rows, width, offsets)`, an in-place
  /// all-gather of the row blocks [offsets[r], offsets[r+1]) of a rows x width array, with `batch_offsets`
  /// the P + 1 pair offsets of the shards (candidate rows: K times them). Every process then scatters the
  /// whole batch's gradient in the single process's order into the rows its backward levels compute
  /// (row_block::scatter_rows), so only the level-0 rows of `grad_e0` are accumulated (+=). The parameter
  /// gradients (+=) are the shard's, unscaled; `on_loss(terms)` runs after the gathers and before the backward
  /// (where the caller exchanges them: no exchange then separates one step's backward from the next step's
  /// forward, whose costs the two bipartite chains split in opposite ways). With the squared regulariser, the
  /// bipartite chains form the other shard's ego-row gradients on their side where the backward's hop-0
  /// scatter adds them, instead of gathering them. Returns the shard's terms.
  template <class Source, class CompleteIds, class Gather, class Swap, class OnLoss>
  const ans_terms<Scalar>& forward_backward_shard(const graph::normalized_adjacency<Scalar>& adj, matrix<Scalar>& e0,
                                                  const batch_ids& ids, index_t lo, index_t hi,
                                                  const std::vector<index_t>& batch_offsets,
                                                  const ans_params<Scalar>& params, const Source& source,
                                                  matrix<Scalar>& grad_e0, ans_params<Scalar>& grads,
                                                  CompleteIds&& complete_ids, Gather&& gather, Swap&& swap,
                                                  OnLoss&& on_loss) {
    ANS_CHECK(grad_e0.rows() == e0.rows() && grad_e0.cols() == e0.cols(),
              "ans_objective::forward_backward_shard: grad_e0 is " << grad_e0.rows() << " x " << grad_e0.cols()
                                                                   << ", E0 is " << e0.rows() << " x " << e0.cols());
    const auto& rb = prop_.get_row_block();
    ANS_CHECK(prop_.n_layers() >= 1 && rb.active(),
              "ans_objective::forward_backward_shard: L = " << prop_.n_layers()
                                                            << "; the shard step is for L >= 1 with a row block set");
    ANS_CHECK(0 <= lo && lo <= hi && hi <= ids.B && batch_offsets.size() >= 2 && batch_offsets.back() == ids.B,
              "ans_objective::forward_backward_shard: rows [" << lo << ", " << hi << ") of a batch of " << ids.B
                                                              << " with " << batch_offsets.size() << " offsets");
    ANS_CHECK(rb.k != propagation::row_block<Scalar>::kind::bipartite ||
                  (batch_offsets.size() == 3 && batch_offsets[rb.side] == lo && batch_offsets[rb.side + 1] == hi),
              "ans_objective::forward_backward_shard: the bipartite chains run on two processes, rank = side");
    const index_t B = ids.B, K = ids.K, nu = adj.n_users, nn = adj.n_nodes();
    for (index_t b = 0; b < B; ++b)  // the whole batch is scattered below, not only this shard's rows
      ANS_CHECK(ids.users[b] >= 0 && ids.users[b] < nu && ids.pos_items[b] >= 0 && nu + ids.pos_items[b] < nn,
                "batch pair " << b << " (" << ids.users[b] << ", " << ids.pos_items[b] << ") outside the graph");
    const batch_ids mine{ids.users + lo, ids.pos_items + lo, ids.cand_items + lo * K, hi - lo, K};
    const index_t Br = hi - lo;
    // an empty shard (more ranks than pairs) still takes part in every exchange: the layers, the gathers, the
    // backward
    const bool bipartite = rb.k == propagation::row_block<Scalar>::kind::bipartite;
    auto fetch = [&] {
      complete_ids();  // then every rank checks the whole batch's candidates: a bad id stops all of them here
      for (index_t j = 0; j < B * K; ++j)
        ANS_CHECK(ids.cand_items[j] >= 0 && nu + ids.cand_items[j] < nn,
                  "candidate item id " << ids.cand_items[j] << " outside [0, " << adj.n_items << ")");
      if (bipartite) fetch_other_chain(e0, ids, batch_offsets, swap);
    };
    const ego_rows<Scalar> ego = Br > 0 ? propagate_and_gather(adj, e0, mine, fetch) : propagate_only(adj, e0, mine, fetch);
    const index_t d = shape_.d, Hd = shape_.H * d;
    size(dU_, B, Hd), size(dP_, B, Hd), size(dN_, B * K, Hd);  // this shard's rows written, the others gathered
    const bool with_reg = loss_.options().reg_weight != 0.0;
    ego_grads<Scalar> eg{};
    if (with_reg && pooled_) {  // the loss accumulates into this shard's rows; the gathers write the others
      size(dU0_, B, d), size(dP0_, B, d), size(dN0_, B * K, d);
      dU0_.middleRows(lo, Br).setZero(), dP0_.middleRows(lo, Br).setZero(), dN0_.middleRows(lo * K, Br * K).setZero();
      eg = ego_grads<Scalar>{dU0_.data() + lo * d, dP0_.data() + lo * d, dN0_.data() + lo * K * d, d};
    } else if (with_reg) {
      eg = ego_grads<Scalar>{dU_.data() + lo * Hd, dP_.data() + lo * Hd, dN_.data() + lo * K * Hd, Hd};
    }
    const auto& t = Br == 0 ? empty_terms_
                            : loss_.forward_backward(shape_, U_.data(), P_.data(), N_.data(), params, source,
                                                     dU_.data() + lo * Hd, dP_.data() + lo * Hd,
                                                     dN_.data() + lo * K * Hd, grads, ego, eg);
    const Scalar w = Scalar(double(Br) / double(B));
    auto scale = [&](matrix<Scalar>& m, index_t r0, index_t r1) {
      m.middleRows(r0, r1 - r0) *= w;  // ∂(w·L_shard) = w·∂L_shard
    };
    shard_offsets_.resize(batch_offsets.size());
    for (size_t r = 0; r < batch_offsets.size(); ++r) shard_offsets_[r] = batch_offsets[r] * K;
    scale(dU_, lo, hi), scale(dP_, lo, hi), scale(dN_, lo * K, hi * K);
    gather(dU_.data(), Hd, batch_offsets), gather(dP_.data(), Hd, batch_offsets), gather(dN_.data(), Hd, shard_offsets_);
    // bipartite chains, squared regulariser: this process forms the other shard's ego-row gradients on its side
    // (scatter_ego_rows) instead of gathering them, inside the backward's hop-0 scatter, where they are added (the
    // item side forms B_other·(K + 1) rows, the user side B_other)
    const bool local_ego = with_reg && pooled_ && bipartite && loss_.options().reg_require_pow;
    if (with_reg && pooled_) {
      scale(dU0_, lo, hi), scale(dP0_, lo, hi), scale(dN0_, lo * K, hi * K);
      if (!local_ego)
        gather(dU0_.data(), d, batch_offsets), gather(dP0_.data(), d, batch_offsets), gather(dN0_.data(), d, shard_offsets_);
    }
    on_loss(t);
    ids_ = ids;  // the whole batch, scattered in the single process's order
    shape_.B = B;
    pair_range other_shard{};  // local_ego: the other side's shard (bipartite: two shards, shard = side)
    if (local_ego) other_shard = {batch_offsets[1 - rb.side], batch_offsets[2 - rb.side]};
    to_e0(grad_e0, other_shard);
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
  /// Not available after a forward_backward whose row overlay said `list_touched = false`.
  const std::vector<index_t>& touched_rows() const {
    ANS_CHECK(touched_listed_, "ans_objective::touched_rows: the last forward_backward's row overlay had list_touched "
                               "= false (the caller lists the batch's rows itself)");
    return touched_.rows();
  }
  const batch_shape& shape() const { return shape_; }
  /// The gathered batch tensors of the last forward (U: B x H*d, N: B*K x H*d).
  const matrix<Scalar>& U() const { return U_; }
  const matrix<Scalar>& P() const { return P_; }
  const matrix<Scalar>& N() const { return N_; }

 private:
  // F0 and the gather: propagates E0 (L >= 1), checks the ids, gathers U, P, N; returns the regulariser's rows.
  ego_rows<Scalar> propagate_and_gather(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                        const batch_ids& ids) {
    return propagate_and_gather(adj, e0, ids, [] {});
  }
  // `after_propagation()` runs between the propagation and the gather (the bipartite chains' fetch); the rows
  // `ov` overlays are read from it.
  template <class After>
  ego_rows<Scalar> propagate_and_gather(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                        const batch_ids& ids, After&& after_propagation,
                                        const row_overlay<Scalar>& ov = row_overlay<Scalar>{}) {
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
    after_propagation();

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
    auto e0_row = [&](index_t node) { return ov.active() && ov.slot[node] >= 0 ? ov.rows + ov.slot[node] * d : E + node * d; };
    auto hop_row = [&](index_t node, index_t l) { return l == 0 ? e0_row(node) : Ld + ((l - 1) * nn + node) * d; };
    auto row = [&](index_t node, Scalar* out) {
      if (pooled_) {  // ē = Σ_h α_h S_h[node]
        propagation::readout_row([&](index_t l) { return hop_row(node, l); }, alpha_.data(), H, d, out);
        return;
      }
      const Scalar* e = e0_row(node);
      std::copy(e, e + d, out);  // [S_0 | S_1 | ... | S_L]
      for (index_t l = 1; l < H; ++l) {
        const Scalar* src = Ld + ((l - 1) * nn + node) * d;
        std::copy(src, src + d, out + l * d);
      }
    };
    const bool ego_copy = pooled_ && with_reg;  // pooled rows are not E0: R needs its own copy of the ego rows
    auto ego = [&](index_t node, matrix<Scalar>& dst, index_t r) {
      const Scalar* e = e0_row(node);
      std::copy(e, e + d, dst.row(r).data());
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

  // The propagation of propagate_and_gather without a gather (an empty shard of forward_backward_shard).
  template <class After>
  ego_rows<Scalar> propagate_only(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0,
                                  const batch_ids& ids, After&& after_propagation) {
    ANS_CHECK(e0.rows() == adj.n_nodes(), "E0 has " << e0.rows() << " rows, the graph has " << adj.n_nodes() << " nodes");
    adj_ = &adj;
    e0_ = &e0;
    ids_ = ids;
    const index_t d = e0.cols(), H = prop_.n_hops(), nn = adj.n_nodes();
    shape_ = batch_shape{0, ids.K, pooled_ ? index_t(1) : H, d};
    if (H > 1) {
      if (layers_.rows() != (H - 1) * nn || layers_.cols() != d) layers_.resize((H - 1) * nn, d);
      prop_.forward_layers(adj, e0, layers_.data());
    }
    after_propagation();
    return ego_rows<Scalar>{};
  }

  // Bipartite chains (row_block::bipartite_chain, two processes, rank = side): this process holds hop l of the
  // nodes on side side_at(l) only. Its shard gathers every hop of its nodes, so it needs the other hops, which
  // the other process computed, and the other needs ours. Both know the whole batch: each lists both shards'
  // nodes (sorted, distinct) and sends, hop by hop in node order, the rows the other needs; nothing but rows
  // travels. Received hop-0 rows (E0 of the other side) are written into e0.
  template <class Swap>
  void fetch_other_chain(matrix<Scalar>& e0, const batch_ids& ids, const std::vector<index_t>& off, Swap&& swap) {
    const auto& rb = prop_.get_row_block();
    const int me = rb.side;
    const index_t nu = adj_->n_users, nn = adj_->n_nodes(), d = e0.cols(), H = prop_.n_hops(), K = ids.K;
    auto nodes_of = [&](int r, std::vector<index_t>& out) {
      const index_t lo = off[r], hi = off[r + 1];
      out = fetch_set_.collect(nn, [&](auto&& add) {
        for (index_t b = lo; b < hi; ++b) add(ids.users[b]), add(nu + ids.pos_items[b]);
        for (index_t j = lo * K; j < hi * K; ++j) add(nu + ids.cand_items[j]);
      });
    };
    nodes_of(me, mine_nodes_);
    nodes_of(1 - me, other_nodes_);
    // a sorted node list splits at n_users into its users and its items
    auto side_range = [&](const std::vector<index_t>& v, int side) {
      const auto mid = std::lower_bound(v.begin(), v.end(), nu);
      return side == 0 ? std::make_pair(v.begin(), mid) : std::make_pair(mid, v.end());
    };
    auto hop_row = [&](index_t l, index_t v) -> Scalar* {
      return l == 0 ? e0.data() + v * d : layers_.data() + ((l - 1) * nn + v) * d;
    };
    index_t ns = 0, nr = 0;
    for (index_t l = 0; l < H; ++l) {
      const auto [s0, s1] = side_range(other_nodes_, rb.side_at(l));  // ours, which the other gathers
      const auto [r0, r1] = side_range(mine_nodes_, 1 - rb.side_at(l));  // the other's, which we gather
      ns += static_cast<index_t>(s1 - s0), nr += static_cast<index_t>(r1 - r0);
    }
    send_.resize(static_cast<size_t>(ns * d));
    recv_.resize(static_cast<size_t>(nr * d));
    Scalar* out = send_.data();
    for (index_t l = 0; l < H; ++l) {
      const auto [s0, s1] = side_range(other_nodes_, rb.side_at(l));
      for (auto it = s0; it != s1; ++it, out += d) std::copy(hop_row(l, *it), hop_row(l, *it) + d, out);
    }
    swap(send_.data(), ns * d, recv_.data(), nr * d);
    const Scalar* in = recv_.data();
    for (index_t l = 0; l < H; ++l) {
      const auto [r0, r1] = side_range(mine_nodes_, 1 - rb.side_at(l));
      for (auto it = r0; it != r1; ++it, in += d) std::copy(in, in + d, hop_row(l, *it));
    }
  }

  /// Pairs [lo, hi) of the batch; empty when lo == hi.
  struct pair_range {
    index_t lo = 0, hi = 0;
  };

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

  // Steps 1–2: dU, dP, dN of the batch into ∂L/∂E0 (+=). `other_shard` (bipartite chains, squared
  // regulariser): the pairs whose ego-row gradients the hop-0 scatter forms (scatter_ego_rows).
  // `ov` (L = 0): the rows it overlays go to its grad_rows.
  void to_e0(matrix<Scalar>& grad_e0, pair_range other_shard = {}, const row_overlay<Scalar>& ov = {}) {
    const index_t d = shape_.d, H = shape_.H;
    touched_.clear();
    touched_listed_ = true;
    // row-block backward (forward_backward_shard): hop L into every row, the other hops into the block's rows
    const propagation::row_block<Scalar>& rb = prop_.get_row_block();
    const index_t top = prop_.n_hops() - 1;
    auto lo_of = [&](index_t h) { return rb.scatter_rows(h, top).first; };
    auto hi_of = [&](index_t h) { return rb.scatter_rows(h, top).second; };
    if (pooled_) {
      // hop h: α_h × the pooled rows' gradient; hop 0 also R's gradient on the ego rows (unpropagated)
      const bool with_reg = loss_.options().reg_weight != 0.0;
      prop_.backward_sparse(
          *adj_, d,
          [&](index_t h, Scalar* Y, index_t ldy) {
            if (alpha_[h] != Scalar(0)) scatter(Y, ldy, 0, d, alpha_[h], lo_of(h), hi_of(h));
            if (h == 0 && with_reg) scatter_ego_rows(Y, ldy, lo_of(h), hi_of(h), other_shard);
          },
          grad_e0, prop_.n_hops() > 2 ? layers_.data() : nullptr);
      return;
    }
    if (H == 1) {
      // MF: the stack is E0, scatter straight into the gradient rows.
      scatter_rows(grad_e0.data(), d, 0, d, Scalar(1), dU_, dP_, dN_, 0, std::numeric_limits<index_t>::max(), &ov);
      touched_listed_ = !ov.active() || ov.list_touched;  // the caller lists them
      if (touched_listed_) collect_touched(e0_->rows());
    } else {
      // without an N x (H*d) gradient stack: reverse Horner over N x d buffers, each hop's batch rows scattered
      // in when that hop's term enters; the layers (dead after the gather) are the workspace when L >= 2
      prop_.backward_sparse(
          *adj_, d, [&](index_t h, Scalar* Y, index_t ldy) { scatter(Y, ldy, h * d, d, Scalar(1), lo_of(h), hi_of(h)); },
          grad_e0,
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
  // Only rows in [lo, hi) are written (the row block of a data-parallel rank).
  void scatter(Scalar* T, index_t ldt, index_t c0, index_t w, Scalar s = Scalar(1), index_t lo = 0,
               index_t hi = std::numeric_limits<index_t>::max()) const {
    scatter_rows(T, ldt, c0, w, s, dU_, dP_, dN_, lo, hi);
  }
  // The same for any three gradient arrays laid out as dU, dP, dN, scaled by s.
  void scatter_rows(Scalar* T, index_t ldt, index_t c0, index_t w, Scalar s, const matrix<Scalar>& gU,
                    const matrix<Scalar>& gP, const matrix<Scalar>& gN, index_t lo = 0,
                    index_t hi = std::numeric_limits<index_t>::max(), const row_overlay<Scalar>* ov = nullptr) const {
    const index_t lds = gU.cols();
    const Scalar* G[3] = {gU.data() + c0, gP.data() + c0, gN.data() + c0};
    owned_scatter(T, ldt, w, ids_.B * ids_.K * w > (1 << 14), [&](auto&& add) {
      for_each_batch_row([&](index_t node, int kind, index_t i) { add(node, G[kind] + i * lds, s); });
    }, lo, hi, ov);
  }
  // The ego rows' gradient (dU0, dP0, dN0) into hop 0 (d columns), rows [lo, hi) of T.
  // Bipartite chains, squared regulariser: the rows of the other shard's pairs `other` on this process's side
  // (its users for side 0; its positives and candidates for side 1) are formed where they are added instead of
  // gathered, or written and read back (a thread forms only the rows it owns). Each is c·E0[node] (∂R/∂T_row =
  // c·T_row, c = reg_weight/B_other, emb_loss_coef) times the other shard's w = B_other/B, exactly as the other
  // process forms it (zeroed, += c·row, *= w), added in scatter_rows' order: the bits it would have sent. E0's
  // rows of this side are the bits the other process read, since only this process updates them; the other
  // side's rows of the other shard are never formed (to_e0 scatters hop 0 into this side only).
  void scatter_ego_rows(Scalar* T, index_t ldt, index_t lo, index_t hi, pair_range other) const {
    if (other.hi == other.lo) {
      scatter_rows(T, ldt, 0, shape_.d, Scalar(1), dU0_, dP0_, dN0_, lo, hi);
      return;
    }
    const index_t d = shape_.d, K = ids_.K, Bo = other.hi - other.lo;
    const Scalar c = loss::emb_loss_coef(Scalar(loss_.options().reg_weight), Bo, true, Scalar(1));
    const Scalar w = Scalar(double(Bo) / double(shape_.B));
    const Scalar* E = e0_->data();
    const Scalar* G[3] = {dU0_.data(), dP0_.data(), dN0_.data()};
    owned_scatter(T, ldt, d, ids_.B * K * d > (1 << 14), [&](auto&& add) {
      std::vector<Scalar> g(static_cast<size_t>(d));  // one per thread and step
      for_each_batch_row([&](index_t node, int kind, index_t i) {
        const index_t b = kind == 2 ? i / K : i;
        if (b < other.lo || b >= other.hi) return add(node, G[kind] + i * d, Scalar(1));
        if (!add.owns(node)) return;
        std::fill(g.begin(), g.end(), Scalar(0));
        loss::emb_loss_row_backward(c, E + node * d, g.data(), d);
        for (index_t j = 0; j < d; ++j) g[j] *= w;  // ∂(w·R_other) = w·∂R_other
        add(node, g.data(), Scalar(1));
      });
    }, lo, hi);
  }
  // The batch's gradient rows in the single process's scatter order: emit(node, kind, i) for the user (kind 0)
  // and the positive (kind 1) of pair i = b, b = 0..B-1, then the candidates (kind 2) i = j, j = 0..B*K-1.
  template <class Emit>
  void for_each_batch_row(Emit&& emit) const {
    const index_t nu = adj_->n_users, B = ids_.B, BK = ids_.B * ids_.K;
    for (index_t b = 0; b < B; ++b) {
      emit(ids_.users[b], 0, b);
      emit(nu + ids_.pos_items[b], 1, b);
    }
    for (index_t j = 0; j < BK; ++j) emit(nu + ids_.cand_items[j], 2, j);
  }

  // The sorted distinct rows of the batch.
  void collect_touched(index_t n) {
    touched_.collect(n, [&](auto&& add) { for_each_batch_row([&](index_t node, int, index_t) { add(node); }); });
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
  bool touched_listed_ = true;  ///< false after an overlaid call with list_touched = false
  std::vector<index_t> shard_offsets_;  ///< forward_backward_shard: the shards' candidate-row offsets
  ans_terms<Scalar> empty_terms_{};     ///< forward_backward_shard: the terms of an empty shard
  touched_set fetch_set_;               ///< fetch_other_chain: the shards' node lists
  std::vector<index_t> mine_nodes_, other_nodes_;
  std::vector<Scalar> send_, recv_;
};

}  // namespace ans::model
