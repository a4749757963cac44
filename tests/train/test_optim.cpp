#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ans/optim/adam.hpp"
#include "ans/optim/sgd.hpp"
#include "ans/optim/sparse_adam.hpp"

using namespace ans;
using namespace ans::optim;

// Reference trajectory by the textbook formula (Kingma & Ba, with PyTorch's eps placement and L2 decay):
//   g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
static void reference_adam(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v, int t,
                           const std::vector<double>& grad, double lr, double b1, double b2, double eps, double wd) {
  for (size_t j = 0; j < p.size(); ++j) {
    double g = grad[j] + wd * p[j];
    m[j] = b1 * m[j] + (1 - b1) * g;
    v[j] = b2 * v[j] + (1 - b2) * g * g;
    const double mhat = m[j] / (1 - std::pow(b1, t)), vhat = v[j] / (1 - std::pow(b2, t));
    p[j] -= lr * mhat / (std::sqrt(vhat) + eps);
  }
}

TEST_CASE("adam: first step by hand", "[train]") {
  // f = p^2 at p = 1: g = 2, m = 0.2, v = 0.004, m̂ = 2, v̂ = 4 -> p = 1 - 0.1 * 2 / (2 + 1e-8).
  std::vector<double> p{1.0};
  adam<double> opt(1, {0.1});
  std::vector<double> g{2.0};
  opt.step(p.data(), g.data());
  CHECK(p[0] == Approx(1.0 - 0.1 * 2.0 / (2.0 + 1e-8)).epsilon(1e-14));
  CHECK(opt.step_count() == 1);
  CHECK(opt.exp_avg()[0] == Approx(0.2));
  CHECK(opt.exp_avg_sq()[0] == Approx(0.004));
}

TEST_CASE("adam: three steps match the PyTorch formula (eps after the corrected sqrt, L2 decay)", "[train]") {
  for (double wd : {0.0, 0.05}) {
    // A large eps makes its placement visible: eps outside the bias correction of v.
    const double lr = 0.01, b1 = 0.8, b2 = 0.9, eps = 0.05;
    std::vector<double> p{0.5, -1.5, 2.0, 1e-3}, rp = p, rm(4, 0.0), rv(4, 0.0);
    adam<double> opt(4, {lr, b1, b2, eps, wd});
    for (int t = 1; t <= 3; ++t) {
      // gradient of f(p) = Σ p_j^3 / 3 + p_j: g = p^2 + 1 (uses the current parameters)
      std::vector<double> g(4), rg(4);
      for (int j = 0; j < 4; ++j) {
        g[j] = p[j] * p[j] + 1;
        rg[j] = rp[j] * rp[j] + 1;
      }
      opt.step(p.data(), g.data());
      reference_adam(rp, rm, rv, t, rg, lr, b1, b2, eps, wd);
      for (int j = 0; j < 4; ++j) REQUIRE(p[j] == Approx(rp[j]).epsilon(1e-13));
    }
    // Wrong eps placement (inside the correction) would differ at this eps: guard that the test can tell.
    CHECK(std::abs(rp[0] - 0.5) > 1e-3);
  }
}

TEST_CASE("adam: float and Eigen overload, state view", "[train]") {
  matrix<float> P(2, 3), G(2, 3);
  P.setConstant(1.0f);
  G.setConstant(0.5f);
  adam<float> opt(6);
  opt.step(P, G);
  CHECK(P(1, 2) == Approx(1.0f - 1e-3f).epsilon(1e-5));
  auto st = opt.state();
  REQUIRE(st.arrays.size() == 2);
  CHECK(st.arrays[0].name == "exp_avg");
  CHECK(st.arrays[0].size == 6u);
  CHECK(st.counters[0].name == "step");
  CHECK(st.counters[0].data[0] == 1);
  // Load: copy the state into a fresh optimiser and continue identically.
  adam<float> other(6);
  auto so = other.state();
  for (size_t a = 0; a < st.arrays.size(); ++a)
    std::memcpy(so.arrays[a].data, st.arrays[a].data, st.arrays[a].size * sizeof(float));
  so.counters[0].data[0] = st.counters[0].data[0];
  matrix<float> Q = P;
  opt.step(P, G);
  other.step(Q, G);
  CHECK(P == Q);
  CHECK_THROWS_AS(opt.step(P, matrix<float>(1, 1)), ans::error);
}

