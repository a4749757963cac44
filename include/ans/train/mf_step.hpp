/// @file mf_step.hpp
/// @brief The MF (L = 0) BPR training step with RNS or DNS negatives in one parallel region, and a Hogwild!
/// SGD epoch for the same model.
///
/// `mf_bpr_step::run` is the composition sample_batch → bpr_objective::forward/backward → optimiser step of
/// the trainer, fused so that a step has one fork, one barrier and one join instead of five parallel regions
/// (each with its own barrier; under load, a thread that waits at a barrier for a descheduled peer is what made
/// two threads slower than one). It computes the same numbers in the same order:
///   phase A (chunks of 32 pairs, dynamic): each pair's candidates (sample_pair, the row stream of
///     sample_batch; drawn 4 pairs ahead so that the rows they need are prefetched), its negative (first or
///     dns_select), x = <u, p> − <u, n*> (bpr_pair_score), β = ∂L/∂x (bpr_dx), the three gradient rows
///     (bpr_pair_gradients) and, when λ ≠ 0, the rows' squared norms (row_sq_norm);
///   barrier;
///   phase C (row groups): a group owns fixed rows (lazy: 16-row blocks dealt round-robin; dense: a contiguous
///     range of blocks). For its rows it adds the gradient rows into compact slots in the order
///     (b, user/positive/negative) — owned_scatter's order — then the regulariser's c_T·T_row block by block
///     (emb_loss_backward's order), then runs the optimiser: lazy Adam on the group's distinct touched rows,
///     dense Adam / SGD on every row of the group (zeros for the untouched ones). A thread runs its home groups
///     first and then claims any group not yet started.
/// Every row's arithmetic is that of the composed path whatever the groups and the thread count are, so the
/// parameters are bit-identical to it and to themselves for any number of threads
/// (tests/trainer/test_mf_step.cpp).
///
/// `hogwild_bpr_epoch` is a different algorithm, chosen explicitly (optimizer hogwild_sgd): one SGD step per
/// sampled pair (B = 1), applied in place without locks by whichever thread holds the pair (Recht et al. 2011,
/// the scheme of `implicit`'s BPR). With one thread it is deterministic; with more, concurrent updates of a
/// row race and the result depends on the schedule: no determinism is promised.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <exception>
#include <string>
#include <vector>

#include "ans/config.hpp"
#include "ans/loss/bpr.hpp"
#include "ans/loss/l2.hpp"
#include "ans/model/bpr_model.hpp"
#include "ans/optim/adam.hpp"
#include "ans/optim/sgd.hpp"
#include "ans/optim/sparse_adam.hpp"
#include "ans/sampling/batch.hpp"
#include "ans/sampling/dns.hpp"
#include "ans/types.hpp"

namespace ans::train {

/// The embedding optimiser as a grouped step sees it: exactly one of the three is set.
template <class Scalar>
struct table_update {
  optim::sparse_adam<Scalar>* lazy = nullptr;  ///< row-sparse: only the step's touched rows move
  optim::adam<Scalar>* adam = nullptr;         ///< dense: every row moves
  optim::sgd<Scalar>* sgd = nullptr;           ///< dense
  index_t d = 0;

