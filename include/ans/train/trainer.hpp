/// @file trainer.hpp
/// @brief A trainer assembled from an encoder (MF, L = 0, or LightGCN, L ≥ 1), a sampler (RNS, DNS,
/// MixGCF, ANS), a loss (BPR or the ANS objective) and an optimiser (Adam, row-sparse lazy Adam, SGD),
/// with evaluation, checkpoints and a deterministic mode.
///
/// Determinism: batches are a seeded permutation per epoch, candidates and noise come from counter-based
/// streams keyed on (seed, epoch, batch, row), and every reduction runs in a fixed order, so the same seed
/// and thread count give bit-identical parameters (and resuming from a checkpoint continues exactly).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ans/data/dataset.hpp"
#include "ans/eval/full_ranking.hpp"
#include "ans/eval/sampled_ranking.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/io/checkpoint.hpp"
#include "ans/io/json.hpp"
#include "ans/io/npy.hpp"
#include "ans/model/ans_model.hpp"
#include "ans/model/bpr_model.hpp"
#include "ans/optim/adam.hpp"
#include "ans/optim/sgd.hpp"
#include "ans/optim/sparse_adam.hpp"
#include "ans/propagation/readout.hpp"
#include "ans/sampling/batch.hpp"
#include "ans/sampling/uniform.hpp"
#include "ans/train/init.hpp"
#include "ans/train/encoder.hpp"
#include "ans/train/mf_step.hpp"
#include "ans/train/shard.hpp"
#include "ans/train/table_optimizer.hpp"
#include "ans/sampling/selector.hpp"

namespace ans::train {

/// Which negative sampler / loss the trainer runs.
enum class sampler_kind { rns, dns, mixgcf, ans };
/// The embedding optimiser. Gate and margin parameters always use dense Adam. `hogwild_sgd` (MF with RNS or
/// DNS only) is one lock-free SGD step per sampled pair (train/mf_step.hpp): batch_size only groups the
/// pairs' random streams, and with more than one thread the result is not deterministic.
enum class optimizer_kind { adam, lazy_adam, sgd, hogwild_sgd };
/// How evaluation scores a (user, item) pair: `trained` = the score the model trains with, <ē_u, ē_i> for the
/// run's readout (mean: LightGCN and every framework; concat: Σ_h <S[u,h], S[i,h]>, the ANS reference's
/// training score); `ego` = <E0[u], E0[i]>, the ANS reference's full_sort_predict (spec §6.7), kept only to
/// reproduce that code: it ranks a LightGCN model without the propagation it was trained with.
enum class scoring_kind { trained, ego };

/// Everything that defines a training run.
struct trainer_config {
  sampler_kind sampler = sampler_kind::ans;
  int n_layers = 0;              ///< 0 = MF
  index_t dim = 64;              ///< d
  index_t batch_size = 2048;     ///< (user, positive) pairs per step
  index_t num_neg = 16;          ///< K candidates per pair (RNS uses 1)
  double lr = 1e-3;
  double reg_weight = 1e-4;      ///< λ of the EmbLoss regulariser on the batch's ego rows (RecBole's reg_weight)
  /// Squared form of the regulariser, ½Σ‖·‖²/B (LightGCN, MixGCF, DENS); unset: the mode's (faithful: the
  /// non-squared RecBole EmbLoss of the ANS reference, fixed: squared).
  std::optional<bool> reg_require_pow;
  bool bpr_stable = false;       ///< BPR as softplus(−x) (LightGCN, MixGCF) instead of −log(σ(x) + 1e-10)
  double weight_decay = 0;       ///< Adam/SGD L2 on the whole embedding table (ReChorus's `--l2`), not λ
  /// Training candidates are drawn outside the user's train items (false, the default: RecBole's rule and
  /// ReChorus's since March 2021, commit 3388c1d, `BaseModel.py`) or outside train ∪ dev ∪ test (true: the
  /// older ReChorus `clicked_set`, which never samples an evaluation positive as a negative).
  bool negatives_exclude_eval = false;
  /// The layer combination the model is scored with, in training and evaluation (L >= 1). Unset: mean for
  /// RNS, DNS, MixGCF and ANS in fixed mode (pooled ANS, one gate pass); concat (the reference's per-hop
  /// Σ_h <u_h, i_h>) for ANS in faithful mode.
  std::optional<propagation::readout_kind> readout;
  init_kind init = init_kind::xavier;
  /// How each epoch's training pairs are drawn (shuffle: every pair once; user_uniform: LightGCN-PyTorch).
  sampling::pair_order pair_order = sampling::pair_order::shuffle;
  double init_std = 0.01;        ///< σ of init_kind::normal
  mode m = mode::faithful;
  double gamma = 0.1, eps = 0.1;
  /// When set, the ANS loss uses exactly these options (every §6 flag, γ, ε and λ) instead of
  /// `ans_options::make(m)` with gamma, eps and reg_weight above.
  std::optional<ans_options> ans;
  /// Linear warm-up of γ (issue 13; DENS ramps its selection weight with min(1, epoch/warmup)): step s of the
  /// run (0-based, over epochs: s = epochs_done·batches + b) uses γ_s = γ·min(1, s/(gamma_warmup·batches)), so
  /// the first step has γ = 0 and γ is reached after `gamma_warmup` epochs. 0: constant γ (the paper's).
  /// Unset: 0 in faithful mode, kFixedGammaWarmup (10 epochs) in fixed mode, the remedy chosen on validation
  /// for the initial plateau (docs/results.md, "ANS from the first epoch").
  std::optional<double> gamma_warmup;
  /// ANS: every `diagnose_every`-th step (0 = never) the trainer records, before the step, each loss term's
  /// gradient with respect to E0, the gates and the margin model (train::ans_diagnostic; 5 extra
  /// forward_backward passes on that batch, so timing runs leave it off).
  index_t diagnose_every = 0;
  optimizer_kind optimizer = optimizer_kind::lazy_adam;  ///< lazy Adam falls back to dense Adam for L ≥ 1
  /// MF with RNS or DNS runs each step as one parallel region (train/mf_step.hpp), bit-identical to the
  /// composed objective + optimiser path, which `false` selects (for checking).
  bool fused_mf_step = true;
  scoring_kind scoring = scoring_kind::trained;
  std::uint64_t seed = 0;
  std::vector<index_t> topk{20};
  std::vector<eval::metric_kind> metrics{eval::metric_kind::recall, eval::metric_kind::ndcg};
};

inline const char* to_string(sampler_kind s) {
  switch (s) {
    case sampler_kind::rns: return "RNS";
    case sampler_kind::dns: return "DNS";
    case sampler_kind::mixgcf: return "MixGCF";
    case sampler_kind::ans: return "ANS";
  }
  return "?";
}

/// The γ warm-up (epochs) of fixed mode when trainer_config::gamma_warmup is unset.
inline constexpr double kFixedGammaWarmup = 10;

/// One loss term's contribution to the gradient at a diagnosed step (the weighted term as it enters the loss:
/// γ·L_c, γ·D, γ·O, λ·R, M). Norms are Frobenius norms over all entries.
struct term_gradient {
  double value = 0;          ///< the unweighted term (M, L_c, D, O or R)
  double e0 = 0;             ///< ‖∂(weighted term)/∂E0‖ (after the propagation backward for L ≥ 1)
  double gate = 0;           ///< ‖∂/∂(W_u, b_u, W_i, b_i)‖
  double margin = 0;         ///< ‖∂/∂(w_m, c_m)‖
  double cos_bpr = 0;        ///< cosine between this term's and BPR's ∂/∂E0 (1 for BPR itself; 0 if either is 0)
  double frac_over_bpr = 0;  ///< fraction of the E0 entries with a nonzero BPR gradient where |this| > |BPR's|
  /// fraction of the E0 entries this term moves that BPR does not (e.g. unselected candidates): there a
  /// per-coordinate optimiser (Adam) takes a full-size step in this term's direction, whatever its size
  double frac_without_bpr = 0;
};

/// The gradient diagnostics of one ANS step (trainer_config::diagnose_every), taken before the step.
struct ans_diagnostic {
  int epoch = 0;                        ///< 0-based epoch
  index_t batch = 0;                    ///< batch within the epoch
  double gamma = 0;                     ///< γ of this step (after the warm-up)
  double user_norm = 0, item_norm = 0;  ///< mean L2 norm of the E0 rows of users / items
  term_gradient bpr, sns, distance, orth, reg;
};

/// The trainer. Holds the embedding table E0 = [users; items] (N x d), the ANS parameters, the optimiser
/// state and the workspaces; `train_epoch` runs one pass over the shuffled training pairs.
///
/// Policies (checked at compile time):
/// - `Sampler`: the candidate sampler (ans/sampling/sampler.hpp: uniform_sampler, popularity_sampler, or the
///   user's own type with `sample(user, pos_item, rng, out) const`). The trainer draws K candidates per pair
///   from it; the negative selector (RNS, DNS, MixGCF, ANS: trainer_config::sampler) then picks among them.
/// - `Encoder`: where E0 comes from (ans/train/encoder.hpp): table_encoder (a free table, the default) or the
///   user's encoder with forward / backward / step.
/// - `Selector`: which candidate a BPR pair trains against (ans/sampling/selector.hpp): builtin_selection
///   (trainer_config::sampler decides: RNS, DNS, MixGCF) or the user's `select(scores, K, rng)`, which then
///   replaces RNS's/DNS's choice (sampler rns or dns; ANS and MixGCF build their own negatives).
/// - `Optimizer`: how a table encoder's E0 is updated (ans/train/table_optimizer.hpp): builtin_optimizer
///   (trainer_config::optimizer) or the user's `step(table, grad, rows)`. A user encoder brings its own.
/// Every policy is checked with a static_assert that names the member it lacks.
template <class Scalar, class Sampler = sampling::uniform_sampler, class Encoder = table_encoder,
          class Selector = sampling::builtin_selection, class Optimizer = builtin_optimizer>
class trainer {
  static_assert(std::is_floating_point_v<Scalar>, "trainer<Scalar, ...>: Scalar must be float or double");
  static_assert(sampling::is_sampler_v<Sampler>,
                "trainer<Scalar, Sampler, ...>: Sampler must have a const member "
                "`template <class Rng> void sample(index_t user, index_t pos_item, Rng& rng, item_span out) const` "
                "that fills `out` with candidate item ids (ans/sampling/sampler.hpp)");
  static_assert(is_encoder_v<Encoder, Scalar>,
                "trainer<Scalar, Sampler, Encoder>: Encoder must be train::table_encoder or have "
                "`void forward(matrix<Scalar>& e0)`, `void backward(const matrix<Scalar>& grad_e0, "
                "const std::vector<index_t>& rows)` and `void step()` (ans/train/encoder.hpp)");
  static_assert(sampling::is_selector_v<Selector, Scalar>,
                "trainer<Scalar, Sampler, Encoder, Selector, ...>: Selector must be sampling::builtin_selection or have "
                "a const member `template <class Rng> index_t select(const Scalar* scores, index_t K, Rng& rng) const` "
                "(ans/sampling/selector.hpp)");
  static_assert(is_table_optimizer_v<Optimizer, Scalar>,
                "trainer<Scalar, Sampler, Encoder, Selector, Optimizer>: Optimizer must be train::builtin_optimizer or "
                "have `void step(matrix<Scalar>& table, const matrix<Scalar>& grad, const std::vector<index_t>& rows)` "
                "(ans/train/table_optimizer.hpp)");
  static constexpr bool kTable = std::is_same_v<Encoder, table_encoder>;
  static constexpr bool kBuiltinSelector = std::is_same_v<Selector, sampling::builtin_selection>;
  static constexpr bool kBuiltinOptimizer = std::is_same_v<Optimizer, builtin_optimizer>;
  static_assert(kTable || kBuiltinOptimizer,
                "trainer: an Optimizer updates the free embedding table; a user Encoder brings its own optimiser");

