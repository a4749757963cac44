/// @file ans_loss.hpp
/// @brief The composite ANS loss on stacked batch embeddings (spec §7 F1–F15, §8):
///
///   L = M + λ·R + γ·(L_c + D + O)
///
/// with M the BPR term on the selected augmented candidates (ans/loss/bpr.hpp), R the regulariser on the ego
/// rows (ans/loss/l2.hpp), L_c the contrastive term (ans/loss/sns.hpp), D and O the two halves of L_d
/// (ans/loss/distance.hpp, ans/loss/orth.hpp), the gate of ans/disentangle/gate.hpp, the margin, noise and
/// selection of ans/augment/.
///
/// Usage (the model wrapper: E0 → propagation → gather U,P,N → ans_loss → scatter → propagation backward):
/// @code
///   ans::model::ans_loss<float> loss(ans::ans_options::make(ans::mode::faithful));
///   const auto& terms = loss.forward(shape, U, P, N, params, source, nullptr, ego);   // U,P,N C-order
///   loss.backward(dU, dP, dN, grads, ego_grads);   // ACCUMULATES (+=); zero the buffers yourself
///   // or both at once (what a trainer wants: less memory, fewer passes; WRITES dU, dP, dN):
///   loss.forward_backward(shape, U, P, N, params, source, dU, dP, dN, grads, ego, ego_grads);
/// @endcode
/// The input buffers (U, P, N, the ego rows and the parameters) must stay alive and unchanged between
/// forward and backward. Workspaces are sized on the first forward and reused while the shape is unchanged.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ans/config.hpp"

#include "ans/augment/margin.hpp"
#include "ans/augment/noise.hpp"
#include "ans/augment/select.hpp"
#include "ans/core/batch.hpp"
#include "ans/core/mode.hpp"
#include "ans/disentangle/gate.hpp"
#include "ans/disentangle/gemm64.hpp"
#include "ans/loss/bpr.hpp"
#include "ans/loss/distance.hpp"
#include "ans/loss/l2.hpp"
#include "ans/loss/orth.hpp"
#include "ans/loss/sns.hpp"
#include "ans/optim/param_group.hpp"

#ifndef ANS_SIMD
#if ANS_HAS_OPENMP
#define ANS_PRAGMA_(x) _Pragma(#x)
#define ANS_SIMD ANS_PRAGMA_(omp simd)
#define ANS_SIMD_SUM(...) ANS_PRAGMA_(omp simd reduction(+ : __VA_ARGS__))
#else
#define ANS_SIMD
#define ANS_SIMD_SUM(...)
#endif
#endif

namespace ans::model {

/// The learnable parameters of the ANS loss (gates and margin model). Linear layers are y = W x + b with W
/// stored [out, in]. The same struct holds their gradients.
template <class Scalar>
struct ans_params {
  matrix<Scalar> W_u, W_i;  ///< d x d
  vector<Scalar> b_u, b_i;  ///< d
  vector<Scalar> w_m;       ///< d (margin_model weight, [1, d] in PyTorch)
  Scalar c_m = 0;           ///< margin_model bias

  index_t dim() const { return W_u.rows(); }

  /// Zero parameters of dimension d (also the shape of a gradient accumulator).
  static ans_params zeros(index_t d) {
    ans_params p;
    p.W_u = matrix<Scalar>::Zero(d, d);
    p.W_i = matrix<Scalar>::Zero(d, d);
    p.b_u = vector<Scalar>::Zero(d);
    p.b_i = vector<Scalar>::Zero(d);
    p.w_m = vector<Scalar>::Zero(d);
    p.c_m = 0;
    return p;
  }
  void set_zero() {
    W_u.setZero();
    W_i.setZero();
    b_u.setZero();
    b_i.setZero();
    w_m.setZero();
    c_m = 0;
  }

  /// Initialisation. faithful: PyTorch's nn.Linear default, weight and bias U(±1/√d), for the gates and the
  /// margin model (spec R.6). fixed: gate biases 0, gate weights U(±0.1/√d), w_m = 0, c_m = 0 (spec §6 items
  /// 1c, 12). Draws come from a splitmix64 stream keyed on `seed`.
  static ans_params init(index_t d, mode m, std::uint64_t seed) {
    ANS_CHECK(d > 0, "ans_params::init: d must be positive");
    ans_params p = zeros(d);
    std::uint64_t ctr = augment::splitmix64(seed);
    auto uni = [&](double a) {  // U(−a, a)
      const double u = static_cast<double>(augment::splitmix64(ctr++) >> 11) * 0x1.0p-53;
      return Scalar((2.0 * u - 1.0) * a);
    };
    const double a = 1.0 / std::sqrt(static_cast<double>(d));
    const double aw = m == mode::faithful ? a : 0.1 * a;
    for (index_t i = 0; i < d * d; ++i) p.W_u.data()[i] = uni(aw);
    for (index_t i = 0; i < d * d; ++i) p.W_i.data()[i] = uni(aw);
    if (m == mode::faithful) {
      for (index_t i = 0; i < d; ++i) p.b_u[i] = uni(a);
      for (index_t i = 0; i < d; ++i) p.b_i[i] = uni(a);
      for (index_t i = 0; i < d; ++i) p.w_m[i] = uni(a);
      p.c_m = uni(a);
    }
    return p;
  }
};

/// The loss terms of one forward. `total = bpr + reg_weight·reg + gamma·(sns + distance + orth)`.
/// The six gate and margin blocks of `params` and their gradients `grads` (named W_u, W_i, b_u, b_i, w_m, c_m,
/// the trainer's checkpoint names) as one parameter group: one zero_grad(), one optim::group_adam step, save
/// and load. The group keeps both structs' addresses.
template <class Scalar>
optim::param_group<Scalar> ans_param_group(ans_params<Scalar>& params, ans_params<Scalar>& grads) {
  ANS_CHECK(params.dim() == grads.dim(), "ans_param_group: parameters of dimension " << params.dim()
                                                                                      << ", gradients of " << grads.dim());
  optim::param_group<Scalar> g;
  g.add("W_u", params.W_u, grads.W_u).add("W_i", params.W_i, grads.W_i).add("b_u", params.b_u, grads.b_u);
  g.add("b_i", params.b_i, grads.b_i).add("w_m", params.w_m, grads.w_m).add("c_m", params.c_m, grads.c_m);
  return g;
}
template <class Scalar>
optim::param_group<Scalar> ans_param_group(ans_params<Scalar>&&, ans_params<Scalar>&) = delete;
template <class Scalar>
optim::param_group<Scalar> ans_param_group(ans_params<Scalar>&, ans_params<Scalar>&&) = delete;

template <class Scalar>
struct ans_terms {
  Scalar bpr = 0, sns = 0, distance = 0, orth = 0, reg = 0, total = 0;
};

/// Per-step statistics of spec §10.
struct ans_stats {
  double frac_saturated_margin = 0;  ///< fraction of (b,k,h) with m < 1e-3 or m > 1 − 1e-3
  double mean_xi_norm = 0;           ///< mean ‖ξ‖ over (b,k,h) (with the (1−g) factor when easy-only)
  double frac_kstar_differs_dns = 0; ///< fraction of (b,h) where k* ≠ the DNS argmax_k <U,N>
  double mean_gate = 0;              ///< mean of g over all entries
  index_t margin_pole_events = 0;    ///< rows with t == 0 (gradient defined as 0)
};

/// The hop-0 ego rows the regulariser acts on: U⁰ [B,d], P⁰ [B,d], N⁰ [B,K,d] (C order). All null: no R.
/// `ld`: elements between consecutive rows (0: d). With ld = H·d the rows are the first d columns of the
/// gathered [B, H·d] / [B·K, H·d] tensors (hop 0 of the stack is E0), so no separate ego gather is needed.
template <class Scalar>
struct ego_rows {
  const Scalar* U0 = nullptr;
  const Scalar* P0 = nullptr;
  const Scalar* N0 = nullptr;
  index_t ld = 0;
  bool present() const { return U0 && P0 && N0; }
};

/// Gradient buffers for the ego rows (same layouts and `ld` as ego_rows); null entries are skipped.
template <class Scalar>
struct ego_grads {
  Scalar* dU0 = nullptr;
  Scalar* dP0 = nullptr;
  Scalar* dN0 = nullptr;
  index_t ld = 0;
};

/// The composite loss with its workspaces. Not thread-safe: one instance per training thread.
template <class Scalar>
class ans_loss {
 public:
  explicit ans_loss(const ans_options& opts = ans_options{}) : opts_(opts) {}

