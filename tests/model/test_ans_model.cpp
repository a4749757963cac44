// The whole objective E0 -> propagation -> ANS loss -> back to E0, checked by central finite differences
// (double), for L = 0 and L >= 1, K = 1 and K > 1, with duplicate ids in the batch; rows the batch cannot
// reach must get exactly zero gradient.
#include <catch2/catch.hpp>

#include <limits>
#include <random>
#include <set>

#include "ans/model/ans_model.hpp"
#include "ans/testing/check_gradient.hpp"

namespace {

struct ans_fixture {
  ans::data::interactions train;
  ans::graph::normalized_adjacency<double> adj;
  ans::matrix<double> e0;
  ans::model::ans_params<double> prm;
  std::vector<std::int32_t> users, pos, cands;
  ans::index_t B, K;
};

ans_fixture make_ans(ans::index_t K, unsigned seed) {
  ans_fixture f;
  // 5 users, 8 items; item 7 is isolated (never in train, never in the batch).
  f.train = ans::data::from_pairs(5, 8, {{0, 0}, {0, 1}, {1, 1}, {1, 2}, {2, 3}, {2, 0}, {3, 4}, {3, 5}, {4, 6},
                                         {4, 2}});
  f.adj = ans::graph::build_normalized_adjacency<double>(f.train);
  const ans::index_t d = 3;
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, 0.5);
  f.e0.resize(f.adj.n_nodes(), d);
  for (ans::index_t i = 0; i < f.e0.size(); ++i) f.e0.data()[i] = nd(g);
  f.prm = ans::model::ans_params<double>::init(d, ans::mode::faithful, seed);
  f.prm.c_m = 0.5;  // keep t away from the pole so m is not saturated (spec §8)
  f.B = 3;
  f.K = K;
  f.users = {0, 2, 0};  // user 0 twice
  f.pos = {1, 3, 1};    // item 1 twice
  const std::vector<std::int32_t> pool = {2, 4, 5, 2, 6, 3, 4, 5, 2};
  for (ans::index_t j = 0; j < f.B * K; ++j) f.cands.push_back(pool[j % pool.size()]);
  return f;
}

}  // namespace

TEST_CASE("ans objective: gradient through propagation matches finite differences", "[model]") {
  for (int layers : {0, 2}) {
    for (ans::index_t K : {1, 3}) {
      for (auto m : {ans::mode::faithful, ans::mode::fixed}) {
        auto f = make_ans(K, 7 + layers + K);
        auto o = ans::ans_options::make(m);
        o.gamma = 0.7;
        o.eps = 0.3;
        o.reg_weight = 0.05;
        ans::model::ans_objective<double> obj(layers, o);
        ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, K};
        ans::augment::counter_uniform_source src{11, 0};
        obj.forward(f.adj, f.e0, ids, f.prm, src);
        const std::vector<ans::index_t> k_star = obj.loss().k_star();  // frozen: argmax has no gradient
        ans::matrix<double> ge = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
        auto gp = ans::model::ans_params<double>::zeros(3);
        obj.backward(ge, gp);

        auto loss = [&] { return double(obj.forward(f.adj, f.e0, ids, f.prm, src, k_star.data()).total); };
        std::vector<ans::testing::param_block> blocks = {
            {"E0", f.e0.data(), f.e0.size(), ge.data()},
            {"W_u", f.prm.W_u.data(), f.prm.W_u.size(), gp.W_u.data()},
            {"W_i", f.prm.W_i.data(), f.prm.W_i.size(), gp.W_i.data()},
            {"b_u", f.prm.b_u.data(), f.prm.b_u.size(), gp.b_u.data()},
            {"b_i", f.prm.b_i.data(), f.prm.b_i.size(), gp.b_i.data()},
            {"w_m", f.prm.w_m.data(), f.prm.w_m.size(), gp.w_m.data()},
            {"c_m", &f.prm.c_m, 1, &gp.c_m}};
        // abs_tol 1e-5: central differences with h = 1e-6 on an O(1) loss carry ~1e-10 of round-off, which is
        // 1e-4 of a 1e-6 coordinate (seen with clang: w_m[2] = 1.5e-6, off by 2.4e-10); coordinates above 1e-5
        // keep the 1e-4 relative bound, and the global bound below is unchanged
        const auto rep = ans::testing::check_gradient(loss, blocks, 1e-6, 1e-5);
        INFO("L = " << layers << ", K = " << K << ", mode " << (m == ans::mode::fixed ? "fixed" : "faithful") << "\n"
                    << rep.summary());
        CHECK(rep.global_rel_error < 1e-6);
        CHECK(rep.worst_coord_error < 1e-4);

        // Rows the batch cannot reach get exactly zero gradient: with L = 0 everything outside the batch
        // ids; with L >= 1 the isolated item 7 (node 12).
        std::vector<ans::index_t> reach;
        if (layers == 0) {
          std::set<ans::index_t> r;
          for (auto u : f.users) r.insert(u);
          for (auto p : f.pos) r.insert(5 + p);
          for (auto c : f.cands) r.insert(5 + c);
          reach.assign(r.begin(), r.end());
          CHECK(obj.touched_rows() == reach);
        } else {
          for (ans::index_t r = 0; r < 12; ++r) reach.push_back(r);
          CHECK(obj.touched_rows().empty());
        }
        CHECK(ans::testing::rows_outside_are_zero(ge.data(), ge.rows(), ge.cols(), reach));
        CHECK(ge.row(12).isZero(0));
      }
    }
  }
}

