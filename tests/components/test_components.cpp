// Finite-difference gradient checks of every ANS component on its own (double precision).
#include <catch2/catch.hpp>

#include "helpers.hpp"

using namespace ans_test;
using ans::batch_shape;
using ans::testing::check_gradient;

namespace {
const double kTol = 1e-6;  // global relative error for h = 1e-6 central differences
}

TEST_CASE("gate: forward values and FD gradient to U, N, W_u, b_u, W_i, b_i", "[components][gate]") {
  std::mt19937_64 rng(1);
  for (auto s : {batch_shape{2, 3, 2, 4}, batch_shape{3, 1, 1, 5}}) {
    mat U = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng);
    mat Wu = randn(s.d, s.d, rng), Wi = randn(s.d, s.d, rng);
    vec bu = randv(s.d, rng), bi = randv(s.d, rng);
    const mat C = randn(s.cand_rows(), s.d, rng, 1.0);  // f = Σ C⊙g
    ans::disentangle::gate<double> gate;
    auto f = [&] {
      gate.forward(s, U, N, Wu, bu, Wi, bi);
      return (C.array() * gate.g().array()).sum();
    };
    f();
    // direct check of one entry
    const index_t r = s.nrow(s.B - 1, s.K - 1, s.H - 1);
    const vec au = Wu * U.row(s.urow(s.B - 1, s.H - 1)).transpose() + bu;
    const vec an = Wi * N.row(r).transpose() + bi;
    CHECK(gate.g()(r, 1) == Approx(1.0 / (1.0 + std::exp(-an[1] * au[1]))).epsilon(1e-14));
    mat dU = mat::Zero(U.rows(), U.cols()), dN = mat::Zero(N.rows(), N.cols());
    mat dWu = mat::Zero(s.d, s.d), dWi = mat::Zero(s.d, s.d);
    vec dbu = vec::Zero(s.d), dbi = vec::Zero(s.d);
    gate.backward(U, N, Wu, Wi, C, dU, dN, dWu, dbu, dWi, dbi);
    auto rep = check_gradient(f, {blk("U", U, dU), blk("N", N, dN), blk("W_u", Wu, dWu), blk("b_u", bu, dbu),
                                  blk("W_i", Wi, dWi), blk("b_i", bi, dbi)});
    INFO(rep.summary());
    CHECK(rep.global_rel_error < kTol);
    CHECK(rep.worst_coord_error < 1e-4);
  }
}

TEST_CASE("gate: hard/easy factors and their backward", "[components][gate]") {
  std::mt19937_64 rng(2);
  batch_shape s{2, 2, 2, 3};
  mat g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9), N = randn(s.cand_rows(), s.d, rng),
      P = randn(s.pair_rows(), s.d, rng);
  const index_t R = s.cand_rows();
  mat Nh(R, s.d), Ne(R, s.d), Ph(R, s.d), Pe(R, s.d);
  const mat A = randn(R, s.d, rng), Bm = randn(R, s.d, rng), Cm = randn(R, s.d, rng), Dm = randn(R, s.d, rng);
  auto f = [&] {
    ans::disentangle::gate_factors<double>(s, g, N, P, Nh, Ne, Ph, Pe);
    return (A.array() * Nh.array() + Bm.array() * Ne.array() + Cm.array() * Ph.array() + Dm.array() * Pe.array()).sum();
  };
  f();
  CHECK((Nh + Ne - N).cwiseAbs().maxCoeff() < 1e-15);
  mat dg = mat::Zero(R, s.d), dN = mat::Zero(R, s.d), dP = mat::Zero(P.rows(), s.d);
  ans::disentangle::gate_factors_backward<double>(s, g, N, P, A, Bm, Cm, Dm, dg, dN, dP);
  auto rep = check_gradient(f, {blk("g", g, dg), blk("N", N, dN), blk("P", P, dP)});
  INFO(rep.summary());
  CHECK(rep.global_rel_error < kTol);
}