 public:
  /// `data` must outlive the trainer (it keeps its address); a temporary dataset does not compile. The
  /// candidate sampler is built from the training split (train ∪ dev ∪ test with negatives_exclude_eval).
  template <class S = Sampler, std::enable_if_t<std::is_constructible_v<S, const data::interactions&>, int> = 0>
  trainer(const data::dataset& data, const trainer_config& cfg)
      : trainer(data, cfg, std::nullopt, Encoder{}, Selector{}, Optimizer{}) {}
  /// With the user's sampler (negatives_exclude_eval does not apply: the sampler decides), encoder, selector
  /// and optimiser.
  trainer(const data::dataset& data, const trainer_config& cfg, Sampler sampler, Encoder encoder = Encoder{},
          Selector selector = Selector{}, Optimizer optimizer = Optimizer{})
      : trainer(data, cfg, std::optional<Sampler>(std::move(sampler)), std::move(encoder), std::move(selector),
                std::move(optimizer)) {}
  trainer(data::dataset&&, const trainer_config&) = delete;  ///< the trainer would keep a dangling address
  trainer(data::dataset&&, const trainer_config&, Sampler, Encoder = Encoder{}, Selector = Selector{},
          Optimizer = Optimizer{}) = delete;

 private:
  trainer(const data::dataset& data, const trainer_config& cfg, std::optional<Sampler> sampler, Encoder encoder,
          Selector selector, Optimizer optimizer)
      : data_(&data), cfg_(cfg),
        // MF (L = 0) never propagates: keep the node counts, not the O(nnz) edge list
        adj_(cfg.n_layers > 0 ? graph::build_normalized_adjacency<Scalar>(data.train)
                              : graph::node_counts_only<Scalar>(data.train)),
        batcher_(data.train, cfg.batch_size, cfg.seed, false, cfg.pair_order),
        neg_exclude_(cfg.negatives_exclude_eval && !sampler ? union_of(data) : data::interactions{}),
        sampler_(sampler ? std::move(*sampler) : default_sampler(cfg.negatives_exclude_eval ? neg_exclude_ : data.train)),
        encoder_(std::move(encoder)),
        optimizer_(std::move(optimizer)),
        ans_obj_(cfg.n_layers, make_ans_options(cfg), effective_readout(cfg)),
        bpr_obj_(cfg.n_layers, make_bpr_options(cfg), std::move(selector)) {
    ANS_CHECK(cfg.dim > 0, "dim must be positive, got " << cfg.dim);
    ANS_CHECK(cfg.num_neg >= 1, "num_neg (K) must be >= 1, got " << cfg.num_neg);
    ANS_CHECK(cfg.batch_size >= 1, "batch_size must be >= 1, got " << cfg.batch_size);
    ANS_CHECK(cfg.lr > 0 && std::isfinite(cfg.lr), "lr must be positive, got " << cfg.lr);
    ANS_CHECK(cfg.n_layers >= 0, "n_layers must be >= 0, got " << cfg.n_layers);
    ANS_CHECK(data.train.nnz() > 0, "the training split of '" << data.name << "' is empty");
    ANS_CHECK(kTable || cfg.optimizer != optimizer_kind::hogwild_sgd,
              "optimizer hogwild_sgd updates a free embedding table; a user encoder brings its own optimiser");
    ANS_CHECK(kBuiltinSelector || cfg.sampler == sampler_kind::rns || cfg.sampler == sampler_kind::dns,
              "a user Selector chooses among the candidates of the BPR objective (sampler rns or dns); "
                  << to_string(cfg.sampler) << " builds its own negatives");
    ANS_CHECK(cfg.optimizer != optimizer_kind::hogwild_sgd ||
                  (cfg.n_layers == 0 && (cfg.sampler == sampler_kind::rns || cfg.sampler == sampler_kind::dns)),
              "optimizer hogwild_sgd runs MF (n_layers 0) with RNS or DNS only, not " << to_string(cfg.sampler)
                                                                                      << " with n_layers " << cfg.n_layers);
    // Our kernels parallelise over rows themselves; Eigen's own GEMM threads only add synchronisation on the
    // small d x d products of the gate (measured: benchmarks/bench_sampling.cpp), so keep Eigen serial.
    Eigen::setNbThreads(1);
    const index_t n = adj_.n_nodes(), d = cfg.dim;
    // Xavier-uniform per table, as RecBole's xavier_uniform_initialization (spec R.6), or normal(0, σ)
    // (Box–Muller on the same stream).
    ANS_CHECK(cfg.init == init_kind::xavier || (cfg.init_std > 0 && std::isfinite(cfg.init_std)),
              "init_std must be positive, got " << cfg.init_std);
    init_embeddings(e0_, adj_.n_users, adj_.n_items, d, cfg.init, cfg.init_std, cfg.seed);
    if constexpr (!kTable) encode();  // a user encoder writes E0 from its own initial parameters
    // the N x d gradient table of the composed paths (the fused MF step and hogwild_sgd keep none)
    const bool fused_path = builtin_mf() && mf_bpr() && (cfg.fused_mf_step || cfg.optimizer == optimizer_kind::hogwild_sgd);
    if (!fused_path) grad_e0_ = matrix<Scalar>::Zero(n, d);
    params_ = model::ans_params<Scalar>::init(d, cfg.m, cfg.seed + 1);
    pgrads_ = model::ans_params<Scalar>::zeros(d);
    optim::adam_options ao;
    ao.lr = cfg.lr;
    const bool lazy = cfg.optimizer == optimizer_kind::lazy_adam && cfg.n_layers == 0;
    if (!kTable || !kBuiltinOptimizer) {
      // the user encoder owns its parameters and their optimiser; a user Optimizer its state
    } else if (cfg.optimizer == optimizer_kind::hogwild_sgd) {
      // no optimiser state: every pair's step is applied in place
    } else if (cfg.optimizer == optimizer_kind::sgd) {
      optim::sgd_options so;
      so.lr = cfg.lr;
      so.weight_decay = cfg.weight_decay;
      sgd_ = std::make_unique<optim::sgd<Scalar>>(n * d, so, d);
    } else if (lazy) {
      sparse_adam_ = std::make_unique<optim::sparse_adam<Scalar>>(n, d, with_decay(ao));
    } else {
      adam_ = std::make_unique<optim::adam<Scalar>>(n * d, with_decay(ao));
    }
    for (auto& blk : param_blocks()) param_adam_.emplace_back(blk.size, ao);
    K_ = cfg.sampler == sampler_kind::rns && kBuiltinSelector ? 1 : cfg.num_neg;
    base_gamma_ = ans_obj_.loss().options().gamma;
    ANS_CHECK(gamma_warmup() >= 0 && std::isfinite(gamma_warmup()), "gamma_warmup must be >= 0 epochs, got " << gamma_warmup());
    ANS_CHECK(cfg.diagnose_every >= 0, "diagnose_every must be >= 0, got " << cfg.diagnose_every);
  }

 public:
  using scalar_type = Scalar;
  /// The candidate sampler and the encoder (the policies).
  const Sampler& sampler() const { return sampler_; }
  Encoder& encoder() { return encoder_; }
  const Selector& selector() const { return bpr_obj_.selector(); }
  Optimizer& optimizer() { return optimizer_; }
  const trainer_config& config() const { return cfg_; }
  /// The readout the model trains and (with scoring_kind::trained) is ranked with.
  propagation::readout_kind readout() const { return effective_readout(cfg_); }
  /// The readout a configuration resolves to (see trainer_config::readout).
  static propagation::readout_kind effective_readout(const trainer_config& c) {
    if (c.readout) return *c.readout;
    return c.sampler == sampler_kind::ans && c.m == mode::faithful ? propagation::readout_kind::concat
                                                                   : propagation::readout_kind::mean;
  }
  /// The normalised adjacency Â the model propagates over (node counts only for L = 0).
  const graph::normalized_adjacency<Scalar>& graph() const { return adj_; }
  const matrix<Scalar>& embeddings() const { return e0_; }
  matrix<Scalar>& embeddings() { return e0_; }
  const model::ans_params<Scalar>& ans_parameters() const { return params_; }
  index_t batches_per_epoch() const { return batcher_.n_batches(); }
  /// Caps the batches run per epoch (0 = no cap), for timing runs; the epoch is then partial.
  void set_max_batches(index_t n) { max_batches_ = n; }
  int epochs_done() const { return epochs_done_; }
  /// Statistics of the last ANS step (spec §10).
  const model::ans_stats& last_stats() const { return ans_obj_.loss().stats(); }
  /// Mean over the last epoch's steps of the fraction of saturated margins (ANS only).
  double epoch_saturated_margin_fraction() const { return sat_sum_ / std::max<double>(1, sat_n_); }
  /// Mean over the last epoch's steps of the unweighted ANS terms {M, L_c, D, O, R} (ANS only).
  std::array<double, 5> epoch_terms() const {
    std::array<double, 5> m{};
    for (int i = 0; i < 5; ++i) m[i] = term_sum_[i] / std::max<double>(1, sat_n_);
    return m;
  }
  /// The γ that step s (0-based over the run) uses, with `nb` batches per epoch (trainer_config::gamma_warmup).
  double gamma_at(index_t s, index_t nb) const {
    const double g = base_gamma_, w = gamma_warmup();
    if (!(w > 0)) return g;
    return g * std::min(1.0, double(s) / (w * double(std::max<index_t>(1, nb))));
  }
  /// The warm-up this run uses (trainer_config::gamma_warmup, or the mode's default).
  double gamma_warmup() const { return effective_gamma_warmup(cfg_); }
  static double effective_gamma_warmup(const trainer_config& c) {
    return c.gamma_warmup.value_or(c.m == mode::fixed ? kFixedGammaWarmup : 0.0);
  }
  /// The gradient diagnostics recorded so far (trainer_config::diagnose_every).
  const std::vector<ans_diagnostic>& diagnostics() const { return diag_; }

