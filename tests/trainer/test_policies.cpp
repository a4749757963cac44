// The trainer's policies (issue 14): a user sampler, a user encoder, fit() with callbacks, early stopping
// with a direction; each checked against the built-in path it generalises.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <memory>
#include <vector>

#include "ans/data/split.hpp"
#include "ans/data/synthetic.hpp"
#include "ans/optim/adam.hpp"
#include "ans/sampling/popularity.hpp"
#include "ans/train/fit.hpp"
#include "ans/train/trainer.hpp"

namespace {

using ans::index_t;
using namespace ans::train;

const ans::data::dataset& small_data() {
  static const ans::data::dataset d = [] {
    ans::data::synthetic_config c;
    c.n_users = 200;
    c.n_items = 150;
    c.interactions_per_user = 10;
    c.dim = 4;
    c.seed = 5;
    return ans::data::generate_synthetic(c);
  }();
  return d;
}

trainer_config config(sampler_kind s, int layers) {
  trainer_config c;
  c.sampler = s;
  c.n_layers = layers;
  c.dim = 8;
  c.batch_size = 128;
  c.num_neg = 4;
  c.lr = 1e-2;
  c.seed = 4;
  c.optimizer = optimizer_kind::adam;
  return c;
}

// A user sampler: the uniform sampler, counting its calls (a const member: the count lives behind a pointer).
struct counting_sampler {
  ans::sampling::uniform_sampler inner;
  std::shared_ptr<std::atomic<index_t>> calls = std::make_shared<std::atomic<index_t>>(0);
  template <class Rng>
  void sample(index_t user, index_t pos, Rng& rng, ans::sampling::item_span out) const {
    calls->fetch_add(1, std::memory_order_relaxed);
    inner.sample(user, pos, rng, out);
  }
};

// A user encoder whose E0 is its own table θ with its own dense Adam: the same model as the table encoder
// with optimizer_kind::adam, so the two must agree bit for bit. It adopts the trainer's initial E0.
struct identity_encoder {
  ans::matrix<float> theta, grad;
  std::unique_ptr<ans::optim::adam<float>> opt;
  int steps = 0;
  void forward(ans::matrix<float>& e0) {
    if (theta.size() == 0) {
      theta = e0, grad = ans::matrix<float>::Zero(e0.rows(), e0.cols());
      ans::optim::adam_options o;
      o.lr = 1e-2;
      opt = std::make_unique<ans::optim::adam<float>>(theta.size(), o);
    }
    e0 = theta;
  }
  void backward(const ans::matrix<float>& g, const std::vector<index_t>& rows) {
    if (rows.empty()) grad += g;
    else for (index_t r : rows) grad.row(r) += g.row(r);
  }
  void step() { opt->step_and_clear(theta.data(), grad.data()), ++steps; }
};

struct misspelt_callback {
  void on_epoch_ends(int) {}
};
static_assert(!is_callback_v<misspelt_callback, trainer<float>>, "a callback with no known member is rejected");
static_assert(is_callback_v<progress_callback, trainer<float>>);
static_assert(is_encoder_v<identity_encoder, float> && !is_encoder_v<misspelt_callback, float>);

// A user selector: DNS's argmax written by hand (ties to the first), so it must equal the built-in DNS.
struct argmax_selector {
  template <class Rng>
  index_t select(const float* scores, index_t K, Rng&) const {
    index_t best = 0;
    for (index_t k = 1; k < K; ++k)
      if (scores[k] > scores[best]) best = k;
    return best;
  }
};
// A stochastic selector: softmax sampling over the scores (temperature 1), from the pair's own stream.
struct softmax_selector {
  template <class Rng>
  index_t select(const float* scores, index_t K, Rng& rng) const {
    float m = scores[0], z = 0;
    for (index_t k = 1; k < K; ++k) m = std::max(m, scores[k]);
    for (index_t k = 0; k < K; ++k) z += std::exp(scores[k] - m);
    float t = rng.template uniform01<float>() * z;
    for (index_t k = 0; k < K; ++k)
      if ((t -= std::exp(scores[k] - m)) <= 0) return k;
    return K - 1;
  }
};
struct out_of_range_selector {
  template <class Rng>
  index_t select(const float*, index_t K, Rng&) const { return K; }
};
static_assert(ans::sampling::is_selector_v<argmax_selector, float>);
static_assert(!ans::sampling::is_selector_v<misspelt_callback, float>);

// A user optimiser: plain SGD on the listed rows (all rows when the list is empty), with a step counter
// exposed as state() so that checkpoints carry it.
struct row_sgd {
  float lr = 1e-2f;
  std::int64_t steps = 0;
  void step(ans::matrix<float>& table, const ans::matrix<float>& grad, const std::vector<index_t>& rows) {
    ++steps;
    if (rows.empty()) table -= lr * grad;
    else for (index_t r : rows) table.row(r) -= lr * grad.row(r);
  }
  ans::optim::state_view<float> state() { return {{}, {{"steps", &steps, 1}}}; }
};
struct stateless_sgd {
  void step(ans::matrix<float>& table, const ans::matrix<float>& grad, const std::vector<index_t>&) { table -= 0.01f * grad; }
};
static_assert(is_table_optimizer_v<row_sgd, float> && is_table_optimizer_v<stateless_sgd, float>);
static_assert(!is_table_optimizer_v<argmax_selector, float>);

}  // namespace

