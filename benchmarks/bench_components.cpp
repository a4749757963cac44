// Benchmarks of the ANS loss components at B=2048, K=16, d=64, H=1 and H=4 (float).
#include <benchmark/benchmark.h>

#include <vector>

#include "ans/disentangle/gemm64.hpp"

#include <random>

#include "ans/ans.hpp"

namespace {
using S = float;
struct fixture {
  ans::batch_shape s;
  ans::matrix<S> U, P, N;
  ans::model::ans_params<S> prm;
  explicit fixture(ans::index_t H) : s{2048, 16, H, 64} {
    std::mt19937_64 rng(1);
    std::normal_distribution<S> nd(0, 0.1f);
    U.resize(s.pair_rows(), s.d), P.resize(s.pair_rows(), s.d), N.resize(s.cand_rows(), s.d);
    for (auto* m : {&U, &P, &N})
      for (ans::index_t i = 0; i < m->size(); ++i) m->data()[i] = nd(rng);
    prm = ans::model::ans_params<S>::init(s.d, ans::mode::faithful, 3);
  }
};

void BM_gate_forward_backward(benchmark::State& st) {
  fixture f(st.range(0));
  ans::disentangle::gate<S> gate;
  ans::matrix<S> dg = ans::matrix<S>::Constant(f.s.cand_rows(), f.s.d, 1e-3f), dU = f.U, dN = f.N;
  auto gr = ans::model::ans_params<S>::zeros(f.s.d);
  for (auto _ : st) {
    gate.forward(f.s, f.U, f.N, f.prm.W_u, f.prm.b_u, f.prm.W_i, f.prm.b_i);
    gate.backward(f.U, f.N, f.prm.W_u, f.prm.W_i, dg, dU, dN, gr.W_u, gr.b_u, gr.W_i, gr.b_i);
    benchmark::DoNotOptimize(gate.g().data());
  }
  // forward: 2·(BKH + BH)·d² ; backward: 2 GEMMs of the same size per map
  const double flops = 3.0 * 2.0 * double(f.s.cand_rows() + f.s.pair_rows()) * f.s.d * f.s.d;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["samples/s"] = benchmark::Counter(double(f.s.B), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_losses(benchmark::State& st) {
  fixture f(st.range(0));
  ans::disentangle::gate<S> gate;
  gate.forward(f.s, f.U, f.N, f.prm.W_u, f.prm.b_u, f.prm.W_i, f.prm.b_i);
  ans::loss::sns_loss<S> sns;
  ans::loss::distance_loss<S> dist;
  ans::loss::orth_loss<S> orth;
  ans::matrix<S> dU = f.U, dP = f.P, dN = f.N, dg = f.N;
  for (auto _ : st) {
    S v = sns.forward(f.s, f.U, f.N, gate.g(), false) + dist.forward(f.s, f.P, f.N, gate.g(), 1e-6f, false) +
          orth.forward(f.s, f.P, f.N, gate.g(), false, false, 0);
    sns.backward(f.U, f.N, gate.g(), 1, dU, dN, dg);
    dist.backward(f.P, f.N, gate.g(), 1, dP, dN, dg);
    orth.backward(f.P, f.N, gate.g(), 1, dP, dN, dg);
    benchmark::DoNotOptimize(v);
  }
  st.counters["samples/s"] = benchmark::Counter(double(f.s.B), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_margin_noise_select(benchmark::State& st) {
  fixture f(st.range(0));
  ans::disentangle::gate<S> gate;
  gate.forward(f.s, f.U, f.N, f.prm.W_u, f.prm.b_u, f.prm.W_i, f.prm.b_i);
  ans::augment::margin_model<S> margin;
  ans::augment::noise_model<S> noise;
  ans::augment::counter_uniform_source src{1, 0};
  ans::ans_options o;
  std::vector<S> syth(f.s.cand_rows()), norm(f.s.cand_rows());
  std::vector<ans::index_t> ks(f.s.pair_rows());
  std::vector<S> row(f.s.d);
  for (auto _ : st) {
    margin.forward(f.s, f.P, f.N, gate.g(), f.prm.w_m, f.prm.c_m, o.margin, S(o.clamp_tau));
    noise.forward(f.s, f.P, f.N, gate.g(), src, o);
    for (ans::index_t r = 0; r < f.s.cand_rows(); ++r) {
      noise.augmented_row(r, f.N.row(r).data(), gate.g().row(r).data(), margin.m()[r], row.data());
      syth[r] = row[0];
      norm[r] = f.N(r, 0);
    }
    ans::augment::select_candidates(f.s, syth.data(), norm.data(), S(0.1), true, ks.data());
    benchmark::DoNotOptimize(ks.data());
  }
  st.counters["samples/s"] = benchmark::Counter(double(f.s.B), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_composite(benchmark::State& st) {
  fixture f(st.range(0));
  ans::model::ans_loss<S> loss(ans::ans_options::make(ans::mode::faithful));
  loss.set_compute_stats(false);
  ans::augment::counter_uniform_source src{1, 0};
  ans::matrix<S> dU = f.U, dP = f.P, dN = f.N;
  auto gr = ans::model::ans_params<S>::zeros(f.s.d);
  for (auto _ : st) {
    const auto& t = loss.forward(f.s, f.U, f.P, f.N, f.prm, src);
    loss.backward(dU, dP, dN, gr);
    benchmark::DoNotOptimize(t.total);
  }
  const double flops = 3.0 * 2.0 * double(f.s.cand_rows() + f.s.pair_rows()) * f.s.d * f.s.d;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["samples/s"] = benchmark::Counter(double(f.s.B), benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

// The three gate GEMMs of the fused loss on the candidate rows with the d = 64 kernels (gemm64.hpp), as
// ans_loss runs them: blocks of 256 rows in parallel; a_n = N Wᵀ + b, ∂N += ḡ W, ∂W += ḡᵀ N (per-thread partial).
void BM_gate_gemm64(benchmark::State& st) {
  fixture f(st.range(0));
  const ans::index_t R = f.s.cand_rows(), d = f.s.d, blk = 256, nblk = (R + blk - 1) / blk;
  ans::matrix<S> an(R, d), dN = f.N, gan = ans::matrix<S>::Constant(R, d, 1e-3f);
  const ans::matrix<S> Wt = f.prm.W_i.transpose();
  std::vector<ans::matrix<S>> part(static_cast<size_t>(ans::max_threads()), ans::matrix<S>::Zero(d, d));
  namespace g64 = ans::disentangle::gemm64;
  for (auto _ : st) {
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (ans::index_t b = 0; b < nblk; ++b) {
      const ans::index_t r0 = b * blk, nr = std::min(blk, R - r0);
      g64::rows64<false>(f.N.data() + r0 * d, d, nr, Wt.data(), d, an.data() + r0 * d, d, f.prm.b_i.data());
      g64::rows64<true>(gan.data() + r0 * d, d, nr, f.prm.W_i.data(), d, dN.data() + r0 * d, d);
      g64::atx64(gan.data() + r0 * d, d, f.N.data() + r0 * d, d, nr, part[ans::thread_id()].data(), d);
    }
    benchmark::DoNotOptimize(an.data());
    benchmark::DoNotOptimize(dN.data());
  }
  const double flops = 3.0 * 2.0 * double(R) * d * d;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = ans::max_threads();
}

BENCHMARK(BM_gate_gemm64)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gate_forward_backward)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_losses)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_margin_noise_select)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_composite)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