  /// Data-parallel training (train/shard.hpp; ans/dist/data_parallel.hpp builds the plan over MPI): from now
  /// on every step trains this rank's rows of each global batch and exchanges the gradients through the plan.
  /// MF (n_layers 0) with RNS, DNS or ANS, or LightGCN (n_layers >= 1) with ANS; the free table, a built-in
  /// selector and adam, lazy_adam or sgd; not hogwild. The plan's schedules (train/shard.hpp):
  /// - MF, owned rows (the default when the plan has the all-to-alls): rank r owns a node block, fetches the
  ///   rows of its shard that others own, sends their gradients to the owners and steps its block only;
  ///   MF, all-gather: every rank gets every touched row and steps their union;
  /// - LightGCN (needs sync_rows): the bipartite chains on two ranks (needs swap_rows), row blocks otherwise;
  ///   each rank steps the optimiser on its node block.
  /// Wherever a rank steps only its block, E0 and the optimiser state of the other blocks are gathered at the
  /// end of every epoch: evaluate and save between epochs. Every schedule gives the same bits.
  void set_shard(shard_plan<Scalar> plan) {
    ANS_CHECK(plan.size >= 1 && plan.rank >= 0 && plan.rank < plan.size,
              "set_shard: rank " << plan.rank << " of " << plan.size << " is not valid");
    ANS_CHECK(plan.size == 1 || plan.exchange, "set_shard: a plan with " << plan.size << " ranks needs an exchange");
    const bool ans = cfg_.sampler == sampler_kind::ans, lightgcn = cfg_.n_layers > 0;
    ANS_CHECK(plan.size == 1 || (kTable && kBuiltinOptimizer && kBuiltinSelector &&
                                 cfg_.optimizer != optimizer_kind::hogwild_sgd && cfg_.sampler != sampler_kind::mixgcf &&
                                 (!lightgcn || ans)),
              "set_shard: data-parallel training runs MF (n_layers 0) with RNS, DNS or ANS, or LightGCN with ANS, on "
              "the free table with adam, lazy_adam or sgd; got " << to_string(cfg_.sampler) << " with n_layers "
                                                                 << cfg_.n_layers << " (docs/distributed.md)");
    ANS_CHECK(plan.size == 1 || !lightgcn || plan.sync_rows,
              "set_shard: LightGCN (n_layers " << cfg_.n_layers << ") needs the plan's sync_rows (the row-block all-gather)");
    ANS_CHECK(plan.size == 1 || !ans || plan.sum_diagnostics,
              "set_shard: data-parallel ANS needs the plan's sum_diagnostics (the epoch's loss terms, added over the "
              "ranks)");
    ANS_CHECK(plan.size == 1 || cfg_.diagnose_every == 0,
              "set_shard: diagnose_every runs extra passes over the whole batch on one process; set it to 0 for "
              "data-parallel training");
    // RecBole's EmbLoss without require_pow is ‖T‖_F / B over the whole batch's rows: its gradient T_row/(B‖T‖)
    // couples every row of the batch, so shard means do not add up to it. The squared form (½‖T‖²/B) and no
    // regulariser decompose over rows.
    const double lam = ans ? ans_obj_.loss().options().reg_weight : bpr_obj_.options().reg_weight;
    const bool pow = ans ? ans_obj_.loss().options().reg_require_pow : bpr_obj_.options().reg_require_pow;
    ANS_CHECK(plan.size == 1 || lam == 0 || pow,
              "set_shard: the regulariser is RecBole's non-squared EmbLoss (faithful mode), ‖T‖_F/B over the whole "
              "batch, which does not split into per-shard sums; use mode fixed or a squared regulariser "
              "(reg_require_pow), or reg_weight 0");
    if (plan.size > 1 && grad_e0_.rows() != e0_.rows()) grad_e0_ = matrix<Scalar>::Zero(e0_.rows(), e0_.cols());
    node_off_.clear();
    bipartite_ = false;
    mf_owned_ = false;
    if (plan.size > 1 && !lightgcn) {
      using ms = typename shard_plan<Scalar>::mf_schedule;
      const bool can = plan.alltoall_counts && plan.alltoall_ids && plan.alltoall_rows && plan.sync_rows && plan.sync_counts;
      mf_owned_ = plan.mf == ms::owned || (plan.mf == ms::automatic && can);
      ANS_CHECK(!mf_owned_ || can, "set_shard: MF on owned rows needs the plan's all-to-alls, sync_rows and sync_counts");
      if (mf_owned_) {
        node_off_ = plan.node_offsets.empty() ? mf_node_blocks(data_->train, cfg_.batch_size, K_, plan.size) : plan.node_offsets;
        ANS_CHECK(static_cast<int>(node_off_.size()) == plan.size + 1 && node_off_.front() == 0 &&
                      node_off_.back() == e0_.rows() && std::is_sorted(node_off_.begin(), node_off_.end()),
                  "set_shard: node_offsets must be " << plan.size + 1 << " non-decreasing offsets from 0 to "
                                                     << e0_.rows() << ", got " << node_off_.size() << " of them");
      }
    }
    propagation::row_block<Scalar> rb;
    if (plan.size > 1 && lightgcn) {
      using sched = typename shard_plan<Scalar>::schedule;
      bipartite_ = plan.lightgcn == sched::bipartite || (plan.lightgcn == sched::automatic && plan.size == 2);
      ANS_CHECK(!bipartite_ || (plan.size == 2 && plan.swap_rows),
                "set_shard: the bipartite chains run on 2 ranks with the plan's swap_rows (got " << plan.size << " ranks)");
      if (bipartite_) {
        node_off_ = {0, adj_.n_users, adj_.n_nodes()};  // rank 0 owns the users' rows, rank 1 the items'
        rb = propagation::row_block<Scalar>::bipartite_chain(plan.rank, adj_.n_users, adj_.n_nodes());
      } else {
        node_off_ = plan.node_offsets.empty() ? node_blocks(adj_.indptr, plan.size) : plan.node_offsets;
        ANS_CHECK(static_cast<int>(node_off_.size()) == plan.size + 1 && node_off_.front() == 0 &&
                      node_off_.back() == adj_.n_nodes() && std::is_sorted(node_off_.begin(), node_off_.end()),
                  "set_shard: node_offsets must be " << plan.size + 1 << " non-decreasing offsets from 0 to "
                                                     << adj_.n_nodes() << ", got " << node_off_.size() << " of them");
        rb = propagation::row_block<Scalar>::blocks(node_off_[plan.rank], node_off_[plan.rank + 1],
                                                    [sync = plan.sync_rows, off = node_off_](Scalar* y, index_t w) { sync(y, w, off); });
      }
    }
    ans_obj_.propagation().set_row_block(std::move(rb));
    shard_ = std::move(plan);
  }
  /// The P + 1 offsets of the ranks' node blocks, whose optimiser steps they own (LightGCN, and MF on owned
  /// rows; empty otherwise); with the bipartite chains {0, n_users, N}.
  const std::vector<index_t>& node_block_offsets() const { return node_off_; }
  /// LightGCN data-parallel on the bipartite chains (shard_plan::schedule).
  bool bipartite_chains() const { return bipartite_; }
  /// MF data-parallel on owned rows (shard_plan::mf_schedule).
  bool owned_rows() const { return mf_owned_; }
  /// MF on owned rows, since set_shard: the rows this rank fetched from their owners, the rows it sent to the
  /// ranks that asked for them, and the gradient rows it sent to their owners.
  struct owned_counts {
    std::uint64_t fetched = 0, served = 0, gradients = 0;
  };
  const owned_counts& owned_row_counts() const { return owned_; }
  const shard_plan<Scalar>& shard() const { return shard_; }