  void begin_step() const {
    if (lazy) lazy->begin_step();
    if (adam) adam->begin_step();
    if (sgd) sgd->begin_step();
  }
  /// Prefetches what sparse_row(table, r, ·) reads of the table and the optimiser state.
  void prefetch_row(const Scalar* table, index_t r) const { lazy->prefetch_row(table, r); }
  // The row kernels clear the gradient row they read, as the composed path's step_table / step_and_clear do:
  // the same kernel instantiation, so the same code and the same bits.
  /// Lazy Adam on row r with gradient row `g` (d entries, cleared).
  void sparse_row(Scalar* table, index_t r, Scalar* g) const { lazy->template update_row<true>(table, r, g); }
  /// A dense optimiser on row r with gradient row `g` (the step's accumulated row, or zeros; cleared).
  void dense_row(Scalar* table, index_t r, Scalar* g) const {
    if (adam) {
      adam->template update_range<true>(table + r * d, g, r * d, d);
    } else {
      sgd->update_row(table, r, g);
      std::fill(g, g + d, Scalar(0));
    }
  }
};

/// Options of mf_bpr_step (the BPR objective's, see model::bpr_options).
struct mf_bpr_options {
  bool dns = false;              ///< DNS: argmax_k <u, c_k>; else RNS (the first candidate)
  double reg_weight = 0;         ///< λ of the EmbLoss regulariser on the batch's rows
  bool reg_require_pow = false;  ///< squared regulariser
  bool bpr_stable = false;       ///< softplus form
  double bpr_eps = 1e-10;
};

/// One fused MF BPR step (see the file comment). Workspaces are sized on the first call of a shape: no
/// allocation afterwards.
template <class Scalar>
class mf_bpr_step {
 public:
  /// Samples, scores and differentiates the batch, then updates `e0` ([n_users + n_items] x d) through `upd`.
  /// The gradient of a row lives only in a compact slot for the step (no N x d gradient table: a dense
  /// optimiser reads zeros for the rows the batch did not touch). Returns the batch loss (that of
  /// bpr_objective::forward). On an exception (a user with no free item) nothing is updated, but the
  /// optimiser's step counter has advanced.
  template <class Sampler>
  Scalar run(matrix<Scalar>& e0, index_t n_users, const sampling::pair_batch& batch, const Sampler& sampler,
             index_t K, std::uint64_t seed, const mf_bpr_options& o, const table_update<Scalar>& upd) {
    const index_t B = batch.size, d = e0.cols(), n = e0.rows(), nu = n_users;
    ANS_CHECK(B > 0 && K > 0, "mf_bpr_step: empty batch: B = " << B << ", K = " << K);
    ANS_CHECK(nu > 0 && nu < n, "mf_bpr_step: " << nu << " users in a table of " << n << " rows");
    ANS_CHECK(upd.d == d && (upd.lazy != nullptr) + (upd.adam != nullptr) + (upd.sgd != nullptr) == 1,
              "mf_bpr_step: the table update must hold exactly one optimiser of width " << d << " (has " << upd.d << ")");
    for (index_t b = 0; b < B; ++b)  // serial: an exception must not leave a parallel region
      ANS_CHECK(batch.users[b] >= 0 && batch.users[b] < nu && batch.items[b] >= 0 && batch.items[b] < n - nu,
                "mf_bpr_step: pair " << b << " is (" << batch.users[b] << ", " << batch.items[b] << "), outside the "
                                     << nu << " x " << (n - nu) << " table");
    const bool reg = o.reg_weight != 0;
    const index_t nt = max_threads(), G = nt == 1 ? 1 : 8 * nt;
    ANS_CHECK(G <= 65535, "mf_bpr_step: " << nt << " threads: at most 8191 are supported");
    if (static_cast<index_t>(claimed_size_) < G) claimed_ = std::make_unique<std::atomic<int>[]>(G), claimed_size_ = G;
    cand_.resize(static_cast<size_t>(B * K));
    g_.resize(static_cast<size_t>(3 * B * d));
    row_.resize(static_cast<size_t>(3 * B));
    grp_.resize(static_cast<size_t>(3 * B));
    term_.resize(static_cast<size_t>(B));
    sq_.resize(reg ? static_cast<size_t>(3 * B) : 0);
    entries_.resize(static_cast<size_t>(G));
    for (auto& m : entries_) m.reserve(static_cast<size_t>(3 * B));
    // the step's distinct rows get compact gradient slots, per group
    if (static_cast<index_t>(slot_.size()) != n) slot_.assign(static_cast<size_t>(n), -1);
    lists_.resize(static_cast<size_t>(G));
    for (auto& l : lists_) l.reserve(static_cast<size_t>(3 * B));
    slots_.resize(static_cast<size_t>(G));
    for (auto& sl : slots_) sl.reserve(static_cast<size_t>(3 * B * d));
    zero_.assign(static_cast<size_t>(G * d), Scalar(0));
    c_ = ctx{e0.data(), n, d, nu, B, K, G, reg, &o, &upd};
    for (index_t gi = 0; gi < G; ++gi) claimed_[gi].store(0, std::memory_order_relaxed);
    upd.begin_step();
    bool failed = false;
    std::string message;
#if ANS_HAS_OPENMP
#pragma omp parallel
#endif
    {
      // phase A: chunks of 32 independent pairs. Within a chunk the candidates are drawn kLookahead pairs
      // ahead, and their rows prefetched, so that a pair's rows are in cache when it is scored.
      const index_t n_chunks = (B + 31) / 32;
#if ANS_HAS_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
      for (index_t ch = 0; ch < n_chunks; ++ch) {
        try {
          const index_t b0 = 32 * ch, b1 = std::min(B, b0 + 32);
          auto hint = [&](index_t b) {  // the sampler's data for a pair two lookaheads on (its optional hook)
            if constexpr (sampling::has_prefetch_v<Sampler>)
              if (b < b1) sampler.prefetch(batch.users[b]);
          };
          for (index_t b = b0; b < std::min(b1, b0 + 2 * kLookahead); ++b) hint(b);
          for (index_t b = b0; b < std::min(b1, b0 + kLookahead); ++b) draw_and_prefetch(b, batch, sampler, seed);
          for (index_t b = b0; b < b1; ++b) {
            hint(b + 2 * kLookahead);
            if (b + kLookahead < b1) draw_and_prefetch(b + kLookahead, batch, sampler, seed);
            pair_kernel(b, batch, e0.bottomRows(n - nu));
          }
        } catch (const std::exception& e) {
#if ANS_HAS_OPENMP
#pragma omp critical(ans_mf_step_error)
#endif
          if (!failed) failed = true, message = e.what();
        }
      }
      // (the loop's barrier: every gradient row is written)
      if (!failed) {
        Scalar coef[3] = {0, 0, 0};  // the regulariser's c_T of each block, computed alike by every thread
        if (reg)
          for (index_t t = 0; t < 3; ++t)
            coef[t] = loss::emb_loss_coef(Scalar(o.reg_weight), B, o.reg_require_pow,
                                          o.reg_require_pow ? Scalar(1) : loss::norm_from_row_squares(sq_.data() + t * B, B));
        // phase C: row groups, each with its own rows' scatter, regulariser and optimiser step. A thread runs
        // its home groups first (the same every step, so its rows' optimiser state stays in its cache), then
        // claims any group still unclaimed (a peer that was descheduled, or that has more rows this step).
        const index_t me = thread_id(), nth = team_size();
        for (index_t pass = 0; pass < nth; ++pass) {
          const index_t owner = (me + pass) % nth;
          for (index_t gi = owner; gi < G; gi += nth)
            if (!claimed_[gi].exchange(1, std::memory_order_acq_rel)) group_kernel(gi, coef);
        }
      }
    }
    if (failed) throw error(message);
    Scalar loss = 0;
    for (index_t b = 0; b < B; ++b) loss += term_[b];
    loss /= Scalar(B);
    if (reg) {
      Scalar r = 0;
      for (index_t t = 0; t < 3; ++t) {
        const Scalar nrm = loss::norm_from_row_squares(sq_.data() + t * B, B);
        r += o.reg_require_pow ? nrm * nrm / Scalar(2) : nrm;
      }
      loss += Scalar(o.reg_weight) * (r / Scalar(B));
    }
    return loss;
  }