TEST_CASE("sns: value, stable form and FD gradient", "[components][loss]") {
  std::mt19937_64 rng(3);
  for (auto s : {batch_shape{2, 3, 2, 4}, batch_shape{2, 1, 1, 3}}) {
    for (bool stable : {false, true}) {
      mat U = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng),
          g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
      ans::loss::sns_loss<double> L;
      auto f = [&] { return L.forward(s, U, N, g, stable); };
      const double v = f();
      // reference value
      double ref = 0;
      for (index_t b = 0; b < s.B; ++b)
        for (index_t h = 0; h < s.H; ++h) {
          double sum = 0;
          for (index_t k = 0; k < s.K; ++k) {
            const auto r = s.nrow(b, k, h);
            const double delta = (U.row(s.urow(b, h)).array() * (1 - 2 * g.row(r).array()) * N.row(r).array()).sum();
            sum += std::exp(delta);
          }
          ref += std::log1p(sum);
        }
      CHECK(v == Approx(ref / s.pair_rows()).epsilon(1e-13));
      mat dU = mat::Zero(U.rows(), s.d), dN = mat::Zero(N.rows(), s.d), dg = mat::Zero(g.rows(), s.d);
      L.backward(U, N, g, 0.7, dU, dN, dg);
      auto rep = check_gradient([&] { return 0.7 * f(); }, {blk("U", U, dU), blk("N", N, dN), blk("g", g, dg)});
      INFO(rep.summary());
      CHECK(rep.global_rel_error < kTol);
    }
  }
  SECTION("stable form survives huge Δ where the faithful form overflows in float") {
    batch_shape s{1, 2, 1, 1};
    ans::matrix<float> U(1, 1), N(2, 1), g(2, 1);
    U << 100.f;
    N << -1.f, -0.5f;
    g << 0.f, 0.f;  // Δ = <U, N>·(1−0) ... negative; flip sign of g to make Δ large
    g << 1.f, 1.f;  // Δ = −<U,N> = 100, 50
    ans::loss::sns_loss<float> L;
    CHECK(std::isfinite(L.forward(s, U, N, g, true)));
    CHECK(L.forward(s, U, N, g, true) == Approx(100.0f).epsilon(1e-5));
    CHECK_FALSE(std::isfinite(L.forward(s, U, N, g, false)));  // the reference overflows (faithful)
  }
}

