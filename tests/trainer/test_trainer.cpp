// Trainers assembled from the components: planted-structure recovery on the synthetic dataset, bit-exact
// determinism, and resume from a checkpoint.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ans/data/synthetic.hpp"
#include "ans/eval/popularity.hpp"
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
  for (auto [s, layers] : {std::pair{S::rns, 0}, {S::dns, 0}, {S::ans, 0}, {S::mixgcf, 1}, {S::ans, 1}}) {
    auto cfg = small_config(s);
    cfg.n_layers = layers;
    cfg.scoring = ans::train::scoring_kind::trained;
    ans::train::trainer<float> t(data, cfg);
    for (int e = 0; e < 25; ++e) t.train_epoch(e);
    const double recall = t.evaluate("test").at("Recall@20");
    INFO(ans::train::to_string(s) << " L = " << layers << ": Recall@20 = " << recall);
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
  CHECK_THROWS_WITH(t.load("/nonexistent/ckpt"), Catch::Contains("manifest.json"));
}
