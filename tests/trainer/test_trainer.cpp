// Trainers assembled from the components: planted-structure recovery on the synthetic dataset, bit-exact
// determinism, and resume from a checkpoint.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ans/data/synthetic.hpp"
#include "ans/eval/popularity.hpp"
#include "ans/train/callbacks.hpp"
#include "ans/train/trainer.hpp"

namespace {

const ans::data::dataset& synthetic() {
  static const ans::data::dataset d = [] {
    ans::data::synthetic_config c;
    // Clear planted structure (rank-4 factors, strong affinity) and no popularity skew, so that
    // popularity alone is a weak ranking and the latent factors are what a model must find.
    c.n_users = 800;
    c.n_items = 800;
    c.interactions_per_user = 20;
    c.dim = 4;
    c.affinity = 30;
    c.popularity_exponent = 0.0;
    c.seed = 3;
    return ans::data::generate_synthetic(c);
  }();
  return d;
}

ans::train::trainer_config small_config(ans::train::sampler_kind s) {
  ans::train::trainer_config c;
  c.sampler = s;
  c.dim = 16;
  c.batch_size = 256;
  c.num_neg = 4;
  c.lr = 2e-2;
  c.reg_weight = 1e-4;
  c.seed = 9;
  return c;
}

std::string temp_dir(const char* tag) {
  char tmpl[] = "/tmp/ans_ckpt_XXXXXX";
  const char* p = mkdtemp(tmpl);
  REQUIRE(p != nullptr);
  return std::string(p) + "/" + tag;
}

}  // namespace

TEST_CASE("trainer: every sampler recovers the planted structure (Recall@20 >= 3x popularity)", "[trainer]") {
  const auto& data = synthetic();
  const auto pop = ans::eval::popularity_factors<float>(data.train);
  ans::eval::full_ranking_options fo;
  fo.kinds = {ans::eval::metric_kind::recall};
  const double pop_recall =
      ans::eval::full_ranking<float>(pop.first, pop.second, data.train, data.test, {}, fo).at("Recall@20");
  INFO("popularity Recall@20 = " << pop_recall);
  REQUIRE(pop_recall > 0);
  using S = ans::train::sampler_kind;
  struct run {
    S s;
    int layers;
    ans::mode m;
  };
  for (auto [s, layers, m] : {run{S::rns, 0, ans::mode::faithful}, {S::dns, 0, ans::mode::faithful},
                              {S::ans, 0, ans::mode::faithful}, {S::mixgcf, 1, ans::mode::faithful},
                              {S::rns, 2, ans::mode::faithful}, {S::ans, 1, ans::mode::faithful},
                              {S::ans, 1, ans::mode::fixed}}) {
    auto cfg = small_config(s);
    cfg.n_layers = layers;
    cfg.m = m;
    ans::train::trainer<float> t(data, cfg);
    for (int e = 0; e < 25; ++e) t.train_epoch(e);
    const double recall = t.evaluate("test").at("Recall@20");
    INFO(ans::train::to_string(s) << " L = " << layers << ", readout " << ans::propagation::to_string(t.readout())
                                  << ": Recall@20 = " << recall);
    CHECK(recall >= 3 * pop_recall);
  }
}

TEST_CASE("trainer: same seed and threads give bit-identical parameters", "[trainer]") {
  const auto& data = synthetic();
  for (auto s : {ans::train::sampler_kind::ans, ans::train::sampler_kind::dns}) {
    auto cfg = small_config(s);
    ans::train::trainer<float> a(data, cfg), b(data, cfg);
    for (int e = 0; e < 2; ++e) a.train_epoch(e), b.train_epoch(e);
    CHECK(a.embeddings() == b.embeddings());
    CHECK(a.ans_parameters().W_u == b.ans_parameters().W_u);
    cfg.seed = 10;  // a different seed gives different parameters (the check can fail)
    ans::train::trainer<float> c(data, cfg);
    for (int e = 0; e < 2; ++e) c.train_epoch(e);
    CHECK(a.embeddings() != c.embeddings());
  }
}