TEST_CASE("distance and orth: FD gradient in both modes", "[components][loss]") {
  std::mt19937_64 rng(4);
  for (auto s : {batch_shape{2, 3, 2, 4}, batch_shape{1, 1, 1, 3}}) {
    for (bool fixed : {false, true}) {
      mat P = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng),
          g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
      ans::loss::distance_loss<double> D;
      ans::loss::orth_loss<double> O;
      auto fd = [&] { return D.forward(s, P, N, g, 1e-6, fixed); };
      auto fo = [&] { return O.forward(s, P, N, g, fixed, fixed, 1e-6); };
      fd();
      fo();
      mat dP = mat::Zero(P.rows(), s.d), dN = mat::Zero(N.rows(), s.d), dg = mat::Zero(g.rows(), s.d);
      D.backward(P, N, g, 1.3, dP, dN, dg);
      auto rep = check_gradient([&] { return 1.3 * fd(); }, {blk("P", P, dP), blk("N", N, dN), blk("g", g, dg)});
      INFO("distance " << rep.summary());
      CHECK(rep.global_rel_error < kTol);
      dP.setZero(), dN.setZero(), dg.setZero();
      O.backward(P, N, g, 0.9, dP, dN, dg);
      rep = check_gradient([&] { return 0.9 * fo(); }, {blk("P", P, dP), blk("N", N, dN), blk("g", g, dg)});
      INFO("orth " << rep.summary());
      CHECK(rep.global_rel_error < kTol);
    }
  }
  SECTION("squared forms (ans_options::distance_squared / orth_squared): FD gradient and the squares") {
    const batch_shape s{2, 3, 2, 4};
    mat P = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng),
        g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
    for (bool fixed : {false, true}) {
      ans::loss::distance_loss<double> D, Dn;
      ans::loss::orth_loss<double> O, On;
      auto fd = [&] { return D.forward(s, P, N, g, 1e-6, fixed, true); };
      auto fo = [&] { return O.forward(s, P, N, g, fixed, fixed, 1e-6, true); };
      fd(), fo();
      Dn.forward(s, P, N, g, 1e-6, fixed), On.forward(s, P, N, g, fixed, fixed, 1e-6);
      // the squared row values are Σ y² and Σ w²: the norms squared, less the ε² that fixed mode puts inside them
      const double eps2 = fixed ? 1e-12 : 0.0;
      for (index_t r = 0; r < s.cand_rows(); ++r) {
        CHECK(D.norms()[r] == Approx(Dn.norms()[r] * Dn.norms()[r] - eps2).epsilon(1e-10));
        CHECK(O.norms()[r] == Approx(On.norms()[r] * On.norms()[r] - eps2).epsilon(1e-10));
      }
      mat dP = mat::Zero(P.rows(), s.d), dN = mat::Zero(N.rows(), s.d), dg = mat::Zero(g.rows(), s.d);
      D.backward(P, N, g, 0.7, dP, dN, dg);
      auto rep = check_gradient([&] { return 0.7 * fd(); }, {blk("P", P, dP), blk("N", N, dN), blk("g", g, dg)});
      INFO("distance squared " << rep.summary());
      CHECK(rep.global_rel_error < kTol);
      dP.setZero(), dN.setZero(), dg.setZero();
      O.backward(P, N, g, 1.1, dP, dN, dg);
      rep = check_gradient([&] { return 1.1 * fo(); }, {blk("P", P, dP), blk("N", N, dN), blk("g", g, dg)});
      INFO("orth squared " << rep.summary());
      CHECK(rep.global_rel_error < kTol);
    }
  }
  SECTION("faithful orth sums over hops, fixed averages") {
    batch_shape s{1, 1, 3, 2};
    mat P = mat::Constant(3, 2, 1.0), N = mat::Constant(3, 2, 2.0), g = mat::Constant(3, 2, 0.5);
    ans::loss::orth_loss<double> O;
    const double w = 0.25 * 2.0 * std::sqrt(2.0);  // ‖(1−g)²PN‖ per hop
    CHECK(O.forward(s, P, N, g, false, false, 0) == Approx(3 * w));
    CHECK(O.forward(s, P, N, g, true, false, 0) == Approx(w));
  }
  SECTION("zero Hadamard product: faithful subgradient 0, no NaN") {
    batch_shape s{1, 1, 1, 2};
    mat P = mat::Zero(1, 2), N = mat::Constant(1, 2, 1.0), g = mat::Constant(1, 2, 0.3);
    ans::loss::orth_loss<double> O;
    CHECK(O.forward(s, P, N, g, false, false, 0) == 0.0);
    mat dP = mat::Zero(1, 2), dN = mat::Zero(1, 2), dg = mat::Zero(1, 2);
    O.backward(P, N, g, 1.0, dP, dN, dg);
    CHECK(dP.allFinite());
    CHECK(dP.isZero(0));
  }
}