TEST_CASE("policies: a user sampler drives the trainer exactly like the built-in one", "[trainer][policies]") {
  const auto& data = small_data();
  for (auto s : {sampler_kind::dns, sampler_kind::ans}) {
    const auto cfg = config(s, 0);
    trainer<float> ref(data, cfg);
    counting_sampler cs{ans::sampling::uniform_sampler(data.train)};
    trainer<float, counting_sampler> mine(data, cfg, cs);
    for (int e = 0; e < 2; ++e) ref.train_epoch(e), mine.train_epoch(e);
    CHECK(mine.sampler().calls->load() > 0);
    CHECK(ref.embeddings() == mine.embeddings());
  }
  // popularity sampling, built from the training split by the default constructor
  trainer<float, ans::sampling::popularity_sampler> pop(data, config(sampler_kind::dns, 0));
  const double l0 = pop.train_epoch(0);
  CHECK(std::isfinite(l0));
}

TEST_CASE("policies: a user encoder (its own table and Adam) equals the table encoder bit for bit",
          "[trainer][policies]") {
  const auto& data = small_data();
  for (auto [s, layers] : {std::pair{sampler_kind::ans, 0}, std::pair{sampler_kind::rns, 1}, std::pair{sampler_kind::dns, 0}}) {
    INFO(to_string(s) << " L = " << layers);
    const auto cfg = config(s, layers);
    trainer<float> ref(data, cfg);
    trainer<float, ans::sampling::uniform_sampler, identity_encoder> mine(
        data, cfg, ans::sampling::uniform_sampler(data.train), identity_encoder{});
    for (int e = 0; e < 2; ++e) ref.train_epoch(e), mine.train_epoch(e);
    CHECK(mine.encoder().steps == 2 * ref.batches_per_epoch());
    CHECK(ref.embeddings() == mine.embeddings());
    CHECK(ref.evaluate("test") == mine.evaluate("test"));
  }
  auto cfg = config(sampler_kind::rns, 0);
  cfg.optimizer = optimizer_kind::hogwild_sgd;
  using user_trainer = trainer<float, ans::sampling::uniform_sampler, identity_encoder>;
  CHECK_THROWS_WITH(user_trainer(data, cfg, ans::sampling::uniform_sampler(data.train)),
                    Catch::Contains("a user encoder brings its own optimiser"));
  user_trainer t(data, config(sampler_kind::rns, 0), ans::sampling::uniform_sampler(data.train));
  CHECK_THROWS_WITH(t.save("/tmp/ans_never_written"), Catch::Contains("save those"));
}