TEST_CASE("trainer: gamma warm-up is the linear ramp, gamma_warmup 0 is constant gamma", "[trainer][plateau]") {
  const auto& data = synthetic();
  auto cfg = small_config(ans::train::sampler_kind::ans);
  cfg.gamma = 0.4;
  cfg.gamma_warmup = 2.5;
  ans::train::trainer<float> t(data, cfg);
  const ans::index_t nb = t.batches_per_epoch();
  CHECK(t.gamma_at(0, nb) == 0.0);
  CHECK(t.gamma_at(nb, nb) == Approx(0.4 / 2.5));
  CHECK(t.gamma_at(2 * nb + nb / 2, nb) == Approx(0.4 * (2.0 + double(nb / 2) / double(nb)) / 2.5));
  CHECK(t.gamma_at(5 * nb, nb) == 0.4);
  cfg.gamma_warmup = 0;
  ans::train::trainer<float> c(data, cfg);
  CHECK(c.gamma_at(0, nb) == 0.4);
  // unset: faithful mode keeps γ constant, fixed mode warms up over kFixedGammaWarmup epochs
  cfg.gamma_warmup.reset();
  CHECK(ans::train::trainer<float>::effective_gamma_warmup(cfg) == 0.0);
  cfg.m = ans::mode::fixed;
  CHECK(ans::train::trainer<float>::effective_gamma_warmup(cfg) == ans::train::kFixedGammaWarmup);
  cfg.m = ans::mode::faithful;
  // a warm-up changes the trajectory (the check can fail), and the ramp matches gamma = 0 on the first step
  cfg.gamma_warmup = 3;
  ans::train::trainer<float> w(data, cfg);
  cfg.gamma_warmup = 0;
  cfg.gamma = 0;
  ans::train::trainer<float> z(data, cfg);
  w.set_max_batches(1), z.set_max_batches(1), c.set_max_batches(1);
  w.train_epoch(0), z.train_epoch(0), c.train_epoch(0);
  CHECK(w.embeddings() == z.embeddings());
  CHECK(w.embeddings() != c.embeddings());
  cfg.gamma_warmup = -1;
  CHECK_THROWS_WITH((ans::train::trainer<float>(data, cfg)), Catch::Contains("gamma_warmup"));
}

TEST_CASE("trainer: gradient diagnostics do not change training and isolate each term", "[trainer][plateau]") {
  const auto& data = synthetic();
  for (int layers : {0, 1}) {
    auto cfg = small_config(ans::train::sampler_kind::ans);
    cfg.n_layers = layers;
    cfg.m = ans::mode::fixed;
    cfg.gamma_warmup = 1;
    ans::train::trainer<float> a(data, cfg);
    cfg.diagnose_every = 2;
    ans::train::trainer<float> b(data, cfg);
    for (int e = 0; e < 2; ++e) a.train_epoch(e), b.train_epoch(e);
    CHECK(a.embeddings() == b.embeddings());  // the diagnosed run trains exactly as the plain one
    CHECK(a.ans_parameters().W_i == b.ans_parameters().W_i);
    const auto& dg = b.diagnostics();
    REQUIRE(dg.size() == static_cast<size_t>((2 * b.batches_per_epoch() + 1) / 2));
    CHECK(a.diagnostics().empty());
    CHECK(dg[0].gamma == 0.0);  // the warm-up starts at 0: no auxiliary gradient at all
    CHECK(dg[0].distance.e0 == 0.0);
    CHECK(dg[0].sns.gate == 0.0);
    const auto& g = dg.back();
    INFO("layers " << layers);
    CHECK(g.gamma == Approx(cfg.gamma));
    CHECK(g.bpr.e0 > 0);
    CHECK(g.bpr.cos_bpr == Approx(1.0));
    CHECK(g.distance.e0 > 0);
    CHECK(g.distance.gate > 0);
    CHECK(g.distance.margin == 0.0);  // D does not reach the margin model
    CHECK(g.reg.e0 > 0);
    CHECK(g.reg.gate == 0.0);
    CHECK(g.item_norm > 0);
    CHECK(g.distance.frac_without_bpr > 0);  // D moves unselected candidates, BPR does not
    CHECK(g.distance.frac_without_bpr <= 1);
  }
}

TEST_CASE("trainer: resume from a checkpoint reaches the same parameters as an uninterrupted run", "[trainer]") {
  const auto& data = synthetic();
  for (int layers : {0, 1}) {
    auto cfg = small_config(ans::train::sampler_kind::ans);
    cfg.n_layers = layers;
    ans::train::trainer<float> full(data, cfg);
    for (int e = 0; e < 3; ++e) full.train_epoch(e);

    const std::string dir = temp_dir("ckpt");
    {
      ans::train::trainer<float> first(data, cfg);
      first.train_epoch(0);
      first.save(dir);
    }
    ans::train::trainer<float> resumed(data, cfg);
    resumed.load(dir);
    REQUIRE(resumed.epochs_done() == 1);
    for (int e = resumed.epochs_done(); e < 3; ++e) resumed.train_epoch(e);
    INFO("L = " << layers);
    CHECK(resumed.embeddings() == full.embeddings());
    CHECK(resumed.ans_parameters().w_m == full.ans_parameters().w_m);
  }
}

TEST_CASE("trainer: bad configuration and bad checkpoints are reported", "[trainer]") {
  const auto& data = synthetic();
  auto cfg = small_config(ans::train::sampler_kind::ans);
  cfg.num_neg = 0;
  CHECK_THROWS_WITH(ans::train::trainer<float>(data, cfg), Catch::Contains("trainer.hpp:") && Catch::Contains("num_neg"));
  cfg = small_config(ans::train::sampler_kind::ans);
  cfg.lr = -1;
  CHECK_THROWS_WITH(ans::train::trainer<float>(data, cfg), Catch::Contains("lr must be positive"));
  ans::train::trainer<float> t(data, small_config(ans::train::sampler_kind::ans));
  CHECK_THROWS_WITH(t.load("/nonexistent/ckpt"), Catch::Contains("/nonexistent/ckpt") && Catch::Contains("is not a folder"));
}

