// Evaluation on Gowalla ($ANS_DATA_DIR/gowalla; a synthetic dataset of similar size when absent), d=64,
// random factors (the cost does not depend on the values).
//
//   BM_full_ranking     : ans::eval::full_ranking over every test user, all items scored, train masked,
//                         Recall/NDCG/Precision/Hit@20. One GEMM per block of `block` users (0 = the default,
//                         sized from a per-thread memory budget), blocks in parallel.
//   BM_sampled_ranking  : ans::eval::sampled_ranking, one row per test user (its first test item against
//                         99 uniform negatives that exclude train and test), HR/NDCG@{5,10,20,50}.
//
// Counters: users/s (full ranking), rows/s (sampled), GFLOP/s of the scoring dot products. Both kernels are
// OpenMP-parallel, so they are timed in real time.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <vector>

#include "ans/ans.hpp"
#include "bench_data.hpp"

namespace {

constexpr ans::index_t kD = 64;

const ans::data::dataset& data() { return bench::gowalla_or_synthetic(); }

ans::matrix<float> random_matrix(ans::index_t rows, ans::index_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  ans::matrix<float> m(rows, cols);
  for (ans::index_t i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

ans::index_t n_test_users(const ans::data::interactions& test) {
  ans::index_t n = 0;
  for (ans::index_t u = 0; u < test.n_users; ++u) n += test.row_size(u) > 0;
  return n;
}

void BM_full_ranking(benchmark::State& st) {
  const auto& ds = data();
  const auto U = random_matrix(ds.train.n_users, kD, 1), I = random_matrix(ds.train.n_items, kD, 2);
  ans::eval::full_ranking_options opt;
  opt.ks = {20};
  if (st.range(0) > 0) opt.block_users = st.range(0);
  const double users = double(n_test_users(ds.test));
  for (auto _ : st) {
    auto m = ans::eval::full_ranking<float>(U, I, ds.train, ds.test, {}, opt);
    benchmark::DoNotOptimize(m);
  }
  st.counters["users/s"] = benchmark::Counter(users, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * users * double(ds.train.n_items) * kD * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = ans::max_threads();
  st.counters["block"] = double(ans::eval::detail::ranking_block_rows(opt, ds.train.n_items));
}

void BM_sampled_ranking(benchmark::State& st) {
  const auto& ds = data();
  const auto U = random_matrix(ds.train.n_users, kD, 1), I = random_matrix(ds.train.n_items, kD, 2);
  ans::eval::sampled_rows rows;
  for (ans::index_t u = 0; u < ds.test.n_users; ++u)
    if (ds.test.row_size(u) > 0) {
      rows.users.push_back(u);
      rows.positives.push_back(*ds.test.row_begin(u));
    }
  ans::eval::draw_sampled_negatives(rows, {&ds.train, &ds.test}, ds.train.n_items, 99, 13);
  for (auto _ : st) {
    auto m = ans::eval::sampled_ranking<float>(U, I, rows);
    benchmark::DoNotOptimize(m);
  }
  const double n = double(rows.size());
  st.counters["rows/s"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * 100 * kD * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = ans::max_threads();
}

}  // namespace

BENCHMARK(BM_full_ranking)->ArgName("block")->Arg(0)->Arg(64)->Arg(128)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sampled_ranking)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