  ans_options& options() { return opts_; }
  const ans_options& options() const { return opts_; }

  /// Forward pass. U, P: (B*H) x d; N: (B*K*H) x d, all C order. `source` is a uniform source
  /// (ans/augment/noise.hpp). `frozen_k_star` (length B*H), when non-null, replaces the argmax (for gradient
  /// checks). `ego` supplies the regulariser rows (R = 0 when absent).
  ///
  /// Implementation: one pass over blocks of ~256 candidate rows (docs/performance.md): per block the gate
  /// GEMMs (operands in L2), then per row the gate, L_c, D, O, margin, noise, Ñ and the selection scores while
  /// the row is in L1; after a pair's K*H rows, its k* is chosen, only the selected rows of Ñ and e are kept
  /// (B*H rows, not B*K*H) and the pair's BPR scores are formed. Blocks run in parallel (static schedule); every
  /// sum over rows runs serially in row order afterwards, so the result does not depend on the thread count.
  /// The gate g and its item activations are kept for backward() and gate() ((B*K*H) x d each);
  /// forward_backward() does without them.
  template <class Source>
  const ans_terms<Scalar>& forward(const batch_shape& s, const Scalar* U, const Scalar* P, const Scalar* N,
                                   const ans_params<Scalar>& params, const Source& source,
                                   const index_t* frozen_k_star = nullptr,
                                   const ego_rows<Scalar>& ego = ego_rows<Scalar>{}) {
    begin_forward(s, U, P, N, params, frozen_k_star, ego);
    if (g_.rows() != s.cand_rows() || g_.cols() != s.d) g_.resize(s.cand_rows(), s.d);
    if (a_n_.rows() != s.cand_rows() || a_n_.cols() != s.d) a_n_.resize(s.cand_rows(), s.d);
    const index_t nblk = n_blocks();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 1)  // blocks are independent: any thread, same result
#endif
    for (index_t blk = 0; blk < nblk; ++blk) {
      const index_t r0 = rows_of(blk).r0;
      forward_block(blk, scratch_[static_cast<size_t>(thread_id())], g_.row(r0).data(), a_n_.row(r0).data(),
                    source, frozen_k_star);
    }
    finish_forward();
    full_rows_ = true;
    return terms_;
  }

  /// The same on views (U, P: (B*H) x d, N: (B*K*H) x d, contiguous rows): an lvalue matrix, a Map or a row
  /// block; the shapes are checked in every build. The loss keeps the addresses of U, P, N and `params` for
  /// backward(), so temporaries are rejected at compile time (const_rows, and the deleted overloads below).
  template <class Source>
  const ans_terms<Scalar>& forward(const batch_shape& s, const_rows<Scalar> U, const_rows<Scalar> P,
                                   const_rows<Scalar> N, const ans_params<Scalar>& params,
                                   const Source& source, const index_t* frozen_k_star = nullptr,
                                   const ego_rows<Scalar>& ego = ego_rows<Scalar>{}) {
    s.check();
    U.check(s.pair_rows(), s.d, "ans_loss::forward: U");
    P.check(s.pair_rows(), s.d, "ans_loss::forward: P");
    N.check(s.cand_rows(), s.d, "ans_loss::forward: N");
    return forward(s, U.data(), P.data(), N.data(), params, source, frozen_k_star, ego);
  }
  /// Temporary parameters would be freed before backward() reads them.
  template <class Source, class... Rest>
  const ans_terms<Scalar>& forward(const batch_shape&, const Scalar*, const Scalar*, const Scalar*,
                                   ans_params<Scalar>&&, const Source&, Rest&&...) = delete;
  template <class Source, class... Rest>
  const ans_terms<Scalar>& forward(const batch_shape&, const_rows<Scalar>, const_rows<Scalar>, const_rows<Scalar>,
                                   ans_params<Scalar>&&, const Source&, Rest&&...) = delete;

  /// Backward of `upstream · L` after forward(). ACCUMULATES (+=) into dU, dP ((B*H) x d), dN ((B*K*H) x d),
  /// the parameter gradients `grads` (must have dimension d) and the ego-row gradients (regulariser only).
  ///
  /// Implementation: one parallel pass over the row blocks of the forward: per block the BPR and margin terms of
  /// its selected rows, then ∂g of L_c, D, O, the gate's elementwise backward, and the GEMMs
  /// ∂N += ḡ_an W_i, ∂U += ḡ_au W_u and the weight-gradient partial sums ḡᵀN, ḡᵀU. The parameter partials are
  /// kept per group of blocks (a fixed number of groups, independent of the thread count) and added in group
  /// order.
  void backward(Scalar* dU, Scalar* dP, Scalar* dN, ans_params<Scalar>& grads,
                const ego_grads<Scalar>& eg = ego_grads<Scalar>{}, Scalar upstream = Scalar(1)) {
    const batch_shape& s = shape_;
    ANS_CHECK(s.B > 0 && params_, "ans_loss::backward called before forward");
    ANS_CHECK(full_rows_, "ans_loss::backward needs forward(): forward_backward() has applied its backward already");
    check_grads(grads);
    check_ego_grads(eg);
    const index_t nblk = n_blocks(), ngrp = n_groups(nblk);
    ensure_scratch(ngrp, false);
    for_each_group(nblk, ngrp, [&](index_t blk, thread_scratch& ts, group_partial& gp) {
      const index_t r0 = rows_of(blk).r0;
      backward_block(blk, ts, gp, g_.row(r0).data(), a_n_.row(r0).data(), dU, dP, dN, upstream, false);
    });
    finish_backward(grads, eg, upstream, ngrp);
  }

