// The composite ANS loss: FD gradient checks over shapes and options, the spec §9 test vector, mutation tests.
#include <catch2/catch.hpp>

#include "helpers.hpp"

using namespace ans_test;
using ans::batch_shape;
using ans::testing::check_gradient;
using params = ans::model::ans_params<double>;

namespace {

struct problem {
  batch_shape s;
  mat U, P, N, r, U0, P0, N0;
  params prm;
  std::vector<index_t> k_star;
};

problem make_problem(batch_shape s, std::uint64_t seed, bool with_reg) {
  std::mt19937_64 rng(seed);
  problem p;
  p.s = s;
  p.U = randn(s.pair_rows(), s.d, rng);
  p.P = randn(s.pair_rows(), s.d, rng);
  p.N = randn(s.cand_rows(), s.d, rng);
  separate(s, p.P, p.N);
  p.r = randu(s.cand_rows(), s.d, rng, 0.05, 1.0);
  p.prm = params::zeros(s.d);
  p.prm.W_u = randn(s.d, s.d, rng);
  p.prm.W_i = randn(s.d, s.d, rng);
  p.prm.b_u = randv(s.d, rng);
  p.prm.b_i = randv(s.d, rng);
  p.prm.w_m = randv(s.d, rng, 0.2);
  p.prm.c_m = 0.5;
  if (with_reg) {
    p.U0 = randn(s.B, s.d, rng);
    p.P0 = randn(s.B, s.d, rng);
    p.N0 = randn(s.B * s.K, s.d, rng);
  }
  return p;
}

ans::model::ego_rows<double> ego_of(const problem& p) {
  if (p.U0.size() == 0) return {};
  return {p.U0.data(), p.P0.data(), p.N0.data()};
}

/// FD check of the whole composite with k* and the draws frozen at the base point.
ans::testing::gradient_report check_composite(problem& p, const ans::ans_options& o, bool drop_gate = false) {
  ans::model::ans_loss<double> loss(o);
  ans::augment::array_uniform_source<double> src{p.r.data(), p.s};
  loss.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p));
  p.k_star = loss.k_star();
  mat dU = mat::Zero(p.U.rows(), p.s.d), dP = mat::Zero(p.P.rows(), p.s.d), dN = mat::Zero(p.N.rows(), p.s.d);
  params g = params::zeros(p.s.d);
  mat dU0 = mat::Zero(p.U0.rows(), p.s.d), dP0 = mat::Zero(p.P0.rows(), p.s.d), dN0 = mat::Zero(p.N0.rows(), p.s.d);
  loss.backward(dU, dP, dN, g, {dU0.data(), dP0.data(), dN0.data()});
  if (drop_gate) g.W_i.setZero();
  vec cm(1), dcm(1);
  cm[0] = p.prm.c_m;
  dcm[0] = g.c_m;
  auto f = [&] {
    p.prm.c_m = cm[0];
    return loss.forward(p.s, p.U, p.P, p.N, p.prm, src, p.k_star.data(), ego_of(p)).total;
  };
  std::vector<ans::testing::param_block> blocks = {
      blk("U", p.U, dU),          blk("P", p.P, dP),          blk("N", p.N, dN),
      blk("W_u", p.prm.W_u, g.W_u), blk("b_u", p.prm.b_u, g.b_u), blk("W_i", p.prm.W_i, g.W_i),
      blk("b_i", p.prm.b_i, g.b_i), blk("w_m", p.prm.w_m, g.w_m), blk("c_m", cm, dcm)};
  if (p.U0.size()) {
    blocks.push_back(blk("U0", p.U0, dU0));
    blocks.push_back(blk("P0", p.P0, dP0));
    blocks.push_back(blk("N0", p.N0, dN0));
  }
  auto rep = check_gradient(f, blocks);
  p.prm.c_m = cm[0];
  return rep;
}

/// FD check of a fresh problem of shape s (with R) under options o; worst_coord: also bound the worst coordinate.
void check_fd(batch_shape s, int seed, const ans::ans_options& o, const char* what, double worst_coord = 0) {
  auto p = make_problem(s, seed, true);
  auto rep = check_composite(p, o);
  INFO(what << " H=" << s.H << "\n" << rep.summary());
  CHECK(rep.global_rel_error < 1e-6);
  if (worst_coord > 0) CHECK(rep.worst_coord_error < worst_coord);
}