TEST_CASE("margin: FD gradient for every form, pole handling", "[components][augment]") {
  std::mt19937_64 rng(5);
  batch_shape s{2, 3, 2, 4};
  for (auto form : {ans::margin_form::faithful_inv_sigmoid, ans::margin_form::sigmoid_neg, ans::margin_form::clamped}) {
    mat P = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng),
        g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
    vec w = randv(s.d, rng, 0.2);
    vec c(1);
    c[0] = 0.5;
    const vec C = randv(s.cand_rows(), rng, 1.0);
    ans::augment::margin_model<double> M;
    auto f = [&] {
      M.forward(s, P, N, g, w, c[0], form, 0.1);
      return C.dot(M.m());
    };
    f();
    for (index_t r = 0; r < s.cand_rows(); ++r) REQUIRE(std::abs(M.t()[r]) > 0.15);  // no kink nearby
    mat dP = mat::Zero(P.rows(), s.d), dN = mat::Zero(N.rows(), s.d), dg = mat::Zero(g.rows(), s.d);
    vec dw = vec::Zero(s.d), dc = vec::Zero(1);
    M.backward(P, N, g, w, C, dP, dN, dg, dw, dc[0]);
    auto rep = check_gradient(f, {blk("P", P, dP), blk("N", N, dN), blk("g", g, dg), blk("w_m", w, dw), blk("c_m", c, dc)});
    INFO(rep.summary());
    CHECK(rep.global_rel_error < kTol);
  }
  SECTION("t == 0: m = 1, gradient 0, counted") {
    batch_shape s1{1, 1, 1, 2};
    mat P = mat::Zero(1, 2), N = mat::Zero(1, 2), g = mat::Constant(1, 2, 0.5);
    vec w = vec::Constant(2, 1.0);
    ans::augment::margin_model<double> M;
    CHECK(M.forward(s1, P, N, g, w, 0.0, ans::margin_form::faithful_inv_sigmoid, 0.1) == 1);
    CHECK(M.m()[0] == 1.0);
    CHECK(M.derivative(0.0) == 0.0);
    CHECK(M.derivative(1e-300) == 0.0);
    CHECK(std::isfinite(M.derivative(-1e-30)));
  }
  SECTION("stable derivative equals −m(1−m)/t² where both are representable") {
    ans::augment::margin_model<double> M;
    batch_shape s1{1, 1, 1, 1};
    mat Z = mat::Zero(1, 1);
    vec w = vec::Zero(1);
    M.forward(s1, Z, Z, Z, w, 0.5, ans::margin_form::faithful_inv_sigmoid, 0.1);
    for (double t : {0.3, -0.7, 2.0, 0.05}) {
      const double m = 1 / (1 + std::exp(-1 / t)), one_minus_m = 1 / (1 + std::exp(1 / t));
      CHECK(M.derivative(t) == Approx(-m * one_minus_m / (t * t)).epsilon(1e-12));
    }
    // float: no overflow to NaN for tiny t
    CHECK(std::isfinite(ans::math::inv_sigmoid_derivative(1e30f)));
  }
}

TEST_CASE("noise: construction, norms and FD gradient of Ñ", "[components][augment]") {
  std::mt19937_64 rng(6);
  batch_shape s{2, 2, 2, 4};
  const mat r = randu(s.cand_rows(), s.d, rng, 0.05, 1.0);
  ans::augment::array_uniform_source<double> src{r.data(), s};
  for (bool easy : {false, true})
    for (bool gated : {true, false})
      for (auto form : {ans::noise_form::normalized, ans::noise_form::per_dim_uniform}) {
        mat P = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng),
            g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
        separate(s, P, N);
        vec m = randu(s.cand_rows(), 1, rng, 0.2, 0.8);
        ans::ans_options o;
        o.augment_easy_only = easy;
        o.direction_from_gated = gated;
        o.noise = form;
        o.noise_scale = 0.3;
        ans::augment::noise_model<double> nm;
        nm.forward(s, P, N, g, src, o);
        const mat C = randn(s.cand_rows(), s.d, rng, 1.0);
        mat Nt(s.cand_rows(), s.d);
        auto f = [&] {
          for (index_t i = 0; i < s.cand_rows(); ++i) nm.augmented_row(i, N.row(i).data(), g.row(i).data(), m[i], Nt.row(i).data());
          return (C.array() * Nt.array()).sum();
        };
        f();
        if (!easy && form == ans::noise_form::normalized)
          for (index_t i = 0; i < s.cand_rows(); ++i) CHECK((Nt.row(i) - N.row(i)).norm() == Approx(0.3 * m[i]).epsilon(1e-12));
        mat dN = mat::Zero(N.rows(), s.d), dg = mat::Zero(g.rows(), s.d);
        vec dm = vec::Zero(s.cand_rows());
        nm.backward(C, g, m, dN, dg, dm);
        auto rep = check_gradient(f, {blk("N", N, dN), blk("g", g, dg), blk("m", m, dm)});
        INFO(rep.summary());
        CHECK(rep.global_rel_error < kTol);
        if (!easy) CHECK(dg.isZero(0));
      }
  SECTION("counter source is deterministic, in [0,1), keyed on (seed, step, b, k, h)") {
    ans::augment::counter_uniform_source a{42, 7}, b{42, 7}, c{42, 8};
    std::vector<double> x(64), y(64), z(64);
    std::vector<float> xf(64);
    a(1, 2, 3, x.data(), 64);
    b(1, 2, 3, y.data(), 64);
    c(1, 2, 3, z.data(), 64);
    a(1, 2, 3, xf.data(), 64);
    CHECK(x == y);
    CHECK(x != z);
    for (int j = 0; j < 64; ++j) {
      CHECK(x[j] >= 0.0);
      CHECK(x[j] < 1.0);
      CHECK(xf[j] < 1.0f);
    }
    std::vector<double> w(64);
    a(1, 3, 2, w.data(), 64);
    CHECK(w != x);
  }
}

