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
const ans::data::dataset& shard_data() {
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
  ans::sampling::pair_batcher batcher(shard_data().train, 100, 7);
  batcher.start_epoch(2);
  const auto whole = batcher.batch(1);
  const ans::sampling::uniform_sampler s(shard_data().train);
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

TEST_CASE("shard: a one-rank plan trains bit for bit like no plan, and what a plan needs is checked", "[trainer][shard]") {
  ans::train::trainer_config c;
  c.sampler = ans::train::sampler_kind::ans;
  c.dim = 8;
  c.batch_size = 128;
  c.num_neg = 4;
  c.seed = 2;
  auto plan = [](int rank, int size, bool exchange) {
    ans::train::shard_plan<float> p;
    p.rank = rank, p.size = size;
    if (exchange) p.exchange = [](ans::train::shard_exchange<float>&) { return 0.0; };
    if (exchange) p.sum_diagnostics = [](double*, ans::index_t) {};
    return p;
  };
  ans::train::trainer<float> plain(shard_data(), c), planned(shard_data(), c);
  planned.set_shard(plan(0, 1, false));
  for (int e = 0; e < 2; ++e) plain.train_epoch(e), planned.train_epoch(e);
  CHECK(plain.embeddings() == planned.embeddings());
  const auto two = plan(0, 2, true);
  // faithful mode's EmbLoss is a norm over the whole batch: not a sum over shards
  CHECK_THROWS_WITH(plain.set_shard(two), Contains("does not split into per-shard sums"));
  ans::train::trainer_config f = c;
  f.m = ans::mode::fixed;
  ans::train::trainer<float> fixed(shard_data(), f);
  auto no_sum = two;
  no_sum.sum_diagnostics = nullptr;
  CHECK_THROWS_WITH(fixed.set_shard(no_sum), Contains("needs the plan's sum_diagnostics"));
  CHECK_NOTHROW(fixed.set_shard(two));
  f.n_layers = 2;
  ans::train::trainer<float> lgcn(shard_data(), f);
  CHECK_THROWS_WITH(lgcn.set_shard(two), Contains("needs the plan's sync_rows"));
  auto with_sync = two;
  with_sync.sync_rows = [](float*, ans::index_t, const std::vector<ans::index_t>&) {};
  CHECK_THROWS_WITH(lgcn.set_shard(with_sync), Contains("bipartite chains run on 2 ranks with the plan's swap_rows"));
  with_sync.lightgcn = ans::train::shard_plan<float>::schedule::rows;
  with_sync.node_offsets = {0, 5};
  CHECK_THROWS_WITH(lgcn.set_shard(with_sync), Contains("node_offsets must be 3 non-decreasing offsets"));
  with_sync.node_offsets.clear();
  CHECK_NOTHROW(lgcn.set_shard(with_sync));
  CHECK(lgcn.node_block_offsets().size() == 3);
  f.sampler = ans::train::sampler_kind::dns;
  ans::train::trainer<float> lgcn_dns(shard_data(), f);
  CHECK_THROWS_WITH(lgcn_dns.set_shard(with_sync), Contains("or LightGCN with ANS"));
  f.sampler = ans::train::sampler_kind::ans;
  f.diagnose_every = 3;
  ans::train::trainer<float> diag(shard_data(), f);
  CHECK_THROWS_WITH(diag.set_shard(with_sync), Contains("diagnose_every"));
  CHECK_THROWS_WITH(plain.set_shard(plan(0, 2, false)), Contains("needs an exchange"));
  CHECK_THROWS_WITH(plain.set_shard(plan(2, 2, true)), Contains("is not valid"));
}

TEST_CASE("shard: node_blocks splits the rows into contiguous blocks of about equal cost", "[trainer][shard]") {
  // 10 rows: nine of 1 nonzero, the last of 91: with row_cost 0 the heavy row is a block of its own
  std::vector<ans::index_t> indptr{0};
  for (int r = 0; r < 9; ++r) indptr.push_back(indptr.back() + 1);
  indptr.push_back(indptr.back() + 91);
  CHECK(ans::train::node_blocks(indptr, 2, 0.0) == std::vector<ans::index_t>{0, 9, 10});
  CHECK(ans::train::node_blocks(indptr, 1) == std::vector<ans::index_t>{0, 10});
  const auto four = ans::train::node_blocks(indptr, 4, 2.0);
  REQUIRE(four.size() == 5);
  CHECK(four.front() == 0);
  CHECK(four.back() == 10);
  CHECK(std::is_sorted(four.begin(), four.end()));
  CHECK_THROWS_WITH(ans::train::node_blocks(indptr, 0), Contains("0 ranks"));
}
