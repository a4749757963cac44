// Determinism as a race detector (issue 15): every threaded path (the propagation and its backward, the
// gate GEMMs, the row scatters, the samplers, the fused MF step, the optimisers, full ranking) runs short
// trainings with 1, 2, 3 and 8 threads, several times each, and every repetition must give the same bits as the
// first one at that thread count. A data race that changes a result shows up as a mismatch. Evaluation is
// documented thread-count independent, so there the runs must also agree across thread counts.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "ans/data/synthetic.hpp"
#include "ans/train/trainer.hpp"

#if ANS_HAS_OPENMP
#include <omp.h>
#endif

namespace {

using namespace ans::train;

const ans::data::dataset& stress_data() {
  static const ans::data::dataset d = [] {
    ans::data::synthetic_config c;
    c.n_users = 600;
    c.n_items = 400;
    c.interactions_per_user = 12;
    c.dim = 4;
    c.seed = 21;
    return ans::data::generate_synthetic(c);
  }();
  return d;
}

struct run_result {
  ans::matrix<float> e0;
  std::vector<float> w_m;
  std::map<std::string, double> metrics;
};

run_result run(const trainer_config& cfg) {
  trainer<float> t(stress_data(), cfg);
  for (int e = 0; e < 2; ++e) t.train_epoch(e);
  const auto& wm = t.ans_parameters().w_m;
  return {t.embeddings(), std::vector<float>(wm.data(), wm.data() + wm.size()), t.evaluate("test")};
}

}  // namespace

TEST_CASE("stress: 1, 2, 3 and 8 threads, repeated runs give identical bits", "[trainer][stress]") {
#if !ANS_HAS_OPENMP
  WARN("ANS-SKIPPED: built without OpenMP, nothing runs in parallel");
  return;
#else
  struct named {
    const char* name;
    trainer_config cfg;
  };
  std::vector<named> cases;
  auto base = [](sampler_kind s, int layers) {
    trainer_config c;
    c.sampler = s;
    c.n_layers = layers;
    c.dim = 16;
    c.batch_size = 512;
    c.num_neg = 8;
    c.lr = 1e-2;
    c.seed = 5;
    return c;
  };
  cases.push_back({"ANS MF (lazy Adam)", base(sampler_kind::ans, 0)});
  auto pooled = base(sampler_kind::ans, 2);
  pooled.m = ans::mode::fixed;
  cases.push_back({"ANS LightGCN pooled (fixed)", pooled});
  cases.push_back({"ANS LightGCN per hop (faithful)", base(sampler_kind::ans, 2)});
  cases.push_back({"DNS MF, fused step", base(sampler_kind::dns, 0)});
  auto dns_lgcn = base(sampler_kind::dns, 2);
  dns_lgcn.optimizer = optimizer_kind::adam;
  cases.push_back({"DNS LightGCN (dense Adam)", dns_lgcn});
  cases.push_back({"MixGCF LightGCN", base(sampler_kind::mixgcf, 2)});
  auto sgd = base(sampler_kind::rns, 0);
  sgd.optimizer = optimizer_kind::sgd;
  cases.push_back({"RNS MF (SGD)", sgd});

  const int saved = omp_get_max_threads();
  constexpr int kRepeats = 3;
  for (const auto& c : cases) {
    for (int threads : {1, 2, 3, 8}) {
      omp_set_num_threads(threads);
      const run_result first = run(c.cfg);
      for (int r = 1; r < kRepeats; ++r) {
        INFO(c.name << ", " << threads << " threads, repetition " << r);
        const run_result again = run(c.cfg);
        CHECK(again.e0 == first.e0);
        CHECK(again.w_m == first.w_m);
        CHECK(again.metrics == first.metrics);
      }
      // ranking one fixed model does not depend on the thread count
      trainer<float> t(stress_data(), c.cfg);
      t.embeddings() = first.e0;
      omp_set_num_threads(1);
      const auto serial = t.evaluate("test");
      omp_set_num_threads(threads);
      INFO(c.name << ", evaluation at " << threads << " threads vs 1");
      CHECK(t.evaluate("test") == serial);
    }
  }
  omp_set_num_threads(saved);
#endif
}