TEST_CASE("policies: fit() with evaluation, early stopping in both directions, and the callbacks' order",
          "[trainer][policies]") {
  const auto& data = small_data();
  trainer<float> t(data, config(sampler_kind::dns, 0));
  struct recorder {
    std::vector<int> begins, ends;
    index_t batches = 0;
    void on_epoch_begin(trainer<float>&, int e) { begins.push_back(e); }
    void on_batch_end(trainer<float>&, int, index_t, double, index_t) { ++batches; }
    void on_epoch_end(trainer<float>&, int e, double) { ends.push_back(e); }
  } rec;
  evaluation<trainer<float>> ev("test", "Recall@20", 1, 2);
  const fit_result r = fit(t, 3, rec, ev);
  CHECK(r.epochs_run == 3);
  CHECK(rec.begins == std::vector<int>{0, 1, 2});
  CHECK(rec.ends == std::vector<int>{0, 1, 2});
  CHECK(rec.batches == 3 * t.batches_per_epoch());
  CHECK(ev.best_epoch() >= 1);
  CHECK(ev.best_metrics().at("Recall@20") > 0);
  // resuming: fit continues at epochs_done()
  const fit_result r2 = fit(t, 4, rec);
  CHECK(r2.epochs_run == 1);
  CHECK(rec.ends.back() == 3);

  // minimize: a metric that only grows stops after `patience` evaluations
  early_stopping up(2, stop_rule::patience, direction::minimize);
  CHECK(up.update(1, 0.5));
  CHECK(!up.update(2, 0.6));
  CHECK(!up.should_stop());
  CHECK(!up.update(3, 0.7));
  CHECK(up.should_stop());
  CHECK(up.best() == 0.5);
  CHECK(up.best_epoch() == 1);
  early_stopping down(2);
  CHECK(down.update(1, 0.5));
  CHECK(down.update(2, 0.6));
  CHECK(down.best() == 0.6);

  // evaluate on a split that does not exist
  ans::data::dataset no_dev = small_data();
  no_dev.dev = ans::data::interactions{};
  no_dev.dev.n_users = no_dev.train.n_users, no_dev.dev.n_items = no_dev.train.n_items;
  no_dev.dev.indptr.assign(static_cast<size_t>(no_dev.train.n_users + 1), 0);
  trainer<float> t2(no_dev, config(sampler_kind::rns, 0));
  CHECK_THROWS_WITH(t2.evaluate("dev"), Catch::Contains("has no dev split"));
}

TEST_CASE("policies: a user selector replaces DNS's choice (argmax equals DNS bit for bit)", "[trainer][policies]") {
  const auto& data = small_data();
  using ans::propagation::readout_kind;
  for (auto [layers, ro] : {std::pair{0, readout_kind::mean}, std::pair{2, readout_kind::mean}, std::pair{2, readout_kind::concat}}) {
    INFO("L = " << layers << ", readout " << ans::propagation::to_string(ro));
    auto cfg = config(sampler_kind::dns, layers);
    cfg.readout = ro;
    cfg.fused_mf_step = false;  // both sides on the composed objective + optimiser path
    trainer<float> ref(data, cfg);
    trainer<float, ans::sampling::uniform_sampler, table_encoder, argmax_selector> mine(
        data, cfg, ans::sampling::uniform_sampler(data.train));
    for (int e = 0; e < 2; ++e) ref.train_epoch(e), mine.train_epoch(e);
    CHECK(ref.embeddings() == mine.embeddings());
  }
  // a stochastic selector is deterministic (its streams are keyed on seed, step, pair) and differs from DNS
  auto cfg = config(sampler_kind::dns, 0);
  using soft_t = trainer<float, ans::sampling::uniform_sampler, table_encoder, softmax_selector>;
  soft_t a(data, cfg, ans::sampling::uniform_sampler(data.train)), b(data, cfg, ans::sampling::uniform_sampler(data.train));
  trainer<float> dns(data, cfg);
  a.train_epoch(0), b.train_epoch(0), dns.train_epoch(0);
  CHECK(a.embeddings() == b.embeddings());
  CHECK(a.embeddings() != dns.embeddings());
  // errors: a k outside [0, K) names the pair; ANS and MixGCF build their own negatives
  using bad_t = trainer<float, ans::sampling::uniform_sampler, table_encoder, out_of_range_selector>;
  bad_t bad(data, cfg, ans::sampling::uniform_sampler(data.train));
  CHECK_THROWS_WITH(bad.train_epoch(0), Catch::Contains("the Selector returned k = 4 for pair 0, outside [0, 4)"));
  CHECK_THROWS_WITH(soft_t(data, config(sampler_kind::ans, 0), ans::sampling::uniform_sampler(data.train)),
                    Catch::Contains("ANS builds its own negatives"));
  CHECK_THROWS_WITH(soft_t(data, config(sampler_kind::mixgcf, 0), ans::sampling::uniform_sampler(data.train)),
                    Catch::Contains("MixGCF synthesises its negative"));
}