ans::ans_options opts(ans::mode m, double gamma = 0.7, double eps = 0.3, double lambda = 0.05) {
  auto o = ans::ans_options::make(m);
  o.gamma = gamma, o.eps = eps, o.reg_weight = lambda;
  return o;
}

}  // namespace

TEST_CASE("composite: FD gradient over shapes (K=1/K>1, H=1/H>1), faithful", "[components][ans_loss]") {
  int seed = 10;
  for (auto s : {batch_shape{3, 1, 1, 4}, batch_shape{2, 3, 1, 4}, batch_shape{2, 1, 3, 3}, batch_shape{2, 3, 2, 4},
                 batch_shape{4, 4, 3, 5}}) {
    for (bool reg : {false, true}) {
      auto p = make_problem(s, seed++, reg);
      auto rep = check_composite(p, opts(ans::mode::faithful));
      INFO("B=" << s.B << " K=" << s.K << " H=" << s.H << " d=" << s.d << " reg=" << reg << "\n" << rep.summary());
      CHECK(rep.global_rel_error < 1e-6);
      CHECK(rep.worst_coord_error < 1e-3);
    }
  }
}

TEST_CASE("composite: FD gradient under fixed mode and every flag", "[components][ans_loss]") {
  int seed = 100;
  const batch_shape s{3, 3, 2, 4};
  auto run = [&](const ans::ans_options& o, const char* what) { check_fd(s, seed++, o, what); };
  run(opts(ans::mode::fixed), "fixed");
  auto o = opts(ans::mode::fixed);
  o.augment_easy_only = true;
  run(o, "fixed + easy-only augmentation");
  o = opts(ans::mode::faithful);
  o.per_hop_selection = false;
  run(o, "per-pair selection");
  o = opts(ans::mode::faithful);
  o.noise = ans::noise_form::per_dim_uniform;
  o.noise_scale = 0.5;
  run(o, "per-dim uniform noise");
  o = opts(ans::mode::faithful);
  o.margin = ans::margin_form::clamped;
  run(o, "clamped margin");
  o = opts(ans::mode::faithful);
  o.bpr_stable = true;
  run(o, "stable bpr");
}

TEST_CASE("composite: FD gradient of the squared D and O (issue 13) and of per-term weights", "[components][ans_loss]") {
  int seed = 500;
  for (auto s : {batch_shape{3, 3, 1, 4}, batch_shape{3, 3, 2, 4}}) {
    auto run = [&](const ans::ans_options& o, const char* what) { check_fd(s, seed++, o, what, 1e-3); };
    auto o = opts(ans::mode::fixed);
    o.distance_squared = o.orth_squared = true;
    run(o, "fixed, squared D and O");
    o.distance_squared = false;
    run(o, "fixed, squared O only");
    o = opts(ans::mode::faithful);
    o.distance_squared = true;
    run(o, "faithful, squared D only");
    o = opts(ans::mode::fixed);
    o.bpr_weight = 0.3, o.sns_weight = 2.0, o.distance_weight = 0.5, o.orth_weight = 1.5;
    run(o, "fixed, per-term weights");
  }
}

