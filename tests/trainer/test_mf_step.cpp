// The fused MF BPR step (train/mf_step.hpp) against the composed path it replaces, its thread-count
// independence, and the Hogwild! epoch.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ans/data/synthetic.hpp"
#include "ans/eval/popularity.hpp"
#include "ans/train/trainer.hpp"

namespace {

const ans::data::dataset& mf_step_data() {
  static const ans::data::dataset d = [] {
    ans::data::synthetic_config c;
    c.n_users = 300;
    c.n_items = 400;
    c.interactions_per_user = 15;
    c.dim = 4;
    c.affinity = 30;
    c.popularity_exponent = 0.5;  // repeated items within a batch: duplicate rows in the scatter
    c.seed = 5;
    return ans::data::generate_synthetic(c);
  }();
  return d;
}

// Runs `epochs` epochs with `threads` OpenMP threads (restored afterwards) and returns E0.
ans::matrix<float> train(ans::train::trainer_config c, int threads, int epochs = 2) {
  const int prev = ans::max_threads();
#if ANS_HAS_OPENMP
  omp_set_num_threads(threads);
#endif
  ans::train::trainer<float> t(mf_step_data(), c);
  for (int e = 0; e < epochs; ++e) t.train_epoch(e);
#if ANS_HAS_OPENMP
  omp_set_num_threads(prev);
#endif
  (void)threads;
  (void)prev;
  return t.embeddings();
}

}  // namespace

TEST_CASE("mf_bpr_step: bit-identical to the composed objective + optimiser, for every thread count", "[trainer][mf_step]") {
  using O = ans::train::optimizer_kind;
  using S = ans::train::sampler_kind;
  struct reg_case {
    double w;
    bool pow;
  };
  for (S s : {S::rns, S::dns})
    for (O opt : {O::lazy_adam, O::adam, O::sgd})
      for (reg_case r : {reg_case{0, false}, reg_case{1e-2, false}, reg_case{1e-2, true}})
        for (ans::index_t d : {16, 7}) {
          ans::train::trainer_config c;
          c.sampler = s;
          c.optimizer = opt;
          c.dim = d;
          c.batch_size = 128;
          c.num_neg = 4;
          c.lr = 1e-2;
          c.reg_weight = r.w;
          c.reg_require_pow = r.pow;
          c.weight_decay = opt == O::sgd ? 1e-3 : 0;
          c.seed = 4;
          c.fused_mf_step = false;
          const auto composed = train(c, 2);
          c.fused_mf_step = true;
          INFO(ans::train::to_string(s) << ", optimizer " << int(opt) << ", λ = " << r.w << (r.pow ? " (squared)" : "")
                                        << ", d = " << d);
          for (int threads : {1, 2, 3}) {
            INFO(threads << " threads");
            CHECK(train(c, threads) == composed);
          }
          c.seed = 5;  // the comparison can fail
          CHECK(train(c, 2) != composed);
        }
}

TEST_CASE("mf_bpr_step: bad shapes and optimisers are reported", "[trainer][mf_step]") {
  const auto& d = mf_step_data();
  ans::sampling::pair_batcher batcher(d.train, 64, 1);
  ans::sampling::uniform_sampler sampler(d.train);
  const ans::index_t n = d.train.n_users + d.train.n_items;
  ans::matrix<float> e0 = ans::matrix<float>::Zero(n, 8);
  ans::optim::sparse_adam<float> opt(n, 8);
  ans::optim::adam<float> dense(n * 8);
  ans::train::mf_bpr_step<float> step;
  ans::train::table_update<float> upd{&opt, nullptr, nullptr, 4};
  CHECK_THROWS_WITH(step.run(e0, d.train.n_users, batcher.batch(0), sampler, 4, 0, {}, upd),
                    Catch::Contains("mf_step.hpp:") && Catch::Contains("exactly one optimiser of width 8 (has 4)"));
  upd = {&opt, &dense, nullptr, 8};
  CHECK_THROWS_WITH(step.run(e0, d.train.n_users, batcher.batch(0), sampler, 4, 0, {}, upd),
                    Catch::Contains("exactly one optimiser"));
  upd = {&opt, nullptr, nullptr, 8};
  CHECK_THROWS_WITH(step.run(e0, n, batcher.batch(0), sampler, 4, 0, {}, upd),
                    Catch::Contains(std::to_string(n) + " users in a table of " + std::to_string(n) + " rows"));
  CHECK_NOTHROW(step.run(e0, d.train.n_users, batcher.batch(0), sampler, 4, 0, {}, upd));
  ans::matrix<float> small = ans::matrix<float>::Zero(d.train.n_users + 3, 8);  // too few item rows
  ans::optim::sparse_adam<float> opt_small(small.rows(), 8);
  upd = {&opt_small, nullptr, nullptr, 8};
  CHECK_THROWS_WITH(step.run(small, d.train.n_users, batcher.batch(0), sampler, 4, 0, {}, upd),
                    Catch::Contains("outside the " + std::to_string(d.train.n_users) + " x 3 table"));
}

TEST_CASE("hogwild_sgd: learns, is deterministic with one thread, and is refused where it does not apply", "[trainer][mf_step]") {
  using S = ans::train::sampler_kind;
  const auto pop = ans::eval::popularity_factors<float>(mf_step_data().train);
  ans::eval::full_ranking_options fo;
  fo.kinds = {ans::eval::metric_kind::recall};
  const double pop_recall =
      ans::eval::full_ranking<float>(pop.first, pop.second, mf_step_data().train, mf_step_data().test, {}, fo).at("Recall@20");
  for (S s : {S::rns, S::dns}) {
    ans::train::trainer_config c;
    c.sampler = s;
    c.optimizer = ans::train::optimizer_kind::hogwild_sgd;
    c.dim = 16;
    c.num_neg = 4;
    c.lr = 0.05;
    c.weight_decay = 1e-3;
    c.reg_weight = 0;
    c.init = ans::train::init_kind::normal;
    c.init_std = 0.1;
    c.seed = 2;
    const auto a = train(c, 1, 20), b = train(c, 1, 20);
    CHECK(a == b);
    ans::train::trainer<float> t(mf_step_data(), c);
    const ans::matrix<float> before = t.embeddings();
    for (int e = 0; e < 20; ++e) t.train_epoch(e);
    CHECK(t.embeddings() != before);
    const double recall = t.evaluate("test").at("Recall@20");
    INFO(ans::train::to_string(s) << ": hogwild Recall@20 = " << recall << ", popularity " << pop_recall);
    CHECK(recall >= 1.5 * pop_recall);
  }
  ans::train::trainer_config bad;
  bad.optimizer = ans::train::optimizer_kind::hogwild_sgd;
  bad.sampler = S::ans;
  CHECK_THROWS_WITH((ans::train::trainer<float>(mf_step_data(), bad)), Catch::Contains("hogwild_sgd runs MF"));
  bad.sampler = S::rns;
  bad.n_layers = 1;
  CHECK_THROWS_WITH((ans::train::trainer<float>(mf_step_data(), bad)), Catch::Contains("hogwild_sgd runs MF"));
}