TEST_CASE("trainer: a LightGCN model is ranked with the readout it trains with, ego scoring only on request", "[trainer][readout]") {
  const auto& data = synthetic();
  using ans::propagation::readout_kind;
  for (auto ro : {readout_kind::mean, readout_kind::concat}) {
    auto cfg = small_config(ans::train::sampler_kind::dns);
    cfg.n_layers = 2;
    cfg.readout = ro;
    ans::train::trainer<float> t(data, cfg);
    CHECK(t.readout() == ro);
    t.train_epoch(0);
    ans::train::trainer_config ego_cfg = cfg;
    ego_cfg.scoring = ans::train::scoring_kind::ego;
    ans::train::trainer<float> te(data, ego_cfg);
    te.train_epoch(0);  // the same run (same seed), scored on E0
    REQUIRE(te.embeddings() == t.embeddings());
    ans::matrix<float> table;
    ans::propagation::readout<float>(2, ro).forward(ans::graph::build_normalized_adjacency<float>(data.train),
                                                    t.embeddings(), table);
    const auto nu = data.train.n_users, ni = data.train.n_items;
    ans::eval::full_ranking_options fo;
    fo.kinds = {ans::eval::metric_kind::recall, ans::eval::metric_kind::ndcg};
    const auto expect = ans::eval::full_ranking<float>(table.topRows(nu), table.bottomRows(ni), data.train, data.test,
                                                       {&data.dev}, fo);
    const auto ego = ans::eval::full_ranking<float>(t.embeddings().topRows(nu), t.embeddings().bottomRows(ni),
                                                    data.train, data.test, {&data.dev}, fo);
    INFO("readout " << ans::propagation::to_string(ro));
    CHECK(t.evaluate("test").at("Recall@20") == expect.at("Recall@20"));
    CHECK(te.evaluate("test").at("NDCG@20") == ego.at("NDCG@20"));
    CHECK(expect.at("NDCG@20") != ego.at("NDCG@20"));
  }
  // the defaults: mean for the BPR samplers and fixed-mode ANS (pooled), concat for faithful ANS (the reference)
  auto c = small_config(ans::train::sampler_kind::ans);
  c.n_layers = 1;
  CHECK(ans::train::trainer<float>::effective_readout(c) == readout_kind::concat);
  c.m = ans::mode::fixed;
  CHECK(ans::train::trainer<float>::effective_readout(c) == readout_kind::mean);
  c.sampler = ans::train::sampler_kind::mixgcf;
  c.m = ans::mode::faithful;
  CHECK(ans::train::trainer<float>::effective_readout(c) == readout_kind::mean);
}

TEST_CASE("trainer: normal init has the requested spread, a bad init_std is reported", "[trainer]") {
  auto c = small_config(ans::train::sampler_kind::rns);
  c.init = ans::train::init_kind::normal;
  c.init_std = 0.1;
  ans::train::trainer<float> t(synthetic(), c);
  const auto& e = t.embeddings();
  const double mean = e.cast<double>().mean();
  const double sd = std::sqrt((e.cast<double>().array() - mean).square().mean());
  CHECK(std::abs(mean) < 2e-3);
  CHECK(sd == Approx(0.1).epsilon(0.02));
  c.init_std = -1;
  CHECK_THROWS_WITH((ans::train::trainer<float>(synthetic(), c)), Catch::Contains("init_std"));
}

TEST_CASE("early stopping: patience, ReChorus 1312ed8 and later ReChorus rules", "[trainer][callbacks]") {
  using ans::train::stop_rule;
  auto stop_at = [](stop_rule r, const std::vector<double>& v) {
    ans::train::early_stopping s(10, r);
    for (size_t i = 0; i < v.size(); ++i) {
      s.update(static_cast<int>(i) + 1, v[i]);
      if (s.should_stop()) return static_cast<int>(i) + 1;
    }
    return -1;
  };
  // rising for 25 evaluations, then falling: the last 10 values are non-increasing at the 34th
  std::vector<double> fall;
  for (int i = 0; i < 25; ++i) fall.push_back(i);
  for (int i = 0; i < 20; ++i) fall.push_back(24 - 0.1 * (i + 1));
  CHECK(stop_at(stop_rule::rechorus, fall) == 34);
  CHECK(stop_at(stop_rule::rechorus_head, fall) == 34);
  CHECK(stop_at(stop_rule::patience, fall) == 35);
  // best at the 6th, then oscillating below it: never 10 non-increasing values in a row
  std::vector<double> zig{0, 1, 2, 3, 4, 10};
  for (int i = 0; i < 30; ++i) zig.push_back(i % 2 ? 5 : 6);
  CHECK(stop_at(stop_rule::patience, zig) == 16);
  CHECK(stop_at(stop_rule::rechorus_head, zig) == 16);  // more than 10 evaluations since the best
  CHECK(stop_at(stop_rule::rechorus, zig) == 26);       // more than 20
  CHECK(stop_at(stop_rule::patience, std::vector<double>(50, 1.0)) == 11);
  ans::train::early_stopping never(0, stop_rule::rechorus);
  for (int i = 0; i < 100; ++i) never.update(i + 1, -i);
  CHECK(!never.should_stop());
}
