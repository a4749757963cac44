#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

#include "ans/data/split.hpp"
#include "ans/data/synthetic.hpp"

using namespace ans::data;

namespace {
bool same(const interactions& a, const interactions& b) {
  return a.n_users == b.n_users && a.n_items == b.n_items && a.indptr == b.indptr && a.indices == b.indices &&
         a.counts == b.counts;
}
/// Rows of a, b, c are pairwise disjoint and their union equals m (counts included).
void check_partition(const interactions& m, const dataset& d) {
  CHECK(d.train.nnz() + d.dev.nnz() + d.test.nnz() == m.nnz());
  for (ans::index_t u = 0; u < m.n_users; ++u) {
    for (auto p = d.train.row_begin(u); p != d.train.row_end(u); ++p) {
      CHECK_FALSE(d.dev.contains(u, *p));
      CHECK_FALSE(d.test.contains(u, *p));
    }
    for (auto p = d.dev.row_begin(u); p != d.dev.row_end(u); ++p) CHECK_FALSE(d.test.contains(u, *p));
    for (auto p = m.row_begin(u); p != m.row_end(u); ++p)
      CHECK((d.train.contains(u, *p) || d.dev.contains(u, *p) || d.test.contains(u, *p)));
  }
}
}  // namespace

TEST_CASE("random helpers are deterministic and in range", "[data]") {
  rng_t a(7), b(7);
  for (int k = 0; k < 1000; ++k) {
    const auto x = uniform_index(a, 13);
    CHECK(x == uniform_index(b, 13));
    CHECK(x < 13);
  }
  rng_t r(1);
  double s = 0;
  for (int k = 0; k < 20000; ++k) s += uniform01(r);
  CHECK(s / 20000 == Approx(0.5).margin(0.02));
}

TEST_CASE("split: RecBole ratio counts", "[data]") {
  ans::index_t c[3];
  detail::ratio_counts(10, {}, c);
  CHECK((c[0] == 8 && c[1] == 1 && c[2] == 1));
  detail::ratio_counts(20, {}, c);
  CHECK((c[0] == 16 && c[1] == 2 && c[2] == 2));
  detail::ratio_counts(5, {}, c);  // 0.5 each for dev/test -> 1 each
  CHECK((c[0] == 3 && c[1] == 1 && c[2] == 1));
  detail::ratio_counts(1, {}, c);
  CHECK((c[0] == 1 && c[1] == 0 && c[2] == 0));
}

TEST_CASE("split: random ratio split is deterministic, disjoint and complete", "[data]") {
  auto g = generate_synthetic();
  const auto& m = g.train;
  auto a = random_split(m, {0.8, 0.1, 0.1}, 2020);
  auto b = random_split(m, {0.8, 0.1, 0.1}, 2020);
  auto c = random_split(m, {0.8, 0.1, 0.1}, 2021);
  CHECK(same(a.train, b.train));
  CHECK(same(a.dev, b.dev));
  CHECK(same(a.test, b.test));
  CHECK_FALSE(same(a.test, c.test));
  check_partition(m, a);
  const double frac = static_cast<double>(a.test.nnz()) / static_cast<double>(m.nnz());
  CHECK(frac == Approx(0.1).margin(0.03));
  // counts travel with their item
  auto dup = from_pairs(2, 3, {{0, 0}, {0, 0}, {0, 1}, {0, 2}, {1, 1}});
  auto s = random_split(dup, {1, 0, 0}, 1);
  CHECK(s.train.counts == dup.counts);
}

TEST_CASE("split: validation hold-out takes round(ratio n) per user, at most n - 1", "[data]") {
  CHECK(holdout_count(1, 0.1) == 0);
  CHECK(holdout_count(4, 0.1) == 0);   // 0.4 rounds down
  CHECK(holdout_count(5, 0.1) == 1);   // 0.5 rounds up
  CHECK(holdout_count(14, 0.1) == 1);
  CHECK(holdout_count(15, 0.1) == 2);
  CHECK(holdout_count(2, 0.9) == 1);   // capped at n - 1
  CHECK(holdout_count(10, 0.0) == 0);
  auto g = generate_synthetic();
  const auto& m = g.train;
  auto a = holdout_split(m, 0.1, 7), b = holdout_split(m, 0.1, 7), c = holdout_split(m, 0.1, 8);
  CHECK(same(a.train, b.train));
  CHECK(same(a.dev, b.dev));
  CHECK_FALSE(same(a.dev, c.dev));
  CHECK(a.test.nnz() == 0);
  check_partition(m, a);
  ans::index_t expect = 0;
  for (ans::index_t u = 0; u < m.n_users; ++u) {
    CHECK(a.dev.row_size(u) == holdout_count(m.row_size(u), 0.1));
    expect += holdout_count(m.row_size(u), 0.1);
  }
  CHECK(a.dev.nnz() == expect);
  CHECK_THROWS_WITH(holdout_split(m, 1.0, 1), Catch::Contains("holdout ratio"));
}

