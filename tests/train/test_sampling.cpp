#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <vector>

#include "ans/data/interactions.hpp"
#include "ans/sampling/batch.hpp"
#include "ans/sampling/dns.hpp"
#include "ans/sampling/mixgcf.hpp"
#include "ans/sampling/popularity.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/sampling/uniform.hpp"

using namespace ans;
using namespace ans::sampling;

static_assert(is_sampler_v<uniform_sampler>);
static_assert(is_sampler_v<popularity_sampler>);
static_assert(!is_sampler_v<int>);

TEST_CASE("rng: streams are deterministic and independent", "[train]") {
  auto a = stream(7, 1), b = stream(7, 1), c = stream(7, 2), d = stream(8, 1);
  std::vector<std::uint64_t> va, vb, vc, vd;
  for (int i = 0; i < 1000; ++i) {
    va.push_back(a());
    vb.push_back(b());
    vc.push_back(c());
    vd.push_back(d());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  CHECK(va != vd);
  // Keys are order-sensitive and multi-component.
  CHECK(stream_key(1, 2, 3) != stream_key(1, 3, 2));
  CHECK(stream_key(1, 2, 3) == stream_key(1, 2, 3));
  // Independence: correlation of uniforms from neighbouring streams is ~0; bits of streams differ ~half.
  auto s1 = stream(123, 0), s2 = stream(123, 1);
  double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
  const int n = 100000;
  long long bitdiff = 0;
  for (int i = 0; i < n; ++i) {
    const auto x1 = s1(), x2 = s2();
    bitdiff += __builtin_popcountll(x1 ^ x2);
    const double x = (x1 >> 11) * 0x1.0p-53, y = (x2 >> 11) * 0x1.0p-53;
    sx += x; sy += y; sxy += x * y; sxx += x * x; syy += y * y;
  }
  const double cov = sxy / n - (sx / n) * (sy / n);
  const double corr = cov / std::sqrt((sxx / n - sx * sx / n / n) * (syy / n - sy * sy / n / n));
  CHECK(std::abs(corr) < 0.02);
  CHECK(std::abs(static_cast<double>(bitdiff) / n - 32.0) < 0.2);
  CHECK(std::abs(sx / n - 0.5) < 0.01);
}

TEST_CASE("rng: uniform_int is in range and unbiased, uniform01 in the unit interval", "[train]") {
  rng r(99);
  std::vector<int> hist(7, 0);
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    auto v = r.uniform_int(7);
    REQUIRE(v < 7);
    ++hist[v];
  }
  double chi2 = 0;
  for (int h : hist) chi2 += (h - n / 7.0) * (h - n / 7.0) / (n / 7.0);
  CHECK(chi2 < 25);  // 6 dof; p ~ 3e-4
  CHECK(r.uniform_int(1) == 0);
  for (int i = 0; i < 100000; ++i) {
    float f = r.uniform01<float>();
    double d = r.uniform01<double>();
    REQUIRE(f >= 0.0f);
    REQUIRE(f < 1.0f);
    REQUIRE(d >= 0.0);
    REQUIRE(d < 1.0);
  }
}

static data::interactions dense_ish(index_t n_users, index_t n_items, std::uint64_t seed) {
  std::vector<std::pair<index_t, index_t>> pairs;
  auto r = stream(seed, 0);
  for (index_t u = 0; u < n_users; ++u)
    for (index_t i = 0; i < n_items; ++i)
      if (r.uniform01<double>() < 0.6) pairs.emplace_back(u, i);
  return data::from_pairs(n_users, n_items, pairs);
}

TEST_CASE("uniform sampler never returns a training positive", "[train]") {
  auto train = dense_ish(20, 30, 5);
  uniform_sampler s(train);
  rng r(1);
  std::vector<std::int32_t> out(50);
  for (index_t u = 0; u < train.n_users; ++u)
    for (int rep = 0; rep < 40; ++rep) {
      s.sample(u, 0, r, item_span(out.data(), 50));
      for (auto i : out) {
        REQUIRE(i >= 0);
        REQUIRE(i < 30);
        REQUIRE_FALSE(train.contains(u, i));
      }
    }
  // first_item = 1 (RecBole [PAD]) never returns item 0.
  uniform_sampler s1(train, 1);
  for (int rep = 0; rep < 2000; ++rep) REQUIRE(s1.draw(0, r) >= 1);
}

