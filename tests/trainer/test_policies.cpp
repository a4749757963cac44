// The trainer's policies (issue 14): a user sampler, a user encoder, fit() with callbacks, early stopping
// with a direction; each checked against the built-in path it generalises.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <vector>

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