TEST_CASE("composite: the squared terms are the squares, the weights scale each term alone", "[components][ans_loss]") {
  const batch_shape s{3, 3, 2, 4};
  auto p = make_problem(s, 77, true);
  ans::augment::array_uniform_source<double> src{p.r.data(), p.s};
  auto o = opts(ans::mode::fixed);
  o.safe_norm = false, o.distance_eps_in_norm = true, o.distance_eps = 0;  // D, O plain norms
  ans::model::ans_loss<double> base(o);
  const auto t0 = base.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p));
  const auto ks = base.k_star();
  // D = mean ‖y‖ and D² = mean ‖y‖² differ; recompute both from the gate to pin the definitions
  const auto& g = base.gate();
  double dn = 0, ds = 0, on = 0, os = 0;
  for (index_t b = 0; b < s.B; ++b)
    for (index_t k = 0; k < s.K; ++k)
      for (index_t h = 0; h < s.H; ++h) {
        const index_t r = s.nrow(b, k, h), ur = b * s.H + h;
        double yy = 0, ww = 0;
        for (index_t j = 0; j < s.d; ++j) {
          const double gj = g(r, j), y = gj * (p.N(r, j) - p.P(ur, j)), w = (1 - gj) * (1 - gj) * p.P(ur, j) * p.N(r, j);
          yy += y * y, ww += w * w;
        }
        dn += std::sqrt(yy), ds += yy, on += std::sqrt(ww), os += ww;
      }
  const double R = double(s.cand_rows());
  CHECK(t0.distance == Approx(dn / R).epsilon(1e-12));
  CHECK(t0.orth == Approx(on / R).epsilon(1e-12));  // fixed: mean over hops, /(BKH)
  o.distance_squared = o.orth_squared = true;
  ans::model::ans_loss<double> sq(o);
  const auto t1 = sq.forward(p.s, p.U, p.P, p.N, p.prm, src, ks.data(), ego_of(p));
  CHECK(t1.distance == Approx(ds / R).epsilon(1e-12));
  CHECK(t1.orth == Approx(os / R).epsilon(1e-12));
  CHECK(t1.total == Approx(t1.bpr + o.reg_weight * t1.reg + o.gamma * (t1.sns + t1.distance + t1.orth)).epsilon(1e-12));
  // the standalone components take the same squared forms (one formula, one place)
  ans::loss::distance_loss<double> Ds;
  ans::loss::orth_loss<double> Os;
  CHECK(Ds.forward(s, p.P, p.N, g, 0.0, true, true) == Approx(t1.distance).epsilon(1e-12));
  CHECK(Os.forward(s, p.P, p.N, g, true, false, 0.0, true) == Approx(t1.orth).epsilon(1e-12));
  // weights: the total is the weighted sum; a term with weight 0 contributes no gradient at all
  o = opts(ans::mode::fixed);
  o.bpr_weight = 0, o.sns_weight = 0, o.orth_weight = 0, o.reg_weight = 0, o.distance_weight = 2.0;
  ans::model::ans_loss<double> only_d(o);
  const auto t2 = only_d.forward(p.s, p.U, p.P, p.N, p.prm, src, ks.data(), ego_of(p));
  CHECK(t2.total == Approx(o.gamma * 2.0 * t2.distance).epsilon(1e-12));
  mat dU = mat::Zero(p.U.rows(), s.d), dP = mat::Zero(p.P.rows(), s.d), dN = mat::Zero(p.N.rows(), s.d);
  params gr = params::zeros(s.d);
  only_d.backward(dU, dP, dN, gr);
  CHECK(dU.norm() > 0);          // through the gate's W_u path
  CHECK(gr.w_m.norm() == 0.0);   // D does not reach the margin
  CHECK(gr.c_m == 0.0);
  o.distance_weight = 0;
  ans::model::ans_loss<double> none(o);
  none.forward(p.s, p.U, p.P, p.N, p.prm, src, ks.data(), ego_of(p));
  dU.setZero(), dP.setZero(), dN.setZero(), gr.set_zero();
  none.backward(dU, dP, dN, gr);
  CHECK(dU.norm() == 0.0);
  CHECK(dP.norm() == 0.0);
  CHECK(dN.norm() == 0.0);
  CHECK(gr.W_i.norm() == 0.0);
}

TEST_CASE("composite: margin none (ablation) is m = 1 with no margin gradient", "[components][ans_loss]") {
  const batch_shape s{3, 3, 2, 4};
  auto p = make_problem(s, 321, true);
  auto o = opts(ans::mode::faithful);
  o.margin = ans::margin_form::none;
  auto rep = check_composite(p, o);
  INFO(rep.summary());
  CHECK(rep.global_rel_error < 1e-6);
  ans::augment::array_uniform_source<double> src{p.r.data(), p.s};
  ans::model::ans_loss<double> none(o);
  const double ln = none.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p)).total;
  mat dU = mat::Zero(p.U.rows(), s.d), dP = mat::Zero(p.P.rows(), s.d), dN = mat::Zero(p.N.rows(), s.d);
  params g = params::zeros(s.d);
  mat dU0 = mat::Zero(p.U0.rows(), s.d), dP0 = mat::Zero(p.P0.rows(), s.d), dN0 = mat::Zero(p.N0.rows(), s.d);
  none.backward(dU, dP, dN, g, {dU0.data(), dP0.data(), dN0.data()});
  CHECK(g.w_m.isZero(0));
  CHECK(g.c_m == 0.0);
  // σ(1/t) with w_m = 0 and t = c_m = 1e-3 is exactly 1 in double: the faithful loss must then be the same number
  auto q = p;
  q.prm.w_m.setZero();
  q.prm.c_m = 1e-3;
  ans::model::ans_loss<double> sat(opts(ans::mode::faithful));
  const double ls = sat.forward(q.s, q.U, q.P, q.N, q.prm, src, nullptr, ego_of(q)).total;
  CHECK(ln == ls);
  // and it differs from the faithful margin at the original parameters (the margin matters here)
  ans::model::ans_loss<double> faith(opts(ans::mode::faithful));
  CHECK(faith.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p)).total != ln);
}

