// The traps of issue 14: APIs that keep an argument's address reject temporaries at compile time, and every
// forward/backward checks its shapes in every build (these tests also run in the Release suite, NDEBUG).
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <utility>

#include "ans/train/trainer.hpp"
#include "helpers.hpp"

using namespace ans_test;
using ans::batch_shape;
using ans::const_rows;

namespace {

using src_t = ans::augment::counter_uniform_source;
using params_t = ans::model::ans_params<double>;

// Detection of a call that compiles (a deleted overload or a deleted conversion makes it ill-formed).
template <class P, class U, class = void>
struct can_forward_loss : std::false_type {};
template <class P, class U>
struct can_forward_loss<P, U,
                        std::void_t<decltype(std::declval<ans::model::ans_loss<double>&>().forward(
                            std::declval<const batch_shape&>(), std::declval<U>(), std::declval<U>(),
                            std::declval<U>(), std::declval<P>(), std::declval<const src_t&>()))>>
    : std::true_type {};

template <class Adj, class E0, class P, class = void>
struct can_forward_objective : std::false_type {};
template <class Adj, class E0, class P>
struct can_forward_objective<Adj, E0, P,
                             std::void_t<decltype(std::declval<ans::model::ans_objective<double>&>().forward(
                                 std::declval<Adj>(), std::declval<E0>(), std::declval<const ans::model::batch_ids&>(),
                                 std::declval<P>(), std::declval<const src_t&>()))>> : std::true_type {};

template <class Adj, class E0, class = void>
struct can_forward_bpr : std::false_type {};
template <class Adj, class E0>
struct can_forward_bpr<Adj, E0,
                       std::void_t<decltype(std::declval<ans::model::bpr_objective<double>&>().forward(
                           std::declval<Adj>(), std::declval<E0>(), std::declval<const ans::model::batch_ids&>()))>>
    : std::true_type {};

using adj_t = ans::graph::normalized_adjacency<double>;

// The compile-time half: each of these is a static_assert, so a regression breaks the build of the tests.
static_assert(std::is_constructible_v<const_rows<double>, const mat&>, "an lvalue matrix binds");
static_assert(!std::is_constructible_v<const_rows<double>, mat&&>, "a temporary matrix must not bind");
static_assert(std::is_constructible_v<const_rows<double>, ans::const_matrix_map<double>>, "a Map binds");
static_assert(std::is_constructible_v<const_rows<double>, decltype(std::declval<const mat&>().topRows(2))>,
              "a row block binds");
static_assert(!std::is_constructible_v<const_rows<double>, decltype(std::declval<const mat&>().transpose())>,
              "a transposed expression would be evaluated into a temporary");
static_assert(can_forward_loss<const params_t&, const mat&>::value, "ans_loss::forward on lvalues");
static_assert(!can_forward_loss<params_t&&, const mat&>::value, "temporary ans_params rejected");
static_assert(!can_forward_loss<const params_t&, mat&&>::value, "temporary U, P, N rejected");
static_assert(can_forward_objective<const adj_t&, const mat&, const params_t&>::value, "ans_objective on lvalues");
static_assert(!can_forward_objective<adj_t&&, const mat&, const params_t&>::value, "temporary graph rejected");
static_assert(!can_forward_objective<const adj_t&, mat&&, const params_t&>::value, "temporary E0 rejected");
static_assert(!can_forward_objective<const adj_t&, const mat&, params_t&&>::value, "temporary params rejected");
static_assert(can_forward_bpr<const adj_t&, const mat&>::value, "bpr_objective on lvalues");
static_assert(!can_forward_bpr<const adj_t&, mat&&>::value && !can_forward_bpr<adj_t&&, const mat&>::value,
              "bpr_objective rejects temporaries");
static_assert(std::is_constructible_v<ans::train::trainer<float>, const ans::data::dataset&,
                                      const ans::train::trainer_config&>);
static_assert(!std::is_constructible_v<ans::train::trainer<float>, ans::data::dataset&&,
                                       const ans::train::trainer_config&>,
              "a trainer over a temporary dataset would read freed memory");
static_assert(!std::is_constructible_v<ans::sampling::uniform_sampler, ans::data::interactions&&>);
static_assert(!std::is_constructible_v<ans::sampling::popularity_sampler, ans::data::interactions&&, double>);
static_assert(std::is_constructible_v<ans::sampling::uniform_sampler, const ans::data::interactions&>);

// Runs f and returns the ans::error message ("" when nothing was thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ans::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safety: ans_loss on a Map and a row block equals the matrix call, a column block is refused",
          "[components][safety]") {
  std::mt19937_64 rng(3);
  const batch_shape s{3, 2, 1, 4};
  const mat U = randn(s.pair_rows(), s.d, rng), P = randn(s.pair_rows(), s.d, rng);
  const mat N = randn(s.cand_rows(), s.d, rng);
  const mat big = randn(s.cand_rows() + 2, s.d, rng);  // N as rows 1.. of a larger table
  mat Nb = big.middleRows(1, s.cand_rows());
  const params_t params = params_t::init(s.d, ans::mode::fixed, 5);
  const src_t src{7, 0};
  ans::model::ans_loss<double> a(ans::ans_options::make(ans::mode::fixed)), b(a.options());
  const double la = a.forward(s, U, P, Nb, params, src).total;
  const double lb = b.forward(s, ans::const_matrix_map<double>(U.data(), U.rows(), U.cols()), P,
                              big.middleRows(1, s.cand_rows()), params, src)
                        .total;
  CHECK(la == lb);
  mat dUa = mat::Zero(U.rows(), s.d), dPa = dUa, dNa = mat::Zero(N.rows(), s.d);
  mat dUb = dUa, dPb = dPa, dNb = dNa;
  params_t ga = params_t::zeros(s.d), gb = params_t::zeros(s.d);
  a.backward(dUa, dPa, dNa, ga);
  b.backward(dUb, dPb, dNb, gb);
  CHECK(dNa == dNb);
  CHECK(dUa == dUb);

  // a column block has the right shape but rows that are not contiguous
  const mat wide = randn(s.cand_rows(), 2 * s.d, rng);
  const std::string msg = error_of([&] { b.forward(s, U, P, wide.leftCols(s.d), params, src); });
  CHECK(msg.find("ans_loss::forward: N") != std::string::npos);
  CHECK(msg.find("contiguous") != std::string::npos);
  // a wrong shape names the argument and both shapes
  const std::string m2 = error_of([&] { b.forward(s, U, P, big, params, src); });
  CHECK(m2.find("ans_loss::forward: N has shape 8x4, expected 6x4") != std::string::npos);
  // an undersized gradient buffer throws before any write
  mat small = mat::Zero(s.cand_rows() - 1, s.d);
  const std::string m3 = error_of([&] { a.backward(dUa, dPa, small, ga); });
  CHECK(m3.find("ans_loss::backward: dN has shape 5x4, expected 6x4") != std::string::npos);
}