TEST_CASE("uniform sampler: all-items user error, exact fallback", "[train]") {
  std::vector<std::pair<index_t, index_t>> pairs;
  for (index_t i = 0; i < 1000; ++i) {
    pairs.emplace_back(0, i);             // user 0: every item
    if (i != 617) pairs.emplace_back(1, i);  // user 1: all but item 617
  }
  pairs.emplace_back(2, 3);
  auto train = data::from_pairs(3, 1000, pairs);
  uniform_sampler s(train);
  rng r(3);
  std::vector<std::int32_t> out(20);
  CHECK_THROWS_WITH(s.sample(0, 0, r, item_span(out.data(), 20)),
                    Catch::Contains("user 0") && Catch::Contains("every item"));
  for (int rep = 0; rep < 50; ++rep) {
    s.sample(1, 0, r, item_span(out.data(), 20));
    for (auto i : out) REQUIRE(i == 617);
  }
  // max_tries = 0 forces the enumeration path, which must stay uniform over the complement.
  uniform_sampler exact(train, 0, 0);
  CHECK(exact.draw(1, r) == 617);
  auto small = data::from_pairs(1, 6, {{0, 0}, {0, 2}, {0, 3}});
  uniform_sampler ex(small, 0, 0);
  std::vector<int> hist(6, 0);
  for (int i = 0; i < 30000; ++i) ++hist[ex.draw(0, r)];
  CHECK(hist[0] == 0);
  CHECK(hist[2] == 0);
  CHECK(hist[3] == 0);
  for (int i : {1, 4, 5}) CHECK(std::abs(hist[i] - 10000) < 500);
  // first_item excludes the row's items below it from the complement count.
  uniform_sampler ex1(small, 1, 0);
  for (int i = 0; i < 1000; ++i) {
    auto v = ex1.draw(0, r);
    REQUIRE((v == 1 || v == 4 || v == 5));
  }
}

TEST_CASE("popularity sampler frequencies follow count^alpha", "[train]") {
  // Item counts: item i is held by (i+1) of the users 10..; user 0 holds items {0, 1}.
  std::vector<std::pair<index_t, index_t>> pairs{{0, 0}, {0, 1}};
  const index_t n_items = 8;
  for (index_t i = 0; i < n_items; ++i)
    for (index_t u = 1; u <= i + 1; ++u) pairs.emplace_back(u, i);
  auto train = data::from_pairs(10, n_items, pairs);
  auto counts = item_counts(train);
  for (double alpha : {1.0, 0.5}) {
    popularity_sampler s(train, alpha);
    // Expected for user 0: w_i / Σ_{j not in {0,1}} w_j.
    std::vector<double> p(n_items, 0.0);
    double tot = 0;
    for (index_t i = 2; i < n_items; ++i) tot += (p[i] = std::pow(counts[i], alpha));
    for (auto& x : p) x /= tot;
    for (bool exact : {false, true}) {
      rng r(11);
      std::vector<double> hist(n_items, 0.0);
      const int n = 60000;
      for (int t = 0; t < n; ++t) ++hist[exact ? s.draw_exact(0, r) : s.draw(0, r)];
      CHECK(hist[0] == 0);
      CHECK(hist[1] == 0);
      double chi2 = 0;
      for (index_t i = 2; i < n_items; ++i) chi2 += (hist[i] - n * p[i]) * (hist[i] - n * p[i]) / (n * p[i]);
      CHECK(chi2 < 25);  // 5 dof
    }
  }
  // Zero-weight items are never drawn; user with every positive-weight item -> error.
  popularity_sampler z(train, std::vector<double>{0, 0, 1, 0, 0, 0, 0, 0}, 64);
  rng r(2);
  for (int t = 0; t < 1000; ++t) REQUIRE(z.draw(0, r) == 2);
  CHECK_THROWS_WITH(z.draw(3, r), Catch::Contains("user 3"));
}

TEST_CASE("batcher: epochs are seeded permutations of all pairs", "[train]") {
  auto train = dense_ish(15, 10, 9);
  pair_batcher pb(train, 16, 42);
  auto collect = [&](pair_batcher& b) {
    std::vector<std::pair<index_t, std::int32_t>> v;
    for (index_t k = 0; k < b.n_batches(); ++k) {
      auto bt = b.batch(k);
      for (index_t j = 0; j < bt.size; ++j) v.emplace_back(bt.users[j], bt.items[j]);
    }
    return v;
  };
  auto e0 = collect(pb);
  CHECK(static_cast<index_t>(e0.size()) == train.nnz());
  CHECK(pb.n_batches() == (train.nnz() + 15) / 16);
  std::set<std::pair<index_t, std::int32_t>> uniq(e0.begin(), e0.end());
  CHECK(static_cast<index_t>(uniq.size()) == train.nnz());
  for (auto& [u, i] : uniq) CHECK(train.contains(u, i));
  pb.start_epoch(1);
  auto e1 = collect(pb);
  CHECK(e1 != e0);
  pair_batcher pb2(train, 16, 42);
  CHECK(collect(pb2) == e0);
  pair_batcher dl(train, 16, 42, true);
  CHECK(dl.n_batches() == train.nnz() / 16);
}