TEST_CASE("composite: duplicate candidates (equal rows) and frozen k*", "[components][ans_loss]") {
  auto p = make_problem({2, 3, 2, 3}, 7, true);
  p.N.row(p.s.nrow(0, 2, 0)) = p.N.row(p.s.nrow(0, 0, 0));  // same item twice in one pair
  p.N.row(p.s.nrow(0, 2, 1)) = p.N.row(p.s.nrow(0, 0, 1));
  p.N.row(p.s.nrow(1, 1, 0)) = p.N.row(p.s.nrow(0, 1, 0));  // same item in two pairs
  p.N.row(p.s.nrow(1, 1, 1)) = p.N.row(p.s.nrow(0, 1, 1));
  p.N0.row(2) = p.N0.row(0);
  p.r.row(p.s.nrow(0, 2, 0)) = p.r.row(p.s.nrow(0, 0, 0));  // same draws too: an exact tie between k=0 and k=2
  p.r.row(p.s.nrow(0, 2, 1)) = p.r.row(p.s.nrow(0, 0, 1));
  auto rep = check_composite(p, opts(ans::mode::faithful));
  INFO(rep.summary());
  CHECK(rep.global_rel_error < 1e-6);
  // an exact tie goes to the first maximum: k* never points at the later copy
  for (index_t h = 0; h < p.s.H; ++h) CHECK(p.k_star[p.s.urow(0, h)] != 2);
}

TEST_CASE("composite: gradient rows not reached are exactly zero", "[components][ans_loss]") {
  auto p = make_problem({3, 4, 2, 4}, 21, false);
  auto o = opts(ans::mode::faithful, /*gamma=*/0.0);
  ans::model::ans_loss<double> loss(o);
  ans::augment::array_uniform_source<double> src{p.r.data(), p.s};
  loss.forward(p.s, p.U, p.P, p.N, p.prm, src);
  mat dU = mat::Zero(p.U.rows(), p.s.d), dP = mat::Zero(p.P.rows(), p.s.d), dN = mat::Zero(p.N.rows(), p.s.d);
  params g = params::zeros(p.s.d);
  loss.backward(dU, dP, dN, g);
  std::vector<index_t> selected;
  for (index_t b = 0; b < p.s.B; ++b)
    for (index_t h = 0; h < p.s.H; ++h) selected.push_back(p.s.nrow(b, loss.k_star()[p.s.urow(b, h)], h));
  // with γ = 0 only the selected candidates receive gradient (BPR, margin and gate paths)
  CHECK(ans::testing::rows_outside_are_zero(dN.data(), dN.rows(), dN.cols(), selected));
  CHECK_FALSE(dN.isZero(0));
  // with γ > 0 every candidate is reached
  loss.options().gamma = 0.5;
  loss.forward(p.s, p.U, p.P, p.N, p.prm, src);
  dN.setZero();
  loss.backward(dU, dP, dN, g);
  CHECK_FALSE(ans::testing::rows_outside_are_zero(dN.data(), dN.rows(), dN.cols(), selected));
}

