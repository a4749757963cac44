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
/// @endcode
/// The input buffers (U, P, N, the ego rows and the parameters) must stay alive and unchanged between
/// forward and backward. Workspaces are sized on the first forward and reused while the shape is unchanged.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ans/augment/margin.hpp"
#include "ans/augment/noise.hpp"
#include "ans/augment/select.hpp"
#include "ans/core/batch.hpp"
#include "ans/core/mode.hpp"
#include "ans/disentangle/gate.hpp"
#include "ans/loss/bpr.hpp"
#include "ans/loss/distance.hpp"
#include "ans/loss/l2.hpp"
#include "ans/loss/orth.hpp"
#include "ans/loss/sns.hpp"

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
template <class Scalar>
struct ego_rows {
  const Scalar* U0 = nullptr;
  const Scalar* P0 = nullptr;
  const Scalar* N0 = nullptr;
  bool present() const { return U0 && P0 && N0; }
};

/// Gradient buffers for the ego rows (same layouts as ego_rows); null entries are skipped.
template <class Scalar>
struct ego_grads {
  Scalar* dU0 = nullptr;
  Scalar* dP0 = nullptr;
  Scalar* dN0 = nullptr;
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
  template <class Source>
  const ans_terms<Scalar>& forward(const batch_shape& s, const Scalar* U, const Scalar* P, const Scalar* N,
                                   const ans_params<Scalar>& params, const Source& source,
                                   const index_t* frozen_k_star = nullptr,
                                   const ego_rows<Scalar>& ego = ego_rows<Scalar>{}) {
    s.check();
    ANS_CHECK(U && P && N, "ans_loss::forward: null input");
    ANS_CHECK(params.W_u.rows() == s.d && params.W_u.cols() == s.d && params.W_i.rows() == s.d &&
                  params.W_i.cols() == s.d && params.b_u.size() == s.d && params.b_i.size() == s.d &&
                  params.w_m.size() == s.d,
              "ans_loss::forward: parameters do not have dimension d = " << s.d);
    resize(s);
    U_ = U, P_ = P, N_ = N, params_ = &params, ego_ = ego;
    const const_matrix_map<Scalar> Um(U, s.pair_rows(), s.d), Pm(P, s.pair_rows(), s.d),
        Nm(N, s.cand_rows(), s.d);
    const ans_options& o = opts_;

    gate_.forward(s, Um, Nm, params.W_u, params.b_u, params.W_i, params.b_i);  // F1–F3
    const matrix<Scalar>& g = gate_.g();
    terms_ = ans_terms<Scalar>{};
    terms_.sns = sns_.forward(s, Um, Nm, g, o.sns_stable);                                        // F9
    terms_.distance = dist_.forward(s, Pm, Nm, g, Scalar(o.distance_eps), o.distance_eps_in_norm);  // F5
    terms_.orth = orth_.forward(s, Pm, Nm, g, o.orth_mean_over_hops, o.safe_norm, Scalar(o.safe_norm_eps));  // F6
    stats_ = ans_stats{};
    stats_.margin_pole_events =
        margin_.forward(s, Pm, Nm, g, params.w_m, params.c_m, o.margin, Scalar(o.clamp_tau));  // F7
    noise_.forward(s, Pm, Nm, g, source, o);                                                   // F8
    const vector<Scalar>& m = margin_.m();

    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k)
        for (index_t h = 0; h < H; ++h) {
          const index_t r = (b * K + k) * H + h;
          const Scalar* n = N + r * d;
          const Scalar* u = U + (b * H + h) * d;
          Scalar* nt = nt_.row(r).data();
          noise_.augmented_row(r, n, g.row(r).data(), m[r], nt);  // Ñ = Nh + (Ne + ξ)
          Scalar sy = 0, no = 0;
          for (index_t j = 0; j < d; ++j) {
            sy += u[j] * nt[j];
            no += u[j] * n[j];
          }
          syth_[r] = sy;  // <U,Ñ>
          norm_[r] = no;  // <U,N>
        }
    if (frozen_k_star) {  // F10
      for (index_t i = 0; i < s.pair_rows(); ++i) {
        ANS_CHECK(frozen_k_star[i] >= 0 && frozen_k_star[i] < K, "frozen k* out of range at " << i);
        k_star_[i] = frozen_k_star[i];
      }
    } else {
      augment::select_candidates(s, syth_.data(), norm_.data(), Scalar(o.eps), o.per_hop_selection,
                                 k_star_.data());
    }
    for (index_t b = 0; b < B; ++b) {  // F11–F12
      Scalar ps = 0, ns = 0;
      for (index_t h = 0; h < H; ++h) {
        const Scalar* u = U + (b * H + h) * d;
        const Scalar* p = P + (b * H + h) * d;
        const Scalar* nt = nt_.row(s.nrow(b, k_star_[b * H + h], h)).data();
        Scalar hp = 0, hn = 0;
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
    terms_.bpr = loss::bpr_forward(B, pos_.data(), neg_.data(), o.bpr_stable, Scalar(o.bpr_eps));  // F13
    if (ego.present()) terms_.reg = loss::emb_loss_forward(reg_blocks(nullptr), B, o.reg_require_pow);  // F14
    terms_.total = terms_.bpr + Scalar(o.reg_weight) * terms_.reg +
                   Scalar(o.gamma) * (terms_.sns + terms_.distance + terms_.orth);  // F15
    if (compute_stats_) compute_stats();
    return terms_;
  }

  /// Convenience overload for matrices (U, P: (B*H) x d, N: (B*K*H) x d).
  template <class Source>
  const ans_terms<Scalar>& forward(const batch_shape& s, const matrix<Scalar>& U, const matrix<Scalar>& P,
                                   const matrix<Scalar>& N, const ans_params<Scalar>& params,
                                   const Source& source, const index_t* frozen_k_star = nullptr,
                                   const ego_rows<Scalar>& ego = ego_rows<Scalar>{}) {
    detail::check_shape<Scalar>(U, s.pair_rows(), s.d, "ans_loss: U");
    detail::check_shape<Scalar>(P, s.pair_rows(), s.d, "ans_loss: P");
    detail::check_shape<Scalar>(N, s.cand_rows(), s.d, "ans_loss: N");
    return forward(s, U.data(), P.data(), N.data(), params, source, frozen_k_star, ego);
  }

  /// Backward of `upstream · L`. ACCUMULATES (+=) into dU, dP ((B*H) x d), dN ((B*K*H) x d), the parameter
  /// gradients `grads` (must have dimension d) and the ego-row gradients (regulariser only).
  void backward(Scalar* dU, Scalar* dP, Scalar* dN, ans_params<Scalar>& grads,
                const ego_grads<Scalar>& eg = ego_grads<Scalar>{}, Scalar upstream = Scalar(1)) {
    const batch_shape& s = shape_;
    ANS_CHECK(s.B > 0 && params_, "ans_loss::backward called before forward");
    ANS_CHECK(grads.W_u.rows() == s.d && grads.W_i.rows() == s.d && grads.w_m.size() == s.d &&
                  grads.b_u.size() == s.d && grads.b_i.size() == s.d,
              "ans_loss::backward: gradient struct does not have dimension d = " << s.d);
    const ans_options& o = opts_;
    const index_t B = s.B, K = s.K, H = s.H, d = s.d;
    const const_matrix_map<Scalar> Um(U_, s.pair_rows(), d), Pm(P_, s.pair_rows(), d), Nm(N_, s.cand_rows(), d);
    matrix_map<Scalar> dUm(dU, s.pair_rows(), d), dPm(dP, s.pair_rows(), d), dNm(dN, s.cand_rows(), d);
    const matrix<Scalar>& g = gate_.g();
    const vector<Scalar>& m = margin_.m();
    const Scalar* w = params_->w_m.data();
    dg_.setZero();

    // BPR (serial: cheap, and the w_m / c_m sums stay deterministic)
    for (index_t b = 0; b < B; ++b) {
      const Scalar gx = loss::bpr_dx(B, pos_[b] - neg_[b], o.bpr_stable, Scalar(o.bpr_eps), upstream);  // −β_b
      for (index_t h = 0; h < H; ++h) {
        const index_t ur = b * H + h, r = s.nrow(b, k_star_[ur], h);
        const Scalar* u = U_ + ur * d;
        const Scalar* p = P_ + ur * d;
        const Scalar* nt = nt_.row(r).data();
        Scalar* du = dU + ur * d;
        Scalar* dp = dP + ur * d;
        for (index_t j = 0; j < d; ++j) {
          du[j] += gx * (p[j] - nt[j]);  // ∂U += −β(P − N*)
          dp[j] += gx * u[j];            // ∂P += −β U
          dnt_[j] = -gx * u[j];          // ∂Ñ* = β U
        }
        const Scalar dm = noise_.backward_row(r, dnt_.data(), g.row(r).data(), m[r], dN + r * d, dg_.row(r).data());
        margin_.backward_row(r, p, N_ + r * d, g.row(r).data(), w, dm, dp, dN + r * d, dg_.row(r).data(),
                             grads.w_m.data(), grads.c_m);
      }
    }
    const Scalar gu = Scalar(o.gamma) * upstream;
    if (gu != Scalar(0)) {
      sns_.backward(Um, Nm, g, gu, dUm, dNm, dg_);
      dist_.backward(Pm, Nm, g, gu, dPm, dNm, dg_);
      orth_.backward(Pm, Nm, g, gu, dPm, dNm, dg_);
    }
    gate_.backward(Um, Nm, params_->W_u, params_->W_i, dg_, dUm, dNm, grads.W_u, grads.b_u, grads.W_i, grads.b_i);
    if (ego_.present() && o.reg_weight != 0)
      loss::emb_loss_backward(reg_blocks(&eg), B, o.reg_require_pow, Scalar(o.reg_weight) * upstream);
    (void)K;
  }

  /// Convenience overload for matrices.
  void backward(matrix<Scalar>& dU, matrix<Scalar>& dP, matrix<Scalar>& dN, ans_params<Scalar>& grads,
                const ego_grads<Scalar>& eg = ego_grads<Scalar>{}, Scalar upstream = Scalar(1)) {
    detail::check_shape<Scalar>(dU, shape_.pair_rows(), shape_.d, "ans_loss: dU");
    detail::check_shape<Scalar>(dP, shape_.pair_rows(), shape_.d, "ans_loss: dP");
    detail::check_shape<Scalar>(dN, shape_.cand_rows(), shape_.d, "ans_loss: dN");
    backward(dU.data(), dP.data(), dN.data(), grads, eg, upstream);
  }

  const ans_terms<Scalar>& terms() const { return terms_; }
  const ans_stats& stats() const { return stats_; }
  const std::vector<index_t>& k_star() const { return k_star_; }  ///< [B,H]
  const vector<Scalar>& margin() const { return margin_.m(); }     ///< [B,K,H]
  const matrix<Scalar>& gate() const { return gate_.g(); }         ///< [B,K,H,d]
  const matrix<Scalar>& augmented() const { return nt_; }          ///< Ñ [B,K,H,d]
  const vector<Scalar>& pos_scores() const { return pos_; }        ///< [B]
  const vector<Scalar>& neg_scores() const { return neg_; }        ///< [B]
  const batch_shape& shape() const { return shape_; }
  /// Turn the §10 statistics off (they cost one extra pass over the candidates).
  void set_compute_stats(bool on) { compute_stats_ = on; }

 private:
  void resize(const batch_shape& s) {
    if (s == shape_) return;
    shape_ = s;
    nt_.resize(s.cand_rows(), s.d);
    dg_.resize(s.cand_rows(), s.d);
    syth_.resize(s.cand_rows());
    norm_.resize(s.cand_rows());
    k_star_.assign(s.pair_rows(), 0);
    k_dns_.assign(s.pair_rows(), 0);
    pos_.resize(s.B);
    neg_.resize(s.B);
    dnt_.resize(s.d);
  }

  std::vector<loss::emb_block<Scalar>> reg_blocks(const ego_grads<Scalar>* eg) const {
    const batch_shape& s = shape_;
    std::vector<loss::emb_block<Scalar>> bl(3);
    bl[0] = {ego_.U0, s.d, s.B, nullptr, eg ? eg->dU0 : nullptr};
    bl[1] = {ego_.P0, s.d, s.B, nullptr, eg ? eg->dP0 : nullptr};
    bl[2] = {ego_.N0, s.d, s.B * s.K, nullptr, eg ? eg->dN0 : nullptr};
    return bl;
  }

  void compute_stats() {
    const batch_shape& s = shape_;
    const vector<Scalar>& m = margin_.m();
    const matrix<Scalar>& e = noise_.direction();
    const matrix<Scalar>& g = gate_.g();
    double sat = 0, xin = 0;
    for (index_t r = 0; r < s.cand_rows(); ++r) {
      const double mr = static_cast<double>(m[r]);
      sat += (mr < 1e-3 || mr > 1.0 - 1e-3) ? 1.0 : 0.0;
      double ss = 0;
      for (index_t j = 0; j < s.d; ++j) {
        const double f = noise_.easy_only() ? 1.0 - static_cast<double>(g(r, j)) : 1.0;
        const double v = f * static_cast<double>(e(r, j));
        ss += v * v;
      }
      xin += static_cast<double>(noise_.scale()) * mr * std::sqrt(ss);
    }
    const double nr = static_cast<double>(s.cand_rows());
    stats_.frac_saturated_margin = sat / nr;
    stats_.mean_xi_norm = xin / nr;
    augment::select_candidates(s, norm_.data(), norm_.data(), Scalar(0), opts_.per_hop_selection, k_dns_.data());
    double diff = 0;
    for (index_t i = 0; i < s.pair_rows(); ++i) diff += k_dns_[i] != k_star_[i] ? 1.0 : 0.0;
    stats_.frac_kstar_differs_dns = diff / static_cast<double>(s.pair_rows());
    stats_.mean_gate = static_cast<double>(g.sum()) / static_cast<double>(g.size());
  }

  ans_options opts_;
  batch_shape shape_{};
  bool compute_stats_ = true;
  const Scalar *U_ = nullptr, *P_ = nullptr, *N_ = nullptr;
  const ans_params<Scalar>* params_ = nullptr;
  ego_rows<Scalar> ego_{};
  ans_terms<Scalar> terms_{};
  ans_stats stats_{};
  disentangle::gate<Scalar> gate_;
  loss::sns_loss<Scalar> sns_;
  loss::distance_loss<Scalar> dist_;
  loss::orth_loss<Scalar> orth_;
  augment::margin_model<Scalar> margin_;
  augment::noise_model<Scalar> noise_;
  matrix<Scalar> nt_, dg_;
  vector<Scalar> syth_, norm_, pos_, neg_, dnt_;
  std::vector<index_t> k_star_, k_dns_;
};

}  // namespace ans::model