  /// One pass over the shuffled training pairs; returns the mean loss. `on_batch(b, mean_loss, samples)` is
  /// called after each step (progress display).
  template <class OnBatch>
  double train_epoch(int epoch, OnBatch&& on_batch) {
    batcher_.start_epoch(epoch);
    const index_t nb = max_batches_ > 0 ? std::min(max_batches_, batcher_.n_batches()) : batcher_.n_batches();
    double loss_sum = 0;
    index_t samples = 0;
    sat_sum_ = 0;
    sat_n_ = 0;
    term_sum_.fill(0);
    const model::bpr_options& bo = bpr_obj_.options();  // the MF paths below run the BPR objective's options
    if (builtin_mf() && cfg_.optimizer == optimizer_kind::hogwild_sgd) {
      hogwild_options ho;
      ho.lr = cfg_.lr;
      ho.weight_decay = cfg_.weight_decay;
      ho.reg_weight = bo.reg_weight;
      ho.reg_require_pow = bo.reg_require_pow;
      ho.bpr_stable = bo.bpr_stable;
      ho.bpr_eps = bo.bpr_eps;
      ho.dns = cfg_.sampler == sampler_kind::dns;
      const index_t pairs = std::min(batcher_.nnz(), nb * batcher_.batch_size());
      const double loss = hogwild_bpr_epoch(e0_, adj_.n_users, batcher_, pairs, sampler_, K_, cfg_.seed, ho);
      ANS_CHECK(std::isfinite(loss) && e0_.allFinite(), "hogwild_sgd: the loss or the embeddings are not finite after epoch "
                                                             << epoch << " (try a smaller lr)");
      on_batch(nb - 1, loss, pairs);
      ++epochs_done_;
      return loss;
    }
    const bool fused = builtin_mf() && cfg_.fused_mf_step && mf_bpr() && shard_.size == 1;
    mf_bpr_options mf_opts;
    mf_opts.dns = cfg_.sampler == sampler_kind::dns;
    mf_opts.reg_weight = bo.reg_weight;
    mf_opts.reg_require_pow = bo.reg_require_pow;
    mf_opts.bpr_stable = bo.bpr_stable;
    mf_opts.bpr_eps = bo.bpr_eps;
    for (index_t b = 0; b < nb; ++b) {
      const auto batch = batcher_.batch(b);
      const std::uint64_t step = static_cast<std::uint64_t>(epoch) * 0x100000000ULL + static_cast<std::uint64_t>(b);
      if (fused) {
        const double loss = mf_step_.run(e0_, adj_.n_users, batch, sampler_, K_, cfg_.seed, mf_opts,
                                         table_update<Scalar>{sparse_adam_.get(), adam_.get(), sgd_.get(), cfg_.dim});
        ANS_CHECK(std::isfinite(loss), "loss is not finite at epoch " << epoch << ", batch " << b << " (try a smaller lr)");
        loss_sum += loss;
        samples += batch.size;
        on_batch(b, loss_sum / double(b + 1), samples);
        continue;
      }
      if (shard_.size > 1) {  // data-parallel: this rank's rows of the global batch (train/shard.hpp)
        const double loss = sharded_step(batch, step, epoch, b, nb);
        loss_sum += loss;
        samples += batch.size;
        on_batch(b, loss_sum / double(b + 1), samples);
        continue;
      }
      cands_.resize(static_cast<size_t>(batch.size * K_));
      sampling::sample_batch(sampler_, batch, K_, cfg_.seed, cands_.data());
      const model::batch_ids ids{batch.users, batch.items, cands_.data(), batch.size, K_};
      double loss;
      const std::vector<index_t>* touched;
      if (cfg_.sampler == sampler_kind::ans) {
        const augment::counter_uniform_source src{cfg_.seed, step, 0};
        ans_obj_.loss().options().gamma = gamma_at(epochs_done_ * nb + b, nb);
        if (cfg_.diagnose_every > 0 && (epochs_done_ * nb + b) % cfg_.diagnose_every == 0) diagnose(epoch, b, ids, src);
        const auto& t = ans_obj_.forward_backward(adj_, e0_, ids, params_, src, grad_e0_, pgrads_);
        loss = t.total;
        const auto tv = terms_of(t);
        for (size_t i = 0; i < 5; ++i) term_sum_[i] += tv[i];
        touched = &ans_obj_.touched_rows();
        sat_sum_ += ans_obj_.loss().stats().frac_saturated_margin;
        ++sat_n_;
        step_gates(gates());
      } else {
        loss = bpr_obj_.forward(adj_, e0_, ids, cfg_.seed, step);
        bpr_obj_.backward(grad_e0_);
        touched = &bpr_obj_.touched_rows();
      }
      ANS_CHECK(std::isfinite(loss), "loss is not finite at epoch " << epoch << ", batch " << b
                                                                  << " (try a smaller lr, or --mode fixed)");
      step_embeddings(*touched);
      loss_sum += loss;
      samples += batch.size;
      on_batch(b, loss_sum / double(b + 1), samples);
    }
    ANS_CHECK(e0_.allFinite(), "embeddings are not finite after epoch " << epoch);
    if (!node_off_.empty()) sync_optimizer_state();  // ranks stepped their blocks: every rank gets the whole state
    if (shard_.size > 1) end_epoch_diagnostics();
    ++epochs_done_;
    return nb > 0 ? loss_sum / double(nb) : 0.0;
  }
  double train_epoch(int epoch) {
    return train_epoch(epoch, [](index_t, double, index_t) {});
  }

  /// User and item factors for scoring (trained: the readout's rows ē, N x d or N x (H·d) for concat; ego: E0).
  void factors(matrix<Scalar>& users, matrix<Scalar>& items) {
    const matrix<Scalar>& src = factor_table();
    users = src.topRows(adj_.n_users);
    items = src.bottomRows(adj_.n_items);
  }

  /// Calls f(user_factors, item_factors) with the factor rows factors() copies, as Eigen::Ref blocks of the
  /// scoring table (no copy), and returns its result: for evaluations the trainer does not run itself (e.g.
  /// eval::impression_ranking through train::impression_run).
  template <class F>
  auto with_factors(F&& f) {
    const matrix<Scalar>& table = factor_table();
    const Eigen::Ref<const matrix<Scalar>> uf = table.topRows(adj_.n_users), itf = table.bottomRows(adj_.n_items);
    return f(uf, itf);
  }

  /// Evaluation protocol: `full` ranks every item (training items masked, and dev items when testing);
  /// `sampled` ranks the positive against 99 negatives: the dataset's fixed ones (ReChorus) or, when it has
  /// none, 99 drawn once per split (seeded, excluding the user's train/dev/test items).
  enum class protocol { full, sampled };

  /// Metrics on `target` ("dev" or "test") under protocol `p`.
  std::map<std::string, double> evaluate(const std::string& target, protocol p = protocol::full) {
    ANS_CHECK(target == "dev" || target == "test", "evaluate: target must be dev or test, got '" << target << "'");
    // the factor rows are blocks of E0 (or of the propagated stack), passed by reference: no copy
    const matrix<Scalar>& table = factor_table();
    const Eigen::Ref<const matrix<Scalar>> uf = table.topRows(adj_.n_users), itf = table.bottomRows(adj_.n_items);
    const auto& truth = target == "dev" ? data_->dev : data_->test;
    ANS_CHECK(truth.nnz() > 0, "evaluate: the dataset '" << data_->name << "' has no " << target
                                                         << " split (an empty split would score 0)");
    if (p == protocol::sampled) {
      eval::sampled_rows& rows = target == "dev" ? dev_rows_ : test_rows_;
      if (rows.size() == 0) {
        const auto& cand = target == "dev" ? data_->dev_candidates : data_->test_candidates;
        if (cand && cand->rows() > 0) {
          rows.n_neg = cand->n_neg;
          rows.users.assign(cand->users.begin(), cand->users.end());
          rows.positives = cand->positives;
          rows.negatives = cand->negatives;
        } else {
          for (index_t u = 0; u < truth.n_users; ++u)
            for (auto it = truth.row_begin(u); it != truth.row_end(u); ++it) {
              rows.users.push_back(u);
              rows.positives.push_back(*it);
            }
          eval::draw_sampled_negatives(rows, {&data_->train, &data_->dev, &data_->test}, data_->train.n_items, 99,
                                       cfg_.seed ^ (target == "dev" ? 0xDE7ULL : 0x7E57ULL));
        }
      }
      eval::sampled_ranking_options so;
      so.ks = cfg_.topk;
      so.kinds = cfg_.metrics;
      return eval::sampled_ranking<Scalar>(uf, itf, rows, so);
    }
    eval::full_ranking_options fo;
    fo.ks = cfg_.topk;
    fo.kinds = cfg_.metrics;
    std::vector<const data::interactions*> masks;
    if (target == "test" && data_->dev.nnz() > 0) masks.push_back(&data_->dev);
    return eval::full_ranking<Scalar>(uf, itf, data_->train, truth, masks, fo);
  }

  /// Writes a checkpoint folder all-or-nothing (io/checkpoint.hpp): E0, the ANS parameters and every
  /// optimiser's state as .npy files, then manifest.json (with each file's dtype, shape, size and checksum and
  /// this run's model, sampler, optimiser, scalar type, seed and epochs_done) by one atomic rename. A kill at any
  /// moment leaves the previous checkpoint or this one, never a mix.
  void save(const std::string& dir) const {
    ANS_CHECK(kTable, "trainer::save: with a user encoder, E0 is computed from the encoder's parameters; save "
                      "those (e.g. an optim::param_group) instead");
    auto& self = const_cast<trainer&>(*this);
    io::write_checkpoint(dir, self.checkpoint_arrays(),
                         {{"epochs_done", std::to_string(epochs_done_)},
                          {"sampler", io::json_quote(to_string(cfg_.sampler))},
                          {"optimizer", io::json_quote(optimizer_name())},
                          {"n_layers", std::to_string(cfg_.n_layers)},
                          {"readout", io::json_quote(propagation::to_string(readout()))},
                          {"dim", std::to_string(cfg_.dim)},
                          {"n_users", std::to_string(adj_.n_users)},
                          {"n_nodes", std::to_string(adj_.n_nodes())},
                          {"seed", std::to_string(cfg_.seed)},
                          {"scalar", io::json_quote(scalar_name())}});
  }

  /// Restores a checkpoint written by save() with the same configuration. Everything is checked before any
  /// state changes (a failed load leaves the trainer as it was): the format and version, this run's model
  /// (sampler, optimiser, layers, readout, sizes), scalar type and seed, epochs_done in [0, 10^9], and every
  /// array's dtype, shape, size, checksum and finiteness; each error names the file and what was expected.
  void load(const std::string& dir) {
    ANS_CHECK(kTable, "trainer::load: with a user encoder, load the encoder's parameters instead");
    const io::json_value mf = io::read_checkpoint_manifest(dir);
    io::checkpoint_meta_equals(mf, dir, "scalar", scalar_name(), "the scalar type");
    io::checkpoint_meta_equals(mf, dir, "sampler", to_string(cfg_.sampler), "the sampler");
    io::checkpoint_meta_equals(mf, dir, "optimizer", optimizer_name(), "the optimiser");
    io::checkpoint_meta_equals(mf, dir, "readout", propagation::to_string(readout()), "the readout");
    auto same = [&](const char* key, index_t mine, const char* what) {
      const index_t v = io::checkpoint_meta_int(mf, dir, key, 0, std::numeric_limits<std::int64_t>::max() / 2);
      ANS_CHECK(v == mine, dir << "/manifest.json: " << what << " is " << v << ", this run's is " << mine);
    };
    same("n_layers", cfg_.n_layers, "n_layers");
    same("dim", cfg_.dim, "the embedding size");
    same("n_users", adj_.n_users, "the number of users");
    same("n_nodes", adj_.n_nodes(), "the number of users + items");
    ANS_CHECK(mf.contains("seed") && mf.at("seed").is_number() && mf.at("seed").as_number() == double(cfg_.seed),
              dir << "/manifest.json: the seed is " << (mf.contains("seed") ? io::to_json(mf.at("seed")) : "missing")
                  << ", this run's is " << cfg_.seed << " (a resumed run continues exactly only with its own seed)");
    const index_t epochs = io::checkpoint_meta_int(mf, dir, "epochs_done", 0, 1000000000);
    io::read_checkpoint_arrays(dir, mf, checkpoint_arrays());
    epochs_done_ = static_cast<int>(epochs);
  }

 private:
  // Users then items, one row per node: the readout ē the model trains with (E0 itself for L = 0), or E0
  // (ego scoring).
  const matrix<Scalar>& factor_table() {
    if (cfg_.scoring == scoring_kind::trained && cfg_.n_layers > 0) {
      propagation::readout<Scalar>(cfg_.n_layers, readout()).forward(adj_, e0_, eval_table_);
      return eval_table_;
    }
    return e0_;
  }

