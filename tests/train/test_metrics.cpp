#include <catch2/catch.hpp>

#include <cmath>

#include "ans/data/interactions.hpp"
#include "ans/eval/full_ranking.hpp"
#include "ans/eval/metrics.hpp"
#include "ans/eval/popularity.hpp"
#include "ans/eval/sampled_ranking.hpp"

using namespace ans;
using namespace ans::eval;

static double g(int r) { return 1.0 / std::log2(r + 1.0); }

TEST_CASE("metrics: hand-computed values on one ranked list", "[train]") {
  // ranked: 10 11 12 13 14; test = {11, 14, 99} -> hits at ranks 2 and 5, |T| = 3
  std::vector<std::int32_t> ranked{10, 11, 12, 13, 14};
  auto specs = std::vector<metric_spec>{{metric_kind::recall, 2}, {metric_kind::recall, 5}, {metric_kind::ndcg, 2},
                                        {metric_kind::ndcg, 5},   {metric_kind::hit, 1},    {metric_kind::hit, 2},
                                        {metric_kind::precision, 5}, {metric_kind::mrr, 1}, {metric_kind::mrr, 5}};
  auto v = ranking_metrics(specs, ranked, {14, 11, 99});
  CHECK(v[0] == Approx(1.0 / 3));
  CHECK(v[1] == Approx(2.0 / 3));
  CHECK(v[2] == Approx(g(2) / (g(1) + g(2))));
  CHECK(v[3] == Approx((g(2) + g(5)) / (g(1) + g(2) + g(3))));
  CHECK(v[4] == 0.0);
  CHECK(v[5] == 1.0);
  CHECK(v[6] == Approx(2.0 / 5));
  CHECK(v[7] == 0.0);
  CHECK(v[8] == Approx(0.5));
  CHECK(specs[3].name() == "NDCG@5");
  CHECK(metric_spec{metric_kind::hit, 5}.name() == "HR@5");
  CHECK(metric_spec{metric_kind::precision, 10}.name() == "Precision@10");
}

TEST_CASE("metrics: IDCG runs over min(K, |test|)", "[train]") {
  // One test item at rank 1 with K = 20: IDCG = 1, NDCG = 1 (not 1 / Σ_{r<=20}).
  auto v = ranking_metrics({{metric_kind::ndcg, 20}, {metric_kind::recall, 20}}, {7, 1, 2}, {7});
  CHECK(v[0] == Approx(1.0));
  CHECK(v[1] == Approx(1.0));
  CHECK(idcg_at(20, 2) == Approx(g(1) + g(2)));
  CHECK(idcg_at(2, 50) == Approx(g(1) + g(2)));
  // Two test items at ranks 2 and 3, K = 3.
  auto w = ranking_metrics({{metric_kind::ndcg, 3}}, {0, 5, 6}, {5, 6});
  CHECK(w[0] == Approx((g(2) + g(3)) / (g(1) + g(2))));
}

TEST_CASE("metrics: parse names", "[train]") {
  CHECK(parse_metric("NDCG@5").kind == metric_kind::ndcg);
  CHECK(parse_metric("recall@20").k == 20);
  CHECK(parse_metric("Hit@10").kind == metric_kind::hit);
  CHECK_THROWS_AS(parse_metric("AUC@5"), ans::error);
  CHECK_THROWS_AS(parse_metric("NDCG@x"), ans::error);
  CHECK_THROWS_AS(parse_metric("NDCG"), ans::error);
}

TEST_CASE("sampled ranking: ties and duplicates count against the positive", "[train]") {
  // pos score 1; negatives: 1 (tie), 1 (tie), 0.5, 2 -> rank = 1 + 3 = 4
  std::vector<double> negs{1.0, 1.0, 0.5, 2.0};
  CHECK(sampled_rank(1.0, negs.data(), 4) == 4);
  std::vector<double> two_ties{1.0, 1.0, 0.0};
  CHECK(sampled_rank(1.0, two_ties.data(), 3) == 3);  // positive tied with two negatives -> rank 3
  CHECK(sampled_rank(5.0, negs.data(), 4) == 1);
  CHECK(sampled_rank(std::nan(""), negs.data(), 4) == 5);

  // Factor model: 1-D users/items; user 0 factor 1, item scores = item factor.
  matrix<double> U(1, 1), I(5, 1);
  U << 1;
  I << 3, 3, 1, 4, 0;  // item 0 pos; item 1 ties; item 3 beats; item 2/4 below
  sampled_rows rows;
  rows.n_neg = 4;
  rows.users = {0, 0};
  rows.positives = {0, 3};
  rows.negatives = {1, 1, 2, 4,   // ties twice (duplicate) -> rank 3
                    0, 1, 2, 4};  // best -> rank 1
  auto ranks = sampled_ranks<double>(U, I, rows);
  REQUIRE(ranks == std::vector<index_t>{3, 1});
  auto m = sampled_ranking<double>(U, I, rows, {{1, 3, 5}, {metric_kind::hit, metric_kind::ndcg}});
  CHECK(m.at("HR@1") == Approx(0.5));
  CHECK(m.at("HR@3") == Approx(1.0));
  CHECK(m.at("NDCG@1") == Approx(0.5));
  CHECK(m.at("NDCG@3") == Approx((1.0 / 2.0 + 1.0) / 2));  // 1/log2(4) = 0.5
  CHECK(m.at("NDCG@5") == Approx(0.75));
}