TEST_CASE("ans objective: a dropped propagation step is caught by the checker", "[model]") {
  // Mutation test: with the backward through propagation skipped (gradient of the stack taken as the
  // gradient of E0), the finite-difference check must fail for L >= 1.
  auto f = make_ans(2, 3);
  auto o = ans::ans_options::make(ans::mode::faithful);
  ans::model::ans_objective<double> obj(2, o);
  ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, 2};
  ans::augment::counter_uniform_source src{5, 1};
  obj.forward(f.adj, f.e0, ids, f.prm, src);
  const auto k_star = obj.loss().k_star();
  ans::matrix<double> ge = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
  auto gp = ans::model::ans_params<double>::zeros(3);
  ans::model::ans_objective<double> mf(0, o);  // wrong: L = 0 backward on the same batch
  mf.forward(f.adj, f.e0, ids, f.prm, src);
  mf.backward(ge, gp);
  auto loss = [&] { return double(obj.forward(f.adj, f.e0, ids, f.prm, src, k_star.data()).total); };
  const auto rep = ans::testing::check_gradient(loss, {{"E0", f.e0.data(), f.e0.size(), ge.data()}});
  CHECK(rep.global_rel_error > 1e-2);
}

TEST_CASE("ans objective: bad batch ids are reported", "[model]") {
  auto f = make_ans(1, 1);
  ans::model::ans_objective<double> obj(0, ans::ans_options::make(ans::mode::fixed));
  std::vector<std::int32_t> bad = {0, 2, 99};
  ans::model::batch_ids ids{f.users.data(), bad.data(), f.cands.data(), f.B, 1};
  ans::augment::counter_uniform_source src{};
  CHECK_THROWS_WITH(obj.forward(f.adj, f.e0, ids, f.prm, src),
                    Catch::Contains("ans_model.hpp:") && Catch::Contains("item id 99"));
}

TEST_CASE("ans objective: forward_backward equals forward + backward bit for bit", "[model]") {
  for (int layers : {0, 2}) {
    for (auto m : {ans::mode::faithful, ans::mode::fixed}) {
      auto f = make_ans(3, 21 + layers);
      auto o = ans::ans_options::make(m);
      o.reg_weight = 0.05;
      ans::model::ans_objective<double> a(layers, o), b(layers, o);
      ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, 3};
      ans::augment::counter_uniform_source src{4, 1};
      ans::matrix<double> ga = ans::matrix<double>::Constant(f.e0.rows(), f.e0.cols(), 0.25), gb = ga;  // += into both
      auto pa = ans::model::ans_params<double>::zeros(3), pb = pa;
      const double ta = a.forward(f.adj, f.e0, ids, f.prm, src).total;
      a.backward(ga, pa);
      const double tb = b.forward_backward(f.adj, f.e0, ids, f.prm, src, gb, pb).total;
      INFO("L = " << layers);
      CHECK(ta == tb);
      CHECK(ga == gb);
      CHECK(pa.W_i == pb.W_i);
      CHECK(pa.w_m == pb.w_m);
      CHECK(pa.c_m == pb.c_m);
      CHECK(a.touched_rows() == b.touched_rows());
      CHECK(ga.row(12).isConstant(0.25));  // the isolated item: untouched by either
    }
  }
}