TEST_CASE("composite: backward accumulates and scales with upstream", "[components][ans_loss]") {
  auto p = make_problem({2, 3, 2, 4}, 31, true);
  ans::model::ans_loss<double> loss(opts(ans::mode::faithful));
  ans::augment::counter_uniform_source src{5, 1};
  loss.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p));
  mat dU = mat::Zero(p.U.rows(), p.s.d), dP = dU, dN = mat::Zero(p.N.rows(), p.s.d);
  params g = params::zeros(p.s.d);
  mat dU0 = mat::Zero(p.s.B, p.s.d);
  loss.backward(dU, dP, dN, g, {dU0.data(), nullptr, nullptr});
  const mat dU1 = dU, dN1 = dN, dU01 = dU0;
  const params g1 = g;
  loss.backward(dU, dP, dN, g, {dU0.data(), nullptr, nullptr}, 0.5);  // += 0.5·grad
  CHECK((dU - 1.5 * dU1).cwiseAbs().maxCoeff() < 1e-14);
  CHECK((dN - 1.5 * dN1).cwiseAbs().maxCoeff() < 1e-14);
  CHECK((g.W_i - 1.5 * g1.W_i).cwiseAbs().maxCoeff() < 1e-14);
  CHECK(g.c_m == Approx(1.5 * g1.c_m).epsilon(1e-13));
  CHECK((dU0 - 1.5 * dU01).cwiseAbs().maxCoeff() < 1e-14);
  // determinism: a second instance gives bit-identical results
  ans::model::ans_loss<double> loss2(opts(ans::mode::faithful));
  const auto t2 = loss2.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p));
  CHECK(t2.total == loss.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p)).total);
  mat eU = mat::Zero(p.U.rows(), p.s.d), eP = eU, eN = mat::Zero(p.N.rows(), p.s.d);
  params g2 = params::zeros(p.s.d);
  loss2.backward(eU, eP, eN, g2);
  CHECK(eU == dU1);
  CHECK(eN == dN1);
  // stats are in range
  const auto& st = loss.stats();
  CHECK(st.mean_gate > 0.0);
  CHECK(st.mean_gate < 1.0);
  CHECK(st.frac_saturated_margin >= 0.0);
  CHECK(st.frac_kstar_differs_dns <= 1.0);
  CHECK(st.mean_xi_norm > 0.0);
  CHECK(st.mean_xi_norm <= 0.1 + 1e-12);
}

TEST_CASE("composite: a dropped gradient term is detected (the checks can fail)", "[components][ans_loss]") {
  auto p = make_problem({2, 3, 2, 4}, 41, false);
  auto rep = check_composite(p, opts(ans::mode::faithful), /*drop_gate=*/true);
  INFO(rep.summary());
  CHECK(rep.global_rel_error > 1e-3);
  CHECK(rep.worst_block == "W_i");
  // analytic gradient of a loss without L_c + L_d against the FD of the full loss
  auto q = make_problem({2, 3, 2, 4}, 42, false);
  ans::model::ans_loss<double> loss(opts(ans::mode::faithful, 0.0));
  ans::augment::array_uniform_source<double> src{q.r.data(), q.s};
  loss.forward(q.s, q.U, q.P, q.N, q.prm, src);
  const auto ks = loss.k_star();
  mat dU = mat::Zero(q.U.rows(), q.s.d), dP = dU, dN = mat::Zero(q.N.rows(), q.s.d);
  params g = params::zeros(q.s.d);
  loss.backward(dU, dP, dN, g);
  loss.options().gamma = 0.7;
  auto f = [&] { return loss.forward(q.s, q.U, q.P, q.N, q.prm, src, ks.data()).total; };
  auto rep2 = check_gradient(f, {blk("U", q.U, dU), blk("P", q.P, dP), blk("N", q.N, dN)});
  CHECK(rep2.global_rel_error > 1e-2);
}

TEST_CASE("composite: float agrees with double", "[components][ans_loss]") {
  auto p = make_problem({8, 4, 3, 16}, 51, true);
  ans::model::ans_loss<double> ld(opts(ans::mode::faithful));
  ans::model::ans_loss<float> lf(opts(ans::mode::faithful));
  ans::augment::array_uniform_source<double> src{p.r.data(), p.s};
  const auto td = ld.forward(p.s, p.U, p.P, p.N, p.prm, src, nullptr, ego_of(p));
  ans::matrix<float> U = p.U.cast<float>(), P = p.P.cast<float>(), N = p.N.cast<float>(), U0 = p.U0.cast<float>(),
                     P0 = p.P0.cast<float>(), N0 = p.N0.cast<float>();
  ans::model::ans_params<float> pf = ans::model::ans_params<float>::zeros(p.s.d);
  pf.W_u = p.prm.W_u.cast<float>(), pf.W_i = p.prm.W_i.cast<float>(), pf.b_u = p.prm.b_u.cast<float>();
  pf.b_i = p.prm.b_i.cast<float>(), pf.w_m = p.prm.w_m.cast<float>(), pf.c_m = float(p.prm.c_m);
  const auto tf = lf.forward(p.s, U, P, N, pf, src, nullptr, {U0.data(), P0.data(), N0.data()});
  CHECK(lf.k_star() == ld.k_star());
  CHECK(tf.total == Approx(td.total).epsilon(1e-5));
  CHECK(tf.sns == Approx(td.sns).epsilon(1e-5));
  CHECK(tf.reg == Approx(td.reg).epsilon(1e-5));
  mat dU = mat::Zero(p.U.rows(), p.s.d), dP = dU, dN = mat::Zero(p.N.rows(), p.s.d);
  params gd = params::zeros(p.s.d);
  ld.backward(dU, dP, dN, gd);
  ans::matrix<float> fU = ans::matrix<float>::Zero(U.rows(), p.s.d), fP = fU, fN = ans::matrix<float>::Zero(N.rows(), p.s.d);
  auto gf = ans::model::ans_params<float>::zeros(p.s.d);
  lf.backward(fU, fP, fN, gf);
  CHECK((fU.cast<double>() - dU).norm() / dU.norm() < 1e-4);
  CHECK((fN.cast<double>() - dN).norm() / dN.norm() < 1e-4);
  CHECK((gf.W_i.cast<double>() - gd.W_i).norm() / gd.W_i.norm() < 1e-4);
  CHECK((gf.w_m.cast<double>() - gd.w_m).norm() / gd.w_m.norm() < 1e-4);
}

