// Machine ceilings the kernels are measured against: dense float GEMM with Eigen (GFLOP/s) and a
// STREAM-style triad a[i] = b[i] + s*c[i] (GB/s), both with all threads (OpenMP), real time.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <vector>

#include "ans/config.hpp"
#include "ans/types.hpp"

static void BM_gemm_float(benchmark::State& state) {
  const Eigen::Index n = state.range(0);
  ans::matrix<float> a = ans::matrix<float>::Random(n, n), b = ans::matrix<float>::Random(n, n), c(n, n);
  Eigen::setNbThreads(ans::max_threads());
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["threads"] = ans::max_threads();
}
BENCHMARK(BM_gemm_float)->Arg(1024)->Arg(2048)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_triad(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  const float s = 3.0f;
  for (auto _ : state) {
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (std::int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    benchmark::DoNotOptimize(a.data());
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * sizeof(float) * n * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_triad)->Arg(1 << 25)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