TEST_CASE("sparse adam touches only the given rows, per-row bias correction", "[train]") {
  const index_t n = 5, d = 3;
  matrix<double> T(n, d);
  for (index_t i = 0; i < n * d; ++i) T.data()[i] = 0.1 * static_cast<double>(i) - 0.7;
  const matrix<double> T0 = T;
  sparse_adam<double> opt(n, d, {0.1});
  matrix<double> G(2, d);
  G << 1, -2, 3, 0.5, 0.5, -0.5;
  opt.step(T, {3, 1}, G);
  for (index_t r : {0, 2, 4})
    for (index_t j = 0; j < d; ++j) REQUIRE(std::memcmp(&T(r, j), &T0(r, j), sizeof(double)) == 0);
  // First update of a row is a full first Adam step: Δ = -lr * g/(|g| + eps).
  CHECK(T(3, 0) == Approx(T0(3, 0) - 0.1 * 1 / (1 + 1e-8)));
  CHECK(T(1, 2) == Approx(T0(1, 2) + 0.1 * 0.5 / (0.5 + 1e-8)));
  // Second step on row 3 and the first on row 0: row 0 still gets a first step (per-row count 1).
  matrix<double> G2(2, d);
  G2 << 1, 1, 1, 2, 2, 2;
  const matrix<double> T1 = T;
  opt.step(T, {0, 3}, G2);
  CHECK(opt.row_step_count(0) == 1);
  CHECK(opt.row_step_count(3) == 2);
  CHECK(opt.row_step_count(1) == 1);
  CHECK(T(0, 0) == Approx(T1(0, 0) - 0.1 * 1 / (1 + 1e-8)).epsilon(1e-14));
  // Row 3 equals a dense adam run on the same two gradients.
  std::vector<double> p{T0(3, 0), T0(3, 1), T0(3, 2)};
  adam<double> dense(3, {0.1});
  std::vector<double> g1{1, -2, 3}, g2{2, 2, 2};
  dense.step(p.data(), g1.data());
  dense.step(p.data(), g2.data());
  for (index_t j = 0; j < d; ++j) CHECK(T(3, j) == Approx(p[j]).epsilon(1e-14));
  for (index_t j = 0; j < d; ++j) REQUIRE(std::memcmp(&T(1, j), &T1(1, j), sizeof(double)) == 0);
  // Duplicate rows are rejected.
  CHECK_THROWS_WITH(opt.step(T, {2, 2}, G), Catch::Contains("row 2 appears twice"));
  // global counting = torch.optim.SparseAdam: row 0's first update uses t = 2 here.
  sparse_adam<double> glob(n, d, {0.1}, sparse_step_count::global);
  matrix<double> U = T0;
  glob.step(U, {3, 1}, G);
  const double before = U(0, 0);
  glob.step(U, {0, 3}, G2);
  const double b1 = 0.9, b2 = 0.999;
  const double m = 0.1 * 1, v = 0.001 * 1;  // row 0's gradient is (1, 1, 1)
  const double expect = before - (0.1 / (1 - b1 * b1)) * m / (std::sqrt(v) / std::sqrt(1 - b2 * b2) + 1e-8);
  CHECK(U(0, 0) == Approx(expect).epsilon(1e-14));
}

