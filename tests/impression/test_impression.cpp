// ReChorus impression mode (issue 16): the reader and its ReChorus log lines, the impression metrics on
// hand-computed lists, the list-level BPR's gradient, the exposure sampler, and training in impression mode.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../data/data_test_util.hpp"
#include "ans/data/impression.hpp"
#include "ans/eval/impression_ranking.hpp"
#include "ans/loss/list_bpr.hpp"
#include "ans/sampling/exposure.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/testing/check_gradient.hpp"
#include "ans/train/fit.hpp"
#include "ans/train/impression_trainer.hpp"
#include "ans/train/trainer.hpp"

using ans::index_t;
using Catch::Matchers::Contains;

namespace {

const char* kTrain =
    "user_id\titem_id\ttime\tlabel\n"
    "1\t1\t10\t1\n"
    "1\t2\t10\t0\n"
    "1\t3\t10\t0\n"
    "1\t2\t20\t1\n"   // (1, 20): clicked only: dropped (no negative)
    "2\t1\t10\t0\n"
    "2\t3\t10\t0\n"   // (2, 10): nothing clicked: dropped (no positive)
    "2\t4\t30\t1\n"
    "2\t1\t30\t0\n"
    "2\t4\t30\t1\n"   // the same click twice: one positive
    "1\t3\t5\t1\n"
    "1\t4\t5\t0\n";
const char* kDev =
    "user_id\titem_id\ttime\tlabel\n"
    "1\t5\t40\t1\n"
    "1\t1\t40\t0\n"
    "2\t5\t50\t1\n"
    "2\t2\t50\t0\n"
    "2\t3\t50\t1\n";
const char* kTest =
    "user_id\titem_id\ttime\tlabel\n"
    "1\t4\t60\t1\n"
    "1\t5\t60\t0\n";

std::string write_folder(const ans_test::temp_dir& t, const std::string& tr = kTrain, const std::string& dv = kDev,
                         const std::string& te = kTest) {
  t.write("imp/train.csv", tr);
  t.write("imp/dev.csv", dv);
  t.write("imp/test.csv", te);
  return t.str() + "/imp";
}

std::vector<ans::id_type> items_of(const ans::id_type* p, index_t n) { return {p, p + n}; }

}  // namespace

TEST_CASE("impression reader: lists by (user, time), dropped lists, and ReChorus's log lines", "[impression][data]") {
  ans_test::temp_dir t;
  const auto dir = write_folder(t);
  REQUIRE(ans::data::is_impression_folder(dir));
  const auto d = ans::data::load_impression(dir);
  // train: (1,5) {3}|{4}; (1,10) {1}|{2,3}; (2,30) {4}|{1}  (0-based ids below)
  REQUIRE(d.train.size() == 3);
  CHECK(d.train.users == std::vector<ans::id_type>{0, 0, 1});
  CHECK(d.train.keys == std::vector<double>{5, 10, 30});
  CHECK(items_of(d.train.pos_of(0), d.train.n_pos(0)) == std::vector<ans::id_type>{2});
  CHECK(items_of(d.train.neg_of(0), d.train.n_neg(0)) == std::vector<ans::id_type>{3});
  CHECK(items_of(d.train.neg_of(1), d.train.n_neg(1)) == std::vector<ans::id_type>{1, 2});
  CHECK(items_of(d.train.pos_of(2), d.train.n_pos(2)) == std::vector<ans::id_type>{3});
  REQUIRE(d.dev.size() == 2);
  CHECK(items_of(d.dev.pos_of(1), d.dev.n_pos(1)) == std::vector<ans::id_type>{2, 4});
  CHECK(d.test.size() == 1);
  const auto& r = d.report;
  CHECK(r.rows[0] == 11);
  CHECK(r.clicks[0] == 5);
  CHECK(r.groups[0] == 5);
  CHECK(r.no_positive[0] == 1);
  CHECK(r.no_negative[0] == 1);
  CHECK(r.pos_sum_rechorus == 4 + 3 + 1);  // the dropped no-negative list's positive is counted, as in ReChorus
  CHECK(r.neg_sum_rechorus == 4 + 2 + 1);
  CHECK(ans::data::rechorus_log_lines(d) ==
        "Update impression data -- \"# user\": 2, \"# item\": 5, \"# entry\": 18\n"
        "\"# positive interaction\": 9 (50.0%)\n"
        "train, dev, test request num: 3 2 1\n"
        "Average positive items / impression = 1.333, negative items / impression = 1.167\n");
  // the pair view: positives of the kept lists; the exposures: every train row
  CHECK(d.base.train.nnz() == 3);
  CHECK(d.base.train.contains(0, 2));
  CHECK_FALSE(d.base.train.contains(0, 1));  // (1, 20) was dropped
  CHECK(d.train_exposures.nnz() == 7);       // distinct (user, item) over the 11 rows
  CHECK(d.base.n_users() == 2);
  CHECK(d.base.n_items() == 5);
}

