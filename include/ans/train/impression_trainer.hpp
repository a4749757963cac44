/// @file impression_trainer.hpp
/// @brief ReChorus's impression mode (`--model_mode Impression`): BPRMF and LightGCN trained on impression
/// lists with the list-level BPR (`impression_trainer`), and any pair trainer (ANS with exposure or uniform
/// candidates) ranked on impression lists (`impression_run`).
///
/// impression_trainer, one step on a batch of B lists (ReChorus `ImpressionRunner.fit` + `BaseImpressionModel`):
///   ē = readout(E0) (E0 itself for L = 0);  per list l, the first train_max_pos positives and train_max_neg
///   negatives, scores s_i = <ē_u, ē_i>, t_j = <ē_u, ē_j>;  L = 1/B Σ_l ℓ_l (loss/list_bpr.hpp);
///   ∂L/∂ē_u = Σ_i ∂ℓ/∂s_i ē_i + Σ_j ∂ℓ/∂t_j ē_j,  ∂L/∂ē_i = ∂ℓ/∂s_i ē_u  (scattered serially, in list order);
///   ∂L/∂E0 = readout backward (identity for L = 0); then dense Adam with weight decay `weight_decay` on all
///   of E0 (torch.optim.Adam(weight_decay = --l2) over the whole embedding tables).
/// Lists are shuffled every epoch (a counter-based permutation of (seed, epoch)); the step is deterministic and
/// does not depend on the thread count.
///
/// LightGCN's graph: ReChorus builds it from `corpus.train_clicked_set`, which its BaseReader fills from every
/// train row *before* the impression grouping, clicked or not: the graph holds the exposures
/// (graph_edges::exposures, the default). graph_edges::clicks uses the clicked pairs only.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/impression.hpp"
#include "ans/eval/impression_ranking.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/io/checkpoint.hpp"
#include "ans/loss/list_bpr.hpp"
#include "ans/optim/adam.hpp"
#include "ans/propagation/readout.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/train/init.hpp"

namespace ans::train {

/// Which train pairs LightGCN's graph holds in impression mode.
enum class graph_edges { exposures, clicks };

/// Everything that defines an impression_trainer run; the defaults are ReChorus's (BPRMF: normal(0, 0.01)).
struct impression_config {
  int n_layers = 0;            ///< 0 = BPRMF; LightGCN: 3, mean readout
  index_t dim = 64;
  index_t batch_size = 256;    ///< lists per step
  double lr = 1e-3;
  double weight_decay = 0;     ///< ReChorus's --l2
  init_kind init = init_kind::normal;
  double init_std = 0.01;
  index_t train_max_pos = 20, train_max_neg = 20;  ///< ReChorus's train_max_pos_item / train_max_neg_item
  graph_edges edges = graph_edges::exposures;
  std::uint64_t seed = 0;
  eval::impression_ranking_options eval;  ///< test_max_pos_item / test_max_neg_item, HR and NDCG cutoffs
};

/// Impression-mode ranking of a trained model: the metrics of eval::impression_ranking on `lists` with the
/// model's factor rows (trainer::with_factors).
template <class Scalar, class Trainer>
std::map<std::string, double> impression_evaluate(Trainer& t, const data::impression_lists& lists,
                                                  const eval::impression_ranking_options& o) {
  return t.with_factors([&](const Eigen::Ref<const matrix<Scalar>>& uf, const Eigen::Ref<const matrix<Scalar>>& itf) {
    return eval::impression_ranking<Scalar>(uf, itf, lists, o);
  });
}

/// BPRMF / LightGCN on impression lists with ReChorus's list-level BPR (see the file comment).
template <class Scalar>
class impression_trainer {
 public:
  enum class protocol { impression };