 private:
  struct ctx {  // the current step's shapes and arguments
    Scalar* E;
    index_t n, d, nu, B, K, G;
    bool reg;
    const mf_bpr_options* o;
    const table_update<Scalar>* upd;
  };

  static constexpr index_t kLookahead = 4;  ///< pairs between drawing a pair's candidates and scoring it

  // Phase A, ahead of pair b: its candidates (the stream of sample_batch's row b), and a prefetch of the rows
  // it will read (user, positive, the candidates DNS scores or RNS's first).
  template <class Sampler>
  void draw_and_prefetch(index_t b, const sampling::pair_batch& batch, const Sampler& sampler, std::uint64_t seed) {
    const index_t d = c_.d, nu = c_.nu, K = c_.K;
    id_type* c = cand_.data() + b * K;
    sampling::sample_pair(sampler, batch, b, K, seed, c);
    prefetch_span(c_.E + batch.users[b] * d, d);
    prefetch_span(c_.E + (nu + batch.items[b]) * d, d);
    for (index_t k = 0; k < (c_.o->dns ? K : 1); ++k) prefetch_span(c_.E + (nu + c[k]) * d, d);
  }

  // Phase A, pair b (candidates drawn): negative, score, loss term, gradient rows, squared norms.
  template <class Items>
  void pair_kernel(index_t b, const sampling::pair_batch& batch, const Items& items) {
    const index_t d = c_.d, nu = c_.nu, B = c_.B, K = c_.K;
    const Scalar* E = c_.E;
    const auto stable = c_.o->bpr_stable;
    const auto eps = Scalar(c_.o->bpr_eps);
    const id_type* c = cand_.data() + b * K;
    const index_t ru = batch.users[b], rp = nu + batch.items[b];
    const Scalar *u = E + ru * d, *p = E + rp * d;
    const index_t k = c_.o->dns ? sampling::dns_select(u, items, c, K) : 0;
    const index_t rn = nu + c[k];
    const Scalar* nr = E + rn * d;
    const Scalar x = model::bpr_pair_score(u, p, nr, d);
    term_[b] = loss::bpr_term(x, stable, eps);
    Scalar* g = g_.data() + 3 * b * d;
    model::bpr_pair_gradients(loss::bpr_dx(B, x, stable, eps), u, p, nr, d, g, g + d, g + 2 * d);
    row_[3 * b] = ru, row_[3 * b + 1] = rp, row_[3 * b + 2] = rn;
    for (index_t j = 0; j < 3; ++j) grp_[3 * b + j] = static_cast<std::uint16_t>(group_of(row_[3 * b + j]));
    if (c_.reg) {  // block layout [users | positives | negatives], as the regulariser's three blocks
      sq_[b] = loss::row_sq_norm(u, d);
      sq_[B + b] = loss::row_sq_norm(p, d);
      sq_[2 * B + b] = loss::row_sq_norm(nr, d);
    }
  }

