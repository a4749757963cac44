// The BPR objective of the baseline samplers (RNS, DNS, MixGCF) scored with each readout, E0 -> readout ->
// selection -> BPR + λR -> back to E0: central finite differences (double), the loss against a direct
// evaluation of <ē_u, ē_p> − <ē_u, ē_n*>, DNS's choice against the pooled argmax, and exactly zero gradient
// for rows the batch cannot reach.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>
#include <type_traits>
#include <utility>

#include "ans/model/bpr_model.hpp"
#include "ans/propagation/readout.hpp"
#include "ans/testing/check_gradient.hpp"

namespace {

struct bpr_fixture {
  ans::data::interactions train;
  ans::graph::normalized_adjacency<double> adj;
  ans::matrix<double> e0;
  std::vector<std::int32_t> users{0, 2, 0, 3}, pos{1, 3, 1, 4}, cands;
  ans::index_t B = 4, K = 3;
};

bpr_fixture make_bpr(unsigned seed) {
  bpr_fixture f;
  // 5 users, 8 items; item 7 is isolated (never in train, never in the batch).
  f.train = ans::data::from_pairs(5, 8, {{0, 0}, {0, 1}, {1, 1}, {1, 2}, {2, 3}, {2, 0}, {3, 4}, {3, 5}, {4, 6},
                                         {4, 2}});
  f.adj = ans::graph::build_normalized_adjacency<double>(f.train);
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, 0.5);
  f.e0.resize(f.adj.n_nodes(), 3);
  for (ans::index_t i = 0; i < f.e0.size(); ++i) f.e0.data()[i] = nd(g);
  f.cands = {2, 4, 5, 6, 2, 0, 5, 5, 3, 6, 0, 2};  // item 5 twice in one row, item 2 in several
  return f;
}

using ans::model::negative_selection;
using ans::propagation::readout_kind;

const char* name(negative_selection s) {
  return s == negative_selection::first ? "RNS" : s == negative_selection::dns ? "DNS" : "MixGCF";
}

}  // namespace

TEST_CASE("bpr objective: gradient through every readout and sampler matches finite differences", "[model][bpr][gradcheck]") {
  for (int layers : {0, 2}) {
    for (auto ro : {readout_kind::mean, readout_kind::sum, readout_kind::last, readout_kind::concat}) {
      for (auto sel : {negative_selection::first, negative_selection::dns, negative_selection::mixgcf}) {
        for (bool pow : {false, true}) {
          auto f = make_bpr(3 + layers);
          ans::model::bpr_options o;
          o.selection = sel;
          o.readout = ro;
          o.reg_weight = 0.05;
          o.reg_require_pow = pow;
          o.bpr_stable = pow;
          ans::model::bpr_objective<double> obj(layers, o);
          ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, f.K};
          obj.forward(f.adj, f.e0, ids, 5, 9);
          const auto k0 = obj.k_star();
          ans::matrix<double> ge = ans::matrix<double>::Zero(f.e0.rows(), f.e0.cols());
          obj.backward(ge);
          auto loss = [&] { return double(obj.forward(f.adj, f.e0, ids, 5, 9)); };
          const auto rep = ans::testing::check_gradient(loss, {{"E0", f.e0.data(), f.e0.size(), ge.data()}});
          obj.forward(f.adj, f.e0, ids, 5, 9);
          INFO("L = " << layers << ", readout " << ans::propagation::to_string(ro) << ", " << name(sel)
                      << (pow ? ", squared R, softplus" : ", norm R, log σ") << "\n" << rep.summary());
          REQUIRE(obj.k_star() == k0);  // the perturbations did not move the argmax (no gradient there)
          CHECK(rep.global_rel_error < 1e-7);
          CHECK(rep.worst_coord_error < 1e-4);
          if (layers == 0) {
            std::set<ans::index_t> r;
            for (auto u : f.users) r.insert(u);
            for (auto p : f.pos) r.insert(5 + p);
            for (ans::index_t b = 0; b < f.B; ++b) r.insert(5 + f.cands[b * f.K + k0[b]]);
            const std::vector<ans::index_t> reach(r.begin(), r.end());
            CHECK(obj.touched_rows() == reach);
            for (ans::index_t n = 0; n < f.e0.rows(); ++n)
              if (!r.count(n)) CHECK(ge.row(n).isZero(0));
          } else {
            CHECK(obj.touched_rows().empty());
            CHECK(ge.row(12).isZero(0));  // item 7: no edge, not in the batch
          }
        }
      }
    }
  }
}