TEST_CASE("select: per hop, per pair, ties to the first maximum", "[components][augment]") {
  batch_shape s{1, 3, 2, 1};
  // rows r = k*H + h
  std::vector<double> syth = {1.0, 0.0, 2.0, 5.0, 2.0, 5.0}, norm = {0, 0, 0, 0, 0, 0};
  std::vector<index_t> k(2);
  ans::augment::select_candidates(s, syth.data(), norm.data(), 0.5, true, k.data());
  CHECK(k[0] == 1);  // hop 0: 1.0, 2.0, 2.0 → first max k=1
  CHECK(k[1] == 1);  // hop 1: 0, 5, 5 → k=1
  syth = {3.0, 0.0, 2.0, 0.0, 0.0, 4.0};
  ans::augment::select_candidates(s, syth.data(), norm.data(), 0.0, true, k.data());
  CHECK(k[0] == 0);
  CHECK(k[1] == 2);
  ans::augment::select_candidates(s, syth.data(), norm.data(), 0.0, false, k.data());
  CHECK(k[0] == 2);  // sums: 3, 2, 4
  CHECK(k[1] == 2);
  // the gain term: score = syth + ε(syth − norm)
  syth = {1.0, 0, 1.0, 0, 0, 0};
  norm = {1.0, 0, 0.0, 0, 0, 0};
  ans::augment::select_candidates(s, syth.data(), norm.data(), 0.5, true, k.data());
  CHECK(k[0] == 1);
}

TEST_CASE("bpr: value and FD gradient, faithful and stable", "[components][loss]") {
  std::mt19937_64 rng(7);
  const index_t B = 5;
  for (bool stable : {false, true}) {
    vec pos = randv(B, rng, 2.0), neg = randv(B, rng, 2.0);
    auto f = [&] { return ans::loss::bpr_forward<double>(B, pos.data(), neg.data(), stable, 1e-10); };
    vec dpos = vec::Zero(B), dneg = vec::Zero(B);
    ans::loss::bpr_backward<double>(B, pos.data(), neg.data(), stable, 1e-10, 1.0, dpos.data(), dneg.data());
    auto rep = check_gradient(f, {blk("pos", pos, dpos), blk("neg", neg, dneg)});
    INFO(rep.summary());
    CHECK(rep.global_rel_error < kTol);
  }
  double p = 50, n = 0;
  CHECK(std::isfinite(ans::loss::bpr_forward<double>(1, &n, &p, true, 1e-10)));
  CHECK(ans::loss::bpr_forward<double>(1, &n, &p, true, 1e-10) == Approx(50.0));
  CHECK(ans::loss::bpr_forward<double>(1, &n, &p, false, 1e-10) == Approx(-std::log(1e-10)).epsilon(1e-6));
}