  // Phase C, group gi: the group's gradient rows (owned_scatter's order), the regulariser (emb_loss_backward's
  // order), then the optimiser on the group's rows.
  void group_kernel(index_t gi, const Scalar* coef) {
    const index_t d = c_.d, n = c_.n, B = c_.B, G = c_.G;
    Scalar* E = c_.E;
    const auto& upd = *c_.upd;
    const auto gg = static_cast<std::uint16_t>(gi);
    // The group's distinct rows in order of first appearance, each with a compact gradient slot (zero, then
    // the same additions in the same order as a gradient table row would get).
    std::vector<index_t>* list = &lists_[gi];
    std::vector<Scalar>* slots = &slots_[gi];
    auto grad_row = [&](index_t r) -> Scalar* {
      if (slot_[r] < 0) {
        slot_[r] = static_cast<id_type>(list->size());
        list->push_back(r);
        slots->resize(list->size() * static_cast<size_t>(d), Scalar(0));  // capacity reserved: no allocation
      }
      return slots->data() + slot_[r] * d;
    };
    list->clear(), slots->clear();
    // the group's entries in order, then their additions with the gradient rows of later entries prefetched
    // (a pair's rows were written by whichever thread ran the pair)
    std::vector<index_t>& mine = entries_[gi];
    mine.clear();
    for (index_t e = 0; e < 3 * B; ++e)
      if (grp_[e] == gg) mine.push_back(e);
    const index_t nm = static_cast<index_t>(mine.size());
    for (index_t i = 0; i < nm; ++i) {
      if (i + 4 < nm)
        prefetch_span(g_.data() + mine[i + 4] * d, d);
      const index_t e = mine[i];
      Scalar* t = grad_row(row_[e]);
      const Scalar* g = g_.data() + e * d;
      for (index_t j = 0; j < d; ++j) t[j] += g[j];  // owned_scatter's add
    }
    if (c_.reg)
      for (index_t t = 0; t < 3; ++t) {
        if (coef[t] == Scalar(0)) continue;
        for (const index_t e : mine) {  // block t's rows of the group, in pair order
          if (e % 3 != t) continue;
          const Scalar* r = E + row_[e] * d;
          Scalar* gr = grad_row(row_[e]);
          for (index_t j = 0; j < d; ++j) gr[j] += coef[t] * r[j];  // ∂(λR)/∂T_row = c_T·T_row
        }
      }
    if (upd.lazy) {  // lazy: the touched rows only
      const index_t m = static_cast<index_t>(list->size());
      const index_t* rows = list->data();
      for (index_t i = 0; i < m; ++i) {
        if (i + 8 < m) upd.prefetch_row(E, rows[i + 8]);
        slot_[rows[i]] = -1;
        upd.sparse_row(E, rows[i], slots->data() + i * d);
      }
      return;
    }
    // dense: every row of the group's contiguous 16-row blocks [16·⌈gi·nb/G⌉, 16·⌈(gi+1)·nb/G⌉) ∩ [0, n), with
    // its slot or zeros (no gradient table to read and clear: 6 of the 8 streams a table-based step moves)
    const index_t nb = (n + 15) / 16, r0 = 16 * ((gi * nb + G - 1) / G), r1 = std::min(n, 16 * (((gi + 1) * nb + G - 1) / G));
    Scalar* zero = zero_.data() + gi * d;  // the group's own zero row (the kernel writes it back as zeros)
    for (index_t r = r0; r < r1; ++r) {
      const id_type sl = slot_[r];
      upd.dense_row(E, r, sl < 0 ? zero : slots->data() + sl * d);
    }
    for (const index_t r : *list) slot_[r] = -1;
  }

