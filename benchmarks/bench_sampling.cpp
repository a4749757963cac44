// Negative sampling and the whole ANS objective step on the Gowalla training graph ($ANS_DATA_DIR/gowalla;
// a synthetic graph of similar size when the data is absent). B=2048 pairs, K=16 candidates, d=64.
//
//   BM_sample_batch_uniform / _popularity : sample_batch (OpenMP over rows), rejection against the train CSR.
//   BM_dns_select/H                       : DNS argmax over the K candidates of every pair (serial), per hop.
//   BM_objective_step/L/eigen_serial/fused: ans::model::ans_objective<float> forward + backward (fused=0) or
//                                           forward_backward (fused=1, what the trainer runs), L=0 (MF-ANS)
//                                           and L=3 (LightGCN-ANS), faithful mode, candidates pre-sampled;
//                                           eigen_serial=1 turns Eigen's GEMM threading off (OpenMP loops keep
//                                           their threads); pooled=1: the mean readout (one gate pass).
//   BM_bpr_objective_step/L/selection     : ans::model::bpr_objective<float> forward + backward, mean readout,
//                                           selection 0 = RNS (K = 1), 1 = DNS, 2 = MixGCF.
//
// Counters: samples/s = training pairs (B) per second; draws/s = negative candidates (B*K) per second.
// The time column is the time per batch. Threaded kernels are timed in real (wall) time: Google Benchmark's
// CPU time is the main thread's only.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <vector>

#include "ans/ans.hpp"
#include "bench_data.hpp"

