// ans/interop/xtensor.hpp: the reference's N-d batch tensors as xtensor arrays, passed to the kernels without a
// copy (built when xtensor is installed; a visible skip otherwise).
#include <catch2/catch.hpp>

#if __has_include(<xtensor/xtensor.hpp>)
#include <xtensor/xtensor.hpp>

#include "ans/interop/xtensor.hpp"
#include "helpers.hpp"

using namespace ans_test;

TEST_CASE("xtensor interop: [B,H,d] and [B,K,H,d] arrays drive ans_loss like the row blocks", "[components][xtensor]") {
  std::mt19937_64 rng(11);
  const ans::batch_shape s{2, 3, 2, 4};
  const mat Um = randn(s.pair_rows(), s.d, rng), Pm = randn(s.pair_rows(), s.d, rng);
  const mat Nm = randn(s.cand_rows(), s.d, rng);
  xt::xtensor<double, 3> U = xt::zeros<double>({2, 2, 4}), P = U;
  xt::xtensor<double, 4> N = xt::zeros<double>({2, 3, 2, 4});
  for (index_t b = 0; b < s.B; ++b)
    for (index_t h = 0; h < s.H; ++h)
      for (index_t j = 0; j < s.d; ++j) {
        U(b, h, j) = Um(s.urow(b, h), j), P(b, h, j) = Pm(s.urow(b, h), j);
        for (index_t k = 0; k < s.K; ++k) N(b, k, h, j) = Nm(s.nrow(b, k, h), j);
      }
  const ans::batch_shape got = ans::interop::batch_shape_of(U, N);
  CHECK(got == s);
  xt::xtensor<double, 4> bad = xt::zeros<double>({2, 3, 2, 5});
  CHECK_THROWS_WITH(ans::interop::batch_shape_of(U, bad), Catch::Contains("B, H and d must agree"));

  const auto params = ans::model::ans_params<double>::init(s.d, ans::mode::fixed, 2);
  const ans::augment::counter_uniform_source src{3, 0};
  ans::model::ans_loss<double> a(ans::ans_options::make(ans::mode::fixed)), b(a.options());
  const double la = a.forward(s, Um, Pm, Nm, params, src).total;
  const double lb =
      b.forward(got, ans::interop::rows_of(U), ans::interop::rows_of(P), ans::interop::rows_of(N), params, src).total;
  CHECK(la == lb);
  mat dU = mat::Zero(s.pair_rows(), s.d), dP = dU, dN = mat::Zero(s.cand_rows(), s.d);
  auto g = ans::model::ans_params<double>::zeros(s.d);
  b.backward(dU, dP, dN, g);
  auto dN4 = ans::interop::as_tensor<4>(dN, {2, 3, 2, 4});
  CHECK(dN4(1, 2, 1, 3) == dN(s.nrow(1, 2, 1), 3));
  CHECK(dN4(0, 1, 0, 0) == dN(s.nrow(0, 1, 0), 0));
  CHECK_THROWS_WITH((ans::interop::as_tensor<2>(dN, {5, 5})), Catch::Contains("the shape asks for 25"));
}
#else
TEST_CASE("xtensor interop: skipped, xtensor is not installed", "[components][xtensor]") {
  WARN("xtensor headers not found: ans/interop/xtensor.hpp is untested in this build");
}
#endif