TEST_CASE("split: leave-one-out by time", "[data]") {
  std::vector<timed_interaction> ev = {
      {0, 0, 5}, {0, 1, 1}, {0, 2, 9}, {0, 3, 7},  // user 0: order 1,0,3,2 -> dev 3, test 2
      {1, 4, 3}, {1, 0, 2},                        // user 1: train 0, test 4
      {2, 1, 1},                                   // user 2: train only
      {3, 2, 4}, {3, 3, 4}, {3, 1, 4},             // ties keep input order: dev 3, test 1
  };
  auto d = leave_one_out(4, 5, ev);
  CHECK(d.test.contains(0, 2));
  CHECK(d.dev.contains(0, 3));
  CHECK(d.train.row_size(0) == 2);
  CHECK(d.test.contains(1, 4));
  CHECK(d.dev.row_size(1) == 0);
  CHECK(d.train.contains(1, 0));
  CHECK(d.train.contains(2, 1));
  CHECK(d.test.row_size(2) == 0);
  CHECK(d.test.contains(3, 1));
  CHECK(d.dev.contains(3, 3));
  CHECK(d.train.contains(3, 2));
  CHECK(d.report.users_without_test == 1);
  auto d2 = leave_one_out(4, 5, ev);
  CHECK(same(d.test, d2.test));
  CHECK_THROWS_AS(leave_one_out(2, 5, ev), ans::error);
}

TEST_CASE("synthetic: deterministic, shaped as configured, power-law popularity", "[data]") {
  synthetic_config cfg;
  auto a = generate_synthetic(cfg);
  auto b = generate_synthetic(cfg);
  CHECK(same(a.train, b.train));
  CHECK(same(a.test, b.test));
  cfg.seed = 43;
  auto c = generate_synthetic(cfg);
  CHECK_FALSE(same(a.train, c.train));
  CHECK(a.n_users() == 2000);
  CHECK(a.n_items() == 1500);
  CHECK(a.format == "synthetic");
  const double per_user = static_cast<double>(a.train.nnz() + a.test.nnz()) / 2000.0;
  CHECK(per_user == Approx(30).epsilon(0.15));
  CHECK(static_cast<double>(a.test.nnz()) / (a.train.nnz() + a.test.nnz()) == Approx(0.2).margin(0.03));
  CHECK(a.report.users_without_test == 0);
  // disjoint train/test, no duplicates
  for (ans::index_t u = 0; u < a.n_users(); ++u)
    for (auto p = a.test.row_begin(u); p != a.test.row_end(u); ++p) CHECK_FALSE(a.train.contains(u, *p));
  CHECK(a.train.merged_duplicates() == 0);
  // power law: the top 10% of items hold more than 30% of interactions
  std::vector<long> deg(1500, 0);
  for (auto i : a.train.indices) ++deg[i];
  for (auto i : a.test.indices) ++deg[i];
  std::sort(deg.begin(), deg.end(), std::greater<long>());
  const long total = std::accumulate(deg.begin(), deg.end(), 0L);
  const long top = std::accumulate(deg.begin(), deg.begin() + 150, 0L);
  CHECK(static_cast<double>(top) / total > 0.30);
}

TEST_CASE("synthetic: planted structure is visible (affinity raises co-occurrence with the truth)", "[data]") {
  synthetic_config cfg;
  synthetic_truth truth;
  auto d = generate_synthetic(cfg, &truth);
  REQUIRE(truth.user_factors.size() == 2000u * 16u);
  // mean <p_u, q_i> over observed pairs is well above the mean over random pairs (~0)
  double s = 0;
  for (ans::index_t u = 0; u < d.n_users(); ++u)
    for (auto p = d.train.row_begin(u); p != d.train.row_end(u); ++p)
      for (int k = 0; k < 16; ++k) s += truth.user_factors[u * 16 + k] * truth.item_factors[*p * 16 + k];
  const double observed = s / d.train.nnz();
  double r = 0;  // the same items with users rotated: unrelated pairs
  for (ans::index_t u = 0; u < d.n_users(); ++u) {
    const ans::index_t v = (u + 977) % d.n_users();
    for (auto p = d.train.row_begin(u); p != d.train.row_end(u); ++p)
      for (int k = 0; k < 16; ++k) r += truth.user_factors[v * 16 + k] * truth.item_factors[*p * 16 + k];
  }
  const double unrelated = r / d.train.nnz();
  CHECK(observed > 0.1);
  CHECK(observed > unrelated + 0.1);
}

TEST_CASE("synthetic: large configurations and small catalogues", "[data]") {
  synthetic_config cfg;
  cfg.n_users = 20000;
  cfg.n_items = 20000;
  cfg.interactions_per_user = 50;
  auto d = generate_synthetic(cfg);
  CHECK(d.train.nnz() + d.test.nnz() > 900000);
  synthetic_config tiny;
  tiny.n_users = 10;
  tiny.n_items = 8;
  tiny.interactions_per_user = 20;  // capped at n_items / 2
  auto t = generate_synthetic(tiny);
  for (ans::index_t u = 0; u < 10; ++u) CHECK(t.train.row_size(u) + t.test.row_size(u) <= 4);
}