  struct block {
    std::string name;
    Scalar* data;
    index_t size;
  };

  static data::interactions union_of(const data::dataset& d) {
    std::vector<std::pair<index_t, index_t>> pairs;
    pairs.reserve(static_cast<size_t>(d.train.nnz() + d.dev.nnz() + d.test.nnz()));
    for (const auto* m : {&d.train, &d.dev, &d.test})
      for (index_t u = 0; u < m->n_users; ++u)
        for (auto it = m->row_begin(u); it != m->row_end(u); ++it) pairs.emplace_back(u, *it);
    return data::from_pairs(d.train.n_users, d.train.n_items, pairs);
  }
  optim::adam_options with_decay(optim::adam_options o) const {
    o.weight_decay = cfg_.weight_decay;
    return o;
  }
  static ans_options make_ans_options(const trainer_config& c) {
    if (c.ans) return *c.ans;
    auto o = ans_options::make(c.m);
    o.gamma = c.gamma;
    o.eps = c.eps;
    o.reg_weight = c.reg_weight;
    if (c.reg_require_pow) o.reg_require_pow = *c.reg_require_pow;
    o.bpr_stable = o.bpr_stable || c.bpr_stable;
    return o;
  }
  static model::bpr_options make_bpr_options(const trainer_config& c) {
    model::bpr_options o;
    o.selection = c.sampler == sampler_kind::dns      ? model::negative_selection::dns
                  : c.sampler == sampler_kind::mixgcf ? model::negative_selection::mixgcf
                                                      : model::negative_selection::first;
    o.readout = effective_readout(c);
    o.reg_weight = c.reg_weight;
    o.reg_require_pow = c.reg_require_pow.value_or(c.m == mode::fixed);
    o.bpr_stable = c.bpr_stable;
    return o;
  }

  std::vector<block> param_blocks() {
    return {{"W_u", params_.W_u.data(), params_.W_u.size()}, {"W_i", params_.W_i.data(), params_.W_i.size()},
            {"b_u", params_.b_u.data(), params_.b_u.size()}, {"b_i", params_.b_i.data(), params_.b_i.size()},
            {"w_m", params_.w_m.data(), params_.w_m.size()}, {"c_m", &params_.c_m, 1}};
  }
  std::vector<block> grad_blocks() {
    return {{"W_u", pgrads_.W_u.data(), pgrads_.W_u.size()}, {"W_i", pgrads_.W_i.data(), pgrads_.W_i.size()},
            {"b_u", pgrads_.b_u.data(), pgrads_.b_u.size()}, {"b_i", pgrads_.b_i.data(), pgrads_.b_i.size()},
            {"w_m", pgrads_.w_m.data(), pgrads_.w_m.size()}, {"c_m", &pgrads_.c_m, 1}};
  }

  // Every array a checkpoint holds: E0, the ANS parameters, and each optimiser's state.
  std::vector<block> state_arrays() {
    std::vector<block> out{{"E0", e0_.data(), e0_.size()}};
    for (auto& b : param_blocks()) out.push_back(b);
    auto add_state = [&](const std::string& prefix, auto st) {
      for (auto& a : st.arrays) out.push_back({prefix + a.name, a.data, static_cast<index_t>(a.size)});
    };
    if (adam_) add_state("opt_E0_", adam_->state());
    if (sparse_adam_) add_state("opt_E0_", sparse_adam_->state());
    if (sgd_) add_state("opt_E0_", sgd_->state());
    if constexpr (detail::has_optimizer_state<Optimizer, Scalar>::value) add_state("opt_E0_", optimizer_.state());
    for (size_t i = 0; i < param_adam_.size(); ++i) add_state("opt_" + param_blocks()[i].name + "_", param_adam_[i].state());
    return out;
  }

  // The optimisers' integer state (step counts).
  std::vector<optim::named_array<std::int64_t>> state_counters() {
    std::vector<optim::named_array<std::int64_t>> out;
    auto add = [&](const std::string& prefix, auto st) {
      for (auto& c : st.counters) out.push_back({prefix + c.name, c.data, c.size});
    };
    if (adam_) add("opt_E0_", adam_->state());
    if (sparse_adam_) add("opt_E0_", sparse_adam_->state());
    if (sgd_) add("opt_E0_", sgd_->state());
    if constexpr (detail::has_optimizer_state<Optimizer, Scalar>::value) add("opt_E0_", optimizer_.state());
    for (size_t i = 0; i < param_adam_.size(); ++i) add("opt_" + param_blocks()[i].name + "_", param_adam_[i].state());
    return out;
  }

  // Every array of save()/load(): the Scalar blocks (E0 and the optimisers' tables as [n_nodes, d], the gate
  // matrices as [d, d], the rest flat) and the optimisers' int64 counters.
  std::vector<io::checkpoint_array> checkpoint_arrays() {
    const index_t n = adj_.n_nodes(), d = cfg_.dim;
    std::vector<io::checkpoint_array> out;
    for (auto& a : state_arrays()) {
      std::vector<index_t> shape{a.size};
      if (a.size == n * d && n > 1) shape = {n, d};
      else if (a.size == d * d && d > 1) shape = {d, d};
      out.push_back(io::checkpoint_array::of(a.name, a.data, shape));
    }
    for (auto& c : state_counters())
      out.push_back(io::checkpoint_array::of(c.name, c.data, {static_cast<index_t>(c.size)}));
    return out;
  }
  static std::string scalar_name() { return sizeof(Scalar) == 4 ? "float32" : "float64"; }
  std::string optimizer_name() const {
    if constexpr (!kBuiltinOptimizer) return "user";
    switch (cfg_.optimizer) {
      case optimizer_kind::adam: return "adam";
      case optimizer_kind::lazy_adam: return cfg_.n_layers == 0 ? "lazy_adam" : "adam";  // lazy falls back for L >= 1
      case optimizer_kind::sgd: return "sgd";
      case optimizer_kind::hogwild_sgd: return "hogwild_sgd";
    }
    return "?";
  }

  // Data-parallel ANS: this shard's terms and saturated-margin fraction, as its share (w = rows/B) of the batch's.
  void add_shard_diagnostics(const model::ans_terms<Scalar>& t, double w) {
    const auto tv = terms_of(t);
    for (size_t i = 0; i < 5; ++i) term_sum_[i] += w * tv[i];
    sat_sum_ += w * ans_obj_.loss().stats().frac_saturated_margin;
  }
  // Data-parallel ANS, at the end of an epoch: the shards' sums of terms and saturation added over the ranks
  // (rank order: the same bits on every rank), so that epoch_terms() and epoch_saturated_margin_fraction() are
  // the batch means one process reports, within rounding. sat_n_ counts the batches on every rank. set_shard
  // checked that an ANS plan has sum_diagnostics.
  void end_epoch_diagnostics() {
    if (cfg_.sampler != sampler_kind::ans) return;
    std::array<double, 6> v{term_sum_[0], term_sum_[1], term_sum_[2], term_sum_[3], term_sum_[4], sat_sum_};
    shard_.sum_diagnostics(v.data(), 6);
    for (size_t i = 0; i < 5; ++i) term_sum_[i] = v[i];
    sat_sum_ = v[5];
  }
  static std::array<double, 5> terms_of(const model::ans_terms<Scalar>& t) {
    return {double(t.bpr), double(t.sns), double(t.distance), double(t.orth), double(t.reg)};
  }

  // The per-term gradients of this step's batch (trainer_config::diagnose_every): the loss with one term's
  // weight kept and the others 0, on the same ids and noise (so the same k*), into scratch gradients.
  void diagnose(int epoch, index_t b, const model::batch_ids& ids, const augment::counter_uniform_source& src) {
    ans_options& o = ans_obj_.loss().options();
    const ans_options saved = o;
    const index_t n = e0_.rows(), d = e0_.cols();
    if (diag_bpr_.rows() != n) diag_bpr_ = matrix<Scalar>::Zero(n, d), diag_term_ = matrix<Scalar>::Zero(n, d);
    auto pg = model::ans_params<Scalar>::zeros(d);
    ans_diagnostic out;
    out.epoch = epoch, out.batch = b, out.gamma = saved.gamma;
    const index_t nu = adj_.n_users;
    for (index_t r = 0; r < n; ++r) (r < nu ? out.user_norm : out.item_norm) += double(e0_.row(r).norm());
    out.user_norm /= double(std::max<index_t>(1, nu)), out.item_norm /= double(std::max<index_t>(1, n - nu));
    term_gradient* slot[5] = {&out.bpr, &out.sns, &out.distance, &out.orth, &out.reg};
    for (int t = 0; t < 5; ++t) {
      o = saved;
      o.bpr_weight = t == 0 ? saved.bpr_weight : 0.0;
      o.sns_weight = t == 1 ? saved.sns_weight : 0.0;
      o.distance_weight = t == 2 ? saved.distance_weight : 0.0;
      o.orth_weight = t == 3 ? saved.orth_weight : 0.0;
      o.reg_weight = t == 4 ? saved.reg_weight : 0.0;
      matrix<Scalar>& G = t == 0 ? diag_bpr_ : diag_term_;
      G.setZero();
      pg.set_zero();
      const auto& v = ans_obj_.forward_backward(adj_, e0_, ids, params_, src, G, pg);
      term_gradient& tg = *slot[t];
      tg.value = double(terms_of(v)[static_cast<size_t>(t)]);
      tg.e0 = double(G.norm());
      tg.gate = std::sqrt(double(pg.W_u.squaredNorm() + pg.W_i.squaredNorm() + pg.b_u.squaredNorm() + pg.b_i.squaredNorm()));
      tg.margin = std::sqrt(double(pg.w_m.squaredNorm()) + double(pg.c_m) * double(pg.c_m));
      const double nb = double(diag_bpr_.norm());
      tg.cos_bpr = tg.e0 > 0 && nb > 0 ? double((G.array() * diag_bpr_.array()).sum()) / (tg.e0 * nb) : 0.0;
      index_t over = 0, nz = 0, alone = 0, mine = 0;
      for (index_t i = 0; i < G.size(); ++i) {
        const Scalar a = std::abs(G.data()[i]), c = std::abs(diag_bpr_.data()[i]);
        if (c != Scalar(0)) ++nz, over += a > c;
        if (a != Scalar(0)) ++mine, alone += c == Scalar(0);
      }
      tg.frac_over_bpr = t == 0 ? 0.0 : double(over) / double(std::max<index_t>(1, nz));
      tg.frac_without_bpr = t == 0 ? 0.0 : double(alone) / double(std::max<index_t>(1, mine));
    }
    o = saved;
    diag_.push_back(out);
  }

