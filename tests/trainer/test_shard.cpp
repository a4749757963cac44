// The MPI-free half of data-parallel training (train/shard.hpp; the MPI half is tests/dist, run by .ci/run under
// mpirun): a shard draws exactly the rows of the whole batch, a one-rank plan changes nothing, and the plan is
// refused where it is not implemented.
#include <catch2/catch.hpp>

#include <vector>

#include "ans/augment/noise.hpp"
#include "ans/data/synthetic.hpp"
#include "ans/sampling/batch.hpp"
#include "ans/sampling/uniform.hpp"
#include "ans/train/trainer.hpp"

using ans::index_t;
using Catch::Matchers::Contains;

namespace {
const ans::data::dataset& data() {
  static const ans::data::dataset d = [] {
    ans::data::synthetic_config c;
    c.n_users = 200;
    c.n_items = 150;
    c.interactions_per_user = 8;
    c.seed = 3;
    return ans::data::generate_synthetic(c);
  }();
  return d;
}
}  // namespace

TEST_CASE("shard: a slice of a batch draws the candidates and the noise of those rows of the whole batch",
          "[trainer][shard]") {
  ans::sampling::pair_batcher batcher(data().train, 100, 7);
  batcher.start_epoch(2);
  const auto whole = batcher.batch(1);
  const ans::sampling::uniform_sampler s(data().train);
  const index_t K = 5;
  std::vector<ans::id_type> all(static_cast<size_t>(whole.size * K));
  ans::sampling::sample_batch(s, whole, K, 11, all.data());
  for (int P : {2, 3, 7}) {
    std::vector<ans::id_type> joined;
    for (int r = 0; r < P; ++r) {
      const auto [lo, hi] = ans::train::shard_rows(whole.size, r, P);
      const auto part = whole.slice(lo, hi);
      CHECK(part.first == lo);
      std::vector<ans::id_type> c(static_cast<size_t>(part.size * K));
      if (part.size > 0) ans::sampling::sample_batch(s, part, K, 11, c.data());
      joined.insert(joined.end(), c.begin(), c.end());
    }
    CHECK(joined == all);
  }
  const ans::augment::counter_uniform_source full{5, 9, 0}, shard{5, 9, 40};
  float a[8], b[8];
  full(43, 2, 1, a, 8);
  shard(3, 2, 1, b, 8);  // row 3 of the shard starting at 40 is row 43 of the batch
  CHECK(std::vector<float>(a, a + 8) == std::vector<float>(b, b + 8));
  CHECK_THROWS_WITH(whole.slice(5, whole.size + 1), Contains("outside"));
}

TEST_CASE("shard: a one-rank plan trains bit for bit like no plan, and LightGCN is refused", "[trainer][shard]") {
  ans::train::trainer_config c;
  c.sampler = ans::train::sampler_kind::ans;
  c.dim = 8;
  c.batch_size = 128;
  c.num_neg = 4;
  c.seed = 2;
  ans::train::trainer<float> plain(data(), c), planned(data(), c);
  planned.set_shard({0, 1, {}});
  for (int e = 0; e < 2; ++e) plain.train_epoch(e), planned.train_epoch(e);
  CHECK(plain.embeddings() == planned.embeddings());
  ans::train::shard_plan<float> two{0, 2, [](ans::train::shard_exchange<float>&) { return 0.0; }};
  // faithful mode's EmbLoss is a norm over the whole batch: not a sum over shards
  CHECK_THROWS_WITH(plain.set_shard(two), Contains("does not split into per-shard sums"));
  ans::train::trainer_config f = c;
  f.m = ans::mode::fixed;
  ans::train::trainer<float> fixed(data(), f);
  CHECK_NOTHROW(fixed.set_shard(two));
  c.n_layers = 2;
  ans::train::trainer<float> lgcn(data(), c);
  CHECK_THROWS_WITH(lgcn.set_shard(two), Contains("row-block propagation is not implemented"));
  CHECK_THROWS_WITH(plain.set_shard({0, 2, {}}), Contains("needs an exchange"));
  CHECK_THROWS_WITH(plain.set_shard({2, 2, {}}), Contains("is not valid"));
}