  /// `data` must outlive the trainer (it keeps its address); a temporary does not compile.
  impression_trainer(const data::impression_dataset& data, const impression_config& cfg)
      : data_(&data), cfg_(cfg),
        adj_(cfg.n_layers > 0 ? graph::build_normalized_adjacency<Scalar>(cfg.edges == graph_edges::exposures
                                                                              ? data.train_exposures
                                                                              : data.base.train)
                              : graph::node_counts_only<Scalar>(data.base.train)),
        ro_(cfg.n_layers, propagation::readout_kind::mean),
        adam_(static_cast<index_t>((data.base.n_users() + data.base.n_items()) * cfg.dim), adam_opts(cfg)) {
    ANS_CHECK(cfg.dim > 0, "impression_trainer: dim must be positive, got " << cfg.dim);
    ANS_CHECK(cfg.batch_size >= 1, "impression_trainer: batch_size must be >= 1, got " << cfg.batch_size);
    ANS_CHECK(cfg.n_layers >= 0, "impression_trainer: n_layers must be >= 0, got " << cfg.n_layers);
    ANS_CHECK(cfg.train_max_pos >= 1 && cfg.train_max_neg >= 1,
              "impression_trainer: train_max_pos and train_max_neg must be >= 1, got " << cfg.train_max_pos << " and "
                                                                                        << cfg.train_max_neg);
    ANS_CHECK(data.train.size() > 0, "impression_trainer: the dataset '" << data.base.name << "' has no train lists");
    Eigen::setNbThreads(1);
    init_embeddings(e0_, adj_.n_users, adj_.n_items, cfg.dim, cfg.init, cfg.init_std, cfg.seed);
    grad_ = matrix<Scalar>::Zero(e0_.rows(), e0_.cols());
    if (cfg.n_layers > 0) gbar_ = matrix<Scalar>::Zero(e0_.rows(), e0_.cols());
    order_.resize(static_cast<size_t>(data.train.size()));
  }
  impression_trainer(data::impression_dataset&&, const impression_config&) = delete;

  const impression_config& config() const { return cfg_; }
  const matrix<Scalar>& embeddings() const { return e0_; }
  matrix<Scalar>& embeddings() { return e0_; }
  int epochs_done() const { return epochs_done_; }
  index_t batches_per_epoch() const { return (data_->train.size() + cfg_.batch_size - 1) / cfg_.batch_size; }

  /// One pass over the shuffled train lists; returns the mean of the steps' losses (ReChorus's epoch loss).
  template <class OnBatch>
  double train_epoch(int epoch, OnBatch&& on_batch) {
    const index_t L = data_->train.size(), B = cfg_.batch_size, nb = batches_per_epoch();
    for (index_t l = 0; l < L; ++l) order_[l] = l;
    auto r = sampling::stream(cfg_.seed, 0x494D5052ULL /* "IMPR" */ + (static_cast<std::uint64_t>(epoch) << 32));
    for (index_t l = L - 1; l > 0; --l) std::swap(order_[l], order_[r.uniform_int(static_cast<std::uint64_t>(l + 1))]);
    double loss_sum = 0;
    index_t samples = 0;
    for (index_t b = 0; b < nb; ++b) {
      const index_t first = b * B, n = std::min(B, L - first);
      const double loss = step(order_.data() + first, n);
      ANS_CHECK(std::isfinite(loss), "impression_trainer: loss is not finite at epoch " << epoch << ", batch " << b
                                                                                      << " (try a smaller lr)");
      loss_sum += loss;
      samples += n;
      on_batch(b, loss_sum / double(b + 1), samples);
    }
    ANS_CHECK(e0_.allFinite(), "impression_trainer: embeddings are not finite after epoch " << epoch);
    ++epochs_done_;
    return nb > 0 ? loss_sum / double(nb) : 0.0;
  }
  double train_epoch(int epoch) {
    return train_epoch(epoch, [](index_t, double, index_t) {});
  }

  /// One step on the lists `ids[0..n)` of the train split; returns the batch loss (mean over the lists).
  double step(const index_t* ids, index_t n) {
    const double loss = loss_and_gradient(ids, n, grad_);
    adam_.step_and_clear(e0_.data(), grad_.data());
    return loss;
  }