namespace {

constexpr ans::index_t kB = 2048, kK = 16, kD = 64;

const ans::data::interactions& train() { return bench::gowalla_or_synthetic().train; }

ans::matrix<float> random_matrix(ans::index_t rows, ans::index_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  ans::matrix<float> m(rows, cols);
  for (ans::index_t i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

template <class Sampler>
void run_sample_batch(benchmark::State& st, const Sampler& sampler) {
  const auto& g = train();
  ans::sampling::pair_batcher batcher(g, kB, 7, /*drop_last=*/true);
  std::vector<std::int32_t> out(kB * kK);
  ans::index_t b = 0;
  for (auto _ : st) {
    ans::sampling::sample_batch(sampler, batcher.batch(b), kK, 11, out.data());
    benchmark::DoNotOptimize(out.data());
    if (++b == batcher.n_batches()) b = 0;
  }
  st.counters["samples/s"] = benchmark::Counter(double(kB), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["draws/s"] = benchmark::Counter(double(kB * kK), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = ans::max_threads();
}

void BM_sample_batch_uniform(benchmark::State& st) {
  ans::sampling::uniform_sampler s(train());
  run_sample_batch(st, s);
}

void BM_sample_batch_popularity(benchmark::State& st) {
  ans::sampling::popularity_sampler s(train(), 1.0);
  run_sample_batch(st, s);
}

// A fixed set of batches (ids + pre-sampled uniform candidates), cycled through so the gathers do not
// always touch the same rows.
struct batch_pool {
  static constexpr int n = 8;
  std::vector<std::vector<std::int32_t>> users, pos, cands;
  batch_pool() {
    const auto& g = train();
    ans::sampling::pair_batcher batcher(g, kB, 3, true);
    ans::sampling::uniform_sampler sampler(g);
    users.resize(n), pos.resize(n), cands.resize(n);
    for (int i = 0; i < n; ++i) {
      const auto pb = batcher.batch(i);
      users[i].assign(pb.users, pb.users + pb.size);
      pos[i].assign(pb.items, pb.items + pb.size);
      cands[i].resize(kB * kK);
      ans::sampling::sample_batch(sampler, pb, kK, 5, cands[i].data());
    }
  }
  ans::model::batch_ids ids(int i) const {
    return ans::model::batch_ids{users[i].data(), pos[i].data(), cands[i].data(), kB, kK};
  }
};

const batch_pool& pool() {
  static batch_pool p;
  return p;
}

void BM_dns_select(benchmark::State& st) {
  const auto& g = train();
  const ans::index_t H = st.range(0);
  const auto& p = pool();
  const ans::matrix<float> users = random_matrix(g.n_users, H * kD, 1), items = random_matrix(g.n_items, H * kD, 2);
  std::vector<ans::index_t> ks(kB * H);
  int i = 0;
  for (auto _ : st) {
    const auto& u = p.users[i];
    const auto& c = p.cands[i];
    for (ans::index_t b = 0; b < kB; ++b) {
      if (H == 1)
        ks[b] = ans::sampling::dns_select(users.row(u[b]).data(), items, c.data() + b * kK, kK);
      else
        ans::sampling::dns_select_per_hop(users.row(u[b]).data(), items, c.data() + b * kK, kK, H, ks.data() + b * H);
    }
    benchmark::DoNotOptimize(ks.data());
    i = (i + 1) % batch_pool::n;
  }
  st.counters["samples/s"] = benchmark::Counter(double(kB), benchmark::Counter::kIsIterationInvariantRate);
  // Bytes: the K gathered candidate rows dominate (H*d floats each).
  st.counters["GB/s"] = benchmark::Counter(double(kB) * kK * H * kD * 4 * 1e-9,
                                           benchmark::Counter::kIsIterationInvariantRate);
}

void BM_objective_step(benchmark::State& st) {
  const auto& g = train();
  const int L = static_cast<int>(st.range(0));
  // range(1) = 1: Eigen's own GEMM threading off (Eigen::setNbThreads(1)); the library's OpenMP loops keep
  // OMP_NUM_THREADS. Diagnoses Eigen's parallel GEMM on the gate's weight gradients (k = B*K*H, 64x64 out).
  const bool eigen_serial = st.range(1) != 0;
  const bool fused = st.range(2) != 0;
  // range(3) = 1: pooled ANS (mean readout: one gate pass on ē, fixed mode's default on LightGCN)
  const auto readout = st.range(3) != 0 ? ans::propagation::readout_kind::mean : ans::propagation::readout_kind::concat;
  const int eigen_threads_before = Eigen::nbThreads();
  if (eigen_serial) Eigen::setNbThreads(1);
  const auto adj = ans::graph::build_normalized_adjacency<float>(g);
  const auto& p = pool();
  const ans::matrix<float> e0 = random_matrix(adj.n_nodes(), kD, 3);
  ans::matrix<float> grad_e0 = ans::matrix<float>::Zero(adj.n_nodes(), kD);
  auto prm = ans::model::ans_params<float>::init(kD, ans::mode::faithful, 3);
  auto grads = ans::model::ans_params<float>::zeros(kD);
  ans::model::ans_objective<float> obj(L, ans::ans_options::make(ans::mode::faithful), readout);
  obj.loss().set_compute_stats(false);
  std::uint64_t step = 0;
  int i = 0;
  for (auto _ : st) {
    ans::augment::counter_uniform_source src{1, step++};
    // What a trainer does per step: clear the E0 gradient (all rows for L >= 1, the touched rows for MF).
    if (fused) {
      if (L >= 1) grad_e0.setZero();
      benchmark::DoNotOptimize(obj.forward_backward(adj, e0, p.ids(i), prm, src, grad_e0, grads).total);
    } else {
      const auto& t = obj.forward(adj, e0, p.ids(i), prm, src);
      benchmark::DoNotOptimize(t.total);
      if (L >= 1) grad_e0.setZero();
      obj.backward(grad_e0, grads);
    }
    if (L == 0)
      for (auto r : obj.touched_rows()) grad_e0.row(r).setZero();
    benchmark::DoNotOptimize(grad_e0.data());
    i = (i + 1) % batch_pool::n;
  }
  Eigen::setNbThreads(eigen_threads_before);
  st.counters["samples/s"] = benchmark::Counter(double(kB), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = ans::max_threads();
}

}  // namespace

BENCHMARK(BM_sample_batch_uniform)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sample_batch_popularity)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dns_select)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_objective_step)
    ->ArgNames({"L", "eigen_serial", "fused", "pooled"})
    ->Args({0, 0, 0, 0})
    ->Args({0, 0, 1, 0})
    ->Args({3, 0, 0, 0})
    ->Args({3, 0, 1, 0})
    ->Args({0, 1, 1, 0})
    ->Args({3, 1, 1, 0})
    ->Args({3, 1, 1, 1})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

namespace {
// The BPR objective step of the baseline trainers (forward + backward to E0) with the mean readout: RNS (K = 1)
// and DNS (K = 16) on the pooled table, MixGCF on the per-hop rows; L = 0 (MF) and L = 3.
void BM_bpr_objective_step(benchmark::State& st) {
  const auto& g = train();
  const int L = static_cast<int>(st.range(0));
  const auto sel = static_cast<ans::model::negative_selection>(st.range(1));
  const auto adj = ans::graph::build_normalized_adjacency<float>(g);
  const auto& p = pool();
  const ans::matrix<float> e0 = random_matrix(adj.n_nodes(), kD, 3);
  ans::matrix<float> grad_e0 = ans::matrix<float>::Zero(adj.n_nodes(), kD);
  ans::model::bpr_options o;
  o.selection = sel;
  ans::model::bpr_objective<float> obj(L, o);
  int i = 0;
  std::uint64_t step = 0;
  for (auto _ : st) {
    auto ids = p.ids(i);
    if (sel == ans::model::negative_selection::first) ids.K = 1;  // RNS: one (valid, uniform) item per pair
    benchmark::DoNotOptimize(obj.forward(adj, e0, ids, 1, step++));
    if (L >= 1) ans::parallel_zero(grad_e0.data(), grad_e0.size());
    obj.backward(grad_e0);
    if (L == 0)
      for (auto r : obj.touched_rows()) grad_e0.row(r).setZero();
    benchmark::DoNotOptimize(grad_e0.data());
    i = (i + 1) % batch_pool::n;
  }
  st.counters["samples/s"] = benchmark::Counter(double(kB), benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace
BENCHMARK(BM_bpr_objective_step)
    ->ArgNames({"L", "selection"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({3, 0})
    ->Args({3, 1})
    ->Args({3, 2})
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