  /// The same on matrices or views with contiguous rows (dU, dP: (B*H) x d, dN: (B*K*H) x d of the last
  /// forward; checked in every build).
  void backward(mref<Scalar> dU, mref<Scalar> dP, mref<Scalar> dN, ans_params<Scalar>& grads,
                const ego_grads<Scalar>& eg = ego_grads<Scalar>{}, Scalar upstream = Scalar(1)) {
    detail::check_forward_done(shape_, "ans_loss");
    check_out(dU, shape_.pair_rows(), shape_.d, "ans_loss::backward: dU");
    check_out(dP, shape_.pair_rows(), shape_.d, "ans_loss::backward: dP");
    check_out(dN, shape_.cand_rows(), shape_.d, "ans_loss::backward: dN");
    backward(dU.data(), dP.data(), dN.data(), grads, eg, upstream);
  }

  /// forward() and backward() of `upstream · L` in one pass over the blocks: each block's gate and gate activations
  /// live in the thread's L2-sized scratch and are consumed by the block's backward right away, instead of two
  /// (B*K*H) x d arrays written in the forward and read back in the backward (2 × 8 MB per MF batch at B = 2048,
  /// K = 16; 2 × 34 MB at H = 4). WRITES (=) dU, dP, dN (no zeroing needed), ACCUMULATES (+=) into `grads` and the
  /// ego-row gradients. Terms and gradients are bit-identical to forward() followed by backward() into zeroed
  /// buffers. gate() is not filled; backward() must not follow. `upstream` scales every gradient (not the terms)
  /// as backward()'s does: a data-parallel shard passes its share w = B_shard/B of the batch's mean.
  template <class Source>
  const ans_terms<Scalar>& forward_backward(const batch_shape& s, const Scalar* U, const Scalar* P, const Scalar* N,
                                            const ans_params<Scalar>& params, const Source& source, Scalar* dU,
                                            Scalar* dP, Scalar* dN, ans_params<Scalar>& grads,
                                            const ego_rows<Scalar>& ego = ego_rows<Scalar>{},
                                            const ego_grads<Scalar>& eg = ego_grads<Scalar>{},
                                            const index_t* frozen_k_star = nullptr, Scalar upstream = Scalar(1)) {
    ANS_CHECK(dU && dP && dN, "ans_loss::forward_backward: null gradient buffer");
    begin_forward(s, U, P, N, params, frozen_k_star, ego);
    check_grads(grads);
    check_ego_grads(eg);
    full_rows_ = false;
    g_.resize(0, s.d), a_n_.resize(0, s.d);  // not used here: release them if a forward() had sized them
    const index_t nblk = n_blocks(), ngrp = n_groups(nblk);
    ensure_scratch(ngrp, true);
    for_each_group(nblk, ngrp, [&](index_t blk, thread_scratch& ts, group_partial& gp) {
      forward_block(blk, ts, ts.g.data(), ts.an.data(), source, frozen_k_star);
      backward_block(blk, ts, gp, ts.g.data(), ts.an.data(), dU, dP, dN, upstream, true);
    });
    finish_forward();
    finish_backward(grads, eg, upstream, ngrp);
    return terms_;
  }

  /// The same on views (U, P, dU, dP: (B*H) x d; N, dN: (B*K*H) x d; contiguous rows; checked in every build).
  template <class Source>
  const ans_terms<Scalar>& forward_backward(const batch_shape& s, const_rows<Scalar> U, const_rows<Scalar> P,
                                            const_rows<Scalar> N, const ans_params<Scalar>& params,
                                            const Source& source, mref<Scalar> dU, mref<Scalar> dP, mref<Scalar> dN,
                                            ans_params<Scalar>& grads,
                                            const ego_rows<Scalar>& ego = ego_rows<Scalar>{},
                                            const ego_grads<Scalar>& eg = ego_grads<Scalar>{},
                                            const index_t* frozen_k_star = nullptr, Scalar upstream = Scalar(1)) {
    s.check();
    U.check(s.pair_rows(), s.d, "ans_loss::forward_backward: U");
    P.check(s.pair_rows(), s.d, "ans_loss::forward_backward: P");
    N.check(s.cand_rows(), s.d, "ans_loss::forward_backward: N");
    check_out(dU, s.pair_rows(), s.d, "ans_loss::forward_backward: dU");
    check_out(dP, s.pair_rows(), s.d, "ans_loss::forward_backward: dP");
    check_out(dN, s.cand_rows(), s.d, "ans_loss::forward_backward: dN");
    return forward_backward(s, U.data(), P.data(), N.data(), params, source, dU.data(), dP.data(), dN.data(), grads,
                            ego, eg, frozen_k_star, upstream);
  }

  const ans_terms<Scalar>& terms() const { return terms_; }
  const ans_stats& stats() const { return stats_; }
  const std::vector<index_t>& k_star() const { return k_star_; }  ///< [B,H]
  const vector<Scalar>& margin() const { return m_; }              ///< [B,K,H]
  const matrix<Scalar>& gate() const { return g_; }                ///< [B,K,H,d] after forward(); empty after forward_backward()
  const matrix<Scalar>& augmented() const { return nt_; }          ///< Ñ [B,K,H,d]
  const vector<Scalar>& pos_scores() const { return pos_; }        ///< [B]
  const vector<Scalar>& neg_scores() const { return neg_; }        ///< [B]
  const batch_shape& shape() const { return shape_; }
  /// Turn the §10 statistics off (they cost one extra pass over the candidates).
  void set_compute_stats(bool on) { compute_stats_ = on; }

 private:
  struct group_partial {
    matrix<Scalar> W_u, W_i;
    vector<Scalar> b_u, b_i, w_m;
    Scalar c_m = 0;
    void set_zero() { W_u.setZero(), W_i.setZero(), b_u.setZero(), b_i.setZero(), w_m.setZero(), c_m = 0; }
  };
  struct thread_scratch {
    matrix<Scalar> gan, gau;
    matrix<Scalar> nt_pair, e_pair;  ///< forward: Ñ and e of one pair's K*H rows (only the selected are kept)
    matrix<Scalar> g, an;            ///< forward_backward: one block's gate and item activations
  };

  // The d = 64 kernels of gemm64.hpp (the default shape); other widths use Eigen.
  bool use_gemm64() const { return shape_.d == 64 && disentangle::gemm64::available<Scalar>(); }

