#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "ans/graph/adjacency.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/propagation/readout.hpp"
#include "ans/testing/check_gradient.hpp"

namespace {

ans::data::interactions small_graph() {
  // 3 users, 4 items; item 3 has no interactions (degree-0 node); user 2 has a duplicate pair.
  return ans::data::from_pairs(3, 4, {{0, 0}, {0, 1}, {1, 1}, {1, 2}, {2, 0}, {2, 2}, {2, 2}});
}

ans::matrix<double> random_matrix(ans::index_t r, ans::index_t c, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, 0.5);
  ans::matrix<double> m(r, c);
  for (ans::index_t i = 0; i < m.size(); ++i) m.data()[i] = nd(g);
  return m;
}

}  // namespace

TEST_CASE("adjacency: D^-1/2 A D^-1/2 matches the dense definition", "[graph]") {
  auto train = small_graph();
  auto adj = ans::graph::build_normalized_adjacency<double>(train);
  const ans::index_t n = adj.n_nodes();
  REQUIRE(n == 7);
  REQUIRE(adj.nnz() == 2 * train.nnz());
  // Dense reference (fine at this size only).
  ans::matrix<double> a = ans::matrix<double>::Zero(n, n);
  for (ans::index_t u = 0; u < 3; ++u)
    for (auto it = train.row_begin(u); it != train.row_end(u); ++it) a(u, 3 + *it) = a(3 + *it, u) = 1.0;
  Eigen::VectorXd deg = a.rowwise().sum();
  for (ans::index_t r = 0; r < n; ++r) {
    for (ans::index_t j = adj.indptr[r]; j < adj.indptr[r + 1]; ++j) {
      const auto c = adj.indices[j];
      if (j > adj.indptr[r]) CHECK(adj.indices[j - 1] < c);  // sorted rows
      CHECK(adj.values[j] == Approx(1.0 / std::sqrt((deg(r) + 1e-7) * (deg(c) + 1e-7))).epsilon(1e-14));
      CHECK(a(r, c) == 1.0);
    }
    CHECK(adj.indptr[r + 1] - adj.indptr[r] == static_cast<ans::index_t>(deg(r)));
  }
  // The degree-0 item has an empty row and no NaN anywhere.
  CHECK(adj.indptr[7] == adj.indptr[6]);
  for (double v : adj.values) CHECK(std::isfinite(v));
}

TEST_CASE("adjacency: empty graph", "[graph]") {
  auto adj = ans::graph::build_normalized_adjacency<float>(ans::data::from_pairs(2, 2, {}));
  CHECK(adj.nnz() == 0);
  ans::propagation::lightgcn<float> prop(2);
  ans::matrix<float> e0 = ans::matrix<float>::Ones(4, 3), s;
  prop.forward(adj, e0, s);
  CHECK(s.leftCols(3) == e0);
  CHECK(s.rightCols(6).isZero(0));
}

TEST_CASE("adjacency: node counts only serve L = 0 and are refused by propagation", "[graph]") {
  const auto full = ans::graph::build_normalized_adjacency<double>(small_graph());
  const auto counts = ans::graph::node_counts_only<double>(small_graph());
  CHECK(full.has_edges());
  CHECK_FALSE(counts.has_edges());
  CHECK(counts.n_nodes() == full.n_nodes());
  CHECK(counts.nnz() == 0);
  auto e0 = random_matrix(counts.n_nodes(), 3, 4);
  ans::matrix<double> s, g = ans::matrix<double>::Zero(counts.n_nodes(), 3);
  ans::propagation::lightgcn<double> mf(0), two(2);
  mf.forward(counts, e0, s);
  CHECK(s == e0);
  CHECK_THROWS_WITH(two.forward(counts, e0, s), Catch::Contains("without edges"));
  ans::matrix<double> gs = ans::matrix<double>::Zero(counts.n_nodes(), 9);
  CHECK_THROWS_WITH(two.backward(counts, gs, g), Catch::Contains("without edges"));
}

TEST_CASE("propagation: forward is Â^l E0 and L = 0 is the identity", "[graph]") {
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), d = 3;
  ans::matrix<double> dense = ans::matrix<double>::Zero(n, n);
  for (ans::index_t r = 0; r < n; ++r)
    for (ans::index_t j = adj.indptr[r]; j < adj.indptr[r + 1]; ++j) dense(r, adj.indices[j]) = adj.values[j];
  auto e0 = random_matrix(n, d, 1);
  ans::propagation::lightgcn<double> prop(3);
  ans::matrix<double> s;
  prop.forward(adj, e0, s);
  REQUIRE(s.cols() == 4 * d);
  ans::matrix<double> p = e0;
  for (int l = 0; l <= 3; ++l) {
    CHECK((s.middleCols(l * d, d) - p).cwiseAbs().maxCoeff() < 1e-14);
    p = dense * p;
  }
  ans::propagation::lightgcn<double> mf(0);
  mf.forward(adj, e0, s);
  CHECK(s == e0);
}

