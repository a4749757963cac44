/// @file bpr_model.hpp
/// @brief The BPR objective on a graph for the baseline samplers: RNS (the first candidate), DNS (the
/// highest-scoring of K candidates) and MixGCF (positive mixing + hop mixing), with propagation to E0.
///
///   score(u, i) = Σ_h <u_h, i_h>                (the per-hop stack; L = 0 is MF)
///   x_b = score(u_b, p_b) − score(u_b, n*_b)
///   L = −1/B Σ_b log(σ(x_b) + δ)   [faithful]  or  1/B Σ_b softplus(−x_b)   [stable]
///     + λ·R(E0[u], E0[p], E0[n*_0])            (RecBole EmbLoss on the ego rows of the selected negative)
///
/// Gradients (β_b = ∂L/∂x_b, see ans/loss/bpr.hpp):
///   ∂L/∂U_b = β_b (P_b − N*_b),  ∂L/∂P_b = β_b U_b,  ∂L/∂N*_b = −β_b U_b;
///   MixGCF: N*_h = α_h⊙P_h + (1−α_h)⊙N[k*_h, h], so ∂L/∂P_h += α_h⊙∂L/∂N*_h and
///           ∂L/∂N[k*_h, h] += (1−α_h)⊙∂L/∂N*_h;
///   then scatter to the stack rows and ∂L/∂E0 = Σ_h Â^h G_S[:, h] (as in ans_model.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ans/graph/adjacency.hpp"
#include "ans/loss/bpr.hpp"
#include "ans/loss/l2.hpp"
#include "ans/model/ans_model.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/sampling/dns.hpp"
#include "ans/sampling/mixgcf.hpp"
#include "ans/sampling/rng.hpp"

namespace ans::model {

/// How the negative of a pair is chosen from its K candidates.
enum class negative_selection {
  first,   ///< RNS: the first candidate (uniform draws make it a uniform negative)
  dns,     ///< DNS: argmax_k score(u, c_k), ties to the first
  mixgcf   ///< MixGCF: n*_h = α_h p_h + (1−α_h) n_{k*_h,h}, k*_h = argmax_k <u_h, α_h p_h + (1−α_h) n_{k,h}>
};

/// Options of bpr_objective.
struct bpr_options {
  negative_selection selection = negative_selection::first;
  double reg_weight = 1e-4;      ///< λ
  bool reg_require_pow = false;  ///< RecBole EmbLoss mode (see ans/loss/l2.hpp)
  bool bpr_stable = false;       ///< stable softplus form instead of log(σ + 1e-10)
  double bpr_eps = 1e-10;
  sampling::mix_alpha mix = sampling::mix_alpha::per_hop;  ///< MixGCF's α granularity
};

/// BPR objective with its workspaces (sized once per shape). Not thread-safe; kernels inside are threaded.
template <class Scalar>
class bpr_objective {
 public:
  bpr_objective(int n_layers, const bpr_options& opts) : prop_(n_layers), o_(opts) {}

  int n_layers() const { return prop_.n_layers(); }
  bpr_options& options() { return o_; }