TEST_CASE("fused steps: sparse step_table and adam step_and_clear equal step + clear, bit for bit", "[train]") {
  const index_t n = 6, d = 5;
  matrix<float> T(n, d), G(n, d);
  for (index_t i = 0; i < n * d; ++i) T.data()[i] = 0.05f * float(i) - 0.6f;
  sparse_adam<float> a(n, d, {0.01, 0.9, 0.999, 1e-8, 1e-3}), b(n, d, {0.01, 0.9, 0.999, 1e-8, 1e-3});
  matrix<float> Ta = T, Tb = T;
  const std::vector<std::vector<index_t>> steps{{4, 1}, {0, 4, 5}, {1}, {2, 3, 4}};
  for (size_t s = 0; s < 60; ++s) {  // enough steps for rows to reach different per-row counts
    const auto& rows = steps[s % steps.size()];
    for (index_t i = 0; i < n * d; ++i) G.data()[i] = std::sin(float(i + 7 * s));
    matrix<float> Gt = G, Gr(static_cast<index_t>(rows.size()), d);
    for (size_t i = 0; i < rows.size(); ++i) Gr.row(static_cast<index_t>(i)) = G.row(rows[i]);
    a.step(Ta, rows, Gr);
    b.step_table(Tb.data(), rows.data(), Gt.data(), static_cast<index_t>(rows.size()));
    REQUIRE(std::memcmp(Ta.data(), Tb.data(), sizeof(float) * size_t(n * d)) == 0);
    for (index_t r = 0; r < n; ++r) {
      const bool listed = std::find(rows.begin(), rows.end(), r) != rows.end();
      for (index_t j = 0; j < d; ++j) REQUIRE(Gt(r, j) == (listed ? 0.0f : G(r, j)));  // listed rows cleared only
    }
  }
  // beyond the cached bias corrections (both round to 1.0 after ~37k steps for beta2 = 0.999) the step still
  // equals the pow-based dense update
  sparse_adam<double> late(1, 1, {0.1}, sparse_step_count::global);
  adam<double> dense(1, {0.1});
  double pl = 0.3, pd = 0.3, g = 0.25, gl = 0.25;
  const index_t row0 = 0;
  for (int s = 0; s < 40000; ++s) {
    late.step_table(&pl, &row0, &gl, 1);
    gl = 0.25;
    dense.step(&pd, &g);
  }
  CHECK(std::memcmp(&pl, &pd, sizeof(double)) == 0);
  // dense: step_and_clear == step, then zero
  std::vector<float> p1(40000), p2, g1(40000), g2;
  for (size_t i = 0; i < p1.size(); ++i) p1[i] = std::cos(float(i)), g1[i] = std::sin(float(3 * i));
  p2 = p1, g2 = g1;
  adam<float> o1(40000, {0.01}), o2(40000, {0.01});
  o1.step(p1.data(), g1.data());
  o2.step_and_clear(p2.data(), g2.data());
  CHECK(std::memcmp(p1.data(), p2.data(), sizeof(float) * p1.size()) == 0);
  CHECK(std::all_of(g2.begin(), g2.end(), [](float x) { return x == 0.0f; }));
}

TEST_CASE("sgd: plain, momentum and nesterov follow torch.optim.SGD", "[train]") {
  std::vector<double> p{1.0, -2.0};
  sgd<double> plain(2, {0.1});
  std::vector<double> g{0.5, 1.0};
  plain.step(p.data(), g.data());
  CHECK(p[0] == Approx(0.95));
  CHECK(p[1] == Approx(-2.1));

  std::vector<double> q{1.0};
  sgd<double> mom(1, {0.1, 0.9});
  std::vector<double> g1{1.0}, g2{2.0};
  mom.step(q.data(), g1.data());  // b = 1 -> q = 0.9
  mom.step(q.data(), g2.data());  // b = 0.9 + 2 = 2.9 -> q = 0.9 - 0.29
  CHECK(q[0] == Approx(0.61));

  std::vector<double> r{1.0};
  sgd_options no;
  no.lr = 0.1;
  no.momentum = 0.9;
  no.nesterov = true;
  sgd<double> nest(1, no);
  nest.step(r.data(), g1.data());  // b = 1, g = 1 + 0.9 = 1.9 -> 0.81
  CHECK(r[0] == Approx(0.81));

  // Row-sparse: only listed rows move.
  std::vector<double> tab{1, 1, 2, 2, 3, 3};
  sgd<double> rows(6, {0.5}, 2);
  index_t which[1] = {1};
  double gr[2] = {1, 2};
  rows.step_rows(tab.data(), which, gr, 1);
  CHECK(tab == std::vector<double>{1, 1, 1.5, 1, 3, 3});
}