TEST_CASE("impression reader: impression_id key and bad files", "[impression][data]") {
  ans_test::temp_dir t;
  SECTION("grouped by impression_id") {
    const std::string tr =
        "user_id\titem_id\ttime\tlabel\timpression_id\n1\t1\t1\t1\t7\n1\t2\t2\t0\t7\n1\t3\t3\t1\t8\n1\t1\t3\t0\t8\n";
    const auto dir = write_folder(t, tr, tr, tr);
    ans::data::impression_options o;
    CHECK(ans::data::load_impression(dir, o).train.size() == 1);  // by time (ReChorus's default): (1,3) only
    o.key = ans::data::impression_key::impression_id;
    CHECK(ans::data::load_impression(dir, o).train.size() == 2);
    o.key = ans::data::impression_key::automatic;
    const auto d = ans::data::load_impression(dir, o);
    CHECK(d.report.key == "impression_id");
    CHECK(d.train.size() == 2);
  }
  SECTION("no label column") {
    const auto dir = write_folder(t, "user_id\titem_id\ttime\n1\t2\t3\n");
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("train.csv:1:") && Contains("no label column"));
    CHECK_FALSE(ans::data::is_impression_folder(dir));
  }
  SECTION("a label other than 0/1") {
    const auto dir = write_folder(t, std::string(kTrain) + "1\t2\t3\t2\n");
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("train.csv:13:") && Contains("label '2' is not 0 or 1"));
  }
  SECTION("a ragged row") {
    const auto dir = write_folder(t, kTrain, std::string(kDev) + "1\t2\t3\n");
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("dev.csv:7:") && Contains("missing column"));
  }
  SECTION("no time column") {
    const auto dir = write_folder(t, "user_id\titem_id\tlabel\n1\t2\t1\n");
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("train.csv:1:") && Contains("no time column"));
  }
  SECTION("padding id 0") {
    const auto dir = write_folder(t, kTrain, kDev, std::string(kTest) + "1\t0\t60\t0\n");
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("test.csv:4:") && Contains("padding id"));
  }
  SECTION("a split without any list") {
    const auto dir = write_folder(t, kTrain, kDev, "user_id\titem_id\ttime\tlabel\n1\t4\t60\t1\n");
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("test.csv:1:") && Contains("no impression list"));
  }
  SECTION("a missing split") {
    const auto dir = write_folder(t);
    std::remove((dir + "/test.csv").c_str());
    CHECK_THROWS_WITH(ans::data::load_impression(dir), Contains("test.csv") && Contains("cannot open"));
  }
}