  /// Runs the forward pass; returns the loss. `seed` and `step` key MixGCF's α draws (one stream per row).
  Scalar forward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0, const batch_ids& ids,
                 std::uint64_t seed = 0, std::uint64_t step = 0) {
    ANS_CHECK(ids.B > 0 && ids.K > 0, "empty batch: B = " << ids.B << ", K = " << ids.K);
    ANS_CHECK(e0.rows() == adj.n_nodes(), "E0 has " << e0.rows() << " rows, the graph has " << adj.n_nodes());
    adj_ = &adj;
    e0_ = &e0;
    ids_ = ids;
    const index_t d = e0.cols(), H = prop_.n_hops(), B = ids.B, K = ids.K, nu = adj.n_users;
    d_ = d;
    if (H > 1) prop_.forward(adj, e0, stack_);
    const matrix<Scalar>& S = H > 1 ? stack_ : e0;
    const auto items = S.bottomRows(adj.n_items);
    neg_.resize(B, H * d);
    alpha_.resize(B, H * d);
    kstar_.resize(static_cast<size_t>(B * H));
    neg_node0_.resize(static_cast<size_t>(B));
    x_.resize(static_cast<size_t>(B));
    for (index_t b = 0; b < B; ++b) {
      ANS_CHECK(ids.users[b] >= 0 && ids.users[b] < nu, "batch user id " << ids.users[b] << " outside [0, " << nu << ")");
      ANS_CHECK(ids.pos_items[b] >= 0 && ids.pos_items[b] < adj.n_items, "batch item id " << ids.pos_items[b] << " out of range");
      for (index_t k = 0; k < K; ++k)
        ANS_CHECK(ids.cand_items[b * K + k] >= 0 && ids.cand_items[b * K + k] < adj.n_items,
                  "candidate item id " << ids.cand_items[b * K + k] << " out of range");
    }
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b) {
      const Scalar* u = S.row(ids.users[b]).data();
      const Scalar* p = S.row(nu + ids.pos_items[b]).data();
      const std::int32_t* c = ids.cand_items + b * K;
      index_t* ks = kstar_.data() + b * H;
      Scalar* n = neg_.row(b).data();
      switch (o_.selection) {
        case negative_selection::first:
        case negative_selection::dns: {
          const index_t k = o_.selection == negative_selection::first ? 0 : sampling::dns_select(u, items, c, K);
          std::fill(ks, ks + H, k);
          neg_.row(b) = items.row(c[k]);
          break;
        }
        case negative_selection::mixgcf: {
          auto r = sampling::stream(seed, 0x4D4958ULL /* "MIX" */, step, static_cast<std::uint64_t>(b));
          sampling::mixgcf_sample(u, p, items, c, K, H, r, o_.mix, alpha_.row(b).data(), n, ks);
          break;
        }
      }
      Scalar xs = 0;
      for (index_t j = 0; j < H * d; ++j) xs += u[j] * (p[j] - n[j]);
      x_[b] = xs;
      neg_node0_[b] = nu + c[ks[0]];
    }
    Scalar loss = 0;
    for (index_t b = 0; b < B; ++b)
      loss += o_.bpr_stable ? math::softplus(-x_[b]) : -std::log(math::sigmoid(x_[b]) + Scalar(o_.bpr_eps));
    loss /= Scalar(B);
    if (o_.reg_weight != 0) loss += Scalar(o_.reg_weight) * loss::emb_loss_forward(reg_blocks(nullptr), B, o_.reg_require_pow);
    return loss;
  }

  /// Accumulates ∂L/∂E0 (+=). For L = 0 only `touched_rows()` change.
  void backward(matrix<Scalar>& grad_e0) {
    ANS_CHECK(adj_ != nullptr, "bpr_objective::backward called before forward");
    const index_t d = d_, H = prop_.n_hops(), B = ids_.B, K = ids_.K, nu = adj_->n_users;
    const matrix<Scalar>& S = H > 1 ? stack_ : *e0_;
    matrix<Scalar>* target = &grad_e0;
    if (H > 1) {
      if (grad_stack_.rows() != S.rows() || grad_stack_.cols() != H * d) grad_stack_.resize(S.rows(), H * d);
      grad_stack_.setZero();
      target = &grad_stack_;
    }
    // Serial scatter (repeated ids add in a fixed order: deterministic).
    for (index_t b = 0; b < B; ++b) {
      const Scalar beta = loss::bpr_dx(B, x_[b], o_.bpr_stable, Scalar(o_.bpr_eps));  // β_b = ∂L/∂x_b
      const index_t u = ids_.users[b], p = nu + ids_.pos_items[b];
      const auto urow = S.row(u);
      target->row(u) += beta * (S.row(p) - neg_.row(b));  // ∂L/∂U = β (P − N*)
      target->row(p) += beta * urow;                      // ∂L/∂P = β U
      const std::int32_t* c = ids_.cand_items + b * K;
      for (index_t h = 0; h < H; ++h) {
        const index_t n = nu + c[kstar_[b * H + h]];
        if (o_.selection == negative_selection::mixgcf) {
          const auto a = alpha_.row(b).segment(h * d, d).array();
          const auto gu = (-beta) * urow.segment(h * d, d).array();  // ∂L/∂N*_h = −β U_h
          target->row(p).segment(h * d, d).array() += a * gu;                      // α ⊙ ∂L/∂N*
          target->row(n).segment(h * d, d).array() += (Scalar(1) - a) * gu;        // (1−α) ⊙ ∂L/∂N*
        } else {
          target->row(n).segment(h * d, d) -= beta * urow.segment(h * d, d);       // ∂L/∂N* = −β U
        }
      }
    }
    if (H > 1) prop_.backward(*adj_, grad_stack_, grad_e0);
    if (o_.reg_weight != 0)
      loss::emb_loss_backward(reg_blocks(grad_e0.data()), B, o_.reg_require_pow, Scalar(o_.reg_weight));
    // Touched rows (L = 0).
    touched_.clear();
    if (H == 1) {
      const index_t n_nodes = e0_->rows();
      if (static_cast<index_t>(mark_.size()) != n_nodes) mark_.assign(static_cast<size_t>(n_nodes), 0);
      auto add = [&](index_t r) {
        if (!mark_[r]) mark_[r] = 1, touched_.push_back(r);
      };
      for (index_t b = 0; b < B; ++b) {
        add(ids_.users[b]);
        add(nu + ids_.pos_items[b]);
        for (index_t h = 0; h < H; ++h) add(nu + ids_.cand_items[b * K + kstar_[b * H + h]]);
      }
      for (auto r : touched_) mark_[r] = 0;
      std::sort(touched_.begin(), touched_.end());
    }
  }

  const std::vector<index_t>& touched_rows() const { return touched_; }
  /// Selected candidate per (b, h) of the last forward ([B, H]).
  const std::vector<index_t>& k_star() const { return kstar_; }

 private:
  std::vector<loss::emb_block<Scalar>> reg_blocks(Scalar* grad) {
    user_ids_.resize(static_cast<size_t>(ids_.B));
    pos_ids_.resize(static_cast<size_t>(ids_.B));
    for (index_t b = 0; b < ids_.B; ++b) {
      user_ids_[b] = ids_.users[b];
      pos_ids_[b] = adj_->n_users + ids_.pos_items[b];
    }
    const Scalar* t = e0_->data();
    return {{t, d_, ids_.B, user_ids_.data(), grad}, {t, d_, ids_.B, pos_ids_.data(), grad},
            {t, d_, ids_.B, neg_node0_.data(), grad}};
  }

  propagation::lightgcn<Scalar> prop_;
  bpr_options o_;
  const graph::normalized_adjacency<Scalar>* adj_ = nullptr;
  const matrix<Scalar>* e0_ = nullptr;
  batch_ids ids_{};
  index_t d_ = 0;
  matrix<Scalar> stack_, grad_stack_, neg_, alpha_;
  std::vector<index_t> kstar_, neg_node0_, user_ids_, pos_ids_, touched_;
  std::vector<Scalar> x_;
  std::vector<char> mark_;
};

}  // namespace ans::model