TEST_CASE("sampled ranking: drawn negatives avoid excluded items and are reproducible", "[train]") {
  auto train = data::from_pairs(3, 20, {{0, 0}, {0, 1}, {1, 5}, {2, 7}});
  auto test = data::from_pairs(3, 20, {{0, 2}, {1, 6}, {2, 8}});
  sampled_rows rows;
  rows.users = {0, 1, 2};
  rows.positives = {2, 6, 8};
  draw_sampled_negatives(rows, {&train, &test}, 20, 99, 42);
  REQUIRE(rows.negatives.size() == 3 * 99u);
  for (index_t r = 0; r < 3; ++r)
    for (index_t j = 0; j < 99; ++j) {
      auto it = rows.negatives[r * 99 + j];
      CHECK_FALSE(train.contains(rows.users[r], it));
      CHECK_FALSE(test.contains(rows.users[r], it));
    }
  sampled_rows again = rows;
  draw_sampled_negatives(again, {&train, &test}, 20, 99, 42);
  CHECK(again.negatives == rows.negatives);
  // A user with every item excluded.
  auto full = data::from_pairs(1, 3, {{0, 0}, {0, 1}, {0, 2}});
  sampled_rows bad;
  bad.users = {0};
  bad.positives = {0};
  CHECK_THROWS_WITH(draw_sampled_negatives(bad, {&full}, 3, 5, 1), Catch::Contains("user 0"));
}

TEST_CASE("full ranking: tiny hand-made example with masking", "[train]") {
  // 3 users, 6 items, 1-D factors: item score = factor, user factor 1 (or -1 to reverse).
  matrix<double> U(3, 1), I(6, 1);
  U << 1, 1, -1;
  I << 0.5, 0.9, 0.1, 0.7, 0.9, 0.3;  // order for U=1 (ties by lower id): 1, 4, 3, 0, 5, 2
  // user 0: train {1} masked -> ranking 4, 3, 0, 5, 2; test {3} -> rank 2
  // user 1: train {} -> ranking 1, 4, 3, 0, 5, 2; test {4, 2} -> ranks 2, 6
  // user 2: reversed (-x): 2, 5, 0, 3, 1, 4 ; train {2, 5} masked -> 0, 3, 1, 4 ; test {0} -> rank 1
  auto train = data::from_pairs(3, 6, {{0, 1}, {2, 2}, {2, 5}});
  auto test = data::from_pairs(3, 6, {{0, 3}, {1, 4}, {1, 2}, {2, 0}});
  full_ranking_options opt;
  opt.ks = {1, 2, 5};
  opt.kinds = {metric_kind::recall, metric_kind::ndcg, metric_kind::hit, metric_kind::precision, metric_kind::mrr};
  opt.block_users = 2;  // two blocks
  full_ranking_details det;
  auto m = full_ranking<double>(U, I, train, test, {}, opt, &det);
  CHECK(det.users == std::vector<index_t>{0, 1, 2});
  CHECK(m.at("Recall@1") == Approx((0 + 0 + 1) / 3.0));
  CHECK(m.at("Recall@2") == Approx((1 + 0.5 + 1) / 3.0));
  CHECK(m.at("Recall@5") == Approx((1 + 0.5 + 1) / 3.0));  // user 1's item 2 is at rank 6
  CHECK(m.at("HR@2") == Approx(1.0));
  CHECK(m.at("Precision@2") == Approx((0.5 + 0.5 + 0.5) / 3.0));
  CHECK(m.at("MRR@5") == Approx((0.5 + 0.5 + 1.0) / 3.0));
  const double n0 = g(2) / g(1), n1 = g(2) / (g(1) + g(2)), n2 = 1.0;
  CHECK(m.at("NDCG@2") == Approx((n0 + n1 + n2) / 3.0));
  CHECK(m.at("NDCG@5") == Approx((n0 + n1 + n2) / 3.0));

  // Extra mask: hiding item 4 from user 1 moves item 2 to rank 5.
  auto dev = data::from_pairs(3, 6, {{1, 4}});
  auto m2 = full_ranking<double>(U, I, train, test, {&dev}, opt);
  CHECK(m2.at("Recall@5") == Approx((1 + 0.5 + 1) / 3.0));
  CHECK(m2.at("NDCG@5") == Approx((n0 + g(5) / (g(1) + g(2)) + n2) / 3.0));

  // A user with no test item is skipped; float gives the same answer; block size does not matter.
  auto test_no2 = data::from_pairs(3, 6, {{0, 3}, {1, 4}, {1, 2}});
  auto m3 = full_ranking<double>(U, I, train, test_no2, {}, opt);
  CHECK(m3.at("Recall@2") == Approx((1 + 0.5) / 2.0));
  opt.block_users = 256;
  matrix<float> Uf = U.cast<float>(), If = I.cast<float>();
  auto mf = full_ranking<float>(Uf, If, train, test, {}, opt);
  for (const auto& [k, v] : m) CHECK(mf.at(k) == Approx(v));
}