TEST_CASE("batcher: user-uniform draws (LightGCN-PyTorch) pick users uniformly, not by degree", "[train]") {
  // user 0 has 1 item, user 1 has 9, user 2 none: a shuffle serves user 1 nine times as often as user 0;
  // user-uniform draws serve them equally and never user 2
  auto train = ans::data::from_pairs(3, 10, {{0, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}, {1, 5}, {1, 6}, {1, 7}, {1, 8}, {1, 9}});
  std::vector<double> count(3, 0), item(10, 0);
  pair_batcher pb(train, 4, 5, false, ans::sampling::pair_order::user_uniform);
  CHECK(pb.n_batches() == 3);  // nnz draws an epoch
  std::vector<index_t> first;
  for (index_t e = 0; e < 2000; ++e) {
    pb.start_epoch(e);
    for (index_t k = 0; k < pb.n_batches(); ++k) {
      auto bt = pb.batch(k);
      for (index_t j = 0; j < bt.size; ++j) {
        REQUIRE(train.contains(bt.users[j], bt.items[j]));
        count[bt.users[j]] += 1, item[bt.items[j]] += 1;
        if (e == 0) first.push_back(bt.users[j]);
      }
    }
  }
  CHECK(count[2] == 0);
  CHECK(count[0] / count[1] == Approx(1.0).epsilon(0.05));
  CHECK(item[1] / item[9] == Approx(1.0).epsilon(0.15));  // the user's items uniformly
  pair_batcher again(train, 4, 5, false, ans::sampling::pair_order::user_uniform);
  std::vector<index_t> f2;
  for (index_t k = 0; k < again.n_batches(); ++k)
    for (index_t j = 0; j < again.batch(k).size; ++j) f2.push_back(again.batch(k).users[j]);
  CHECK(f2 == first);  // (seed, epoch) decide the draws
}

TEST_CASE("sample_batch is deterministic and thread-count independent", "[train]") {
  auto train = dense_ish(40, 50, 4);
  pair_batcher pb(train, 64, 1);
  uniform_sampler s(train);
  const index_t K = 8;
  auto bt = pb.batch(1);
  std::vector<std::int32_t> a(bt.size * K), b(bt.size * K);
  sample_batch(s, bt, K, 77, a.data());
#if ANS_HAS_OPENMP
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  sample_batch(s, bt, K, 77, b.data());
  omp_set_num_threads(prev);
#else
  sample_batch(s, bt, K, 77, b.data());
#endif
  CHECK(a == b);
  for (index_t j = 0; j < bt.size; ++j)
    for (index_t k = 0; k < K; ++k) REQUIRE_FALSE(train.contains(bt.users[j], a[j * K + k]));
  sample_batch(s, bt, K, 78, b.data());
  CHECK(a != b);
}

TEST_CASE("dns_select picks the highest score, ties to the first", "[train]") {
  matrix<double> items(4, 2);
  items << 1, 0,   // score 1
      0, 1,        // score 2
      2, 0,        // score 2
      -1, -1;      // score -3
  const double u[2] = {1, 2};
  std::int32_t c1[3] = {0, 1, 2};
  CHECK(dns_select(u, items, c1, 3) == 1);  // tie between items 1 and 2 -> first position
  std::int32_t c2[3] = {3, 2, 1};
  CHECK(dns_select(u, items, c2, 3) == 1);
  std::int32_t c3[2] = {3, 0};
  CHECK(dns_select(u, items, c3, 2) == 1);
  // Per hop with H = 2, d = 1: hop 0 uses column 0, hop 1 column 1 (u = (1, 2)).
  index_t k[2];
  dns_select_per_hop(u, items, c1, 3, 2, k);
  CHECK(k[0] == 2);
  CHECK(k[1] == 1);
}

TEST_CASE("mixgcf: positive mixing and hop-wise selection", "[train]") {
  // H = 2, d = 2; items stacked [n, 4].
  matrix<double> items(3, 4);
  items << 1, 0, 0, 0,   //
      0, 0, 0, 3,        //
      0, 2, 1, 0;
  const double u[4] = {1, 1, 0, 1};
  const double p[4] = {0, 0, 0, 0};
  const double alpha[4] = {0.5, 0.5, 0.25, 0.25};
  std::int32_t cand[3] = {0, 1, 2};
  double out[4];
  index_t k[2];
  mixgcf_select(u, p, items, cand, 3, 2, alpha, out, k);
  // hop 0: <u0, 0.5 n> = 0.5, 0, 1 -> k = 2; hop 1: 0.75 * (0, 3, 0) -> k = 1
  CHECK(k[0] == 2);
  CHECK(k[1] == 1);
  CHECK(out[0] == Approx(0.0));
  CHECK(out[1] == Approx(1.0));
  CHECK(out[2] == Approx(0.0));
  CHECK(out[3] == Approx(2.25));
  // With a positive: n' = α p + (1-α) n.
  const double p2[4] = {2, 2, 4, 4};
  mixgcf_select(u, p2, items, cand, 3, 2, alpha, out, k);
  CHECK(k[0] == 2);
  CHECK(out[0] == Approx(1.0));
  CHECK(out[1] == Approx(2.0));
  CHECK(out[3] == Approx(0.25 * 4 + 0.75 * 3));
  // α granularity.
  rng r(5);
  double a[6];
  mixgcf_draw_alpha(r, mix_alpha::per_hop, 2, 3, a);
  CHECK(a[0] == a[2]);
  CHECK(a[3] == a[5]);
  CHECK(a[0] != a[3]);
  mixgcf_draw_alpha(r, mix_alpha::per_sample, 2, 3, a);
  CHECK(a[0] == a[5]);
  mixgcf_draw_alpha(r, mix_alpha::per_dimension, 2, 3, a);
  CHECK(a[0] != a[1]);
  for (double x : a) CHECK((x >= 0 && x < 1));
}
