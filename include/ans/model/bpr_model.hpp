/// @file bpr_model.hpp
/// @brief The BPR objective on a graph for the baseline samplers: RNS (the first candidate), DNS (the
/// highest-scoring of K candidates) and MixGCF (positive mixing + hop mixing), with propagation to E0.
///
/// Every score is the readout's inner product (ans/propagation/readout.hpp), the same in training and in
/// evaluation: ē = Σ_h α_h Â^h E0 (mean: LightGCN, MixGCF, DENS, ReChorus), or the concatenation, whose
/// inner product is the ANS reference's per-hop sum Σ_h <u_h, i_h>.
///
///   x_b = <ū_b, p̄_b> − <ū_b, n̄*_b>
///   L = −1/B Σ_b log(σ(x_b) + δ)   [faithful]  or  1/B Σ_b softplus(−x_b)   [stable]
///     + λ·R(E0[u], E0[p], E0[n*_0])           (RecBole EmbLoss on the ego rows of the selected negative)
///
/// Selection (as MixGCF's and DENS's code, `modules/LightGCN.py`):
///   RNS: n* = c_0;  DNS: n* = c_{k*}, k* = argmax_k <ū, c̄_k> (ties to the first);
///   MixGCF: n*_h = α_h⊙p_h + (1−α_h)⊙c_{k*_h,h}, k*_h = argmax_k <ū, α_h⊙p_h + (1−α_h)⊙c_{k,h}>, n̄* = Σ_h w_h n*_h
///           (concat: each hop against u_h, the reference's per-hop form).
///
/// Gradients (β_b = ∂L/∂x_b, see ans/loss/bpr.hpp; w_h the readout weights):
///   ∂L/∂ū_b = β_b (p̄_b − n̄*_b),  ∂L/∂p̄_b = β_b ū_b,  ∂L/∂n̄*_b = −β_b ū_b;  hop h of a row gets w_h times its
///   pooled gradient (concat: the hop-h block of it); MixGCF: ∂L/∂p_h += α_h⊙∂L/∂n*_h, ∂L/∂c_{k*_h,h} +=
///   (1−α_h)⊙∂L/∂n*_h; then ∂L/∂E0 = Σ_h Â^h G_h (reverse Horner over N x d buffers, the batch rows of each hop
///   scattered in as it enters: no N x (H·d) stack). R's gradient enters ∂L/∂E0 unpropagated.
///
/// Two paths, one formula each: RNS and DNS with a weighted readout (and every MF model) score on the
/// pooled N x d table (the readout's running sum); MixGCF and the concatenation gather the batch's per-hop
/// rows from the hop-major layers (lightgcn::forward_layers).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "ans/graph/adjacency.hpp"
#include "ans/loss/bpr.hpp"
#include "ans/loss/l2.hpp"
#include "ans/model/ans_model.hpp"
#include "ans/model/row_scatter.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/propagation/readout.hpp"
#include "ans/sampling/dns.hpp"
#include "ans/sampling/mixgcf.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/sampling/selector.hpp"