TEST_CASE("propagation: backward matches central finite differences", "[graph]") {
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), d = 2;
  for (int layers : {0, 1, 3}) {
    ans::propagation::lightgcn<double> prop(layers);
    const ans::index_t h = layers + 1;
    auto e0 = random_matrix(n, d, 2);
    auto w = random_matrix(n, h * d, 3);  // f(E0) = <W, S(E0)>, so ∂f/∂S = W
    auto f = [&](const ans::matrix<double>& e) {
      ans::matrix<double> s;
      prop.forward(adj, e, s);
      return s.cwiseProduct(w).sum();
    };
    ans::matrix<double> g = ans::matrix<double>::Zero(n, d);
    prop.backward(adj, w, g);
    const double step = 1e-6;
    double worst = 0;
    for (ans::index_t i = 0; i < e0.size(); ++i) {
      auto ep = e0, em = e0;
      ep.data()[i] += step;
      em.data()[i] -= step;
      const double fd = (f(ep) - f(em)) / (2 * step);
      worst = std::max(worst, std::abs(fd - g.data()[i]) / std::max(1.0, std::abs(fd)));
    }
    INFO("layers = " << layers);
    CHECK(worst < 1e-8);
    // backward accumulates: a second call doubles the gradient.
    ans::matrix<double> g2 = g;
    prop.backward(adj, w, g2);
    CHECK((g2 - 2 * g).cwiseAbs().maxCoeff() < 1e-14);
  }
}

TEST_CASE("propagation: untouched nodes get exactly zero gradient", "[graph]") {
  // Node 6 (item 3) has no edges: its gradient must stay exactly 0 for any upstream gradient elsewhere.
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  ans::propagation::lightgcn<double> prop(3);
  ans::matrix<double> gs = random_matrix(7, 4 * 2, 4);
  gs.row(6).setZero();
  ans::matrix<double> g = ans::matrix<double>::Zero(7, 2);
  prop.backward(adj, gs, g);
  CHECK(g.row(6).isZero(0));
  CHECK(!g.row(0).isZero(0));
}

TEST_CASE("readout: mean, sum, last and concat match Σ_h α_h Â^h E0 built from the stack", "[graph][readout]") {
  using ans::propagation::readout_kind;
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), d = 3;
  const auto e0 = random_matrix(n, d, 21);
  for (int layers : {0, 1, 3}) {
    ans::matrix<double> stack;
    ans::propagation::lightgcn<double>(layers).forward(adj, e0, stack);
    const ans::index_t h = layers + 1;
    for (auto k : {readout_kind::mean, readout_kind::sum, readout_kind::last, readout_kind::concat}) {
      ans::propagation::readout<double> ro(layers, k);
      ans::matrix<double> out;
      ro.forward(adj, e0, out);
      ans::matrix<double> expect = ans::matrix<double>::Zero(n, d);
      for (ans::index_t l = 0; l < h; ++l) {
        const double a = k == readout_kind::mean ? 1.0 / double(h) : k == readout_kind::sum ? 1.0 : (l == h - 1 ? 1.0 : 0.0);
        expect += a * stack.middleCols(l * d, d);
      }
      if (k == readout_kind::concat) expect = stack;
      INFO("layers = " << layers << ", readout = " << ans::propagation::to_string(k));
      REQUIRE(out.rows() == n);
      REQUIRE(out.cols() == ro.width(d));
      CHECK((out - expect).cwiseAbs().maxCoeff() < 1e-14);
    }
  }
  CHECK(ans::propagation::readout_weights<double>(readout_kind::concat, 3).empty());
  CHECK_THROWS_WITH(ans::propagation::parse_readout("avg"), Catch::Contains("readout.hpp:") && Catch::Contains("mean, sum, last, concat"));
}

