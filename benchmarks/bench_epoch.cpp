// Whole training epochs of ans::train::trainer<float> (sampling + ANS forward/backward + optimiser steps),
// K = 16, d = 64, B = 2048, lr 1e-3, l2 1e-4, gamma 0.1, eps 0.1 (the reference's hyper-parameters).
//
//   BM_epoch_gowalla/L:0          MF-ANS, one full Gowalla epoch (396 batches); counters s/epoch, samples/s
//   BM_epoch_gowalla/L:3          LightGCN-ANS L=3, capped at ANS_BENCH_LGCN_BATCHES (default 8) batches;
//                                 s/epoch is extrapolated (time per batch x batches per epoch)
//   BM_bpr_mf_gowalla/opt:o/dns:n  BPR-MF baselines, full Gowalla epochs: o = 0 lazy Adam, 1 dense Adam, 2 SGD,
//                                 3 hogwild_sgd; n = 0 RNS (K = 1), 1 DNS (K = 16)
//   BM_epoch_synthetic/L:0/nnz:N  MF-ANS on ans::data::generate_synthetic with ~N interactions (1e5..1e7);
//                                 capped at ANS_BENCH_SYN_BATCHES (default 0 = full epoch)
//   BM_epoch_synthetic/L:3/nnz:N  LightGCN-ANS L=3 on the same graphs, capped at ANS_BENCH_LGCN_BATCHES
//                                 (default 8; extrapolated): every batch propagates the whole graph (spec R.3),
//                                 so its epoch grows with nnz x batches, i.e. quadratically
// benchmarks/scaling.sh runs the synthetic series at 1 and 2 threads and plots it (docs/img/perf_scaling.png).
// Time unit: seconds per (possibly capped) epoch; the counter "s/batch" is the per-step time.
// Data: $ANS_DATA_DIR/gowalla (skipped with a message when absent).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "ans/ans.hpp"
#include "ans/data/synthetic.hpp"
#include "ans/train/trainer.hpp"

namespace {

ans::train::trainer_config config(int L) {
  ans::train::trainer_config c;
  c.sampler = ans::train::sampler_kind::ans;
  c.n_layers = L;
  c.dim = 64;
  c.batch_size = 2048;
  c.num_neg = 16;
  c.lr = 1e-3;
  c.reg_weight = 1e-4;
  c.seed = 2020;
  return c;
}

long env_or(const char* name, long def) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : def;
}

const ans::data::dataset* gowalla() {
  static std::unique_ptr<ans::data::dataset> d;
  static bool tried = false;
  if (!tried) {
    tried = true;
    const char* dir = std::getenv("ANS_DATA_DIR");
    try {
      d = std::make_unique<ans::data::dataset>(ans::data::load_any(std::string(dir ? dir : "../shared/data") + "/gowalla"));
    } catch (const std::exception& e) {
      std::cerr << "gowalla not found: " << e.what() << "\n";
    }
  }
  return d.get();
}

const ans::data::dataset& synthetic(long nnz) {
  static std::map<long, std::unique_ptr<ans::data::dataset>> cache;
  auto& d = cache[nnz];
  if (!d) {
    ans::data::synthetic_config c;
    // ~nnz interactions in total (train + test, test_fraction 0.2), 30 per user, items = users / 2
    c.interactions_per_user = 30;
    c.n_users = std::max<long>(100, nnz / 30);
    c.n_items = std::max<long>(100, c.n_users / 2);
    c.seed = 11;
    d = std::make_unique<ans::data::dataset>(ans::data::generate_synthetic(c));
  }
  return *d;
}

void run_epochs(benchmark::State& st, const ans::data::dataset& data, const ans::train::trainer_config& cfg, long cap) {
  ans::train::trainer<float> tr(data, cfg);
  if (cap > 0) tr.set_max_batches(cap);
  const long nb = cap > 0 ? std::min<long>(cap, tr.batches_per_epoch()) : tr.batches_per_epoch();
  int epoch = 0;
  for (auto _ : st) benchmark::DoNotOptimize(tr.train_epoch(epoch++));
  const double per_batch_iters = double(nb);
  st.counters["batches"] = double(nb);
  st.counters["batches/epoch"] = double(tr.batches_per_epoch());
  st.counters["interactions"] = double(data.train.nnz());
  st.counters["s/batch"] = benchmark::Counter(per_batch_iters, benchmark::Counter::kIsIterationInvariantRate |
                                                                    benchmark::Counter::kInvert);
  st.counters["s/epoch(extrap)"] = benchmark::Counter(per_batch_iters / double(tr.batches_per_epoch()),
                                                      benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
  st.counters["samples/s"] = benchmark::Counter(double(nb) * 2048, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = ans::max_threads();
}

void BM_epoch_gowalla(benchmark::State& st) {
  const auto* d = gowalla();
  if (!d) {
    st.SkipWithError("no $ANS_DATA_DIR/gowalla");
    return;
  }
  const int L = static_cast<int>(st.range(0));
  run_epochs(st, *d, config(L), L == 0 ? env_or("ANS_BENCH_MF_BATCHES", 0) : env_or("ANS_BENCH_LGCN_BATCHES", 8));
}

// The MF baselines on Gowalla, one full epoch: opt 0 lazy Adam, 1 dense Adam, 2 SGD, 3 hogwild_sgd; neg 0 RNS
// (K = 1), 1 DNS (K = 16). lr 1e-3 (hogwild: 0.01, implicit's default), λ = 0.
void BM_bpr_mf_gowalla(benchmark::State& st) {
  const auto* d = gowalla();
  if (!d) {
    st.SkipWithError("no $ANS_DATA_DIR/gowalla");
    return;
  }
  using O = ans::train::optimizer_kind;
  auto c = config(0);
  const O opts[] = {O::lazy_adam, O::adam, O::sgd, O::hogwild_sgd};
  c.optimizer = opts[st.range(0)];
  c.sampler = st.range(1) ? ans::train::sampler_kind::dns : ans::train::sampler_kind::rns;
  c.num_neg = st.range(1) ? 16 : 1;
  c.reg_weight = 0;
  c.lr = c.optimizer == O::hogwild_sgd || c.optimizer == O::sgd ? 0.01 : 1e-3;
  run_epochs(st, *d, c, env_or("ANS_BENCH_MF_BATCHES", 0));
}

void BM_epoch_synthetic(benchmark::State& st) {
  const auto& d = synthetic(st.range(1));
  const int L = static_cast<int>(st.range(0));
  run_epochs(st, d, config(L), L == 0 ? env_or("ANS_BENCH_SYN_BATCHES", 0) : env_or("ANS_BENCH_LGCN_BATCHES", 8));
}

}  // namespace

BENCHMARK(BM_epoch_gowalla)->ArgNames({"L"})->Arg(0)->Arg(3)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_bpr_mf_gowalla)
    ->ArgNames({"opt", "dns"})
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
BENCHMARK(BM_epoch_synthetic)
    ->ArgNames({"L", "nnz"})
    ->ArgsProduct({{0, 3}, {100000, 300000, 1000000, 3000000, 10000000}})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
BENCHMARK_MAIN();