namespace ans::model {

/// How the negative of a pair is chosen from its K candidates.
enum class negative_selection {
  first,   ///< RNS: the first candidate (uniform draws make it a uniform negative)
  dns,     ///< DNS: argmax_k score(u, c_k), ties to the first
  mixgcf   ///< MixGCF: positive mixing + hop mixing (see the file comment)
};

/// One pair's score on pooled rows: x = <ū, p̄> − <ū, n̄*> (d entries each, summed in index order).
template <class Scalar>
inline Scalar bpr_pair_score(const Scalar* u, const Scalar* p, const Scalar* n, index_t d) {
  Scalar sp = 0, sn = 0;
  for (index_t j = 0; j < d; ++j) sp += u[j] * p[j];
  for (index_t j = 0; j < d; ++j) sn += u[j] * n[j];
  return sp - sn;
}

/// One pair's row gradients on pooled rows, given β = ∂L/∂x (written, not accumulated):
///   ∂L/∂ū = β (p̄ − n̄*),  ∂L/∂p̄ = β ū,  ∂L/∂n̄* = −β ū.
template <class Scalar>
inline void bpr_pair_gradients(Scalar beta, const Scalar* u, const Scalar* p, const Scalar* n, index_t d, Scalar* gu,
                               Scalar* gp, Scalar* gn) {
  for (index_t j = 0; j < d; ++j) {
    gu[j] = beta * (p[j] - n[j]);  // ∂L/∂ū = β (p̄ − n̄*)
    gp[j] = beta * u[j];           // ∂L/∂p̄ = β ū
    gn[j] = -beta * u[j];          // ∂L/∂n̄* = −β ū
  }
}

/// Options of bpr_objective.
struct bpr_options {
  negative_selection selection = negative_selection::first;
  /// The score's layer combination (L >= 1): mean (LightGCN and every framework), sum, last, or concat (the
  /// ANS reference's Σ_h <u_h, i_h>).
  propagation::readout_kind readout = propagation::readout_kind::mean;
  double reg_weight = 1e-4;      ///< λ
  bool reg_require_pow = false;  ///< RecBole EmbLoss mode (see ans/loss/l2.hpp)
  bool bpr_stable = false;       ///< stable softplus form instead of log(σ + 1e-10)
  double bpr_eps = 1e-10;
  sampling::mix_alpha mix = sampling::mix_alpha::per_hop;  ///< MixGCF's α granularity
};

/// BPR objective with its workspaces (sized once per shape). Not thread-safe; kernels inside are threaded.
/// `forward` keeps the addresses of `adj` and `e0` for `backward`: both must outlive the pair of calls.
///
/// `Selector` (ans/sampling/selector.hpp): builtin_selection (the default) chooses by options().selection; a
/// user selector picks k from the K candidates' scores instead (options().selection must then be `first` or
/// `dns`: MixGCF synthesises its negative and is not a choice among candidates).
template <class Scalar, class Selector = sampling::builtin_selection>
class bpr_objective {
  static_assert(sampling::is_selector_v<Selector, Scalar>,
                "bpr_objective<Scalar, Selector>: Selector must be sampling::builtin_selection or have a const member "
                "`template <class Rng> index_t select(const Scalar* scores, index_t K, Rng& rng) const` "
                "(ans/sampling/selector.hpp)");
  static constexpr bool kBuiltin = std::is_same_v<Selector, sampling::builtin_selection>;

 public:
  bpr_objective(int n_layers, const bpr_options& opts, Selector selector = Selector{})
      : ro_(n_layers, opts.readout), o_(opts), alpha_w_(hop_weights(n_layers, opts.readout)),
        sel_(std::move(selector)) {
    ANS_CHECK(kBuiltin || opts.selection != negative_selection::mixgcf,
              "bpr_objective: a user Selector chooses among the candidates; MixGCF synthesises its negative instead "
              "(use selection first or dns with a Selector)");
  }
  const Selector& selector() const { return sel_; }

  int n_layers() const { return ro_.n_layers(); }
  const bpr_options& options() const { return o_; }