TEST_CASE("readout: backward matches finite differences, the isolated node gets exactly zero", "[graph][readout][gradcheck]") {
  using ans::propagation::readout_kind;
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), d = 2;
  for (int layers : {0, 2, 3}) {
    for (auto k : {readout_kind::mean, readout_kind::sum, readout_kind::last, readout_kind::concat}) {
      ans::propagation::readout<double> ro(layers, k);
      ans::matrix<double> e0 = random_matrix(n, d, 31 + layers);
      ans::matrix<double> w = random_matrix(n, ro.width(d), 41 + layers);  // L = <W, ē>
      w.row(6).setZero();  // item 3 has no edges: with no gradient of its own, nothing may reach it
      ans::matrix<double> grad = ans::matrix<double>::Zero(n, d);
      ro.backward(adj, w, grad);
      ans::matrix<double> out;
      auto f = [&] {
        ro.forward(adj, e0, out);
        return (out.array() * w.array()).sum();
      };
      auto rep = ans::testing::check_gradient(f, {{"E0", e0.data(), e0.size(), grad.data()}});
      INFO("layers = " << layers << ", readout = " << ans::propagation::to_string(k) << ": " << rep.summary());
      CHECK(rep.global_rel_error < 1e-8);
      CHECK(grad.row(6).isZero(0));
      CHECK(!grad.row(0).isZero(0));
    }
  }
}

TEST_CASE("readout: shape errors name the component and both shapes", "[graph][readout]") {
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  ans::propagation::readout<double> ro(2, ans::propagation::readout_kind::mean);
  ans::matrix<double> e0 = random_matrix(5, 2, 1), out;
  CHECK_THROWS_WITH(ro.forward(adj, e0, out), Catch::Contains("readout::forward") && Catch::Contains("5 x 2") &&
                                                   Catch::Contains("7 nodes"));
  ans::matrix<double> g = ans::matrix<double>::Zero(7, 2), go = random_matrix(7, 3, 2);
  CHECK_THROWS_WITH(ro.backward(adj, go, g), Catch::Contains("readout::backward") && Catch::Contains("7 x 3") &&
                                                 Catch::Contains("7 x 2"));
}

TEST_CASE("propagation: backward_sparse (per-hop callback, external workspace) equals the dense backward", "[graph]") {
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), d = 3;
  for (int layers : {0, 1, 3}) {
    ans::propagation::lightgcn<double> prop(layers);
    const ans::index_t h = layers + 1;
    auto gs = random_matrix(n, h * d, 5 + layers);
    gs.row(6).setZero();  // the isolated node: no hop may give it gradient
    ans::matrix<double> dense = random_matrix(n, d, 9), sparse = dense, with_ws = dense;
    const ans::matrix<double> before = dense;
    prop.backward(adj, gs, dense);
    std::vector<int> calls;
    auto add_hop = [&](ans::index_t l, double* Y, ans::index_t ldy) {
      calls.push_back(static_cast<int>(l));
      for (ans::index_t r = 0; r < n; ++r)
        for (ans::index_t c = 0; c < d; ++c) Y[r * ldy + c] += gs(r, l * d + c);
    };
    prop.backward_sparse(adj, d, add_hop, sparse);
    std::vector<double> ws(static_cast<size_t>(2 * n * d), 123.0);  // garbage in: the call must not read it
    prop.backward_sparse(adj, d, add_hop, with_ws, ws.data());
    INFO("layers = " << layers);
    CHECK((sparse - dense).cwiseAbs().maxCoeff() < 1e-14);
    CHECK((with_ws - dense).cwiseAbs().maxCoeff() < 1e-14);
    CHECK((sparse - before).row(6).isZero(0));
    // every hop enters exactly once, deepest first
    std::vector<int> expect;
    for (int l = layers; l >= 0; --l) expect.push_back(l);
    expect.insert(expect.end(), expect.begin(), expect.end());
    CHECK(calls == expect);
  }
}

TEST_CASE("propagation: forward_layers (hop-major, E0 not copied) equals the stack's columns", "[graph]") {
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), d = 5;
  for (int layers : {0, 1, 3}) {
    ans::propagation::lightgcn<double> prop(layers);
    const auto e0 = random_matrix(n, d, 12);
    ans::matrix<double> stack;
    prop.forward(adj, e0, stack);
    std::vector<double> hop(static_cast<size_t>(std::max(1, layers) * n * d), -1.0);
    prop.forward_layers(adj, e0, hop.data());
    for (int l = 1; l <= layers; ++l) {
      const ans::matrix<double> got =
          Eigen::Map<const ans::matrix<double>>(hop.data() + (l - 1) * n * d, n, d);
      INFO("layers = " << layers << ", l = " << l);
      CHECK(got == stack.middleCols(l * d, d));  // the same sums in the same order: bit-identical
    }
    if (layers == 0) CHECK(hop[0] == -1.0);  // nothing written
  }
}