TEST_CASE("bpr objective: the pooled score is <ē_u, ē_p> − <ē_u, ē_n*> and DNS takes its argmax", "[model][bpr]") {
  for (auto ro : {readout_kind::mean, readout_kind::sum, readout_kind::last, readout_kind::concat}) {
    for (auto sel : {negative_selection::first, negative_selection::dns}) {
      auto f = make_bpr(17);
      ans::model::bpr_options o;
      o.selection = sel;
      o.readout = ro;
      o.reg_weight = 0;
      ans::model::bpr_objective<double> obj(2, o);
      ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, f.K};
      const double got = obj.forward(f.adj, f.e0, ids);
      ans::matrix<double> t;
      ans::propagation::readout<double>(2, ro).forward(f.adj, f.e0, t);
      double expect = 0;
      for (ans::index_t b = 0; b < f.B; ++b) {
        const auto u = t.row(f.users[b]);
        ans::index_t best = 0;
        for (ans::index_t k = 1; k < f.K; ++k)
          if (u.dot(t.row(5 + f.cands[b * f.K + k])) > u.dot(t.row(5 + f.cands[b * f.K + best]))) best = k;
        const ans::index_t k = sel == negative_selection::dns ? best : 0;
        CHECK(obj.k_star()[b * 3] == k);
        const double x = u.dot(t.row(5 + f.pos[b])) - u.dot(t.row(5 + f.cands[b * f.K + k]));
        expect += -std::log(1.0 / (1.0 + std::exp(-x)) + 1e-10);
      }
      INFO("readout " << ans::propagation::to_string(ro) << ", " << name(sel));
      CHECK(got == Approx(expect / double(f.B)).epsilon(1e-12));
    }
  }
}

TEST_CASE("bpr objective: a wrong gradient buffer is reported with both shapes before any work", "[model][bpr]") {
  auto f = make_bpr(1);
  ans::model::bpr_objective<double> obj(1, ans::model::bpr_options{});
  ans::model::batch_ids ids{f.users.data(), f.pos.data(), f.cands.data(), f.B, f.K};
  obj.forward(f.adj, f.e0, ids);
  ans::matrix<double> small = ans::matrix<double>::Zero(12, 3);
  CHECK_THROWS_WITH(obj.backward(small), Catch::Contains("bpr_objective::backward") && Catch::Contains("12 x 3") &&
                                             Catch::Contains("13 x 3"));
  ans::matrix<double> e_bad = ans::matrix<double>::Zero(12, 3);
  CHECK_THROWS_WITH(obj.forward(f.adj, e_bad, ids), Catch::Contains("bpr_objective") && Catch::Contains("12 x 3") &&
                                                        Catch::Contains("13 nodes"));
}

namespace {
template <class Adj, class E0, class = void>
struct can_forward : std::false_type {};
template <class Adj, class E0>
struct can_forward<Adj, E0, std::void_t<decltype(std::declval<ans::model::bpr_objective<double>&>().forward(
                                std::declval<Adj>(), std::declval<E0>(), std::declval<const ans::model::batch_ids&>()))>>
    : std::true_type {};
}  // namespace

TEST_CASE("bpr objective: forward rejects temporaries it would keep the address of", "[model][bpr]") {
  using G = ans::graph::normalized_adjacency<double>;
  using M = ans::matrix<double>;
  STATIC_REQUIRE(can_forward<const G&, const M&>::value);
  STATIC_REQUIRE(!can_forward<G&&, const M&>::value);
  STATIC_REQUIRE(!can_forward<const G&, M&&>::value);
  // an Eigen Map would be copied into a temporary matrix: rejected too
  STATIC_REQUIRE(!can_forward<const G&, Eigen::Map<M>>::value);
}