  /// Runs the forward pass; returns the loss. `seed` and `step` key MixGCF's α draws (one stream per row).
  Scalar forward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0, const batch_ids& ids,
                 std::uint64_t seed = 0, std::uint64_t step = 0) {
    ANS_CHECK(ids.B > 0 && ids.K > 0, "bpr_objective: empty batch: B = " << ids.B << ", K = " << ids.K);
    ANS_CHECK(e0.rows() == adj.n_nodes(),
              "bpr_objective: E0 is " << e0.rows() << " x " << e0.cols() << ", the graph has " << adj.n_nodes() << " nodes");
    const index_t H = ro_.n_layers() + 1, B = ids.B, K = ids.K, nu = adj.n_users;
    for (index_t b = 0; b < B; ++b) {  // serial: an exception must not leave a parallel region
      ANS_CHECK(ids.users[b] >= 0 && ids.users[b] < nu, "batch user id " << ids.users[b] << " outside [0, " << nu << ")");
      ANS_CHECK(ids.pos_items[b] >= 0 && ids.pos_items[b] < adj.n_items,
                "batch item id " << ids.pos_items[b] << " outside [0, " << adj.n_items << ")");
      for (index_t k = 0; k < K; ++k)
        ANS_CHECK(ids.cand_items[b * K + k] >= 0 && ids.cand_items[b * K + k] < adj.n_items,
                  "candidate item id " << ids.cand_items[b * K + k] << " outside [0, " << adj.n_items << ")");
    }
    adj_ = &adj;
    e0_ = &e0;
    ids_ = ids;
    d_ = e0.cols();
    pooled_ = o_.selection != negative_selection::mixgcf && (H == 1 || o_.readout != propagation::readout_kind::concat);
    kstar_.resize(static_cast<size_t>(B * H));
    neg_node_.resize(static_cast<size_t>(B * H));
    x_.resize(static_cast<size_t>(B));
    if constexpr (!kBuiltin) scores_.resize(static_cast<size_t>(B * K));  // the Selector's [B, K] scores
    if (pooled_)
      forward_pooled(adj, e0, seed, step);
    else
      forward_per_hop(adj, e0, seed, step);
    if constexpr (!kBuiltin)
      for (index_t b = 0; b < B; ++b)  // serial: an exception must not leave a parallel region
        ANS_CHECK(kstar_[b * H] >= 0 && kstar_[b * H] < K,
                  "bpr_objective: the Selector returned k = " << kstar_[b * H] << " for pair " << b << ", outside [0, " << K << ")");
    user_ids_.resize(static_cast<size_t>(B));  // the regulariser's ego rows (hop 0's selected negative)
    pos_ids_.resize(static_cast<size_t>(B));
    neg_ids_.resize(static_cast<size_t>(B));
    for (index_t b = 0; b < B; ++b)
      user_ids_[b] = ids.users[b], pos_ids_[b] = nu + ids.pos_items[b], neg_ids_[b] = neg_node_[b * H];
    Scalar loss = 0;
    for (index_t b = 0; b < B; ++b) loss += loss::bpr_term(x_[b], o_.bpr_stable, Scalar(o_.bpr_eps));
    loss /= Scalar(B);
    if (o_.reg_weight != 0) loss += Scalar(o_.reg_weight) * loss::emb_loss_forward(reg_blocks(nullptr), B, o_.reg_require_pow);
    return loss;
  }

  /// `forward` keeps the addresses of the graph and of E0 for `backward`: temporaries (an E0 built from an
  /// Eigen expression or Map, a graph returned by value) are rejected at compile time.
  Scalar forward(graph::normalized_adjacency<Scalar>&&, const matrix<Scalar>&, const batch_ids&, std::uint64_t = 0,
                 std::uint64_t = 0) = delete;
  Scalar forward(const graph::normalized_adjacency<Scalar>&, matrix<Scalar>&&, const batch_ids&, std::uint64_t = 0,
                 std::uint64_t = 0) = delete;

