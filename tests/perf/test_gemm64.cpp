// The d = 64 gate kernels (ans/disentangle/gemm64.hpp) against Eigen's products, float and double, with row
// counts that exercise the remainder paths. The golden cases have d = 8 (Eigen path); these kernels are the
// only d = 64-specific code of ans_loss, which uses them for the gate GEMMs forward and backward.
#include <catch2/catch.hpp>

#include <Eigen/Core>

#include "ans/disentangle/gemm64.hpp"
#include "ans/types.hpp"

namespace {
template <class S>
void check_kernels(double tol) {
  namespace g64 = ans::disentangle::gemm64;
  REQUIRE(g64::available<S>());
  for (ans::index_t m : {1, 2, 3, 5, 17, 256}) {
    const ans::matrix<S> A = ans::matrix<S>::Random(m, 64), X = ans::matrix<S>::Random(m, 64);
    const ans::matrix<S> W = ans::matrix<S>::Random(64, 64);
    const ans::vector<S> bias = ans::vector<S>::Random(64);
    ans::matrix<S> C(m, 64);
    g64::rows64<false>(A.data(), 64, m, W.data(), 64, C.data(), 64, bias.data());
    ans::matrix<S> ref = A * W;
    ref.rowwise() += bias.transpose();
    CHECK((C - ref).cwiseAbs().maxCoeff() <= tol);
    g64::rows64<false>(A.data(), 64, m, W.data(), 64, C.data(), 64);
    CHECK((C - A * W).cwiseAbs().maxCoeff() <= tol);
    ans::matrix<S> C2 = X;
    g64::rows64<true>(A.data(), 64, m, W.data(), 64, C2.data(), 64);
    CHECK((C2 - (X + A * W)).cwiseAbs().maxCoeff() <= tol);
    ans::matrix<S> G = W;
    g64::atx64(A.data(), 64, X.data(), 64, m, G.data(), 64);
    CHECK((G - (W + A.transpose() * X)).cwiseAbs().maxCoeff() <= tol * (1 + m / 16.0));
  }
}
}  // namespace

TEST_CASE("gemm64 kernels match Eigen (float, double)", "[perf][gemm64]") {
  check_kernels<double>(1e-12);
  check_kernels<float>(2e-4);
}

#include "../components/helpers.hpp"

// The composite loss at d = 64 (the gemm64 path, forward and backward) against central finite differences,
// double, with the regulariser on: the same check as tests/components/test_ans_loss.cpp at d <= 5.
TEST_CASE("composite at d = 64 (gemm64 path): FD gradient", "[perf][gemm64][ans_loss]") {
  using namespace ans_test;
  using params = ans::model::ans_params<double>;
  for (auto s : {ans::batch_shape{3, 2, 1, 64}, ans::batch_shape{2, 2, 2, 64}}) {
    std::mt19937_64 rng(7 + s.H);
    mat U = randn(s.pair_rows(), s.d, rng), P = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng);
    separate(s, P, N);
    const mat r = randu(s.cand_rows(), s.d, rng, 0.05, 1.0);
    params prm = params::zeros(s.d);
    prm.W_u = randn(s.d, s.d, rng, 0.15), prm.W_i = randn(s.d, s.d, rng, 0.15);
    prm.b_u = randv(s.d, rng), prm.b_i = randv(s.d, rng), prm.w_m = randv(s.d, rng, 0.05);
    prm.c_m = 0.5;
    mat U0 = randn(s.B, s.d, rng), P0 = randn(s.B, s.d, rng), N0 = randn(s.B * s.K, s.d, rng);
    auto o = ans::ans_options::make(ans::mode::faithful);
    o.gamma = 0.7, o.eps = 0.3, o.reg_weight = 0.05;
    ans::model::ans_loss<double> loss(o);
    ans::augment::array_uniform_source<double> src{r.data(), s};
    const ans::model::ego_rows<double> ego{U0.data(), P0.data(), N0.data()};
    loss.forward(s, U, P, N, prm, src, nullptr, ego);
    const std::vector<index_t> ks = loss.k_star();
    mat dU = mat::Zero(U.rows(), s.d), dP = mat::Zero(P.rows(), s.d), dN = mat::Zero(N.rows(), s.d);
    mat dU0 = mat::Zero(s.B, s.d), dP0 = mat::Zero(s.B, s.d), dN0 = mat::Zero(s.B * s.K, s.d);
    params g = params::zeros(s.d);
    loss.backward(dU, dP, dN, g, {dU0.data(), dP0.data(), dN0.data()});
    auto f = [&] { return loss.forward(s, U, P, N, prm, src, ks.data(), ego).total; };
    std::vector<ans::testing::param_block> blocks = {
        blk("U", U, dU),           blk("P", P, dP),           blk("N", N, dN),         blk("W_u", prm.W_u, g.W_u),
        blk("b_u", prm.b_u, g.b_u), blk("W_i", prm.W_i, g.W_i), blk("b_i", prm.b_i, g.b_i),
        blk("w_m", prm.w_m, g.w_m), blk("U0", U0, dU0),        blk("N0", N0, dN0)};
    // abs_tol 1e-5: central differences (h = 1e-6) carry ~5e-10 of round-off, 1e-3 of a 3e-7 coordinate
    // (seen in the ASan build: N0[57]); larger coordinates keep the relative bound, the global bound is unchanged
    const auto rep = ans::testing::check_gradient(f, blocks, 1e-6, 1e-5);
    INFO("H=" << s.H << "\n" << rep.summary());
    CHECK(rep.global_rel_error < 1e-6);
    CHECK(rep.worst_coord_error < 1e-3);
  }
}