  // MF (L = 0) with RNS or DNS: the fused step (train/mf_step.hpp) and hogwild_sgd can run it.
  bool mf_bpr() const {
    return cfg_.n_layers == 0 && (cfg_.sampler == sampler_kind::rns || cfg_.sampler == sampler_kind::dns);
  }
  // The fused MF paths inline the built-in selection and optimisers: every policy must be the built-in one.
  static constexpr bool builtin_mf() { return kTable && kBuiltinSelector && kBuiltinOptimizer; }
  static Sampler default_sampler(const data::interactions& train) {
    if constexpr (std::is_constructible_v<Sampler, const data::interactions&>) return Sampler(train);
    else ANS_THROW("this Sampler cannot be built from the training split: pass one to the constructor");
  }
  // A user encoder's E0 = f_θ, with its shape checked.
  void encode() {
    const index_t n = e0_.rows(), d = e0_.cols();
    encoder_.forward(e0_);
    ANS_CHECK(e0_.rows() == n && e0_.cols() == d, "the encoder's forward resized E0 from " << n << "x" << d << " to "
                                                                                           << e0_.rows() << "x" << e0_.cols());
  }

  // The six gate/margin parameter blocks and their gradients as pointer arrays (no heap allocation: every ANS
  // step uses them), and one dense Adam step on each, after which its gradient is cleared.
  struct gate_blocks {
    Scalar* param[6];
    Scalar* grad[6];
    index_t size[6];
  };
  gate_blocks gates() {
    return {{params_.W_u.data(), params_.W_i.data(), params_.b_u.data(), params_.b_i.data(), params_.w_m.data(), &params_.c_m},
            {pgrads_.W_u.data(), pgrads_.W_i.data(), pgrads_.b_u.data(), pgrads_.b_i.data(), pgrads_.w_m.data(), &pgrads_.c_m},
            {pgrads_.W_u.size(), pgrads_.W_i.size(), pgrads_.b_u.size(), pgrads_.b_i.size(), pgrads_.w_m.size(), 1}};
  }
  void step_gates(const gate_blocks& g) {
    for (size_t i = 0; i < 6; ++i) {
      param_adam_[i].step(g.param[i], g.grad[i]);
      std::fill(g.grad[i], g.grad[i] + g.size[i], Scalar(0));
    }
  }

  // One data-parallel step (train/shard.hpp): this rank's rows of `batch`, the objective's gradients scaled by
  // w = rows / B (ANS: the loss's upstream, no pass over the rows; BPR: the touched rows), the exchange, then the
  // same optimiser steps as the single process. Returns the global loss.
  double sharded_step(const sampling::pair_batch& batch, std::uint64_t step, int epoch, index_t b, index_t nb) {
    const auto [lo, hi] = shard_rows(batch.size, shard_.rank, shard_.size);
    const sampling::pair_batch mine = batch.slice(lo, hi);
    const double w = double(hi - lo) / double(batch.size);
    const gate_blocks g = gates();
    const bool ans = cfg_.sampler == sampler_kind::ans;
    double loss = 0;
    shard_touched_.clear();
    pair_in_ = nullptr;  // set by send_owned_gradients for this step only (a step that threw leaves it set)
    if (cfg_.n_layers > 0) return lightgcn_sharded_step(batch, step, epoch, b, nb);
    cands_.resize(static_cast<size_t>(mine.size * K_));
    if (mine.size > 0) sampling::sample_batch(sampler_, mine, K_, cfg_.seed, cands_.data());
    // owned rows with ANS: the fetched rows are read where they arrive and their gradients written where they
    // leave (an overlay), not copied into E0 and out of grad_e0 (send_owned_gradients relies on it for ANS);
    // the shard's rows are the fetch's view (fetch_owned_rows), which the objective need not list again
    const bool overlay = mf_owned_ && ans;
    if (mf_owned_) fetch_owned_rows(mine, overlay);  // every rank takes part, with an empty shard too
    if (mine.size > 0) {
      const model::batch_ids ids{mine.users, mine.items, cands_.data(), mine.size, K_};
      if (ans) {
        const augment::counter_uniform_source src{cfg_.seed, step, lo};
        ans_obj_.loss().options().gamma = gamma_at(epochs_done_ * nb + b, nb);
        // nothing fetched (every row of the shard is this rank's own): no overlay; rows_in_ may never have held one
        const model::row_overlay<Scalar> ov =
            overlay && !req_ids_.empty() ? model::row_overlay<Scalar>{slot_.data(), rows_in_.data(), grow_out_.data(), false}
                                         : model::row_overlay<Scalar>{};
        const auto& t = ans_obj_.forward_backward(adj_, e0_, ids, params_, src, grad_e0_, pgrads_, Scalar(w), ov);
        loss = t.total;
        if (!overlay) shard_touched_ = ans_obj_.touched_rows();
        add_shard_diagnostics(t, w);
      } else {
        loss = bpr_obj_.forward(adj_, e0_, ids, cfg_.seed, step);
        bpr_obj_.backward(grad_e0_);
        shard_touched_ = bpr_obj_.touched_rows();
      }
      ANS_CHECK(std::isfinite(loss), "loss is not finite at epoch " << epoch << ", batch " << b << " (try a smaller lr)");
      if (!ans)  // the shard's mean → its share of the batch's mean (ANS: the loss's upstream w)
        for (index_t r : shard_touched_) grad_e0_.row(r) *= Scalar(w);
    }
    if (ans) ++sat_n_;  // every rank counts every batch (an empty shard adds nothing): end_epoch_diagnostics
    if (mf_owned_) send_owned_gradients(ans);  // shard_touched_ becomes this rank's rows of the union
    std::vector<index_t> none;
    shard_exchange<Scalar> ex;
    ex.grad_e0 = &grad_e0_;
    ex.touched = mf_owned_ ? &none : &shard_touched_;  // owned: the rows went to their owners
    ex.params = g.grad;
    ex.param_sizes = g.size;
    ex.n_params = ans ? 6 : 0;
    ex.loss = loss * w;
    const double global = shard_.exchange(ex);
    if (ans) step_gates(g);
    if (mf_owned_ && !sparse_adam_) step_block(node_off_[shard_.rank], node_off_[shard_.rank + 1]);
    else if (pair_in_) step_owned_pair();  // two ranks, lazy Adam: the peer's rows added as each row is stepped
    else step_embeddings(shard_touched_);  // lazy Adam: the touched rows only (owned: this rank's)
    return global;
  }

  // MF on owned rows, before the step: the rows of this shard (users, positives, candidates) that other ranks
  // own are fetched from them (ids to the owners, rows back: an all-to-all each), and this rank sends the rows
  // others ask for. Every rank's own block is current; the rest of its E0 is stale outside what it fetches.
  // `overlay`: the fetched rows stay in rows_in_ (slot_[node] = their index there, -1 elsewhere), and grow_out_
  // is zeroed for their gradients; otherwise they are copied into E0.
  void fetch_owned_rows(const sampling::pair_batch& mine, bool overlay) {
    const index_t n = e0_.rows(), nu = adj_.n_users, d = cfg_.dim;
    for (std::int64_t m : req_ids_)  // the last step's overlay (cleared here: a step that threw leaves it set)
      if (m < static_cast<index_t>(slot_.size())) slot_[m] = -1;
    const std::vector<index_t>& V = view_set_.collect(n, [&](auto&& add) {
      for (index_t b = 0; b < mine.size; ++b) add(mine.users[b]), add(nu + mine.items[b]);
      for (index_t j = 0; j < mine.size * K_; ++j) add(nu + cands_[j]);
    });
    split_by_owner(V, req_ids_, req_cnt_);
    shard_.alltoall_counts(req_cnt_, ask_cnt_);
    ask_ids_.resize(static_cast<size_t>(total(ask_cnt_)));
    shard_.alltoall_ids(req_ids_.data(), req_cnt_, ask_ids_.data(), ask_cnt_);
    const index_t mlo = node_off_[shard_.rank], mhi = node_off_[shard_.rank + 1];
    rows_out_.resize(ask_ids_.size() * static_cast<size_t>(d));
    for (size_t i = 0; i < ask_ids_.size(); ++i) {
      ANS_CHECK(ask_ids_[i] >= mlo && ask_ids_[i] < mhi, "MF on owned rows: rank " << shard_.rank << " was asked for row "
                                                                                    << ask_ids_[i] << " outside its block");
      if (i + 8 < ask_ids_.size()) prefetch_span(e0_.row(ask_ids_[i + 8]).data(), d);
      std::copy(e0_.row(ask_ids_[i]).data(), e0_.row(ask_ids_[i]).data() + d, rows_out_.data() + i * d);
    }
    rows_in_.resize(req_ids_.size() * static_cast<size_t>(d));
    times(ask_cnt_, d, cnt_a_), times(req_cnt_, d, cnt_b_);
    shard_.alltoall_rows(rows_out_.data(), cnt_a_, rows_in_.data(), cnt_b_);
    owned_.fetched += req_ids_.size();
    owned_.served += ask_ids_.size();
    if (overlay) {
      if (static_cast<index_t>(slot_.size()) != n) slot_.assign(static_cast<size_t>(n), -1);
      for (size_t i = 0; i < req_ids_.size(); ++i) slot_[req_ids_[i]] = static_cast<index_t>(i);
      grow_out_.assign(rows_in_.size(), Scalar(0));
      return;
    }
    for (size_t i = 0; i < req_ids_.size(); ++i)
      std::copy(rows_in_.data() + i * d, rows_in_.data() + (i + 1) * d, e0_.row(req_ids_[i]).data());
  }