  /// The batch loss of the lists `ids[0..n)` of the train split at the current E0, and grad_e0 += ∂L/∂E0
  /// (N x d). For L = 0 only the rows of the lists' users and items change.
  double loss_and_gradient(const index_t* ids, index_t n, matrix<Scalar>& grad_e0) {
    ANS_CHECK(n >= 1, "impression_trainer: empty batch");
    ANS_CHECK(grad_e0.rows() == e0_.rows() && grad_e0.cols() == e0_.cols(),
              "impression_trainer: grad_e0 is " << grad_e0.rows() << " x " << grad_e0.cols() << ", E0 is "
                                                << e0_.rows() << " x " << e0_.cols());
    const auto& T = data_->train;
    for (index_t k = 0; k < n; ++k)
      ANS_CHECK(ids[k] >= 0 && ids[k] < T.size(), "impression_trainer::step: list " << ids[k] << " outside [0, "
                                                                                    << T.size() << ")");
    const matrix<Scalar>& E = forward_table();
    const index_t nu = adj_.n_users, P = cfg_.train_max_pos, N = cfg_.train_max_neg;
    coef_.resize(static_cast<size_t>(n * (P + N)));
    loss_.resize(static_cast<size_t>(n));
#if ANS_HAS_OPENMP
#pragma omp parallel if (n > 32)
#endif
    {
      std::vector<Scalar> sc(static_cast<size_t>(P + N)), work(static_cast<size_t>(loss::list_bpr_workspace(P, N)));
#if ANS_HAS_OPENMP
#pragma omp for schedule(static)
#endif
      for (index_t k = 0; k < n; ++k) {
        const index_t l = ids[k], np = std::min(T.n_pos(l), P), nn = std::min(T.n_neg(l), N);
        const auto u = E.row(T.users[l]);
        for (index_t i = 0; i < np; ++i) sc[i] = u.dot(E.row(nu + T.pos_of(l)[i]));
        for (index_t j = 0; j < nn; ++j) sc[np + j] = u.dot(E.row(nu + T.neg_of(l)[j]));
        Scalar* g = coef_.data() + k * (P + N);
        std::fill(g, g + np + nn, Scalar(0));
        loss_[k] = double(loss::list_bpr_row(sc.data(), np, sc.data() + np, nn, Scalar(1) / Scalar(n), g, g + np,
                                             work.data()));
      }
    }
    // ∂L/∂ē rows, serially in list order (deterministic): users and items of different lists overlap
    matrix<Scalar>& G = cfg_.n_layers > 0 ? gbar_ : grad_e0;
    for (index_t k = 0; k < n; ++k) {
      const index_t l = ids[k], np = std::min(T.n_pos(l), P), nn = std::min(T.n_neg(l), N), u = T.users[l];
      const Scalar* g = coef_.data() + k * (P + N);
      for (index_t c = 0; c < np + nn; ++c) {
        const index_t item = nu + (c < np ? T.pos_of(l)[c] : T.neg_of(l)[c - np]);
        G.row(u).noalias() += g[c] * E.row(item);     // ∂L/∂ē_u += ∂ℓ/∂s_c ē_c
        G.row(item).noalias() += g[c] * E.row(u);     // ∂L/∂ē_c += ∂ℓ/∂s_c ē_u
      }
    }
    if (cfg_.n_layers > 0) {
      ro_.backward(adj_, gbar_, grad_e0);  // ∂L/∂E0 += Σ_h α_h Â^h ∂L/∂ē
      gbar_.setZero();
    }
    double loss = 0;
    for (index_t k = 0; k < n; ++k) loss += loss_[k];
    return loss / double(n);
  }

  /// HR@K / NDCG@K of the dev or test lists (eval::impression_ranking with cfg.eval).
  std::map<std::string, double> evaluate(const std::string& target, protocol = protocol::impression) {
    ANS_CHECK(target == "dev" || target == "test", "impression_trainer::evaluate: target must be dev or test, got '"
                                                       << target << "'");
    return impression_evaluate<Scalar>(*this, data_->split(target), cfg_.eval);
  }

  /// Calls f(user_factors, item_factors) on the readout's rows (E0 for L = 0).
  template <class F>
  auto with_factors(F&& f) {
    const matrix<Scalar>& E = forward_table();
    const Eigen::Ref<const matrix<Scalar>> uf = E.topRows(adj_.n_users), itf = E.bottomRows(adj_.n_items);
    return f(uf, itf);
  }