TEST_CASE("ans objective: forward_backward's upstream scales every gradient, not the terms", "[model]") {
  for (int layers : {0, 2}) {
    auto f = make_ans(3, 31 + layers);
    auto o = ans::ans_options::make(ans::mode::fixed);
    o.reg_weight = 0.05;
    ans::model::ans_objective<double> obj(layers, o);
    ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, 3};
    ans::augment::counter_uniform_source src{4, 1};
    auto run = [&](double upstream, ans::matrix<double>& ge, ans::model::ans_params<double>& gp) {
      ge = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
      gp = ans::model::ans_params<double>::zeros(3);
      return obj.forward_backward(f.adj, f.e0, ids, f.prm, src, ge, gp, upstream).total;
    };
    ans::matrix<double> g1, gh, g3;
    ans::model::ans_params<double> p1, ph, p3;
    const double t1 = run(1.0, g1, p1), th = run(0.5, gh, ph), t3 = run(0.3, g3, p3);
    INFO("L = " << layers);
    CHECK(t1 == th);  // the terms are L's
    CHECK(t1 == t3);
    CHECK(gh == 0.5 * g1);  // a power of two scales exactly
    CHECK(ph.W_u == 0.5 * p1.W_u);
    CHECK(ph.c_m == 0.5 * p1.c_m);
    CHECK((g3 - 0.3 * g1).cwiseAbs().maxCoeff() < 1e-15 * (1 + g1.cwiseAbs().maxCoeff()));
    CHECK((p3.W_i - 0.3 * p1.W_i).cwiseAbs().maxCoeff() < 1e-15 * (1 + p1.W_i.cwiseAbs().maxCoeff()));
    CHECK(g1.cwiseAbs().maxCoeff() > 0);
  }
}

TEST_CASE("ans objective: a row overlay reads and writes the overlaid rows elsewhere (MF)", "[model]") {
  auto f = make_ans(3, 41);
  auto o = ans::ans_options::make(ans::mode::fixed);
  o.reg_weight = 0.05;
  ans::model::ans_objective<double> obj(0, o);
  ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, 3};
  ans::augment::counter_uniform_source src{4, 1};
  ans::matrix<double> ge = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
  auto gp = ans::model::ans_params<double>::zeros(3);
  const double t = obj.forward_backward(f.adj, f.e0, ids, f.prm, src, ge, gp).total;
  const std::vector<ans::index_t> touched = obj.touched_rows();
  // overlay user 0 (twice in the batch), item 2 (node 7, a candidate) and item 3 (node 8, positive and candidate)
  const std::vector<ans::index_t> over = {0, 7, 8};
  std::vector<ans::index_t> slot(static_cast<size_t>(f.e0.rows()), -1);
  const ans::index_t d = f.e0.cols();
  std::vector<double> rows(over.size() * d), grad_rows(over.size() * d, 0.0);
  ans::matrix<double> e0 = f.e0;  // the overlaid rows' E0 copies are garbage: they must not be read
  for (size_t i = 0; i < over.size(); ++i) {
    slot[over[i]] = static_cast<ans::index_t>(i);
    for (ans::index_t c = 0; c < d; ++c) rows[i * d + c] = f.e0(over[i], c);
    e0.row(over[i]).setConstant(std::numeric_limits<double>::quiet_NaN());
  }
  ans::matrix<double> go = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
  auto gq = ans::model::ans_params<double>::zeros(3);
  const ans::model::row_overlay<double> ov{slot.data(), rows.data(), grad_rows.data()};
  const double to = obj.forward_backward(f.adj, e0, ids, f.prm, src, go, gq, 1.0, ov).total;
  CHECK(to == t);
  CHECK(gq.W_u == gp.W_u);
  CHECK(obj.touched_rows() == touched);  // the overlaid rows are listed
  for (ans::index_t r = 0; r < f.e0.rows(); ++r) {
    INFO("row " << r);
    if (slot[r] < 0) {
      CHECK(go.row(r) == ge.row(r));
      continue;
    }
    CHECK(go.row(r).isZero(0));  // their gradient went to grad_rows, bit for bit
    for (ans::index_t c = 0; c < d; ++c) CHECK(grad_rows[slot[r] * d + c] == ge(r, c));
    CHECK(ge.row(r).cwiseAbs().maxCoeff() > 0);
  }
  // list_touched = false: the same gradients, and touched_rows() refuses to answer until a listing call
  ans::model::row_overlay<double> quiet = ov;
  quiet.list_touched = false;
  std::vector<double> grad_quiet(grad_rows.size(), 0.0);
  quiet.grad_rows = grad_quiet.data();
  ans::matrix<double> gz = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
  auto gr = ans::model::ans_params<double>::zeros(3);
  CHECK(obj.forward_backward(f.adj, e0, ids, f.prm, src, gz, gr, 1.0, quiet).total == t);
  CHECK(gz == go);
  CHECK(grad_quiet == grad_rows);
  CHECK_THROWS_WITH(obj.touched_rows(), Catch::Contains("list_touched = false"));
  obj.forward_backward(f.adj, e0, ids, f.prm, src, gz, gr, 1.0, ov);
  CHECK(obj.touched_rows() == touched);
  ans::model::ans_objective<double> lgcn(2, o);
  CHECK_THROWS_WITH(lgcn.forward_backward(f.adj, e0, ids, f.prm, src, go, gq, 1.0, ov),
                    Catch::Contains("a row overlay needs L = 0"));
}