  // Pairs per block: ~256 candidate rows, so a block's operands stay in L2 and Eigen's GEMM packing buffers
  // stay on the stack (no heap allocation in steady state).
  index_t block_pairs() const { return std::max<index_t>(1, kBlockRows / (shape_.K * shape_.H)); }
  // Groups of blocks that own one weight-gradient partial each: a fixed count (not the thread count).
  static index_t n_groups(index_t nblk) { return std::min<index_t>(nblk, kGroups); }

  index_t n_blocks() const { return (shape_.B + block_pairs() - 1) / block_pairs(); }

  // The rows of block `blk`: pairs [b0, b1), pair rows (U, P) [pr0, pr0 + npr), candidate rows (N) [r0, r0 + nr).
  struct block_rows {
    index_t b0, b1, pr0, npr, r0, nr;
  };
  block_rows rows_of(index_t blk) const {
    const index_t bpb = block_pairs(), b0 = blk * bpb, b1 = std::min(shape_.B, b0 + bpb);
    return {b0, b1, b0 * shape_.H, (b1 - b0) * shape_.H, b0 * shape_.K * shape_.H, (b1 - b0) * shape_.K * shape_.H};
  }

  // The parallel loop of the backward passes over the fixed groups of blocks: each group zeroes its parameter
  // partial, then runs body(blk, thread scratch, partial) on its blocks in order. Groups are handed out
  // dynamically (a thread that was descheduled on a busy machine does not hold the others at the barrier);
  // the result does not depend on which thread runs a group.
  template <class Body>
  void for_each_group(index_t nblk, index_t ngrp, Body&& body) {
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (index_t grp = 0; grp < ngrp; ++grp) {
      thread_scratch& ts = scratch_[static_cast<size_t>(thread_id())];
      group_partial& gp = partial_[static_cast<size_t>(grp)];
      gp.set_zero();
      for (index_t blk = grp * nblk / ngrp; blk < (grp + 1) * nblk / ngrp; ++blk) body(blk, ts, gp);
    }
  }

  // An output view: rows x d with row stride d (the raw-pointer kernels assume it).
  static void check_out(const mref<Scalar>& m, index_t rows, index_t d, const char* name) {
    detail::check_shape<Scalar>(m, rows, d, name);
    ANS_CHECK(m.rows() <= 1 || m.outerStride() == d,
              name << " rows are " << m.outerStride() << " values apart, expected d = " << d << " (contiguous rows)");
  }

  void check_grads(const ans_params<Scalar>& grads) const {
    const index_t d = shape_.d;
    ANS_CHECK(grads.W_u.rows() == d && grads.W_u.cols() == d && grads.W_i.rows() == d && grads.W_i.cols() == d &&
                  grads.w_m.size() == d && grads.b_u.size() == d && grads.b_i.size() == d,
              "ans_loss::backward: gradient struct does not have dimension d = " << d);
  }

  // The ego gradients must share the ego rows' stride (checked before any work, when R applies).
  void check_ego_grads(const ego_grads<Scalar>& eg) const {
    if (ego_.present() && opts_.reg_weight != 0)
      ANS_CHECK(eg.ld == ego_.ld, "ans_loss: ego gradient row stride " << eg.ld << " differs from the rows' " << ego_.ld);
  }

  // Checks the inputs, sizes the workspaces and sets the per-batch constants (before the parallel blocks).
  void begin_forward(const batch_shape& s, const Scalar* U, const Scalar* P, const Scalar* N,
                     const ans_params<Scalar>& params, const index_t* frozen_k_star, const ego_rows<Scalar>& ego) {
    s.check();
    ANS_CHECK(U && P && N, "ans_loss::forward: null input");
    ANS_CHECK(params.W_u.rows() == s.d && params.W_u.cols() == s.d && params.W_i.rows() == s.d &&
                  params.W_i.cols() == s.d && params.b_u.size() == s.d && params.b_i.size() == s.d &&
                  params.w_m.size() == s.d,
              "ans_loss::forward: parameters do not have dimension d = " << s.d);
    if (frozen_k_star)
      for (index_t i = 0; i < s.pair_rows(); ++i)
        ANS_CHECK(frozen_k_star[i] >= 0 && frozen_k_star[i] < s.K, "frozen k* out of range at " << i);
    ANS_CHECK(ego.ld == 0 || ego.ld >= s.d, "ans_loss::forward: ego row stride " << ego.ld << " < d = " << s.d);
    resize(s);
    U_ = U, P_ = P, N_ = N, params_ = &params, ego_ = ego;
    if (use_gemm64()) {
      wt_u_ = params.W_u.transpose();
      wt_i_ = params.W_i.transpose();
    }
    orth_coef_ = Scalar(1) / Scalar(opts_.orth_mean_over_hops ? s.cand_rows() : s.B * s.K);
    ensure_forward_scratch(s.K * s.H, s.d);
  }

