// Adjacency build, LightGCN propagation (forward: node-major stack and hop-major layers; backward) and the mean
// readout (forward, backward) on the
// Gowalla training graph
// ($ANS_DATA_DIR/gowalla), or on a synthetic graph of similar size when the data is absent.
// Counters: edges/s for the build; GB/s (bytes the SpMM must move: CSR + gathered rows + written rows) and
// GFLOP/s for propagation. Threaded kernels are timed in real time.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "bench_data.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/propagation/readout.hpp"

namespace {

const ans::data::interactions& graph() { return bench::gowalla_or_synthetic().train; }

double spmm_bytes(const ans::graph::normalized_adjacency<float>& adj, ans::index_t d) {
  // CSR (indices + values + indptr), one gathered d-row per nonzero, one written d-row per node.
  return double(adj.nnz()) * (4 + 4) + double(adj.n_nodes()) * 8 + double(adj.nnz()) * d * 4 +
         double(adj.n_nodes()) * d * 4;
}

}  // namespace

static void BM_adjacency_build(benchmark::State& state) {
  const auto& g = graph();
  for (auto _ : state) {
    auto adj = ans::graph::build_normalized_adjacency<float>(g);
    benchmark::DoNotOptimize(adj.values.data());
  }
  state.counters["edges/s"] = benchmark::Counter(double(g.nnz()) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_adjacency_build)->Unit(benchmark::kMillisecond);

static void BM_propagation_forward(benchmark::State& state) {
  const auto& g = graph();
  const int layers = static_cast<int>(state.range(0));
  const ans::index_t d = state.range(1);
  auto adj = ans::graph::build_normalized_adjacency<float>(g);
  ans::matrix<float> e0 = ans::matrix<float>::Random(adj.n_nodes(), d), s;
  ans::propagation::lightgcn<float> prop(layers);
  prop.forward(adj, e0, s);
  for (auto _ : state) {
    prop.forward(adj, e0, s);
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["GB/s"] = benchmark::Counter(layers * spmm_bytes(adj, d) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * layers * adj.nnz() * d * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_propagation_forward)->Args({3, 64})->Args({1, 64})->UseRealTime()->Unit(benchmark::kMillisecond);

// The layout the trainer uses: S_1..S_L hop-major, each an N x d block (lightgcn::forward_layers).
static void BM_propagation_forward_layers(benchmark::State& state) {
  const auto& g = graph();
  const int layers = static_cast<int>(state.range(0));
  const ans::index_t d = state.range(1);
  auto adj = ans::graph::build_normalized_adjacency<float>(g);
  ans::matrix<float> e0 = ans::matrix<float>::Random(adj.n_nodes(), d), s(layers * adj.n_nodes(), d);
  ans::propagation::lightgcn<float> prop(layers);
  prop.forward_layers(adj, e0, s.data());
  for (auto _ : state) {
    prop.forward_layers(adj, e0, s.data());
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["GB/s"] = benchmark::Counter(layers * spmm_bytes(adj, d) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * layers * adj.nnz() * d * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_propagation_forward_layers)->Args({3, 64})->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_propagation_backward(benchmark::State& state) {
  const auto& g = graph();
  const int layers = static_cast<int>(state.range(0));
  const ans::index_t d = state.range(1);
  auto adj = ans::graph::build_normalized_adjacency<float>(g);
  ans::matrix<float> gs = ans::matrix<float>::Random(adj.n_nodes(), (layers + 1) * d);
  ans::matrix<float> ge = ans::matrix<float>::Zero(adj.n_nodes(), d);
  ans::propagation::lightgcn<float> prop(layers);
  prop.backward(adj, gs, ge);
  for (auto _ : state) {
    prop.backward(adj, gs, ge);
    benchmark::DoNotOptimize(ge.data());
  }
  state.counters["GB/s"] = benchmark::Counter(layers * spmm_bytes(adj, d) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * layers * adj.nnz() * d * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_propagation_backward)->Args({3, 64})->UseRealTime()->Unit(benchmark::kMillisecond);

// The mean readout ē = Σ_h Â^h E0 / (L+1) as the BPR trainers and the evaluation compute it (running sum over
// two N x d buffers, no stack), and its backward (reverse Horner from an N x d gradient).
static void BM_readout_mean_forward(benchmark::State& state) {
  const auto& g = graph();
  const int layers = static_cast<int>(state.range(0));
  const ans::index_t d = state.range(1);
  auto adj = ans::graph::build_normalized_adjacency<float>(g);
  ans::matrix<float> e0 = ans::matrix<float>::Random(adj.n_nodes(), d), out;
  ans::propagation::readout<float> ro(layers, ans::propagation::readout_kind::mean);
  ro.forward(adj, e0, out);
  for (auto _ : state) {
    ro.forward(adj, e0, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] = benchmark::Counter(layers * spmm_bytes(adj, d) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_readout_mean_forward)->Args({3, 64})->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_readout_mean_backward(benchmark::State& state) {
  const auto& g = graph();
  const int layers = static_cast<int>(state.range(0));
  const ans::index_t d = state.range(1);
  auto adj = ans::graph::build_normalized_adjacency<float>(g);
  ans::matrix<float> go = ans::matrix<float>::Random(adj.n_nodes(), d);
  ans::matrix<float> ge = ans::matrix<float>::Zero(adj.n_nodes(), d);
  ans::propagation::readout<float> ro(layers, ans::propagation::readout_kind::mean);
  ro.backward(adj, go, ge);
  for (auto _ : state) {
    ro.backward(adj, go, ge);
    benchmark::DoNotOptimize(ge.data());
  }
  state.counters["GB/s"] = benchmark::Counter(layers * spmm_bytes(adj, d) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_readout_mean_backward)->Args({3, 64})->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