TEST_CASE("impression metrics: ReChorus's HR and NDCG on hand-computed lists", "[impression][eval]") {
  // one user u = [1, 0]; item k's factor row is [score_k, 0], so score(u, k) = score_k
  const std::vector<double> score{0.9, 0.1, 0.5, 0.3,     // A: positives 0, 1; negatives 2, 3
                                  0.2, 0.2, 0.7,          // B: positive 4; negatives 5 (a tie), 6
                                  0.4, 0.4 - 2e-6,        // C: positive 7; negative 8, within 2e-6 below
                                  0.6, 0.6 - 1e-6};       // D: positive 9; negative 10 equal to 0.6 − ε
  ans::matrix<double> U(1, 2), I(static_cast<index_t>(score.size()), 2);
  U << 1, 0;
  for (index_t k = 0; k < I.rows(); ++k) I(k, 0) = score[k], I(k, 1) = 0;
  ans::data::impression_lists L;
  auto add = [&](std::vector<ans::id_type> pos, std::vector<ans::id_type> neg) {
    L.users.push_back(0);
    L.keys.push_back(0);
    L.pos.insert(L.pos.end(), pos.begin(), pos.end());
    L.neg.insert(L.neg.end(), neg.begin(), neg.end());
    L.pos_begin.push_back(static_cast<index_t>(L.pos.size()));
    L.neg_begin.push_back(static_cast<index_t>(L.neg.size()));
  };
  add({0, 1}, {2, 3});
  add({4}, {5, 6});
  add({7}, {8});
  add({9}, {10});
  ans::eval::impression_ranking_options o;
  o.ks = {1, 2, 3, 5};
  const auto m = ans::eval::impression_ranking<double>(U, I, L, o);
  // A: ranks p n n p -> NDCG@1 1, @2 = @3 = 1/(1 + 1/log2 3), @5 = (1 + 1/log2 5)/(1 + 1/log2 3); HR 1
  // B: n n p (the tied negative ranks first: the positive is lowered by ε) -> NDCG@3 = @5 = 1/log2 4; HR@3 = 1
  // C: p n (2e-6 > ε) -> 1;  D: p n (equal after ε: mergesort keeps the positive's column first) -> 1
  const double a2 = 1.0 / (1.0 + 1.0 / std::log2(3.0)), a5 = (1.0 + 1.0 / std::log2(5.0)) / (1.0 + 1.0 / std::log2(3.0));
  CHECK(m.at("NDCG@1") == Approx(3.0 / 4));
  CHECK(m.at("NDCG@2") == Approx((a2 + 0 + 1 + 1) / 4));
  CHECK(m.at("NDCG@3") == Approx((a2 + 0.5 + 1 + 1) / 4));
  CHECK(m.at("NDCG@5") == Approx((a5 + 0.5 + 1 + 1) / 4));
  CHECK(m.at("HR@1") == Approx(3.0 / 4));
  CHECK(m.at("HR@2") == Approx(3.0 / 4));
  CHECK(m.at("HR@3") == Approx(1.0));
  // test_max_neg_item = 1 keeps B's first negative (item 5, the tie): n p -> NDCG@2 = 1/log2 3
  o.max_neg = 1;
  o.ks = {2};
  const auto m1 = ans::eval::impression_ranking<double>(U, I, L, o);
  const double a2t = 1.0 / (1.0 + 1.0 / std::log2(3.0));  // A without negative 3: p n p
  CHECK(m1.at("NDCG@2") == Approx((a2t + 1.0 / std::log2(3.0) + 1 + 1) / 4));
  // a metric ReChorus's impression runner does not compute is refused
  o.kinds = {ans::eval::metric_kind::recall};
  CHECK_THROWS_WITH(ans::eval::impression_ranking<double>(U, I, L, o), Contains("not an impression metric"));
}

TEST_CASE("list BPR: BPR for one pair, finite differences in double", "[impression][components]") {
  std::vector<double> work(static_cast<size_t>(ans::loss::list_bpr_workspace(1, 1)));
  const double s = 0.7, t = -0.2;
  CHECK(ans::loss::list_bpr_row(&s, 1, &t, 1, 1.0, nullptr, nullptr, work.data()) ==
        Approx(std::log1p(std::exp(-(s - t)))).epsilon(1e-12));
  for (const auto& pn : {std::pair<index_t, index_t>{3, 4}, {1, 5}, {6, 1}}) {
    const index_t P = pn.first, N = pn.second;  // not a structured binding: the lambda below captures them
    auto r = ans::sampling::stream(5, static_cast<std::uint64_t>(P * 10 + N));
    std::vector<double> x(static_cast<size_t>(P + N)), g(x.size(), 0.0);
    for (auto& v : x) v = 2 * r.uniform01<double>() - 1;
    work.resize(static_cast<size_t>(ans::loss::list_bpr_workspace(P, N)));
    ans::loss::list_bpr_row(x.data(), P, x.data() + P, N, 0.5, g.data(), g.data() + P, work.data());
    const auto rep = ans::testing::check_gradient(
        [&] { return 0.5 * ans::loss::list_bpr_row(x.data(), P, x.data() + P, N, 1.0, nullptr, nullptr, work.data()); },
        {{"scores", x.data(), P + N, g.data()}});
    INFO("P = " << P << ", N = " << N);
    CHECK(rep.global_rel_error < 1e-7);
  }
}