  /// Accumulates ∂L/∂E0 (+=). For L = 0 only `touched_rows()` change (all rows may for L >= 1).
  void backward(matrix<Scalar>& grad_e0) {
    ANS_CHECK(adj_ != nullptr, "bpr_objective::backward called before forward");
    ANS_CHECK(grad_e0.rows() == e0_->rows() && grad_e0.cols() == d_,
              "bpr_objective::backward: grad_e0 is " << grad_e0.rows() << " x " << grad_e0.cols() << ", E0 is "
                                                     << e0_->rows() << " x " << d_);
    const index_t d = d_, H = ro_.n_layers() + 1, B = ids_.B, nu = adj_->n_users;
    const index_t w = pooled_ ? d : H * d;  // width of the gradient rows gU_, gP_, gN_
    size(gU_, B, w), size(gP_, B, w), size(gN_, B, w);
    // β_b = ∂L/∂x_b; then the rows' gradients, per pair (independent: parallel)
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b) row_gradients(b, loss::bpr_dx(B, x_[b], o_.bpr_stable, Scalar(o_.bpr_eps)));
    const bool par = B * w > (1 << 14);
    // hop h of every batch row into T (row stride ldt), scaled by the readout weight on the pooled path
    auto scatter_hop = [&](index_t h, Scalar* T, index_t ldt) {
      const Scalar s = pooled_ ? alpha_w_[h] : Scalar(1);
      if (s == Scalar(0)) return;
      const index_t c0 = pooled_ ? 0 : h * d;
      owned_scatter(T, ldt, d, par, [&](auto&& add) {
        for (index_t b = 0; b < B; ++b) {
          add(ids_.users[b], gU_.data() + b * w + c0, s);
          add(nu + ids_.pos_items[b], gP_.data() + b * w + c0, s);
          add(neg_node_[b * H + h], gN_.data() + b * w + c0, s);
        }
      });
    };
    if (H == 1) {
      scatter_hop(0, grad_e0.data(), d);
    } else {
      Scalar* ws = pooled_ ? ro_.workspace() : (H > 2 ? layers_.data() : nullptr);  // dead after the forward
      ro_.backward_sparse(*adj_, d, scatter_hop, grad_e0, ws);
    }
    if (o_.reg_weight != 0)
      loss::emb_loss_backward(reg_blocks(grad_e0.data()), B, o_.reg_require_pow, Scalar(o_.reg_weight));
    touched_.clear();
    if (H == 1)
      touched_.collect(e0_->rows(), [&](auto&& add) {
        for (index_t b = 0; b < B; ++b) add(ids_.users[b]), add(nu + ids_.pos_items[b]), add(neg_node_[b]);
      });
  }

  /// Sorted node ids whose gradient the last backward changed (L = 0); empty for L >= 1 (all rows).
  const std::vector<index_t>& touched_rows() const { return touched_.rows(); }
  /// Selected candidate per (b, h) of the last forward ([B, H]; RNS/DNS repeat one k per pair).
  const std::vector<index_t>& k_star() const { return kstar_; }

 private:
  static std::vector<Scalar> hop_weights(int n_layers, propagation::readout_kind k) {
    auto w = propagation::readout_weights<Scalar>(k, n_layers);
    if (w.empty()) w.assign(static_cast<size_t>(n_layers + 1), Scalar(1));  // concat: every hop block as is
    return w;
  }

  static void size(matrix<Scalar>& m, index_t r, index_t c) {
    if (m.rows() != r || m.cols() != c) m.resize(r, c);
  }

  // RNS/DNS on the pooled N x d table (E0 itself for L = 0).
  void forward_pooled(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0, std::uint64_t seed,
                      std::uint64_t step) {
    const index_t d = d_, H = ro_.n_layers() + 1, B = ids_.B, K = ids_.K, nu = adj.n_users;
    if (H > 1) ro_.forward(adj, e0, table_);
    const matrix<Scalar>& T = H > 1 ? table_ : e0;
    const auto items = T.bottomRows(adj.n_items);
    size(U_, B, d), size(P_, B, d), size(N_, B, d);
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b) {
      const Scalar* u = T.row(ids_.users[b]).data();
      const Scalar* p = T.row(nu + ids_.pos_items[b]).data();
      const id_type* c = ids_.cand_items + b * K;
      const index_t k = choose(b, u, items, c, K, seed, step);
      if (k < 0 || k >= K) {  // a user selector's bad k: reported after the loop
        for (index_t h = 0; h < H; ++h) kstar_[b * H + h] = k, neg_node_[b * H + h] = nu + c[0];
        x_[b] = 0;
        continue;
      }
      const Scalar* n = items.row(c[k]).data();
      std::copy(u, u + d, U_.row(b).data());
      std::copy(p, p + d, P_.row(b).data());
      std::copy(n, n + d, N_.row(b).data());
      x_[b] = bpr_pair_score(u, p, n, d);
      for (index_t h = 0; h < H; ++h) kstar_[b * H + h] = k, neg_node_[b * H + h] = nu + c[k];
    }
  }

  // MixGCF (any readout) and the concatenation: the batch's per-hop rows from the hop-major layers.
  void forward_per_hop(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0, std::uint64_t seed,
                       std::uint64_t step) {
    const index_t d = d_, H = ro_.n_layers() + 1, Hd = H * d, B = ids_.B, K = ids_.K, nu = adj.n_users,
                  nn = adj.n_nodes();
    if (H > 1) {
      size(layers_, (H - 1) * nn, d);
      ro_.propagation().forward_layers(adj, e0, layers_.data());
    }
    size(U_, B, Hd), size(P_, B, Hd), size(N_, B, Hd), size(C_, B * K, Hd), size(alpha_, B, Hd);
    const bool concat = o_.readout == propagation::readout_kind::concat;
    const index_t wb = concat ? 0 : d;  // the pooled rows ū, p̄, n̄* (weighted readouts)
    size(Ub_, B, wb), size(Pb_, B, wb), size(Nb_, B, wb);
    iota_.resize(static_cast<size_t>(K));
    std::iota(iota_.begin(), iota_.end(), 0);
    const Scalar* E = e0.data();
    const Scalar* Ld = layers_.data();
    auto row = [&](index_t node, Scalar* out) {  // [S_0 | S_1 | ... | S_L] of one node
      std::copy(E + node * d, E + (node + 1) * d, out);
      for (index_t l = 1; l < H; ++l) std::copy(Ld + ((l - 1) * nn + node) * d, Ld + ((l - 1) * nn + node + 1) * d, out + l * d);
    };
    const Scalar* a = alpha_w_.data();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b) {
      Scalar* u = U_.row(b).data();
      Scalar* p = P_.row(b).data();
      Scalar* n = N_.row(b).data();
      const id_type* c = ids_.cand_items + b * K;
      row(ids_.users[b], u);
      row(nu + ids_.pos_items[b], p);
      for (index_t k = 0; k < K; ++k) row(nu + c[k], C_.row(b * K + k).data());
      const Eigen::Map<const matrix<Scalar>> cand(C_.row(b * K).data(), K, Hd);
      index_t* ks = kstar_.data() + b * H;
      Scalar* ub = concat ? nullptr : Ub_.row(b).data();
      if (o_.selection == negative_selection::mixgcf) {
        if (!concat) propagation::readout_row([&](index_t h) { return u + h * d; }, a, H, d, ub);  // ū
        auto r = sampling::stream(seed, 0x4D4958ULL /* "MIX" */, step, static_cast<std::uint64_t>(b));
        sampling::mixgcf_sample(concat ? u : ub, p, cand, iota_.data(), K, H, r, o_.mix, alpha_.row(b).data(), n, ks,
                                !concat);
      } else {  // concat (L >= 1): RNS or DNS (or the Selector) on Σ_h <u_h, c_h>
        const index_t k = choose(b, u, cand, iota_.data(), K, seed, step);
        std::fill(ks, ks + H, k);
        if (k < 0 || k >= K) {  // a user selector's bad k: reported after the loop
          for (index_t h = 0; h < H; ++h) neg_node_[b * H + h] = nu + c[0];
          x_[b] = 0;
          continue;
        }
        std::copy(cand.row(k).data(), cand.row(k).data() + Hd, n);
      }
      for (index_t h = 0; h < H; ++h) neg_node_[b * H + h] = nu + c[ks[h]];
      if (concat) {
        x_[b] = bpr_pair_score(u, p, n, Hd);  // Σ_h <u_h, p_h − n*_h>
      } else {
        Scalar* pb = Pb_.row(b).data();
        Scalar* nb = Nb_.row(b).data();
        propagation::readout_row([&](index_t h) { return p + h * d; }, a, H, d, pb);  // p̄
        propagation::readout_row([&](index_t h) { return n + h * d; }, a, H, d, nb);  // n̄* = Σ_h w_h n*_h
        x_[b] = bpr_pair_score(ub, pb, nb, d);  // <ū, p̄> − <ū, n̄*>
      }
    }
  }

  // The candidate pair b trains against: RNS the first, DNS the best-scored (sampling::dns_select), or the
  // user Selector's choice from the K scores <u, items.row(c[k])> (its stream keyed on (seed, step, b)).
  template <class Items>
  index_t choose(index_t b, const Scalar* u, const Items& items, const id_type* c, index_t K, std::uint64_t seed,
                 std::uint64_t step) {
    if constexpr (kBuiltin) {
      (void)b, (void)seed, (void)step;
      return o_.selection == negative_selection::first ? 0 : sampling::dns_select(u, items, c, K);
    } else {
      Scalar* sc = scores_.data() + b * K;
      const Eigen::Map<const vector<Scalar>> uv(u, items.cols());
      for (index_t k = 0; k < K; ++k) sc[k] = items.row(c[k]).dot(uv.transpose());
      auto r = sampling::stream(seed, 0x53454CULL /* "SEL" */, step, static_cast<std::uint64_t>(b));
      return static_cast<index_t>(sel_.select(static_cast<const Scalar*>(sc), K, r));
    }
  }

  // The gradient rows of pair b: gU_, gP_, gN_ (pooled: d wide; per-hop: H·d, hop h the source of hop h).
  void row_gradients(index_t b, Scalar beta) {
    const index_t d = d_, H = ro_.n_layers() + 1;
    Scalar *gu = gU_.row(b).data(), *gp = gP_.row(b).data(), *gn = gN_.row(b).data();
    if (pooled_) {
      bpr_pair_gradients(beta, U_.row(b).data(), P_.row(b).data(), N_.row(b).data(), d, gu, gp, gn);
      return;
    }
    const bool concat = o_.readout == propagation::readout_kind::concat;
    const bool mix = o_.selection == negative_selection::mixgcf;
    // concat: every hop block with weight 1 against its own hop; weighted: hop h gets w_h × the pooled gradient
    const Scalar *u = concat ? U_.row(b).data() : Ub_.row(b).data();
    const Scalar *p = concat ? P_.row(b).data() : Pb_.row(b).data();
    const Scalar *n = concat ? N_.row(b).data() : Nb_.row(b).data();
    const Scalar* al = alpha_.row(b).data();
    for (index_t h = 0; h < H; ++h) {
      const Scalar w = concat ? Scalar(1) : alpha_w_[h];
      const index_t o = concat ? h * d : 0;  // offset of hop h in the score's vectors
      for (index_t j = 0; j < d; ++j) {
        const index_t i = h * d + j;
        gu[i] = w * beta * (p[o + j] - n[o + j]);  // ∂L/∂u_h = w_h β (p̄ − n̄*)
        const Scalar gs = -w * beta * u[o + j];     // ∂L/∂n*_h = −w_h β ū
        gp[i] = w * beta * u[o + j];               // ∂L/∂p_h = w_h β ū
        if (mix) {
          gp[i] += al[i] * gs;                 // + α_h ⊙ ∂L/∂n*_h
          gn[i] = (Scalar(1) - al[i]) * gs;    // ∂L/∂c_{k*_h,h} = (1−α_h) ⊙ ∂L/∂n*_h
        } else {
          gn[i] = gs;
        }
      }
    }
  }

  // The regulariser's three blocks over the id lists the forward built.
  std::vector<loss::emb_block<Scalar>> reg_blocks(Scalar* grad) {
    const Scalar* t = e0_->data();
    return {{t, d_, ids_.B, user_ids_.data(), grad}, {t, d_, ids_.B, pos_ids_.data(), grad},
            {t, d_, ids_.B, neg_ids_.data(), grad}};
  }

  propagation::readout<Scalar> ro_;
  bpr_options o_;
  std::vector<Scalar> alpha_w_;  ///< readout weights per hop (concat: 1 each)
  const graph::normalized_adjacency<Scalar>* adj_ = nullptr;
  const matrix<Scalar>* e0_ = nullptr;
  batch_ids ids_{};
  index_t d_ = 0;
  bool pooled_ = true;
  matrix<Scalar> table_, layers_, U_, P_, N_, C_, Ub_, Pb_, Nb_, alpha_, gU_, gP_, gN_;
  std::vector<index_t> kstar_, neg_node_, user_ids_, pos_ids_, neg_ids_;
  std::vector<id_type> iota_;
  std::vector<Scalar> x_;
  std::vector<Scalar> scores_;  ///< [B, K] candidate scores for a user Selector
  touched_set touched_;
  Selector sel_;
};

}  // namespace ans::model