TEST_CASE("full ranking: shape errors", "[train]") {
  auto train = data::from_pairs(2, 3, {});
  matrix<double> U(2, 2), I(4, 2);
  CHECK_THROWS_WITH(full_ranking<double>(U, I, train, train), Catch::Contains("item rows"));
}

TEST_CASE("popularity baseline ranks by train counts", "[train]") {
  // item 2 most popular (3 users), then item 0 (2), item 1 (1), item 3 (0)
  auto train = data::from_pairs(4, 4, {{0, 2}, {1, 2}, {2, 2}, {0, 0}, {1, 0}, {2, 1}});
  auto s = popularity_scores<double>(train);
  CHECK(s[0] == 2);
  CHECK(s[1] == 1);
  CHECK(s[2] == 3);
  CHECK(s[3] == 0);
  auto test = data::from_pairs(4, 4, {{3, 2}, {2, 0}});
  auto [U, I] = popularity_factors<double>(train);
  full_ranking_options opt;
  opt.ks = {1};
  opt.kinds = {metric_kind::hit};
  auto m = full_ranking<double>(U, I, train, test, {}, opt);
  // user 3: nothing masked, top-1 is item 2 -> hit; user 2: items 2, 1 masked, top-1 is item 0 -> hit
  CHECK(m.at("HR@1") == Approx(1.0));
}

#include "ans/sampling/rng.hpp"

TEST_CASE("full ranking matches a brute-force sort on random data, any block size", "[train]") {
  const index_t nu = 37, ni = 53, D = 3;
  auto r = sampling::stream(2024, 0);
  matrix<double> U(nu, D), I(ni, D);
  for (index_t j = 0; j < U.size(); ++j) U.data()[j] = std::round(r.uniform(-2.0, 2.0) * 2) / 2;  // many ties
  for (index_t j = 0; j < I.size(); ++j) I.data()[j] = std::round(r.uniform(-2.0, 2.0) * 2) / 2;
  std::vector<std::pair<index_t, index_t>> tr, te, dv;
  for (index_t u = 0; u < nu; ++u)
    for (index_t i = 0; i < ni; ++i) {
      const double x = r.uniform01<double>();
      if (x < 0.2) tr.emplace_back(u, i);
      else if (x < 0.27 && u % 5 != 0) te.emplace_back(u, i);
      else if (x < 0.3) dv.emplace_back(u, i);
    }
  auto train = data::from_pairs(nu, ni, tr), test = data::from_pairs(nu, ni, te), dev = data::from_pairs(nu, ni, dv);
  full_ranking_options opt;
  opt.ks = {1, 5, 20};
  opt.kinds = {metric_kind::recall, metric_kind::ndcg, metric_kind::hit, metric_kind::precision, metric_kind::mrr};
  const auto specs = make_specs(opt.kinds, opt.ks);
  // Brute force.
  std::vector<double> sums(specs.size(), 0.0);
  index_t n_eval = 0;
  for (index_t u = 0; u < nu; ++u) {
    if (test.row_size(u) == 0) continue;
    ++n_eval;
    std::vector<std::int32_t> order;
    for (index_t i = 0; i < ni; ++i)
      if (!train.contains(u, i) && !dev.contains(u, i)) order.push_back(static_cast<std::int32_t>(i));
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int32_t a, std::int32_t b) { return U.row(u).dot(I.row(a)) > U.row(u).dot(I.row(b)); });
    auto v = ranking_metrics(specs, order, std::vector<std::int32_t>(test.row_begin(u), test.row_end(u)));
    for (size_t j = 0; j < v.size(); ++j) sums[j] += v[j];
  }
  for (index_t block : {1, 4, 256, 0}) {  // 0: sized from block_bytes
    opt.block_users = block;
    auto m = full_ranking<double>(U, I, train, test, {&dev}, opt);
    REQUIRE(m.size() == specs.size());
    for (size_t j = 0; j < specs.size(); ++j) CHECK(m.at(specs[j].name()) == Approx(sums[j] / n_eval).epsilon(1e-12));
  }
}

TEST_CASE("full ranking: the default block size follows the memory budget", "[eval]") {
  ans::eval::full_ranking_options opt;
  using ans::eval::detail::ranking_block_rows;
  CHECK(ranking_block_rows<float>(opt, 40981) == 76);     // Gowalla: 12 MiB / (40981 * 4 B)
  CHECK(ranking_block_rows<double>(opt, 40981) == 38);
  CHECK(ranking_block_rows<float>(opt, 10) == 256);       // capped
  CHECK(ranking_block_rows<float>(opt, 10000000) == 32);  // floor
  opt.block_users = 5;
  CHECK(ranking_block_rows<float>(opt, 40981) == 5);
}