  // The group of row r: 16-row blocks dealt round-robin (lazy: balances a step's random rows across groups)
  // or contiguous ranges of blocks (dense: each group streams through one stretch of the tables). Which rows
  // share a group never changes a row's arithmetic, only who computes it.
  index_t group_of(index_t r) const {
    const index_t blk = r >> 4;
    return c_.upd->lazy ? blk % c_.G : blk * c_.G / ((c_.n + 15) / 16);
  }

  ctx c_{};
  std::unique_ptr<std::atomic<int>[]> claimed_;
  size_t claimed_size_ = 0;
  std::vector<id_type> cand_;
  std::vector<Scalar> g_, term_, sq_, zero_;
  std::vector<index_t> row_;
  std::vector<std::uint16_t> grp_;
  std::vector<id_type> slot_;  ///< lazy: a row's gradient slot in its group during a step, else -1
  std::vector<std::vector<index_t>> lists_, entries_;
  std::vector<std::vector<Scalar>> slots_;
};

/// Options of hogwild_bpr_epoch: plain SGD per pair, p ← p − lr·(∂ℓ/∂p + weight_decay·p) on the pair's rows.
struct hogwild_options {
  double lr = 0.01;
  double weight_decay = 0;       ///< L2 on the pair's three rows at each of its steps (implicit's `regularization`)
  double reg_weight = 0;         ///< λ of the EmbLoss regulariser of the pair (B = 1)
  bool reg_require_pow = false;
  bool bpr_stable = false;
  double bpr_eps = 1e-10;
  bool dns = false;
};

/// One Hogwild! epoch over the first `n_pairs` pairs of the batcher's current epoch (its batches in order; the
/// candidates of pair b of batch i come from sample_pair, as in the minibatch path). Each pair is one SGD step
/// on its user, positive and negative rows with the BPR gradient of that pair alone (B = 1):
///   β = ∂ℓ/∂x (bpr_dx with B = 1), g_u = β(p − n*), g_p = β u, g_n = −β u (bpr_pair_gradients),
///   r ← r − lr·(g_r + weight_decay·r + λ·c_r·r) for r ∈ {u, p, n*}, c_r = emb_loss_coef(1, 1, pow, ‖r‖).
/// Rows are read and written without locks. `e0` must be [n_users + n_items] x d of the batcher's training
/// matrix (the pairs' ids are not re-checked per pair). Returns the mean of the pairs' losses.
template <class Scalar, class Sampler>
double hogwild_bpr_epoch(matrix<Scalar>& e0, index_t n_users, const sampling::pair_batcher& batcher, index_t n_pairs,
                         const Sampler& sampler, index_t K, std::uint64_t seed, const hogwild_options& o) {
  const index_t d = e0.cols(), n = e0.rows(), nu = n_users, bs = batcher.batch_size();
  ANS_CHECK(K > 0 && n_pairs >= 0 && n_pairs <= batcher.nnz(),
            "hogwild_bpr_epoch: K = " << K << ", " << n_pairs << " pairs of " << batcher.nnz());
  ANS_CHECK(nu > 0 && nu < n, "hogwild_bpr_epoch: " << nu << " users in a table of " << n << " rows");
  Scalar* E = e0.data();
  const auto items = e0.bottomRows(n - nu);
  const auto lr = Scalar(o.lr), wd = Scalar(o.weight_decay), lam = Scalar(o.reg_weight), eps = Scalar(o.bpr_eps);
  double loss = 0;
  bool failed = false;
  std::string message;
#if ANS_HAS_OPENMP
#pragma omp parallel reduction(+ : loss)
#endif
  {
    std::vector<Scalar> gbuf(static_cast<size_t>(3 * d));  // per thread, once per epoch
    std::vector<id_type> cbuf(static_cast<size_t>(K));
    Scalar* g = gbuf.data();
#if ANS_HAS_OPENMP
#pragma omp for schedule(dynamic, 256)
#endif
    for (index_t i = 0; i < n_pairs; ++i) {
      try {
        const auto batch = batcher.batch(i / bs);
        const index_t b = i % bs;
        sampling::sample_pair(sampler, batch, b, K, seed, cbuf.data());
        Scalar* u = E + batch.users[b] * d;
        Scalar* p = E + (nu + batch.items[b]) * d;
        const index_t k = o.dns ? sampling::dns_select(u, items, cbuf.data(), K) : 0;
        Scalar* nr = E + (nu + cbuf[k]) * d;
        const Scalar x = model::bpr_pair_score(u, p, nr, d);
        loss += double(loss::bpr_term(x, o.bpr_stable, eps));
        model::bpr_pair_gradients(loss::bpr_dx(index_t{1}, x, o.bpr_stable, eps), u, p, nr, d, g, g + d, g + 2 * d);
        Scalar* rows[3] = {u, p, nr};
        for (index_t t = 0; t < 3; ++t) {
          Scalar* r = rows[t];
          const Scalar* gr = g + t * d;
          const Scalar c = wd + (lam != Scalar(0) ? lam * loss::emb_loss_coef(Scalar(1), 1, o.reg_require_pow,
                                                                              o.reg_require_pow ? Scalar(1) : std::sqrt(loss::row_sq_norm(r, d)))
                                                  : Scalar(0));
          for (index_t j = 0; j < d; ++j) r[j] -= lr * (gr[j] + c * r[j]);  // r ← r − lr·(g_r + (wd + λc_r)·r)
        }
      } catch (const std::exception& e) {
#if ANS_HAS_OPENMP
#pragma omp critical(ans_hogwild_error)
#endif
        if (!failed) failed = true, message = e.what();
      }
    }
  }
  if (failed) throw error(message);
  return n_pairs > 0 ? loss / double(n_pairs) : 0.0;
}

}  // namespace ans::train