namespace {
// forward() + backward() into zeroed buffers vs forward_backward() into garbage-filled ones: same bits.
template <class S>
void check_fused_equals_separate(const problem& p, const ans::ans_options& o) {
  using M = ans::matrix<S>;
  const M U = p.U.cast<S>(), P = p.P.cast<S>(), N = p.N.cast<S>(), U0 = p.U0.cast<S>(), P0 = p.P0.cast<S>(),
          N0 = p.N0.cast<S>();
  auto prm = ans::model::ans_params<S>::zeros(p.s.d);
  prm.W_u = p.prm.W_u.cast<S>(), prm.W_i = p.prm.W_i.cast<S>(), prm.b_u = p.prm.b_u.cast<S>();
  prm.b_i = p.prm.b_i.cast<S>(), prm.w_m = p.prm.w_m.cast<S>(), prm.c_m = S(p.prm.c_m);
  const ans::model::ego_rows<S> ego{U0.data(), P0.data(), N0.data()};
  const ans::augment::counter_uniform_source src{5, 3};
  ans::model::ans_loss<S> a(o), b(o);
  const auto ta = a.forward(p.s, U, P, N, prm, src, nullptr, ego);
  M dU = M::Zero(U.rows(), p.s.d), dP = dU, dN = M::Zero(N.rows(), p.s.d);
  M dU0 = M::Zero(U0.rows(), p.s.d), dP0 = M::Zero(P0.rows(), p.s.d), dN0 = M::Zero(N0.rows(), p.s.d);
  auto ga = ans::model::ans_params<S>::zeros(p.s.d);
  a.backward(dU, dP, dN, ga, {dU0.data(), dP0.data(), dN0.data()});

  M fU = M::Constant(U.rows(), p.s.d, S(7)), fP = fU, fN = M::Constant(N.rows(), p.s.d, S(-3));  // overwritten
  M fU0 = M::Zero(U0.rows(), p.s.d), fP0 = M::Zero(P0.rows(), p.s.d), fN0 = M::Zero(N0.rows(), p.s.d);
  auto gb = ans::model::ans_params<S>::zeros(p.s.d);
  const auto tb = b.forward_backward(p.s, U.data(), P.data(), N.data(), prm, src, fU.data(), fP.data(), fN.data(), gb,
                                     ego, {fU0.data(), fP0.data(), fN0.data()});
  CHECK(tb.total == ta.total);
  CHECK(tb.bpr == ta.bpr);
  CHECK(tb.sns == ta.sns);
  CHECK(tb.distance == ta.distance);
  CHECK(tb.orth == ta.orth);
  CHECK(tb.reg == ta.reg);
  CHECK(b.k_star() == a.k_star());
  CHECK(fU == dU);
  CHECK(fP == dP);
  CHECK(fN == dN);
  CHECK(fU0 == dU0);
  CHECK(fP0 == dP0);
  CHECK(fN0 == dN0);
  CHECK(gb.W_u == ga.W_u);
  CHECK(gb.W_i == ga.W_i);
  CHECK(gb.b_u == ga.b_u);
  CHECK(gb.b_i == ga.b_i);
  CHECK(gb.w_m == ga.w_m);
  CHECK(gb.c_m == ga.c_m);
  CHECK(b.stats().mean_gate == a.stats().mean_gate);
  CHECK(b.gate().size() == 0);  // the fused pass keeps no (B*K*H) x d gate array
  CHECK_THROWS_WITH(b.backward(fU, fP, fN, gb), Catch::Contains("forward_backward"));
  // ego gradients with another row stride than the ego rows: refused before any work
  ans::model::ego_grads<S> bad{fU0.data(), fP0.data(), fN0.data(), 2 * p.s.d};
  CHECK_THROWS_WITH(b.forward_backward(p.s, U.data(), P.data(), N.data(), prm, src, fU.data(), fP.data(), fN.data(),
                                       gb, ego, bad),
                    Catch::Contains("stride"));
}
}  // namespace