namespace {

// A planted impression dataset: user u likes item i by <a_u, b_i>; each list shows 8 items and the 2 best of
// them are clicked. Written as ReChorus files, so the tests go through the reader.
std::string planted_folder(const ans_test::temp_dir& t, int n_users = 60, int n_items = 80, int lists_per_user = 6) {
  auto r = ans::sampling::stream(77, 0);
  const int d = 4;
  std::vector<double> a(n_users * d), b(n_items * d);
  for (auto& v : a) v = r.uniform01<double>() * 2 - 1;
  for (auto& v : b) v = r.uniform01<double>() * 2 - 1;
  std::ostringstream files[3];
  for (auto& f : files) f << "user_id\titem_id\ttime\tlabel\n";
  for (int u = 0; u < n_users; ++u)
    for (int l = 0; l < lists_per_user + 2; ++l) {
      std::vector<int> shown;
      while (shown.size() < 8) {
        const int i = static_cast<int>(r.uniform_int(n_items));
        if (std::find(shown.begin(), shown.end(), i) == shown.end()) shown.push_back(i);
      }
      std::vector<std::pair<double, int>> sc;
      for (int i : shown) {
        double s = 0;
        for (int k = 0; k < d; ++k) s += a[u * d + k] * b[i * d + k];
        sc.emplace_back(s, i);
      }
      std::sort(sc.rbegin(), sc.rend());
      const int split = l < lists_per_user ? 0 : l == lists_per_user ? 1 : 2;
      for (size_t k = 0; k < sc.size(); ++k)
        files[split] << u + 1 << "\t" << sc[k].second + 1 << "\t" << 100 * l << "\t" << (k < 2 ? 1 : 0) << "\n";
    }
  t.write("planted/train.csv", files[0].str());
  t.write("planted/dev.csv", files[1].str());
  t.write("planted/test.csv", files[2].str());
  return t.str() + "/planted";
}

}  // namespace

TEST_CASE("impression trainer: the batch gradient by finite differences (MF and LightGCN), untouched rows zero",
          "[impression][trainer]") {
  ans_test::temp_dir t;
  const auto d = ans::data::load_impression(planted_folder(t, 12, 20, 2));
  for (int layers : {0, 2}) {
    ans::train::impression_config c;
    c.n_layers = layers;
    c.dim = 3;
    c.init_std = 0.5;
    c.train_max_neg = 5;  // truncation on the path
    ans::train::impression_trainer<double> tr(d, c);
    const std::vector<index_t> ids{0, 3, 7};
    ans::matrix<double> g = ans::matrix<double>::Zero(tr.embeddings().rows(), tr.embeddings().cols());
    tr.loss_and_gradient(ids.data(), 3, g);
    ans::matrix<double> scratch = g;
    const auto rep = ans::testing::check_gradient(
        [&] {
          scratch.setZero();
          return tr.loss_and_gradient(ids.data(), 3, scratch);
        },
        {{"E0", tr.embeddings().data(), tr.embeddings().size(), g.data()}});
    INFO("n_layers " << layers);
    CHECK(rep.global_rel_error < 1e-6);
    if (layers == 0) {  // rows of users and items outside the three lists get exactly zero
      std::set<index_t> rows;
      for (index_t l : ids) {
        rows.insert(d.train.users[l]);
        for (index_t k = 0; k < std::min<index_t>(d.train.n_pos(l), 20); ++k) rows.insert(d.base.n_users() + d.train.pos_of(l)[k]);
        for (index_t k = 0; k < std::min<index_t>(d.train.n_neg(l), 5); ++k) rows.insert(d.base.n_users() + d.train.neg_of(l)[k]);
      }
      index_t zero_rows = 0;
      for (index_t r = 0; r < g.rows(); ++r)
        if (!rows.count(r)) {
          CHECK(g.row(r).cwiseAbs().maxCoeff() == 0.0);
          ++zero_rows;
        }
      CHECK(zero_rows > 0);
    }
  }
}

TEST_CASE("impression trainer: BPRMF and LightGCN learn the planted clicks, deterministically, and resume exactly",
          "[impression][trainer]") {
  ans_test::temp_dir t;
  const auto d = ans::data::load_impression(planted_folder(t));
  for (int layers : {0, 2}) {
    ans::train::impression_config c;
    c.n_layers = layers;
    c.dim = 16;
    c.lr = 1e-2;
    c.batch_size = 64;
    c.seed = 3;
    if (layers > 0) c.init = ans::train::init_kind::xavier;
    ans::train::impression_trainer<float> tr(d, c);
    const double before = tr.evaluate("dev").at("NDCG@2");
    for (int e = 0; e < 15; ++e) tr.train_epoch(e);
    const double after = tr.evaluate("dev").at("NDCG@2");
    INFO("n_layers " << layers << ": dev NDCG@2 " << before << " -> " << after);
    CHECK(after > before + 0.1);
    // same seed, same bits; a checkpoint continues exactly
    ans::train::impression_trainer<float> again(d, c), resumed(d, c);
    for (int e = 0; e < 3; ++e) again.train_epoch(e);
    const std::string dir = t.str() + "/ck" + std::to_string(layers);
    again.save(dir);
    resumed.load(dir);
    CHECK(resumed.epochs_done() == 3);
    CHECK(resumed.embeddings() == again.embeddings());
    again.train_epoch(3);
    resumed.train_epoch(3);
    CHECK(resumed.embeddings() == again.embeddings());
    ans::train::impression_trainer<float> other(d, c);
    for (int e = 0; e < 4; ++e) other.train_epoch(e);
    CHECK(other.embeddings() == again.embeddings());
    // a checkpoint of the other model is refused
    ans::train::impression_config c2 = c;
    c2.n_layers = layers > 0 ? 0 : 2;
    ans::train::impression_trainer<float> wrong(d, c2);
    CHECK_THROWS_WITH(wrong.load(dir), Contains("manifest.json") && Contains("model"));
  }
}