  // MF on owned rows, after the shard's backward: the gradient rows of other ranks' nodes go to their owners
  // (ids and rows), and this rank sums, for each row of its block that any shard touched, the contributions
  // in rank order: the sums the all-gather schedule forms, bit for bit. shard_touched_ ← those rows (sorted).
  // `same_as_fetched`: the touched rows are the fetched view (ANS touches every user, positive and candidate
  // row it reads), known alike on every rank, so the gradient ids are the fetch's ids and their two
  // collectives are skipped. That is the ANS step, whose overlay (fetch_owned_rows) has written the gradient
  // rows into grow_out_ already, in the fetch's order.
  // Two ranks with lazy Adam: the sums are left to step_owned_pair, which forms each as it steps it (pair_in_).
  void send_owned_gradients(bool same_as_fetched) {
    const index_t d = cfg_.dim;
    const int P = shard_.size, me = shard_.rank;
    const std::vector<index_t>& rows = same_as_fetched ? view_set_.rows() : shard_touched_;  // the shard's, sorted
    if (same_as_fetched) {
      gcnt_ = req_cnt_;  // the fetch's ids and counts (gid_out_ unused)
    } else {
      split_by_owner(rows, gid_out_, gcnt_);
      grow_out_.resize(gid_out_.size() * static_cast<size_t>(d));
      for (size_t i = 0; i < gid_out_.size(); ++i) {
        Scalar* g = grad_e0_.row(gid_out_[i]).data();
        std::copy(g, g + d, grow_out_.data() + i * d);
        std::fill(g, g + d, Scalar(0));
      }
      shard_.alltoall_counts(gcnt_, grcnt_);
      gid_in_.resize(static_cast<size_t>(total(grcnt_)));
      shard_.alltoall_ids(gid_out_.data(), gcnt_, gid_in_.data(), grcnt_);
    }
    const std::vector<std::int64_t>& ids_in = same_as_fetched ? ask_ids_ : gid_in_;  // the received rows' ids
    const std::vector<index_t>& cnt_in = same_as_fetched ? ask_cnt_ : grcnt_;
    grow_in_.resize(ids_in.size() * static_cast<size_t>(d));
    times(gcnt_, d, cnt_a_), times(cnt_in, d, cnt_b_);
    shard_.alltoall_rows(grow_out_.data(), cnt_a_, grow_in_.data(), cnt_b_);
    owned_.gradients += same_as_fetched ? req_ids_.size() : gid_out_.size();
    // P sorted lists: rank me's own touched rows of its block (values in grad_e0_), the others' received
    const index_t mlo = node_off_[me], mhi = node_off_[me + 1];
    const auto own0 = std::lower_bound(rows.begin(), rows.end(), mlo);
    const auto own1 = std::lower_bound(own0, rows.end(), mhi);
    for (index_t m : ids_in)  // this rank's own rows are in its block by construction
      ANS_CHECK(m >= mlo && m < mhi, "MF on owned rows: rank " << me << " got a gradient for row " << m << " outside its block");
    if (P == 2 && sparse_adam_) {  // valid until the next fetch
      pair_own_ = {rows.data() + (own0 - rows.begin()), static_cast<index_t>(own1 - own0)};
      pair_in_ = &ids_in;
      return;
    }
    if (P == 2 || me == 0) {
      // In place, received segment by segment in rank order. Rank 0's own rows are already where its sums
      // start (0 + g_0 = g_0), and with two ranks g_1 + g_0 = g_0 + g_1: the bits of the ordered sum below,
      // without its copies. A row of the block no shard of this rank touched holds 0 (cleared by the last step).
      for (index_t r = 0, o = 0; r < P; ++r) {
        if (r == me) continue;
        for (index_t k = o; k < o + cnt_in[r]; ++k) {
          const index_t m = ids_in[k];
          Scalar* dst = grad_e0_.row(m).data();
          const Scalar* src = grow_in_.data() + k * d;
          for (index_t j = 0; j < d; ++j) dst[j] += src[j];
        }
        o += cnt_in[r];
      }
      if (P == 2) {  // two sorted lists (the peer's ids are one sorted segment): merged, no marks to scan
        own_ids_.clear();
        std::set_union(own0, own1, ids_in.begin(), ids_in.end(), std::back_inserter(own_ids_));
        shard_touched_.swap(own_ids_);
        return;
      }
      shard_touched_ = union_set_.collect(e0_.rows(), [&](auto&& add) {
        for (auto it = own0; it != own1; ++it) add(*it);
        for (index_t m : ids_in) add(m);
      });
      return;
    }
    own_ids_.assign(own0, own1);
    cur_.assign(static_cast<size_t>(P), 0);
    end_.assign(static_cast<size_t>(P), 0);
    for (index_t r = 0, o = 0; r < P; ++r) {  // received segments, rank by rank (index into ids_in)
      cur_[r] = o, end_[r] = o + (r == me ? 0 : cnt_in[r]);
      o = end_[r];
    }
    cur_[me] = 0, end_[me] = static_cast<index_t>(own_ids_.size());  // this rank's own list (index into own_ids_)
    auto id_at = [&](int r, index_t k) -> index_t { return r == me ? own_ids_[k] : ids_in[k]; };
    row_tmp_.resize(static_cast<size_t>(d));
    shard_touched_.clear();
    for (;;) {
      index_t m = -1;
      for (int r = 0; r < P; ++r)
        if (cur_[r] < end_[r] && (m < 0 || id_at(r, cur_[r]) < m)) m = id_at(r, cur_[r]);
      if (m < 0) break;
      std::fill(row_tmp_.begin(), row_tmp_.end(), Scalar(0));
      for (int r = 0; r < P; ++r)
        if (cur_[r] < end_[r] && id_at(r, cur_[r]) == m) {
          const Scalar* src = r == me ? grad_e0_.row(m).data() : grow_in_.data() + cur_[r] * d;
          for (index_t j = 0; j < d; ++j) row_tmp_[j] += src[j];
          ++cur_[r];
        }
      std::copy(row_tmp_.begin(), row_tmp_.end(), grad_e0_.row(m).data());
      shard_touched_.push_back(m);
    }
  }

  // MF on owned rows, two ranks, lazy Adam, after send_owned_gradients: one pass over the merge of this rank's
  // touched rows of its block (pair_own_, gradients in grad_e0_) and the peer's (pair_in_, gradients in
  // grow_in_), both sorted: the peer's row is added into this rank's (g_1 + g_0 = g_0 + g_1, the bits of the
  // ordered sum) and the row stepped while it is in cache, which an add pass, a list merge and the optimiser's
  // pass did before. The optimiser's row kernel clears the gradient row, as step_table does. With several
  // threads each takes a range of ids (rows are independent: the same bits for any thread count).
  void step_owned_pair() {
    const std::vector<std::int64_t>& in = *pair_in_;
    const index_t* own = pair_own_.first;
    const index_t n_own = pair_own_.second, n_in = static_cast<index_t>(in.size());
    sparse_adam_->begin_step();
    const int nt = (n_own + n_in) * cfg_.dim > (1 << 14) ? max_threads() : 1;
    if (nt == 1) return step_owned_pair_range(own, 0, n_own, in.data(), 0, n_in);
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < nt; ++t) {  // thread t: the ids in [cut(t), cut(t + 1)), cut at the longer list's quantiles
      auto cut = [&](int c) -> index_t {
        if (c == 0) return std::numeric_limits<index_t>::min();
        if (c == nt) return std::numeric_limits<index_t>::max();
        return n_own >= n_in ? own[n_own * c / nt] : static_cast<index_t>(in[n_in * c / nt]);
      };
      const index_t a = cut(t), b = cut(t + 1);
      const index_t i0 = std::lower_bound(own, own + n_own, a) - own, i1 = std::lower_bound(own, own + n_own, b) - own;
      const index_t k0 = std::lower_bound(in.begin(), in.end(), a) - in.begin(), k1 = std::lower_bound(in.begin(), in.end(), b) - in.begin();
      step_owned_pair_range(own, i0, i1, in.data(), k0, k1);
    }
  }
  // step_owned_pair on own[i0, i1) and in[k0, k1), each list's rows prefetched `ahead` entries before they are
  // reached (the table, both moments, the gradient), as the list advances.
  void step_owned_pair_range(const index_t* own, index_t i0, index_t i1, const std::int64_t* in, index_t k0, index_t k1) {
    const index_t d = cfg_.dim;
    Scalar* E = e0_.data();
    optim::sparse_adam<Scalar>& adam = *sparse_adam_;
    constexpr index_t ahead = 8;
    auto prefetch = [&](index_t m) { adam.prefetch_row(E, m), prefetch_span(grad_e0_.row(m).data(), d); };
    for (index_t i = i0; i < std::min(i0 + ahead, i1); ++i) prefetch(own[i]);
    for (index_t k = k0; k < std::min(k0 + ahead, k1); ++k) prefetch(in[k]);
    auto next_own = [&](index_t& i) {
      if (i + ahead < i1) prefetch(own[i + ahead]);
      ++i;
    };
    for (index_t i = i0, k = k0; i < i1 || k < k1;) {
      index_t m;
      if (k == k1 || (i < i1 && own[i] < in[k])) {
        m = own[i];
        next_own(i);
      } else {
        m = in[k];
        Scalar* g = grad_e0_.row(m).data();
        const Scalar* src = grow_in_.data() + k * d;
        for (index_t j = 0; j < d; ++j) g[j] += src[j];  // ∂L/∂E0[m] = g_own + g_peer
        if (i < i1 && own[i] == m) next_own(i);
        if (k + ahead < k1) prefetch(in[k + ahead]);
        ++k;
      }
      adam.template update_row<true>(E, m, grad_e0_.row(m).data());
    }
  }

  // The sorted ids of `rows` that other ranks own, rank by rank, and their counts (0 for this rank).
  void split_by_owner(const std::vector<index_t>& rows, std::vector<std::int64_t>& ids, std::vector<index_t>& cnt) const {
    const int P = shard_.size;
    cnt.assign(static_cast<size_t>(P), 0);
    ids.clear();
    auto it = rows.begin();
    for (int r = 0; r < P; ++r) {
      const auto e = std::lower_bound(it, rows.end(), node_off_[r + 1]);
      if (r != shard_.rank) {
        cnt[r] = static_cast<index_t>(e - it);
        ids.insert(ids.end(), it, e);
      }
      it = e;
    }
  }
  static index_t total(const std::vector<index_t>& c) {
    index_t t = 0;
    for (index_t x : c) t += x;
    return t;
  }
  static void times(const std::vector<index_t>& c, index_t k, std::vector<index_t>& out) {
    out.resize(c.size());
    for (size_t i = 0; i < c.size(); ++i) out[i] = c[i] * k;
  }