  // The forward of the pairs of block `blk`: gate activations into `anb` and the gate into `gb` (the block's
  // rows, row stride d), the per-row scalars, k*, the selected rows of Ñ and e, and the pair scores pos/neg.
  template <class Source>
  void forward_block(index_t blk, thread_scratch& ts, Scalar* gb, Scalar* anb, const Source& source,
                     const index_t* frozen_k_star) {
    const batch_shape& s = shape_;
    const ans_options& o = opts_;
    const index_t K = s.K, H = s.H, d = s.d, KH = K * H;
    const auto [b0, b1, pr0, npr, r0, nr] = rows_of(blk);
    const Scalar *U = U_, *P = P_, *N = N_;
    const ans_params<Scalar>& params = *params_;
    const Scalar* wm = params.w_m.data();
    const Scalar cm = params.c_m;
    const margin_form mform = o.margin;
    const Scalar tau = Scalar(o.clamp_tau), dist_eps = Scalar(o.distance_eps),
                 safe_eps = Scalar(o.safe_norm_eps), nrm_eps = Scalar(o.normalize_eps),
                 scale = Scalar(o.noise_scale), sel_eps = Scalar(o.eps);
    const bool eps_in_norm = o.distance_eps_in_norm, safe = o.safe_norm, normalized = o.noise == noise_form::normalized,
               gated = o.direction_from_gated, easy = o.augment_easy_only, sns_stable = o.sns_stable,
               want_stats = compute_stats_, per_hop = o.per_hop_selection;
    // F1–F2: a_u = U W_uᵀ + b_u, a_n = N W_iᵀ + b_i on this block (d = 64: the L1-resident kernel of
    // gemm64.hpp with the transposed weights; otherwise serial Eigen GEMMs, no heap: <= 256 rows)
    if (use_gemm64()) {
      disentangle::gemm64::rows64<false>(U + pr0 * d, d, npr, wt_u_.data(), d, a_u_.row(pr0).data(), d,
                                         params.b_u.data());
      disentangle::gemm64::rows64<false>(N + r0 * d, d, nr, wt_i_.data(), d, anb, d, params.b_i.data());
    } else {
      const const_matrix_map<Scalar> Ub(U + pr0 * d, npr, d), Nb(N + r0 * d, nr, d);
      auto au = a_u_.middleRows(pr0, npr);
      matrix_map<Scalar> an(anb, nr, d);
      au.noalias() = Ub * params.W_u.transpose();
      au.rowwise() += params.b_u.transpose();
      an.noalias() = Nb * params.W_i.transpose();
      an.rowwise() += params.b_i.transpose();
    }
    index_t poles = 0;
    double sat = 0, xin = 0, gsum = 0;
    for (index_t b = b0; b < b1; ++b) {
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h, ur = b * H + h;
          const Scalar* u = U + ur * d;
          const Scalar* p = P + ur * d;
          const Scalar* n = N + r * d;
          const Scalar* au = a_u_.row(ur).data();
          const Scalar* an = anb + (r - r0) * d;
          Scalar* gg = gb + (r - r0) * d;
          // F3: g = σ(a_n ⊙ a_u)
          ANS_SIMD
          for (index_t j = 0; j < d; ++j) gg[j] = an[j] * au[j];
          disentangle::sigmoid_inplace(gg, d);
          // F9 (Δ), F5 (D row norm), F6 (O row norm), F7 (t): one pass, five sums
          // (GCC 12 left the `omp simd` form of this loop scalar: explicit lanes, a fixed-length inner loop
          // it vectorises, lanes added in a fixed order: deterministic)
          Scalar hard = 0, easy_s = 0, ssd = 0, sso = 0, t = 0;
          {
            constexpr index_t LN = 16;
            Scalar a0[LN] = {}, a1[LN] = {}, a2[LN] = {}, a3[LN] = {}, a4[LN] = {};
            const Scalar yoff = eps_in_norm ? Scalar(0) : dist_eps;
            auto lane = [&](index_t j, index_t l) {  // the components' coordinate formulas
              loss::sns_kernel::parts(u[j], n[j], gg[j], a0[l], a1[l]);           // <U,Nh>, <U,Ne>
              const Scalar y = loss::distance_kernel::residual(n[j], p[j], gg[j], yoff);
              a2[l] += y * y;                                                      // ‖y‖²
              const Scalar w = loss::orth_kernel::product(p[j], n[j], gg[j]);
              a3[l] += w * w;                                                      // ‖w‖²
              a4[l] += augment::margin_kernel::term(n[j], p[j], gg[j], wm[j]);     // w_m·v
            };
            index_t j0 = 0;
            for (; j0 + LN <= d; j0 += LN)
              for (index_t l = 0; l < LN; ++l) lane(j0 + l, l);
            for (index_t l = 0; j0 + l < d; ++l) lane(j0 + l, l);  // tail (d not a multiple of 16)
            hard = math::lane_sum(a0), easy_s = math::lane_sum(a1), ssd = math::lane_sum(a2);
            sso = math::lane_sum(a3), t = math::lane_sum(a4);
          }
          delta_[r] = easy_s - hard;
          dnorm_[r] = math::norm_value(ssd, dist_eps, eps_in_norm, o.distance_squared);  // ‖y‖ | ‖y‖²
          onorm_[r] = math::norm_value(sso, safe_eps, safe, o.orth_squared);                 // ‖w‖ | ‖w‖²
          t += cm;
          t_[r] = t;
          const Scalar mr = augment::margin_value(mform, tau, t);
          m_[r] = mr;
          if (mform != margin_form::sigmoid_neg && mform != margin_form::none && t == Scalar(0)) ++poles;
          // F8: e = δ ⊙ r̂ (this pair's rows live in the thread's scratch until the selection below)
          const index_t lr = k * H + h;
          Scalar* e = ts.e_pair.row(lr).data();
          source(b, k, h, e, d);
          Scalar inv = 1;
          if (normalized) {
            Scalar ss = 0;
            ANS_SIMD_SUM(ss)
            for (index_t j = 0; j < d; ++j) ss += e[j] * e[j];
            inv = Scalar(1) / std::max(std::sqrt(ss), nrm_eps);
          }
          ANS_SIMD
          for (index_t j = 0; j < d; ++j)
            e[j] = augment::noise_kernel::direction(p[j], n[j], gg[j], gated) * (normalized ? e[j] * inv : e[j]);
          // Ñ = Nh + (Ne + f⊙ξ); <U,Ñ>, <U,N>
          Scalar* nt = ts.nt_pair.row(lr).data();
          const Scalar sm = scale * mr;
          // (the statistics' sums ride along: ‖f⊙e‖² and Σ g, in Scalar, vectorised with the rest)
          // (explicit lanes as above: GCC 12 left the `omp simd` reduction over four sums scalar, 21 % of the
          // forward's time)
          Scalar sy = 0, no = 0, xs = 0, gs = 0;
          {
            constexpr index_t LN = 16;
            Scalar a0[LN] = {}, a1[LN] = {}, a2[LN] = {}, a3[LN] = {};
            auto lane = [&](index_t j, index_t l) {
              const Scalar v = augment::noise_kernel::augmented(n[j], gg[j], sm * e[j], easy);  // Ñ
              const Scalar fe = easy ? (Scalar(1) - gg[j]) * e[j] : e[j];
              nt[j] = v;
              a0[l] += u[j] * v;
              a1[l] += u[j] * n[j];
              a2[l] += fe * fe;
              a3[l] += gg[j];
            };
            index_t j0 = 0;
            for (; j0 + LN <= d; j0 += LN)
              for (index_t l = 0; l < LN; ++l) lane(j0 + l, l);
            for (index_t l = 0; j0 + l < d; ++l) lane(j0 + l, l);  // tail
            sy = math::lane_sum(a0), no = math::lane_sum(a1), xs = math::lane_sum(a2), gs = math::lane_sum(a3);
          }
          syth_[r] = sy;
          norm_[r] = no;
          if (want_stats) {
            const double md = static_cast<double>(mr);
            sat += (md < 1e-3 || md > 1.0 - 1e-3) ? 1.0 : 0.0;
            xin += static_cast<double>(scale) * md * std::sqrt(static_cast<double>(xs));
            gsum += static_cast<double>(gs);
          }
        }
      // F9 per (b,h): the L_c value, and q = e^{Δ−M}/(e^{−M} + Σ e^{Δ−M}) for the backward
      for (index_t h = 0; h < H; ++h) {
        Scalar mx = 0;
        for (index_t k = 0; k < K; ++k) mx = std::max(mx, delta_[(b * K + k) * H + h]);
        Scalar den = std::exp(-mx);
        for (index_t k = 0; k < K; ++k) {
          const index_t r = (b * K + k) * H + h;
          q_[r] = std::exp(delta_[r] - mx);
          den += q_[r];
        }
        for (index_t k = 0; k < K; ++k) q_[(b * K + k) * H + h] /= den;
        Scalar v;
        if (sns_stable) {
          v = std::log(den) + mx;
        } else {
          Scalar sum = 0;
          for (index_t k = 0; k < K; ++k) sum += std::exp(delta_[(b * K + k) * H + h]);
          v = std::log(Scalar(1) + sum);
        }
        per_hop_[b * H + h] = v;
      }
      // F10–F11 for this pair: k* (first max), then keep only the selected rows of Ñ and e
      index_t* ks = k_star_.data() + b * H;
      if (frozen_k_star) {
        for (index_t h = 0; h < H; ++h) ks[h] = frozen_k_star[b * H + h];
      } else {
        augment::select_candidates(batch_shape{1, K, H, d}, syth_.data() + b * KH, norm_.data() + b * KH, sel_eps,
                                   per_hop, ks);
      }
      for (index_t h = 0; h < H; ++h) {
        const index_t lr = ks[h] * H + h;
        std::copy(ts.nt_pair.row(lr).data(), ts.nt_pair.row(lr).data() + d, nt_.row(b * H + h).data());
        std::copy(ts.e_pair.row(lr).data(), ts.e_pair.row(lr).data() + d, e_.row(b * H + h).data());
      }
      // F12: the pair's scores Σ_h <U,P> and Σ_h <U,N*>
      Scalar ps = 0, ns = 0;
      for (index_t h = 0; h < H; ++h) {
        const Scalar* u = U + (b * H + h) * d;
        const Scalar* p = P + (b * H + h) * d;
        const Scalar* nt = nt_.row(b * H + h).data();
        Scalar hp = 0, hn = 0;
        ANS_SIMD_SUM(hp, hn)
        for (index_t j = 0; j < d; ++j) {
          hp += u[j] * p[j];
          hn += u[j] * nt[j];
        }
        ps += hp;
        ns += hn;
      }
      pos_[b] = ps;
      neg_[b] = ns;
    }
    blk_poles_[blk] = poles;
    blk_stats_[3 * blk] = sat, blk_stats_[3 * blk + 1] = xin, blk_stats_[3 * blk + 2] = gsum;
  }

  // The serial sums of the forward (row order: independent of the thread count), BPR, R, the total, stats.
  void finish_forward() {
    const batch_shape& s = shape_;
    const ans_options& o = opts_;
    terms_ = ans_terms<Scalar>{};
    Scalar tot = 0;
    for (index_t i = 0; i < s.pair_rows(); ++i) tot += per_hop_[i];
    terms_.sns = tot / Scalar(s.pair_rows());  // F9
    Scalar td = 0, to = 0;
    for (index_t i = 0; i < s.cand_rows(); ++i) td += dnorm_[i];
    for (index_t i = 0; i < s.cand_rows(); ++i) to += onorm_[i];
    terms_.distance = td / Scalar(s.cand_rows());  // F5
    terms_.orth = to * orth_coef_;                 // F6
    const index_t nblk = n_blocks();
    stats_ = ans_stats{};
    for (index_t blk = 0; blk < nblk; ++blk) stats_.margin_pole_events += blk_poles_[blk];
    terms_.bpr = loss::bpr_forward(s.B, pos_.data(), neg_.data(), o.bpr_stable, Scalar(o.bpr_eps));  // F13
    if (ego_.present()) {
      const auto bl = reg_blocks(nullptr);
      terms_.reg = loss::emb_loss_forward(bl.data(), bl.size(), s.B, o.reg_require_pow, reg_norms_.data());  // F14
    }
    terms_.total = Scalar(o.bpr_weight) * terms_.bpr + Scalar(o.reg_weight) * terms_.reg +
                   Scalar(o.gamma) * (Scalar(o.sns_weight) * terms_.sns + Scalar(o.distance_weight) * terms_.distance +
                                      Scalar(o.orth_weight) * terms_.orth);  // F15 (weights 1: the paper's)
    if (compute_stats_) compute_stats(nblk);
  }

  // The backward of the pairs of block `blk` (gate `gb` and item activations `anb`: the block's rows, stride d).
  // `write`: first zero the block's rows of dU, dP, dN (forward_backward); else accumulate (backward).
  void backward_block(index_t blk, thread_scratch& ts, group_partial& gp, const Scalar* gb, const Scalar* anb,
                      Scalar* dU, Scalar* dP, Scalar* dN, Scalar upstream, bool write) {
    const batch_shape& s = shape_;
    const ans_options& o = opts_;
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const auto [b0, b1, pr0, npr, r0, nr] = rows_of(blk);
    const Scalar* w = params_->w_m.data();
    const Scalar scale = Scalar(o.noise_scale);
    const bool easy = o.augment_easy_only;
    if (write) {
      std::fill(dU + pr0 * d, dU + (pr0 + npr) * d, Scalar(0));
      std::fill(dP + pr0 * d, dP + (pr0 + npr) * d, Scalar(0));
      std::fill(dN + r0 * d, dN + (r0 + nr) * d, Scalar(0));
    }
    std::fill(dgsel_.row(pr0).data(), dgsel_.row(pr0).data() + npr * d, Scalar(0));
    Scalar* gwm = gp.w_m.data();
    // BPR (and through Ñ*, the noise and the margin) on the block's selected rows
    for (index_t b = b0; b < b1; ++b) {
      const Scalar gx = loss::bpr_dx(B, pos_[b] - neg_[b], o.bpr_stable, Scalar(o.bpr_eps),
                                     upstream * Scalar(o.bpr_weight));  // −w_bpr·β_b
      for (index_t h = 0; h < H; ++h) {
        const index_t ur = b * H + h, r = s.nrow(b, k_star_[ur], h);
        const Scalar* u = U_ + ur * d;
        const Scalar* p = P_ + ur * d;
        const Scalar* n = N_ + r * d;
        const Scalar* nt = nt_.row(ur).data();  // the selected rows only
        const Scalar* gg = gb + (r - r0) * d;
        const Scalar* e = e_.row(ur).data();
        Scalar* du = dU + ur * d;
        Scalar* dp = dP + ur * d;
        Scalar* dn = dN + r * d;
        Scalar* dgg = dgsel_.row(ur).data();
        const Scalar mr = m_[r];
        Scalar dm = 0;
        for (index_t j = 0; j < d; ++j) {
          du[j] += gx * (p[j] - nt[j]);  // ∂U += −β(P − N*)
          dp[j] += gx * u[j];            // ∂P += −β U
          const Scalar dnt = -gx * u[j];  // ∂Ñ* = β U; then ∂N += ∂Ñ, ∂m += ∂Ñ f e, easy-only ∂g −= ∂Ñ⊙ξ
          augment::noise_kernel::backward(dnt, gg[j], e[j], scale, mr, easy, dn[j], dgg[j], dm);
        }
        dm *= scale;  // ∂m = scale Σ ∂Ñ f e
        const Scalar Gt = dm * augment::margin_derivative(o.margin, Scalar(o.clamp_tau), t_[r]);  // G_t
        if (Gt != Scalar(0)) {
          for (index_t j = 0; j < d; ++j)  // G_t v, 2G_t w⊙g⊙N⊙P, G_t w⊙g²⊙P, G_t w⊙g²⊙N
            augment::margin_kernel::backward(Gt, n[j], p[j], gg[j], w[j], gwm[j], dgg[j], dn[j], dp[j]);
          gp.c_m += Gt;
        }
      }
    }

    const Scalar gu = Scalar(o.gamma) * upstream;
    const Scalar c_sns = gu * Scalar(o.sns_weight) / Scalar(s.pair_rows()),
                 c_dist = gu * Scalar(o.distance_weight) / Scalar(s.cand_rows()),
                 c_orth = gu * Scalar(o.orth_weight) * orth_coef_;
    const Scalar dist_eps = Scalar(o.distance_eps);
    const bool eps_in_norm = o.distance_eps_in_norm;
    const matrix<Scalar>& W_u = params_->W_u;
    const matrix<Scalar>& W_i = params_->W_i;
    auto gan = ts.gan.topRows(nr);
    auto gau = ts.gau.topRows(npr);
    gau.setZero();
    for (index_t b = b0; b < b1; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h, ur = b * H + h;
          const Scalar* u = U_ + ur * d;
          const Scalar* p = P_ + ur * d;
          const Scalar* n = N_ + r * d;
          const Scalar* gg = gb + (r - r0) * d;
          Scalar* du = dU + ur * d;
          Scalar* dp = dP + ur * d;
          Scalar* dn = dN + r * d;
          Scalar* dg = gan.row(r - r0).data();  // ∂L/∂g of this row, then ḡ_an in place
          if (k == k_star_[ur]) {
            const Scalar* sel = dgsel_.row(ur).data();
            for (index_t j = 0; j < d; ++j) dg[j] = sel[j];
          } else {
            for (index_t j = 0; j < d; ++j) dg[j] = Scalar(0);
          }
          // L_c, D, O and the gate's elementwise backward in one pass over the row (a term that is off gets
          // coefficient 0; per element the sums run in the order of the separate terms)
          const bool on = gu != Scalar(0);
          const Scalar a = on ? c_sns * q_[r] : Scalar(0);                                       // α = c·e^Δ/(1+Σe^Δ)
          // ∂‖y‖/∂y = y/‖y‖, ∂‖y‖²/∂y = 2y: the same kernel with c/‖y‖ or 2c (likewise for w)
          const Scalar inv_d = on ? math::norm_scale(c_dist, dnorm_[r], o.distance_squared)
                                  : Scalar(0);  // c/‖y‖ | 2c
          const Scalar inv_o = on ? math::norm_scale(c_orth, onorm_[r], o.orth_squared)
                                  : Scalar(0);  // c/‖w‖ | 2c
          const Scalar yoff = eps_in_norm ? Scalar(0) : dist_eps;
          const Scalar* au = a_u_.row(ur).data();
          const Scalar* an = anb + (r - r0) * d;
          Scalar* gaur = gau.row(ur - pr0).data();
          ANS_SIMD
          for (index_t j = 0; j < d; ++j) {  // the components' coordinate backwards, in the terms' order
            Scalar dnj = dn[j], dpj = dp[j], dgj = dg[j];
            loss::sns_kernel::backward(u[j], n[j], gg[j], a, du[j], dnj, dgj);  // α(1−2g)⊙N, α(1−2g)⊙U, −2α U⊙N
            const Scalar yh = inv_d * loss::distance_kernel::residual(n[j], p[j], gg[j], yoff);  // c·ŷ
            loss::distance_kernel::backward(n[j], p[j], gg[j], yh, dnj, dpj, dgj);  // c g⊙ŷ, −c g⊙ŷ, c (N−P)⊙ŷ
            loss::orth_kernel::backward(p[j], n[j], gg[j], inv_o, dpj, dnj, dgj);   // c ŵ(1−g)²N, c ŵ(1−g)²P, ...
            dn[j] = dnj;
            dp[j] = dpj;
            disentangle::gate_kernel::backward(dgj, gg[j], au[j], an[j], dg[j], gaur[j]);  // ḡ_an, ḡ_au
          }
        }
    // the gate's matrix products for this block (d = 64: gemm64.hpp; else serial Eigen, <= 256 rows: no heap)
    if (use_gemm64()) {
      namespace g64 = disentangle::gemm64;
      g64::atx64(gan.data(), d, N_ + r0 * d, d, nr, gp.W_i.data(), d);  // ∂L/∂W_i = Σ ḡ_an ⊗ N
      g64::rows64<true>(gan.data(), d, nr, W_i.data(), d, dN + r0 * d, d);  // ∂L/∂N += W_iᵀ ḡ_an
      g64::atx64(gau.data(), d, U_ + pr0 * d, d, npr, gp.W_u.data(), d);  // ∂L/∂W_u = Σ ḡ_au ⊗ U
      g64::rows64<true>(gau.data(), d, npr, W_u.data(), d, dU + pr0 * d, d);  // ∂L/∂U += W_uᵀ ḡ_au
      Scalar* bi = gp.b_i.data();
      Scalar* bu = gp.b_u.data();
      for (index_t r = 0; r < nr; ++r) {
        const Scalar* gr = gan.row(r).data();
        ANS_SIMD
        for (index_t j = 0; j < d; ++j) bi[j] += gr[j];
      }
      for (index_t r = 0; r < npr; ++r) {
        const Scalar* gr = gau.row(r).data();
        ANS_SIMD
        for (index_t j = 0; j < d; ++j) bu[j] += gr[j];
      }
      return;
    }
    const const_matrix_map<Scalar> Nb(N_ + r0 * d, nr, d), Ub(U_ + pr0 * d, npr, d);
    matrix_map<Scalar> dNb(dN + r0 * d, nr, d), dUb(dU + pr0 * d, npr, d);
    gp.W_i.noalias() += gan.transpose() * Nb;  // ∂L/∂W_i = Σ ḡ_an ⊗ N
    gp.b_i.noalias() += gan.colwise().sum().transpose();
    dNb.noalias() += gan * W_i;                 // ∂L/∂N += W_iᵀ ḡ_an
    gp.W_u.noalias() += gau.transpose() * Ub;  // ∂L/∂W_u = Σ ḡ_au ⊗ U
    gp.b_u.noalias() += gau.colwise().sum().transpose();
    dUb.noalias() += gau * W_u;                 // ∂L/∂U += W_uᵀ ḡ_au
  }

  // Adds the groups' parameter partials in group order (the same bits for any thread count), then R's rows.
  void finish_backward(ans_params<Scalar>& grads, const ego_grads<Scalar>& eg, Scalar upstream, index_t ngrp) {
    for (index_t grp = 0; grp < ngrp; ++grp) {
      const group_partial& gp = partial_[static_cast<size_t>(grp)];
      grads.W_i += gp.W_i;
      grads.b_i += gp.b_i;
      grads.W_u += gp.W_u;
      grads.b_u += gp.b_u;
      grads.w_m += gp.w_m;
      grads.c_m += gp.c_m;
    }
    if (ego_.present() && opts_.reg_weight != 0) {
      const auto bl = reg_blocks(&eg);
      loss::emb_loss_backward(bl.data(), bl.size(), shape_.B, opts_.reg_require_pow,
                              Scalar(opts_.reg_weight) * upstream,
                              reg_norms_.data());  // the forward's block norms: the rows did not change
    }
  }


  void ensure_forward_scratch(index_t KH, index_t d) {
    const size_t nt = static_cast<size_t>(std::max(1, max_threads()));
    if (scratch_.size() < nt) scratch_.resize(nt);
    for (auto& ts : scratch_) {
      if (ts.nt_pair.rows() != KH || ts.nt_pair.cols() != d) ts.nt_pair.resize(KH, d);
      if (ts.e_pair.rows() != KH || ts.e_pair.cols() != d) ts.e_pair.resize(KH, d);
    }
  }

  // The backward's per-thread block buffers and the groups' parameter partials; `fused`: also the block's gate
  // and item activations (forward_backward keeps them per block instead of per batch).
  void ensure_scratch(index_t ngrp, bool fused) {
    const index_t rows = block_pairs() * shape_.K * shape_.H, prows = block_pairs() * shape_.H, d = shape_.d;
    auto fit = [](matrix<Scalar>& m, index_t r, index_t c) {
      if (m.rows() != r || m.cols() != c) m.resize(r, c);
    };
    const size_t nt = static_cast<size_t>(std::max(1, max_threads()));
    if (scratch_.size() < nt) scratch_.resize(nt);
    for (auto& ts : scratch_) {
      fit(ts.gan, rows, d);
      fit(ts.gau, prows, d);
      if (fused) fit(ts.g, rows, d), fit(ts.an, rows, d);
    }
    if (partial_.size() < static_cast<size_t>(ngrp)) partial_.resize(static_cast<size_t>(ngrp));
    for (auto& gp : partial_)
      if (gp.W_u.rows() != d) {
        gp.W_u.resize(d, d), gp.W_i.resize(d, d), gp.b_u.resize(d), gp.b_i.resize(d), gp.w_m.resize(d);
      }
  }

  void resize(const batch_shape& s) {
    if (s == shape_) return;
    shape_ = s;
    const index_t R = s.cand_rows(), PR = s.pair_rows();
    nt_.resize(PR, s.d);  // Ñ and e of the selected rows only: (B*H) x d
    e_.resize(PR, s.d);
    a_u_.resize(PR, s.d);
    dgsel_.resize(PR, s.d);
    syth_.resize(R);
    norm_.resize(R);
    delta_.resize(R);
    q_.resize(R);
    dnorm_.resize(R);
    onorm_.resize(R);
    t_.resize(R);
    m_.resize(R);
    per_hop_.resize(PR);
    k_star_.assign(PR, 0);
    k_dns_.assign(PR, 0);
    pos_.resize(s.B);
    neg_.resize(s.B);
    const index_t nblk = (s.B + block_pairs() - 1) / block_pairs();
    blk_poles_.assign(static_cast<size_t>(nblk), 0);
    blk_stats_.assign(static_cast<size_t>(3 * nblk), 0.0);
  }

  std::array<loss::emb_block<Scalar>, 3> reg_blocks(const ego_grads<Scalar>* eg) const {
    const batch_shape& s = shape_;
    std::array<loss::emb_block<Scalar>, 3> bl;
    bl[0] = {ego_.U0, s.d, s.B, nullptr, eg ? eg->dU0 : nullptr, ego_.ld};
    bl[1] = {ego_.P0, s.d, s.B, nullptr, eg ? eg->dP0 : nullptr, ego_.ld};
    bl[2] = {ego_.N0, s.d, s.B * s.K, nullptr, eg ? eg->dN0 : nullptr, ego_.ld};
    return bl;
  }

  void compute_stats(index_t nblk) {
    const batch_shape& s = shape_;
    double sat = 0, xin = 0, gs = 0;
    for (index_t blk = 0; blk < nblk; ++blk)
      sat += blk_stats_[3 * blk], xin += blk_stats_[3 * blk + 1], gs += blk_stats_[3 * blk + 2];
    const double nr = static_cast<double>(s.cand_rows());
    stats_.frac_saturated_margin = sat / nr;
    stats_.mean_xi_norm = xin / nr;
    augment::select_candidates(s, norm_.data(), norm_.data(), Scalar(0), opts_.per_hop_selection, k_dns_.data());
    double diff = 0;
    for (index_t i = 0; i < s.pair_rows(); ++i) diff += k_dns_[i] != k_star_[i] ? 1.0 : 0.0;
    stats_.frac_kstar_differs_dns = diff / static_cast<double>(s.pair_rows());
    stats_.mean_gate = gs / (nr * static_cast<double>(s.d));
  }

  static constexpr index_t kBlockRows = 256;
  static constexpr index_t kGroups = 16;

  ans_options opts_;
  batch_shape shape_{};
  bool compute_stats_ = true;
  bool full_rows_ = false;  ///< g_ and a_n_ hold the last forward's rows (forward(), not forward_backward())
  const Scalar *U_ = nullptr, *P_ = nullptr, *N_ = nullptr;
  const ans_params<Scalar>* params_ = nullptr;
  ego_rows<Scalar> ego_{};
  ans_terms<Scalar> terms_{};
  ans_stats stats_{};
  Scalar orth_coef_ = 0;
  std::array<Scalar, 3> reg_norms_{};  ///< ‖U⁰‖_F, ‖P⁰‖_F, ‖N⁰‖_F of the last forward (reused by backward)
  matrix<Scalar> nt_, g_, e_, a_n_, a_u_, dgsel_, wt_u_, wt_i_;
  vector<Scalar> syth_, norm_, delta_, q_, dnorm_, onorm_, t_, m_, per_hop_, pos_, neg_;
  std::vector<index_t> k_star_, k_dns_, blk_poles_;
  std::vector<double> blk_stats_;
  std::vector<thread_scratch> scratch_;
  std::vector<group_partial> partial_;
};

}  // namespace ans::model