TEST_CASE("composite: forward_backward is bit-identical to forward + backward", "[components][ans_loss]") {
  for (auto m : {ans::mode::faithful, ans::mode::fixed}) {
    INFO("mode " << (m == ans::mode::fixed ? "fixed" : "faithful"));
    check_fused_equals_separate<double>(make_problem({8, 4, 3, 16}, 61, true), opts(m));  // Eigen path, 1 block
    check_fused_equals_separate<float>(make_problem({40, 16, 1, 64}, 62, true), opts(m));  // d = 64 kernels, 3 blocks
    check_fused_equals_separate<float>(make_problem({21, 16, 4, 64}, 63, true), opts(m));  // H = 4, 6 blocks, ragged
    check_fused_equals_separate<double>(make_problem({70, 5, 2, 12}, 64, true), opts(m));  // 3 blocks, d = 12
  }
}

TEST_CASE("options: presets", "[components][mode]") {
  const auto f = ans::ans_options::make(ans::mode::faithful);
  const auto x = ans::ans_options::make(ans::mode::fixed);
  CHECK(f.margin == ans::margin_form::faithful_inv_sigmoid);
  CHECK(x.margin == ans::margin_form::sigmoid_neg);
  CHECK(f.direction_from_gated);
  CHECK_FALSE(x.direction_from_gated);
  CHECK(x.reg_require_pow);
  CHECK(x.sns_stable);
  CHECK(x.orth_mean_over_hops);
  CHECK(x.safe_norm);
  CHECK(x.distance_eps_in_norm);
  // items 2, 4, 5 are explicit flags, identical in both presets
  CHECK(f.noise == x.noise);
  CHECK(f.augment_easy_only == x.augment_easy_only);
  CHECK(f.per_hop_selection == x.per_hop_selection);
  const auto pf = params::init(8, ans::mode::faithful, 3), px = params::init(8, ans::mode::fixed, 3);
  CHECK(pf.W_u.cwiseAbs().maxCoeff() <= 1 / std::sqrt(8.0));
  CHECK(pf.b_u.cwiseAbs().maxCoeff() > 0);
  CHECK(px.b_u.isZero(0));
  CHECK(px.w_m.isZero(0));
  CHECK(px.c_m == 0.0);
  CHECK(params::init(8, ans::mode::faithful, 3).W_i == pf.W_i);
}