  // The data-parallel LightGCN step (set_shard): every rank draws its rows' candidates (each row's draw is keyed
  // on the row, so the shards draw what one process draws) and all-gathers them once the propagation (which
  // reads no id) is done, runs the loss on its rows with the row-block propagation, gathers the per-row
  // gradients, runs the row-block backward, sums the gate and margin gradients and the loss, steps the
  // optimiser on its node block, and all-gathers the updated rows of E0.
  double lightgcn_sharded_step(const sampling::pair_batch& batch, std::uint64_t step, int epoch, index_t b, index_t nb) {
    const int P = shard_.size;
    const auto rows = shard_rows(batch.size, shard_.rank, P);
    const index_t lo = rows.first, hi = rows.second;  // not a structured binding: the lambdas below capture them
    const double w = double(hi - lo) / double(batch.size);
    const gate_blocks g = gates();
    batch_off_.resize(static_cast<size_t>(P) + 1);
    for (int r = 0; r <= P; ++r) batch_off_[r] = r < P ? shard_rows(batch.size, r, P).first : batch.size;
    cands_.resize(static_cast<size_t>(batch.size * K_));
    // with the plan's sync_counts, this rank draws its rows' candidates only (each row's draw is keyed on the
    // row) and the ranks all-gather them after the propagation (complete_ids below): every rank scatters the
    // whole batch's gradient, so it needs every candidate id. Without it, every rank draws the whole batch.
    const bool draw_own = static_cast<bool>(shard_.sync_counts);
    if (!draw_own) sampling::sample_batch(sampler_, batch, K_, cfg_.seed, cands_.data());
    else if (hi > lo) sampling::sample_batch(sampler_, batch.slice(lo, hi), K_, cfg_.seed, cands_.data() + lo * K_);
    const model::batch_ids ids{batch.users, batch.items, cands_.data(), batch.size, K_};
    const augment::counter_uniform_source src{cfg_.seed, step, lo};
    ans_obj_.loss().options().gamma = gamma_at(epochs_done_ * nb + b, nb);
    double loss = 0, global = 0;
    ans_obj_.forward_backward_shard(
        adj_, e0_, ids, lo, hi, batch_off_, params_, src, grad_e0_, pgrads_,
        [&] {
          if (!draw_own) return;
          cand_ids_.resize(cands_.size());
          for (index_t j = lo * K_; j < hi * K_; ++j) cand_ids_[j] = cands_[j];
          shard_.sync_counts(cand_ids_.data(), K_, batch_off_);
          for (size_t j = 0; j < cands_.size(); ++j) cands_[j] = static_cast<id_type>(cand_ids_[j]);
        },
        [this](Scalar* rows, index_t width, const std::vector<index_t>& off) { shard_.sync_rows(rows, width, off); },
        [this](const Scalar* send, index_t ns, Scalar* recv, index_t nr) { shard_.swap_rows(send, ns, recv, nr); },
        [&](const model::ans_terms<Scalar>& t) {
          loss = t.total;
          if (hi > lo) {
            ANS_CHECK(std::isfinite(loss), "loss is not finite at epoch " << epoch << ", batch " << b << " (try a smaller lr)");
            add_shard_diagnostics(t, w);
            const Scalar sw = Scalar(w);
            for (size_t i = 0; i < 6; ++i)
              for (index_t j = 0; j < g.size[i]; ++j) g.grad[i][j] *= sw;
          }
          ++sat_n_;  // every rank counts every batch (an empty shard adds nothing): end_epoch_diagnostics
          shard_exchange<Scalar> ex;  // the gate and margin gradients and the loss (no rows: E0's go to the backward)
          ex.grad_e0 = &grad_e0_;
          ex.touched = &shard_touched_;
          ex.params = g.grad;
          ex.param_sizes = g.size;
          ex.n_params = 6;
          ex.loss = loss * w;
          global = shard_.exchange(ex);
        });
    step_gates(g);
    // this rank's node block of E0: the optimiser step (which clears the block's gradient), then the all-gather
    const index_t d = cfg_.dim;
    step_block(node_off_[shard_.rank], node_off_[shard_.rank + 1]);
    // rows: every rank's next forward reads all of E0; bipartite: only its own side (the rows of the other side
    // its shard gathers come with the chain's rows), and the whole E0 is gathered at the end of the epoch
    if (!bipartite_) shard_.sync_rows(e0_.data(), d, node_off_);
    return global;
  }

  // A dense optimiser step (Adam or SGD) on rows [nlo, nhi) of E0 only, which clears their gradient: the
  // rows a data-parallel rank owns; its updates equal the whole table's step on those rows.
  void step_block(index_t nlo, index_t nhi) {
    const index_t d = cfg_.dim;
    if (adam_) {
      adam_->step_and_clear_range(e0_.data(), grad_e0_.data(), nlo * d, (nhi - nlo) * d);
      return;
    }
    ANS_CHECK(sgd_, "step_block: no dense optimiser");
    sgd_->begin_step();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t r = nlo; r < nhi; ++r) sgd_->update_row(e0_.data(), r, grad_e0_.row(r).data());
    grad_e0_.middleRows(nlo, nhi - nlo).setZero();
  }

  // Each rank advanced the optimiser state of its node block only (and, on the bipartite chains and the owned
  // MF rows, keeps only its own block of E0 current); gather them so that every rank (and a checkpoint written
  // by any of them) holds the whole state, and evaluation sees the whole table.
  void sync_optimizer_state() {
    const index_t d = cfg_.dim;
    if (bipartite_ || mf_owned_) shard_.sync_rows(e0_.data(), d, node_off_);
    if (sparse_adam_) {  // MF on owned rows with lazy Adam: the moments and the row step counts
      shard_.sync_rows(sparse_adam_->exp_avg().data(), d, node_off_);
      shard_.sync_rows(sparse_adam_->exp_avg_sq().data(), d, node_off_);
      for (auto& c : sparse_adam_->state().counters)
        if (c.name == std::string("row_step")) shard_.sync_counts(c.data, 1, node_off_);
    }
    if (adam_) {
      shard_.sync_rows(adam_->exp_avg().data(), d, node_off_);
      shard_.sync_rows(adam_->exp_avg_sq().data(), d, node_off_);
    }
    if (sgd_ && !sgd_->momentum_buffer().empty()) shard_.sync_rows(sgd_->momentum_buffer().data(), d, node_off_);
  }

  // Applies the embedding gradient and clears it (only the touched rows for lazy Adam with L = 0). A user
  // encoder takes ∂L/∂E0 back to its parameters, steps its optimiser, and E0 is encoded again.

  void step_embeddings(const std::vector<index_t>& touched) {
    if constexpr (!kTable) {
      encoder_.backward(grad_e0_, touched);
      encoder_.step();
      if (touched.empty()) parallel_zero(grad_e0_.data(), grad_e0_.size());
      else for (index_t r : touched) grad_e0_.row(r).setZero();
      encode();  // the next step (and evaluation) sees the updated θ
      return;
    }
    if constexpr (!kBuiltinOptimizer) {
      optimizer_.step(e0_, static_cast<const matrix<Scalar>&>(grad_e0_), touched);
      if (touched.empty()) parallel_zero(grad_e0_.data(), grad_e0_.size());
      else for (index_t r : touched) grad_e0_.row(r).setZero();
      return;
    }
    if (sparse_adam_) {
      // the touched gradient rows are read in place and cleared by the step (rows are distinct)
      sparse_adam_->step_table(e0_.data(), touched.data(), grad_e0_.data(), static_cast<index_t>(touched.size()));
      return;
    }
    if (adam_) {
      adam_->step_and_clear(e0_.data(), grad_e0_.data());  // one pass: update, then zero the gradient
      return;
    }
    if (sgd_) sgd_->step(e0_.data(), grad_e0_.data());
    parallel_zero(grad_e0_.data(), grad_e0_.size());  // a serial N x d memset was a visible share of a step
  }

  const data::dataset* data_;
  trainer_config cfg_;
  graph::normalized_adjacency<Scalar> adj_;
  sampling::pair_batcher batcher_;
  data::interactions neg_exclude_;  ///< train ∪ dev ∪ test when negatives_exclude_eval (ReChorus before 2021-03)
  Sampler sampler_;
  Encoder encoder_;
  Optimizer optimizer_;
  model::ans_objective<Scalar> ans_obj_;
  model::bpr_objective<Scalar, Selector> bpr_obj_;
  mf_bpr_step<Scalar> mf_step_;
  matrix<Scalar> e0_, grad_e0_, eval_table_;
  shard_plan<Scalar> shard_;
  std::vector<index_t> shard_touched_;
  const std::vector<std::int64_t>* pair_in_ = nullptr;  ///< step_owned_pair: the peer's gradient ids (grow_in_)
  std::pair<const index_t*, index_t> pair_own_{};        ///< step_owned_pair: this rank's rows of its block
  std::vector<index_t> node_off_;   ///< LightGCN data-parallel: the ranks' node blocks (node_blocks)
  std::vector<index_t> batch_off_;  ///< LightGCN data-parallel: the ranks' first pair in the current batch
  bool bipartite_ = false;          ///< LightGCN data-parallel on the two bipartite chains
  bool mf_owned_ = false;           ///< MF data-parallel on owned rows
  // MF on owned rows: this shard's rows, the requests (ids this rank asks others for / others ask it for),
  // the gradient rows to and from the owners, and the merge cursors
  model::touched_set view_set_;
  model::touched_set union_set_;        ///< MF on owned rows: the block's rows any shard touched (in-place merge)
  std::vector<std::int64_t> cand_ids_;  ///< LightGCN data-parallel: the batch's candidate ids, all-gathered
  std::vector<std::int64_t> req_ids_, ask_ids_, gid_out_, gid_in_;
  std::vector<index_t> req_cnt_, ask_cnt_, gcnt_, grcnt_, cnt_a_, cnt_b_, own_ids_, cur_, end_;
  std::vector<Scalar> rows_out_, rows_in_, grow_out_, grow_in_, row_tmp_;
  std::vector<index_t> slot_;  ///< MF on owned rows with ANS: node → its row in rows_in_ and grow_out_ (-1: E0's)
  owned_counts owned_;
  eval::sampled_rows dev_rows_, test_rows_;
  model::ans_params<Scalar> params_, pgrads_;
  std::unique_ptr<optim::adam<Scalar>> adam_;
  std::unique_ptr<optim::sparse_adam<Scalar>> sparse_adam_;
  std::unique_ptr<optim::sgd<Scalar>> sgd_;
  std::vector<optim::adam<Scalar>> param_adam_;
  std::vector<id_type> cands_;
  index_t K_ = 1;
  index_t max_batches_ = 0;
  int epochs_done_ = 0;
  double sat_sum_ = 0;
  index_t sat_n_ = 0;
  std::array<double, 5> term_sum_{};  ///< this epoch's sums of the ANS terms (bpr, sns, distance, orth, reg)
  double base_gamma_ = 0;             ///< γ after the warm-up
  std::vector<ans_diagnostic> diag_;
  matrix<Scalar> diag_bpr_, diag_term_;  ///< diagnose(): BPR's and the current term's ∂/∂E0
};

}  // namespace ans::train