TEST_CASE("policies: a user optimiser updates the table, and its state() is checkpointed", "[trainer][policies]") {
  const auto& data = small_data();
  for (int layers : {0, 1}) {
    INFO("L = " << layers);
    auto cfg = config(sampler_kind::dns, layers);
    cfg.optimizer = optimizer_kind::sgd;  // the built-in SGD (lr 1e-2, no momentum, no decay) is the reference
    trainer<float> ref(data, cfg);
    using sgd_t = trainer<float, ans::sampling::uniform_sampler, table_encoder, ans::sampling::builtin_selection, row_sgd>;
    sgd_t mine(data, cfg, ans::sampling::uniform_sampler(data.train));
    for (int e = 0; e < 2; ++e) ref.train_epoch(e), mine.train_epoch(e);
    CHECK(mine.optimizer().steps == 2 * ref.batches_per_epoch());
    // the same update up to the compiler's contraction of p − lr·g (FMA or not)
    CHECK((ref.embeddings() - mine.embeddings()).cwiseAbs().maxCoeff() < 1e-5f);
    // checkpoint round trip carries the optimiser's counter
    const std::string dir = "/tmp/ans_test_user_optimizer_" + std::to_string(layers);
    mine.save(dir);
    sgd_t back(data, cfg, ans::sampling::uniform_sampler(data.train));
    back.load(dir);
    CHECK(back.optimizer().steps == mine.optimizer().steps);
    CHECK(back.embeddings() == mine.embeddings());
    back.train_epoch(2), mine.train_epoch(2);
    CHECK(back.embeddings() == mine.embeddings());
  }
  // without state() the run trains (nothing extra is checkpointed)
  using plain_t = trainer<float, ans::sampling::uniform_sampler, table_encoder, ans::sampling::builtin_selection, stateless_sgd>;
  plain_t p(data, config(sampler_kind::ans, 0), ans::sampling::uniform_sampler(data.train));
  CHECK(std::isfinite(p.train_epoch(0)));
}

TEST_CASE("policies: fit() runs on_train_begin/end once, and evaluation reports a second split at the selected epoch",
          "[trainer][policies]") {
  // train / dev / test, 80 / 10 / 10 per user, from the synthetic interactions
  const auto& all = small_data().train;
  const ans::data::dataset data = ans::data::random_split(all, {0.8, 0.1, 0.1}, 3);
  REQUIRE(data.dev.nnz() > 0);
  trainer<float> t(data, config(sampler_kind::dns, 0));
  struct bracket {
    int begins = 0, ends = 0, epochs = -1;
    void on_train_begin(trainer<float>&, int n) { ++begins, epochs = n; }
    void on_train_end(trainer<float>&) { ++ends; }
  } br;
  static_assert(is_callback_v<bracket, trainer<float>>);
  evaluation_options eo;
  eo.target = "dev";
  eo.metric = "Recall@20";
  eo.every = 2;  // epochs 2 and 4 on the grid, and epoch 5 as the last
  eo.report = "test";
  evaluation<trainer<float>> ev(eo);
  epoch_timer timer;
  struct seen {
    const evaluation<trainer<float>>& ev;
    std::vector<int> evaluated;
    void on_epoch_end(trainer<float>&, int e, double) {
      if (ev.evaluated()) evaluated.push_back(e + 1);
    }
  } s{ev, {}};
  const auto r = fit(t, 5, timer, ev, s, br);
  CHECK(r.epochs_run == 5);
  CHECK(br.begins == 1);
  CHECK(br.ends == 1);
  CHECK(br.epochs == 5);
  CHECK(s.evaluated == std::vector<int>{2, 4, 5});
  CHECK(timer.seconds().size() == 5);
  CHECK(!ev.best_report().empty());
  CHECK(ev.best_report().at("Recall@20") > 0);
  // the reported split is the test split at the dev-selected epoch
  CHECK(ev.best_report() != ev.best_metrics());
}