TEST_CASE("exposure sampler: candidates from the list's negatives, topped up uniformly", "[impression][sampling]") {
  ans_test::temp_dir t;
  const auto d = ans::data::load_impression(planted_folder(t, 20, 40, 3));
  const ans::sampling::exposure_sampler s(d);
  CHECK(s.mean_pool() >= 6.0);  // 8 shown, 2 clicked: 6 negatives per pair (more if an item is clicked twice)
  std::vector<ans::id_type> out(4), big(24);
  auto r = ans::sampling::stream(1, 2);
  for (index_t l = 0; l < d.train.size(); ++l)
    for (index_t p = 0; p < d.train.n_pos(l); ++p) {
      const index_t u = d.train.users[l], i = d.train.pos_of(l)[p];
      const auto [b, e] = s.pool(u, i);
      const std::set<ans::id_type> pool(b, e);
      for (index_t k = 0; k < d.train.n_neg(l); ++k) CHECK(pool.count(d.train.neg_of(l)[k]) == 1);
      s.sample(u, i, r, {out.data(), 4});  // K = 4 <= 6: four distinct pool items
      const std::set<ans::id_type> got(out.begin(), out.end());
      CHECK(got.size() == 4);
      for (auto v : out) CHECK(pool.count(v) == 1);
      const auto m = static_cast<index_t>(pool.size());
      REQUIRE(m < 24);
      s.sample(u, i, r, {big.data(), 24});  // K = 24 > m: the pool, then uniform draws outside the user's clicks
      CHECK(std::set<ans::id_type>(big.begin(), big.begin() + m) == pool);
      for (index_t k = m; k < 24; ++k) CHECK_FALSE(d.base.train.contains(u, big[k]));
    }
  CHECK(s.uniform_fraction(16) <= 10.0 / 16);
  CHECK(s.uniform_fraction(16) > 0.5);
  // every pool item is drawn about equally often (Floyd's algorithm is uniform over 4-subsets)
  std::vector<int> count(static_cast<size_t>(d.base.n_items()), 0);
  const index_t u = d.train.users[0], i = d.train.pos_of(0)[0];
  for (int rep = 0; rep < 6000; ++rep) {
    s.sample(u, i, r, {out.data(), 4});
    for (auto v : out) ++count[v];
  }
  for (index_t k = 0; k < d.train.n_neg(0); ++k) CHECK(count[d.train.neg_of(0)[k]] == Approx(4000).epsilon(0.08));
}

TEST_CASE("impression run: ANS with exposure candidates trains, ranks lists, and is deterministic",
          "[impression][trainer]") {
  ans_test::temp_dir t;
  const auto d = ans::data::load_impression(planted_folder(t));
  ans::train::trainer_config c;
  c.sampler = ans::train::sampler_kind::ans;
  c.dim = 16;
  c.num_neg = 4;
  c.batch_size = 64;
  c.lr = 1e-2;
  c.seed = 4;
  using exp_trainer = ans::train::trainer<float, ans::sampling::exposure_sampler>;
  exp_trainer tr(d.base, c, ans::sampling::exposure_sampler(d));
  ans::train::impression_run<exp_trainer> run(tr, d);
  const double before = run.evaluate("dev").at("NDCG@2");
  ans::train::evaluation_options eo;
  eo.metric = "NDCG@2";
  eo.report = "test";
  ans::train::evaluation<decltype(run)> ev(eo, decltype(run)::protocol::impression);
  const auto fr = ans::train::fit(run, 15, ev);
  CHECK(fr.epochs_run == 15);
  INFO("dev NDCG@2 " << before << " -> best " << ev.best_metrics().at("NDCG@2"));
  CHECK(ev.best_metrics().at("NDCG@2") > before + 0.1);
  CHECK(ev.best_report().count("HR@1") == 1);
  exp_trainer again(d.base, c, ans::sampling::exposure_sampler(d));
  for (int e = 0; e < 15; ++e) again.train_epoch(e);
  CHECK(again.embeddings() == tr.embeddings());
}