TEST_CASE("ans objective, pooled readout (mean, sum, last): gradient matches finite differences", "[model][readout]") {
  for (auto ro : {ans::propagation::readout_kind::mean, ans::propagation::readout_kind::sum,
                  ans::propagation::readout_kind::last}) {
    for (auto m : {ans::mode::faithful, ans::mode::fixed}) {
      auto f = make_ans(3, 21);
      auto o = ans::ans_options::make(m);
      o.gamma = 0.7;
      o.eps = 0.3;
      o.reg_weight = 0.05;
      ans::model::ans_objective<double> obj(2, o, ro);
      REQUIRE(obj.pooled());
      ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, f.K};
      ans::augment::counter_uniform_source src{11, 0};
      obj.forward(f.adj, f.e0, ids, f.prm, src);
      CHECK(obj.shape().H == 1);  // one gate pass
      const std::vector<ans::index_t> k_star = obj.loss().k_star();
      ans::matrix<double> ge = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
      auto gp = ans::model::ans_params<double>::zeros(3);
      obj.backward(ge, gp);
      // the fused step gives the same gradient
      ans::matrix<double> ge2 = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
      auto gp2 = ans::model::ans_params<double>::zeros(3);
      obj.forward_backward(f.adj, f.e0, ids, f.prm, src, ge2, gp2);
      CHECK(ge2 == ge);
      auto loss = [&] { return double(obj.forward(f.adj, f.e0, ids, f.prm, src, k_star.data()).total); };
      std::vector<ans::testing::param_block> blocks = {
          {"E0", f.e0.data(), f.e0.size(), ge.data()},
          {"W_u", f.prm.W_u.data(), f.prm.W_u.size(), gp.W_u.data()},
          {"W_i", f.prm.W_i.data(), f.prm.W_i.size(), gp.W_i.data()},
          {"w_m", f.prm.w_m.data(), f.prm.w_m.size(), gp.w_m.data()},
          {"c_m", &f.prm.c_m, 1, &gp.c_m}};
      const auto rep = ans::testing::check_gradient(loss, blocks);
      INFO("readout " << ans::propagation::to_string(ro) << ", mode " << (m == ans::mode::fixed ? "fixed" : "faithful")
                      << "\n" << rep.summary());
      CHECK(rep.global_rel_error < 1e-6);
      CHECK(rep.worst_coord_error < 1e-4);
      CHECK(ge.row(12).isZero(0));  // the isolated item 7
      // the pooled rows are the readout's: U row 0 = ē of user 0
      ans::matrix<double> t;
      ans::propagation::readout<double>(2, ro).forward(f.adj, f.e0, t);
      CHECK((obj.U().row(0) - t.row(f.users[0])).cwiseAbs().maxCoeff() < 1e-14);
    }
  }
}
