/// @file mode.hpp
/// @brief The faithful/fixed switch and every option of the ANS loss that changes its mathematics.
///
/// `ans_options::make(mode::faithful)` reproduces the reference formulation (spec §7) exactly;
/// `ans_options::make(mode::fixed)` applies the recommended repairs of spec §6 items 1a, 3, 8, 9, 10, 11 and
/// keeps items 2, 4, 5 as in faithful (those change the method's semantics, so they are explicit flags).
/// Every field can be overridden after `make`.
#pragma once

#include "ans/config.hpp"

namespace ans {

/// Global preset: reproduce the reference code (`faithful`) or apply the numerical repairs (`fixed`).
enum class mode { faithful, fixed };

/// How the augmentation margin m is computed from t = w_m·(Nh⊙Ph) + c_m (spec §6 item 1).
enum class margin_form {
  faithful_inv_sigmoid,  ///< m = σ(1/t); dm/dt = −x²σ(x)σ(−x), x = 1/t; at t == 0 the gradient is 0 (counted)
  sigmoid_neg,           ///< (1a) m = σ(−t); dm/dt = −m(1−m). Smooth, decreasing in the similarity
  clamped,               ///< (1b) t ← sign(t)·max(|t|, τ) (sign(0) = +1), then m = σ(1/t)
  none                   ///< ablation "without the margin": m = 1 (noise ξ = scale·δ⊙r̂, unconstrained by the
                         ///< pair's similarity); dm/dt = 0, so w_m and c_m get no gradient
};

/// How the noise magnitude is drawn (spec §6 item 2).
enum class noise_form {
  normalized,      ///< faithful: ξ = scale·m·δ⊙r/max(‖r‖₂, 1e-12), r ~ U[0,1)^d, so ‖ξ‖ = scale·m·‖δ⊙r̂‖
  per_dim_uniform  ///< paper-literal: ξ_j = m·scale·δ_j·r_j, r_j ~ U[0,1) (Δ_j ~ m·U(0, scale))
};

/// Every switch of the ANS loss. Defaults are the faithful preset with the hyper-parameters of spec §15.
struct ans_options {
  // ---- item 1: margin ----
  margin_form margin = margin_form::faithful_inv_sigmoid;  ///< see margin_form
  double clamp_tau = 0.1;                                  ///< τ of margin_form::clamped

  // ---- item 2: noise ----
  noise_form noise = noise_form::normalized;  ///< see noise_form (explicit flag: same in both presets)
  double noise_scale = 0.1;                   ///< the reference's hard-coded 0.1
  double normalize_eps = 1e-12;               ///< δ_nrm of F.normalize

  // ---- item 3: direction ----
  /// true (faithful): δ = sign(Pe − Ne) computed from the gated factors (can be 0 in float32 when g rounds
  /// to 1); false (fixed): δ = sign(P − N), mathematically equal and cheaper.
  bool direction_from_gated = true;

  // ---- item 4: augmentation target ----
  /// false (faithful, both presets): Ñ = N + ξ. true (paper intent): Ñ = N + (1−g)⊙ξ, which adds a gate path
  /// to the gradient.
  bool augment_easy_only = false;

  // ---- item 5: selection ----
  /// true (faithful, both presets): k*[b,h] = argmax_k per hop. false: one k*[b] = argmax_k Σ_h score per pair.
  bool per_hop_selection = true;

  // ---- item 9: L_c numerics ----
  /// false (faithful): log(1 + Σ_k exp Δ_k) as written. true (fixed): softplus(logsumexp) with max-subtraction.
  bool sns_stable = false;

  // ---- item 10: orth term ----
  bool orth_mean_over_hops = false;  ///< false (faithful): Σ over hops, /(BK). true (fixed): mean, /(BKH)
  bool safe_norm = false;            ///< false: ‖w‖ (subgradient 0 at w = 0). true: sqrt(‖w‖² + ε²)
  double safe_norm_eps = 1e-6;       ///< ε of the safe norm

  // ---- item 11: distance ----
  /// false (faithful): ‖Nh − Ph + δ_pd·1‖₂ (F.pairwise_distance). true (fixed): sqrt(‖Nh − Ph‖² + δ_pd²).
  bool distance_eps_in_norm = false;
  double distance_eps = 1e-6;  ///< δ_pd

  // ---- item 8: regulariser ----
  /// false (faithful): (‖U⁰‖_F + ‖P⁰‖_F + ‖N⁰‖_F)/B. true (fixed): (‖U⁰‖² + ‖P⁰‖² + ‖N⁰‖²)/(2B).
  bool reg_require_pow = false;

  // ---- BPR ----
  /// false (faithful, both presets; spec §14 keeps the 1e-10): −mean log(σ(x) + bpr_eps).
  /// true: the stable −mean log σ(x) = mean softplus(−x).
  bool bpr_stable = false;
  double bpr_eps = 1e-10;  ///< δ_bpr

  // ---- auxiliary-term form (issue 13: the plateau remedies; both off in both presets) ----
  /// false (faithful): D = mean ‖y‖ (y = Nh − Ph, with δ_pd as above), whose gradient c·g⊙ŷ has a size that
  /// does not shrink with the embeddings. true: D = mean ‖y‖², gradient 2c·g⊙y (and ∂g: 2c (N−P)⊙y), so the
  /// term scales with the embeddings as BPR does.
  bool distance_squared = false;
  /// false (faithful): O = Σ ‖w‖ (w = Pe⊙Ne). true: O = Σ ‖w‖², gradient 2c·w⊙(1−g)²⊙N (and the mirror for P),
  /// ∂g: −4c·w⊙(1−g)⊙P⊙N. The normaliser (/(BK) or /(BKH)) is the same as for the norm.
  bool orth_squared = false;

  // ---- per-term weights (1 = the paper's objective; 0 switches a term off, e.g. for gradient diagnostics) ----
  /// total = w_bpr·M + λ·R + γ·(w_c·L_c + w_d·D + w_o·O). Multiplying by 1 is exact: the presets are unchanged.
  double bpr_weight = 1, sns_weight = 1, distance_weight = 1, orth_weight = 1;

  // ---- hyper-parameters ----
  double gamma = 0.1;        ///< γ, weight of L_c + D + O
  double eps = 0.1;          ///< ε, weight of the augmentation gain in the selection score
  double reg_weight = 1e-4;  ///< λ

  /// The preset for `m`. Hyper-parameters keep their defaults.
  static ans_options make(mode m) {
    ans_options o;
    if (m == mode::fixed) {
      o.margin = margin_form::sigmoid_neg;  // 1a
      o.direction_from_gated = false;       // 3
      o.reg_require_pow = true;             // 8
      o.sns_stable = true;                  // 9
      o.orth_mean_over_hops = true;         // 10
      o.safe_norm = true;                   // 10
      o.distance_eps_in_norm = true;        // 11
    }
    return o;
  }
};

}  // namespace ans