// ---------------------------------------------------------------------------------------------------------
// Spec §9 numeric test vector.
TEST_CASE("spec §9 test vector", "[components][ans_loss][spec]") {
  const batch_shape s{1, 2, 2, 3};
  mat U(2, 3), P(2, 3), N(4, 3), r(4, 3);
  U << 0.3, -0.2, 0.5, 0.1, 0.4, -0.3;
  P << 0.4, 0.1, 0.2, -0.2, 0.3, 0.6;
  N << 0.2, -0.5, 0.1, 0.3, 0.2, -0.4,  // candidate 0, hops 0..1
      -0.1, 0.3, 0.6, 0.5, -0.2, 0.1;   // candidate 1
  r << 0.2, 0.7, 0.4, 0.9, 0.1, 0.5, 0.3, 0.3, 0.8, 0.6, 0.2, 0.2;
  params prm = params::zeros(3);
  prm.W_u << 0.5, -0.3, 0.2, 0.1, 0.4, -0.6, -0.2, 0.3, 0.7;
  prm.b_u << 0.1, -0.2, 0.3;
  prm.W_i << 0.6, 0.2, -0.1, -0.4, 0.5, 0.3, 0.2, -0.3, 0.8;
  prm.b_i << -0.1, 0.2, 0.1;
  prm.w_m << 0.7, -0.4, 0.9;
  prm.c_m = 0.5;
  auto o = ans::ans_options::make(ans::mode::faithful);
  o.gamma = 0.5, o.eps = 0.5, o.reg_weight = 0.01;
  // ego rows: the h = 0 slices
  mat U0(1, 3), P0(1, 3), N0(2, 3);
  U0 = U.row(0), P0 = P.row(0);
  N0.row(0) = N.row(s.nrow(0, 0, 0)), N0.row(1) = N.row(s.nrow(0, 1, 0));
  ans::model::ans_loss<double> loss(o);
  ans::augment::array_uniform_source<double> src{r.data(), s};
  const auto t = loss.forward(s, U, P, N, prm, src, nullptr, {U0.data(), P0.data(), N0.data()});
  CHECK(t.bpr == Approx(0.862988099397832).epsilon(1e-12));
  CHECK(t.reg == Approx(1.9464787585006162).epsilon(1e-12));
  CHECK(t.sns == Approx(1.090200100639047).epsilon(1e-12));
  CHECK(t.distance == Approx(0.43025011595694984).epsilon(1e-12));
  CHECK(t.orth == Approx(0.07502235320199971).epsilon(1e-12));
  CHECK(t.total == Approx(1.6801891718818365).epsilon(1e-12));
  CHECK(loss.k_star() == std::vector<index_t>{0, 0});
  const double m_ref[4] = {0.8707613051, 0.91021518, 0.8702587162, 0.8795801363};  // (k,h) row order
  for (int i = 0; i < 4; ++i) CHECK(loss.margin()[i] == Approx(m_ref[i]).epsilon(1e-8));
  CHECK(loss.gate()(0, 0) == Approx(0.4907760466).epsilon(1e-9));
  CHECK(loss.gate()(0, 1) == Approx(0.5137465349).epsilon(1e-9));
  CHECK(loss.gate()(0, 2) == Approx(0.5488684963).epsilon(1e-9));

  mat dU = mat::Zero(2, 3), dP = mat::Zero(2, 3), dN = mat::Zero(4, 3), dU0 = mat::Zero(1, 3), dP0 = dU0,
      dN0 = mat::Zero(2, 3);
  params g = params::zeros(3);
  loss.backward(dU, dP, dN, g, {dU0.data(), dP0.data(), dN0.data()});
  dU.row(0) += dU0.row(0), dP.row(0) += dP0.row(0);  // the ego rows are the h = 0 slices
  dN.row(s.nrow(0, 0, 0)) += dN0.row(0), dN.row(s.nrow(0, 1, 0)) += dN0.row(1);
  // the spec's gradients are finite differences printed to 7 digits
  auto near = [](const double* a, std::initializer_list<double> ref) {
    int i = 0;
    for (double v : ref) {
      INFO("entry " << i << ": " << a[i] << " vs " << v);
      CHECK(std::abs(a[i] - v) <= 5e-6 * std::abs(v) + 1e-9);
      ++i;
    }
  };
  near(dU.data(), {-9.819946e-02, -3.036226e-01, -3.643006e-02, 2.441752e-01, -5.358861e-02, -5.520763e-01});
  near(dP.data(), {-8.986070e-02, 1.884838e-01, -2.944884e-01, -1.577982e-01, -1.860492e-01, 2.877889e-01});
  near(dN.data(), {1.809994e-01, -1.874732e-01, 2.736208e-01, 8.916165e-02, 2.286333e-01, -2.635910e-01,
                   -5.119864e-02, 1.861802e-02, 5.138975e-02, 5.281641e-02, -3.934437e-02, -1.567880e-02});
  near(g.W_u.data(), {-2.009837e-04, 1.084269e-03, -1.285253e-03, 8.508239e-05, -4.716889e-04, 5.567713e-04,
                      -1.418859e-03, 1.356040e-03, -2.774899e-03});
  near(g.b_u.data(), {6.875978e-04, -3.092018e-04, -4.143624e-03});
  near(g.W_i.data(), {-1.047094e-03, 2.446324e-03, 2.600670e-03, -6.132748e-04, 2.359918e-03, -1.302696e-03,
                      1.492428e-03, -9.986540e-04, -3.505902e-03});
  near(g.b_i.data(), {2.150047e-03, -7.434248e-03, -2.882925e-03});
  near(g.w_m.data(), {-1.390664e-04, 1.193129e-04, -3.024938e-04});
  near(&g.c_m, {1.480392e-03});
}