  /// Checkpoint (io/checkpoint.hpp, all-or-nothing): E0, Adam's moments and step count, epochs_done.
  void save(const std::string& dir) const {
    auto& self = const_cast<impression_trainer&>(*this);
    io::write_checkpoint(dir, self.arrays(self.e0_.data(), self.adam_.exp_avg().data(), self.adam_.exp_avg_sq().data(),
                                          self.adam_.state().counters.at(0).data),
                         {{"epochs_done", std::to_string(epochs_done_)},
                          {"model", io::json_quote(cfg_.n_layers > 0 ? "LightGCNImpression" : "BPRMFImpression")},
                          {"n_layers", std::to_string(cfg_.n_layers)},
                          {"dim", std::to_string(cfg_.dim)},
                          {"n_nodes", std::to_string(adj_.n_nodes())},
                          {"scalar", io::json_quote(sizeof(Scalar) == 4 ? "float32" : "float64")}});
  }
  /// Restores save()'s checkpoint; every check runs before any state changes.
  void load(const std::string& dir) {
    const io::json_value mf = io::read_checkpoint_manifest(dir);
    io::checkpoint_meta_equals(mf, dir, "scalar", sizeof(Scalar) == 4 ? "float32" : "float64", "the scalar type");
    io::checkpoint_meta_equals(mf, dir, "model", cfg_.n_layers > 0 ? "LightGCNImpression" : "BPRMFImpression", "the model");
    for (auto [key, mine] : {std::pair<const char*, index_t>{"n_layers", cfg_.n_layers}, {"dim", cfg_.dim},
                             {"n_nodes", adj_.n_nodes()}}) {
      const index_t v = io::checkpoint_meta_int(mf, dir, key, 0, std::int64_t(1) << 40);
      ANS_CHECK(v == mine, dir << "/manifest.json: " << key << " is " << v << ", this run's is " << mine);
    }
    const index_t epochs = io::checkpoint_meta_int(mf, dir, "epochs_done", 0, 1000000000);
    // read into copies: a failed read leaves the trainer as it was
    matrix<Scalar> e0 = e0_;
    std::vector<Scalar> m = adam_.exp_avg(), v = adam_.exp_avg_sq();
    std::int64_t t = adam_.step_count();
    io::read_checkpoint_arrays(dir, mf, arrays(e0.data(), m.data(), v.data(), &t));
    e0_ = std::move(e0);
    adam_.exp_avg() = std::move(m);
    adam_.exp_avg_sq() = std::move(v);
    *adam_.state().counters.at(0).data = t;
    epochs_done_ = static_cast<int>(epochs);
  }

 private:
  static optim::adam_options adam_opts(const impression_config& c) {
    optim::adam_options o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    return o;
  }
  const matrix<Scalar>& forward_table() {
    if (cfg_.n_layers == 0) return e0_;
    ro_.forward(adj_, e0_, ebar_);
    return ebar_;
  }
  std::vector<io::checkpoint_array> arrays(Scalar* e0, Scalar* m, Scalar* v, std::int64_t* t) const {
    const index_t n = e0_.rows(), d = e0_.cols();
    return {io::checkpoint_array::of("E0", e0, {n, d}), io::checkpoint_array::of("adam_exp_avg", m, {n, d}),
            io::checkpoint_array::of("adam_exp_avg_sq", v, {n, d}), io::checkpoint_array::of("adam_step", t, {1})};
  }

  const data::impression_dataset* data_;
  impression_config cfg_;
  graph::normalized_adjacency<Scalar> adj_;
  propagation::readout<Scalar> ro_;
  optim::adam<Scalar> adam_;
  matrix<Scalar> e0_, ebar_, grad_, gbar_;
  std::vector<index_t> order_;
  std::vector<Scalar> coef_;
  std::vector<double> loss_;
  int epochs_done_ = 0;
};

/// A pair trainer (train::trainer: ANS with exposure or uniform candidates, DNS, ...) ranked in impression
/// mode: fit() and the evaluation callback drive it like any trainer, and evaluate() ranks the dev or test
/// lists. It keeps the addresses of the trainer and the dataset (both must outlive it; temporaries do not
/// compile).
template <class Trainer>
class impression_run {
 public:
  using scalar = typename std::decay_t<decltype(std::declval<Trainer&>().embeddings())>::Scalar;
  enum class protocol { impression };

  impression_run(Trainer& t, const data::impression_dataset& d, eval::impression_ranking_options o = {})
      : t_(&t), d_(&d), o_(std::move(o)) {}
  impression_run(Trainer&&, const data::impression_dataset&, eval::impression_ranking_options = {}) = delete;
  impression_run(Trainer&, data::impression_dataset&&, eval::impression_ranking_options = {}) = delete;

  Trainer& inner() { return *t_; }
  int epochs_done() const { return t_->epochs_done(); }
  index_t batches_per_epoch() const { return t_->batches_per_epoch(); }
  template <class OnBatch>
  double train_epoch(int epoch, OnBatch&& on_batch) {
    return t_->train_epoch(epoch, std::forward<OnBatch>(on_batch));
  }
  double train_epoch(int epoch) { return t_->train_epoch(epoch); }
  std::map<std::string, double> evaluate(const std::string& target, protocol = protocol::impression) {
    ANS_CHECK(target == "dev" || target == "test", "impression_run::evaluate: target must be dev or test, got '"
                                                       << target << "'");
    return impression_evaluate<scalar>(*t_, d_->split(target), o_);
  }
  void save(const std::string& dir) const { t_->save(dir); }
  void load(const std::string& dir) { t_->load(dir); }

 private:
  Trainer* t_;
  const data::impression_dataset* d_;
  eval::impression_ranking_options o_;
};

}  // namespace ans::train