TEST_CASE("safety: every component backward checks that it follows a forward and every buffer's shape",
          "[components][safety]") {
  std::mt19937_64 rng(4);
  const batch_shape s{2, 3, 2, 4};
  const mat U = randn(s.pair_rows(), s.d, rng), P = randn(s.pair_rows(), s.d, rng);
  const mat N = randn(s.cand_rows(), s.d, rng), g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
  mat dU = mat::Zero(s.pair_rows(), s.d), dN = mat::Zero(s.cand_rows(), s.d), dg = dN;
  mat short_rows = mat::Zero(s.cand_rows() - 1, s.d), narrow = mat::Zero(s.cand_rows(), s.d - 1);
  auto has = [](const std::string& m, const char* what) {
    INFO(m);
    CHECK(m.find(what) != std::string::npos);
  };

  ans::loss::sns_loss<double> sns;
  has(error_of([&] { sns.backward(U, N, g, 1.0, dU, dN, dg); }), "sns::backward called before forward");
  has(error_of([&] { sns.forward(s, U, N, short_rows, true); }), "sns::forward: g has shape 11x4, expected 12x4");
  sns.forward(s, U, N, g, true);
  has(error_of([&] { sns.backward(U, N, g, 1.0, dU, short_rows, dg); }), "sns::backward: dN has shape 11x4, expected 12x4");
  has(error_of([&] { sns.backward(U, N, g, 1.0, dU, dN, narrow); }), "sns::backward: dg has shape 12x3, expected 12x4");

  ans::loss::distance_loss<double> dist;
  has(error_of([&] { dist.backward(P, N, g, 1.0, dU, dN, dg); }), "distance::backward called before forward");
  dist.forward(s, P, N, g, 1e-6, true);
  has(error_of([&] { dist.backward(P, N, g, 1.0, dU, short_rows, dg); }), "distance::backward: dN has shape");
  has(error_of([&] { dist.backward(P, N, g, 1.0, dN, dN, dg); }), "distance::backward: dP has shape 12x4, expected 4x4");

  ans::loss::orth_loss<double> orth;
  has(error_of([&] { orth.backward(P, N, g, 1.0, dU, dN, dg); }), "orth::backward called before forward");
  orth.forward(s, P, N, g, true, true, 1e-6);
  has(error_of([&] { orth.backward(P, N, g, 1.0, dU, dN, short_rows); }), "orth::backward: dg has shape");

  ans::augment::margin_model<double> margin;
  const vec w_m = randv(s.d, rng);
  vec dm = vec::Zero(s.cand_rows()), dw = vec::Zero(s.d), dm_short = vec::Zero(s.cand_rows() - 1);
  double dc = 0;
  has(error_of([&] { margin.backward(P, N, g, w_m, dm, dU, dN, dg, dw, dc); }), "margin::backward called before forward");
  has(error_of([&] { margin.forward(s, P, N, g, dw.head(3), 0.1, ans::margin_form::sigmoid_neg, 0.1); }),
      "margin::forward: w_m has 3 entries, expected 4");
  margin.forward(s, P, N, g, w_m, 0.1, ans::margin_form::sigmoid_neg, 0.1);
  has(error_of([&] { margin.backward(P, N, g, w_m, dm_short, dU, dN, dg, dw, dc); }),
      "margin::backward: dm has 11 entries, expected 12");
  has(error_of([&] { margin.backward(P, N, g, w_m, dm, dU, short_rows, dg, dw, dc); }), "margin::backward: dN has shape");

  ans::augment::noise_model<double> noise;
  const ans::ans_options o = ans::ans_options::make(ans::mode::faithful);
  has(error_of([&] { noise.backward(dN, g, dm, dN, dg, dm); }), "noise::backward called before forward");
  noise.forward(s, P, N, g, src_t{1, 0}, o);
  has(error_of([&] { noise.backward(dN, g, dm, short_rows, dg, dm); }), "noise::backward: dN has shape");
  has(error_of([&] { noise.backward(dN, g, dm_short, dN, dg, dm); }), "noise::backward: m has 11 entries");
  has(error_of([&] { noise.augment(N, g, dm, short_rows); }), "noise::augment: out has shape");
}

TEST_CASE("safety: noise's batch forward equals its row form", "[components][safety][augment]") {
  std::mt19937_64 rng(5);
  const batch_shape s{2, 3, 2, 5};
  const mat P = randn(s.pair_rows(), s.d, rng), N = randn(s.cand_rows(), s.d, rng);
  const mat g = randu(s.cand_rows(), s.d, rng, 0.1, 0.9);
  const vec m = randu(s.cand_rows(), 1, rng, 0.0, 1.0);
  for (bool easy : {false, true}) {
    ans::ans_options o = ans::ans_options::make(ans::mode::fixed);
    o.augment_easy_only = easy;
    ans::augment::noise_model<double> noise;
    noise.forward(s, P, N, g, src_t{2, 1}, o);
    mat out(s.cand_rows(), s.d), row(1, s.d);
    noise.augment(N, g, m, out);
    for (index_t r = 0; r < s.cand_rows(); ++r) {
      noise.augmented_row(r, N.row(r).data(), g.row(r).data(), m[r], row.data());
      CHECK(out.row(r) == row.row(0));
    }
    CHECK(out != N);  // the noise moved the rows
  }
}