TEST_CASE("l2 regulariser: rows by id with duplicates, both forms", "[components][loss]") {
  std::mt19937_64 rng(8);
  const index_t B = 3, d = 4;
  mat E = randn(10, d, rng);
  std::vector<index_t> users = {1, 4, 1}, items = {5, 6, 7}, cands = {8, 8, 2, 6, 9, 8};  // duplicates
  for (bool pw : {false, true}) {
    mat dE = mat::Zero(10, d);
    auto blocks = [&](double* g) {
      return std::vector<ans::loss::emb_block<double>>{{E.data(), d, 3, users.data(), g},
                                                        {E.data(), d, 3, items.data(), g},
                                                        {E.data(), d, 6, cands.data(), g}};
    };
    auto f = [&] { return ans::loss::emb_loss_forward<double>(blocks(nullptr), B, pw); };
    // reference with explicit duplicates
    auto fro = [&](const std::vector<index_t>& ids) {
      double s = 0;
      for (auto i : ids) s += E.row(i).squaredNorm();
      return pw ? s / 2 : std::sqrt(s);
    };
    CHECK(f() == Approx((fro(users) + fro(items) + fro(cands)) / B).epsilon(1e-14));
    ans::loss::emb_loss_backward<double>(blocks(dE.data()), B, pw, 1.0);
    auto rep = check_gradient(f, {blk("E", E, dE)});
    INFO(rep.summary());
    CHECK(rep.global_rel_error < kTol);
    CHECK(ans::testing::rows_outside_are_zero(dE.data(), 10, d, {1, 4, 5, 6, 7, 8, 2, 9}));
    CHECK_FALSE(ans::testing::rows_outside_are_zero(dE.data(), 10, d, {1, 4, 5, 6, 7, 8, 2}));
    CHECK(dE.row(0).isZero(0));
    CHECK(dE.row(3).isZero(0));
  }
}

TEST_CASE("l2 regulariser: strided rows (hop 0 of wider rows), many chunks, cached norms", "[components][loss]") {
  std::mt19937_64 rng(9);
  const index_t n = 5000, d = 3, ld = 7, B = 40;  // 5 chunks of 1024 rows: the parallel path
  mat wide = randn(n, ld, rng);
  mat narrow = wide.leftCols(d);  // the same rows, dense
  for (bool pw : {false, true}) {
    mat g_wide = mat::Zero(n, ld), g_narrow = mat::Zero(n, d);
    const ans::loss::emb_block<double> bw{wide.data(), d, n, nullptr, g_wide.data(), ld};
    const ans::loss::emb_block<double> bn{narrow.data(), d, n, nullptr, g_narrow.data()};
    double norms[1] = {0};
    const double fw = ans::loss::emb_loss_forward<double>(&bw, 1, B, pw, norms);
    const double fn = ans::loss::emb_loss_forward<double>(&bn, 1, B, pw);
    double ss = 0;
    for (index_t i = 0; i < n; ++i) ss += narrow.row(i).squaredNorm();
    CHECK(fw == fn);
    CHECK(norms[0] == Approx(std::sqrt(ss)).epsilon(1e-13));
    CHECK(fw == Approx((pw ? ss / 2 : std::sqrt(ss)) / B).epsilon(1e-13));
    ans::loss::emb_loss_backward<double>(&bw, 1, B, pw, 2.0, norms);  // cached norm
    ans::loss::emb_loss_backward<double>(&bn, 1, B, pw, 2.0);         // recomputed
    CHECK((g_wide.leftCols(d) - g_narrow).cwiseAbs().maxCoeff() == 0.0);
    CHECK(g_wide.rightCols(ld - d).isZero(0));  // columns past d untouched
    const double c = pw ? 2.0 / B : 2.0 / (B * std::sqrt(ss));
    CHECK((g_narrow - c * narrow).cwiseAbs().maxCoeff() < 1e-15);
  }
}

TEST_CASE("check_gradient catches wrong gradients", "[components][testing]") {
  vec x(3);
  x << 0.3, -1.2, 2.0;
  auto f = [&] { return std::sin(x[0]) * x[1] + x[2] * x[2] * x[1]; };
  vec g(3);
  g << std::cos(x[0]) * x[1], std::sin(x[0]) + x[2] * x[2], 2 * x[2] * x[1];
  auto rep = check_gradient(f, {blk("x", x, g)});
  CHECK(rep.global_rel_error < 1e-8);
  CHECK(x[0] == 0.3);  // restored exactly
  vec bad = g;
  bad[2] *= 0.5;
  rep = check_gradient(f, {blk("x", x, bad)});
  CHECK(rep.global_rel_error > 0.1);
  CHECK(rep.worst_index == 2);
  CHECK(rep.worst_block == "x");
  vec zero = vec::Zero(3);
  CHECK(check_gradient(f, {blk("x", x, zero)}).global_rel_error == Approx(1.0));
}