// Data-parallel propagation (row_block) simulated in one process: each "process" is its own lightgcn object;
// the rows each computes, put together, must be the whole propagation bit for bit, forward and backward.
TEST_CASE("propagation: row blocks and the bipartite chains give the single process's rows, bit for bit", "[graph][dist]") {
  using rb = ans::propagation::row_block<double>;
  auto adj = ans::graph::build_normalized_adjacency<double>(small_graph());
  const ans::index_t n = adj.n_nodes(), nu = adj.n_users, d = 16;  // d % 16 == 0: the register-blocked kernel
  const auto e0 = random_matrix(n, d, 3);
  for (int layers : {1, 2, 3}) {
    INFO("layers = " << layers);
    ans::propagation::lightgcn<double> whole(layers);
    std::vector<double> ref(static_cast<size_t>(layers * n * d));
    whole.forward_layers(adj, e0, ref.data());
    auto gs = random_matrix(n, (layers + 1) * d, 40 + layers);
    auto add_all = [&](ans::index_t l, double* Y, ans::index_t ldy, ans::index_t lo, ans::index_t hi) {
      for (ans::index_t r = std::max<ans::index_t>(lo, 0); r < std::min(hi, n); ++r)
        for (ans::index_t c = 0; c < d; ++c) Y[r * ldy + c] += gs(r, l * d + c);
    };
    ans::matrix<double> ref_grad = ans::matrix<double>::Zero(n, d);
    whole.backward_sparse(adj, d, [&](ans::index_t l, double* Y, ans::index_t ldy) { add_all(l, Y, ldy, 0, n); }, ref_grad);

    SECTION("bipartite chains: side s holds the rows of side (s + l) mod 2 at level l, and nothing is exchanged") {
      std::vector<double> lay[2];
      ans::matrix<double> grad[2];
      ans::matrix<double> own_e0[2];
      for (int s = 0; s < 2; ++s) {
        ans::propagation::lightgcn<double> p(layers);
        const rb b = rb::bipartite_chain(s, nu, n);
        p.set_row_block(b);
        own_e0[s] = ans::matrix<double>::Constant(n, d, 1e9);  // the other side's E0 must not be read
        const auto [o0, o1] = b.level(0);
        own_e0[s].middleRows(o0, o1 - o0) = e0.middleRows(o0, o1 - o0);
        lay[s].assign(static_cast<size_t>(layers * n * d), -7.0);
        p.forward_layers(adj, own_e0[s], lay[s].data());
        grad[s] = ans::matrix<double>::Zero(n, d);
        p.backward_sparse(adj, d, [&](ans::index_t l, double* Y, ans::index_t ldy) {
          const auto [lo, hi] = b.scatter_rows(l, layers);
          add_all(l, Y, ldy, lo, hi);
        }, grad[s]);
        for (int l = 1; l <= layers; ++l) {
          const auto [r0, r1] = b.level(l);
          for (ans::index_t r = r0; r < r1; ++r)
            for (ans::index_t c = 0; c < d; ++c) {
              const size_t i = static_cast<size_t>(((l - 1) * n + r) * d + c);
              CHECK(lay[s][i] == ref[i]);
            }
        }
        const auto [g0, g1] = b.level(0);
        CHECK(grad[s].middleRows(g0, g1 - g0) == ref_grad.middleRows(g0, g1 - g0));
        CHECK(grad[s].middleRows(g0 == 0 ? g1 : 0, n - (g1 - g0)).isZero(0));  // the other side: untouched
      }
    }
    SECTION("row blocks: each process computes [lo, hi) of every level and the sync fills the rest") {
      const std::vector<ans::index_t> off{0, 4, n};  // a block boundary inside the items
      for (int r : {0, 1}) {
        const ans::index_t lo = off[r], hi = off[r + 1];
        // the sync plays the peer: it fills the rows outside [lo, hi) with the single process's layer
        std::vector<double> lay(static_cast<size_t>(layers * n * d), -7.0);
        int syncs = 0;
        ans::propagation::lightgcn<double> q(layers);
        q.set_row_block(rb::blocks(lo, hi, [&, lo, hi](double* y, ans::index_t w) {
          ++syncs;
          const ans::index_t lvl = (y - lay.data()) / (n * w);  // which layer buffer
          for (ans::index_t row = 0; row < n; ++row)
            if (row < lo || row >= hi)
              for (ans::index_t c = 0; c < w; ++c) y[row * w + c] = ref[static_cast<size_t>((lvl * n + row) * w + c)];
        }));
        q.forward_layers(adj, e0, lay.data());
        CHECK(syncs == layers);
        CHECK(lay == ref);  // this process's rows, computed in a range, have the whole product's bits
        CHECK(rb::blocks(lo, hi, {}).scatter_rows(layers, layers).second > n);  // acc_L: every row
        CHECK(rb::blocks(lo, hi, {}).scatter_rows(0, layers) == std::make_pair(lo, hi));
      }
    }
  }
}
