// Data-parallel training over MPI (issue 17), run by ctest as `mpirun -np 2 ans_mpi_tests` (ANS_WITH_MPI):
//   1. with the same seed, two data-parallel runs give bit-identical parameters, the same on every rank;
//   2. they are within float rounding of one process (the tolerance is printed and checked);
//   3. a checkpoint written by rank 0 and loaded by every rank continues exactly;
//   4. the bytes each rank sends per step equal the formula of docs/distributed.md;
//   5. LightGCN-ANS, on the bipartite chains and on row blocks: all of the above, and the schedule and the
//      node blocks change no bit.
// With --die, rank 1 kills itself (SIGKILL) in the middle of training: the other ranks must not hang (ctest
// runs that mode with a timeout and expects a non-zero exit from mpirun).
// Plain main (no Catch2): every rank runs the same checks; the first failure aborts all ranks.
#include <mpi.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ans/data/synthetic.hpp"
#include "ans/dist/communicator.hpp"
#include "ans/dist/data_parallel.hpp"
#include "ans/io/checkpoint.hpp"
#include "ans/train/trainer.hpp"

namespace {

int g_rank = 0;
int failures = 0;
void check(bool ok, const std::string& what) {
  if (g_rank == 0) std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

const ans::data::dataset& data() {
  static const ans::data::dataset d = [] {
    ans::data::synthetic_config c;
    c.n_users = 600;
    c.n_items = 400;
    c.interactions_per_user = 12;
    c.dim = 4;
    c.seed = 5;
    return ans::data::generate_synthetic(c);
  }();
  return d;
}

ans::train::trainer_config config(ans::train::sampler_kind s, ans::train::optimizer_kind o) {
  ans::train::trainer_config c;
  c.sampler = s;
  c.optimizer = o;
  c.dim = 16;
  c.batch_size = 512;
  c.num_neg = 8;
  c.lr = 5e-3;
  c.seed = 21;
  c.m = ans::mode::fixed;
  return c;
}

// The same bits on every rank: each rank's checksum against rank 0's.
bool same_on_every_rank(const ans::matrix<float>& m) {
  const std::string sum = ans::io::fnv1a64(m.data(), sizeof(float) * m.size());
  std::int64_t h = static_cast<std::int64_t>(std::stoull(sum, nullptr, 16) >> 1), h0 = h;
  MPI_Bcast(&h0, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  int same = h == h0, all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_same == 1;
}

double max_abs_diff(const ans::matrix<float>& a, const ans::matrix<float>& b) {
  return double((a - b).cwiseAbs().maxCoeff());
}

// The last epoch's ANS loss terms and saturated-margin fraction: the same on every rank, and within rounding
// of one process's (the ranks add their shards' shares once per epoch).
void check_epoch_terms(const ans::train::trainer<float>& dp, const ans::train::trainer<float>& one, const std::string& n) {
  const auto td = dp.epoch_terms(), to = one.epoch_terms();
  double worst = 0, mine[6], first[6];
  for (size_t i = 0; i < 5; ++i) worst = std::max(worst, std::fabs(td[i] - to[i]) / std::max(1e-3, std::fabs(to[i])));
  const double sat_d = dp.epoch_saturated_margin_fraction(), sat_o = one.epoch_saturated_margin_fraction();
  for (size_t i = 0; i < 5; ++i) mine[i] = first[i] = td[i];
  mine[5] = first[5] = sat_d;
  MPI_Bcast(first, 6, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  int same = std::equal(mine, mine + 6, first), all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%s: the epoch's loss terms (bpr %.5f, sns %.5f against %.5f, %.5f) within 1e-4 relative of 1 process "
                "(worst %.1e), saturated margins %.4f against %.4f, the same on every rank",
                n.c_str(), td[0], td[1], to[0], to[1], worst, sat_d, sat_o);
  check(td[0] != 0 && worst <= 1e-4 && std::fabs(sat_d - sat_o) <= 1e-3 && all_same == 1, buf);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP threads run beside MPI, and only the main thread calls it: MPI_THREAD_FUNNELED
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  ans::dist::communicator comm(MPI_COMM_WORLD);
  g_rank = comm.rank();
  const int P = comm.size();
  if (g_rank == 0) std::printf("ans_mpi_tests: %d ranks\n", P);
  if (argc > 1 && std::string(argv[1]) == "--die") {  // fault behaviour: a rank dies inside a collective
    const auto cfg = config(ans::train::sampler_kind::ans, ans::train::optimizer_kind::lazy_adam);
    ans::train::trainer<float> t(data(), cfg);
    ans::dist::make_data_parallel(t, comm);
    t.train_epoch(0);
    if (g_rank == 1) ::kill(::getpid(), SIGKILL);
    for (int e = 1; e < 1000; ++e) t.train_epoch(e);  // rank 0 blocks in the next exchange until mpirun ends it
    std::printf("rank %d: trained on after its peer died\n", g_rank);
    MPI_Finalize();
    return 0;
  }
  using ans::train::optimizer_kind;
  using ans::train::sampler_kind;
  struct case_t {
    const char* name;
    sampler_kind s;
    optimizer_kind o;
  };
  const case_t cases[] = {{"ANS MF, lazy Adam", sampler_kind::ans, optimizer_kind::lazy_adam},
                          {"DNS MF, Adam", sampler_kind::dns, optimizer_kind::adam},
                          {"RNS MF, SGD", sampler_kind::rns, optimizer_kind::sgd},
                          {"RNS MF, lazy Adam", sampler_kind::rns, optimizer_kind::lazy_adam}};
  const int kEpochs = 3;
  for (const auto& c : cases) {
    const auto cfg = config(c.s, c.o);
    ans::train::trainer<float> one(data(), cfg);
    for (int e = 0; e < kEpochs; ++e) one.train_epoch(e);
    using mfs = ans::train::shard_plan<float>::mf_schedule;
    auto make_mf = [&](ans::train::trainer<float>& t, mfs sc) {
      auto ex = ans::dist::make_data_parallel(t, comm);
      auto plan = t.shard();
      plan.mf = sc;
      t.set_shard(plan);
      return ex;
    };
    // the all-gather schedule (a, b) and the owned rows (o): the same bits
    ans::train::trainer<float> a(data(), cfg), b(data(), cfg), o(data(), cfg);
    auto ex = make_mf(a, mfs::allgather);
    make_mf(b, mfs::allgather);
    auto ex_owned = make_mf(o, mfs::automatic);
    for (int e = 0; e < kEpochs; ++e) a.train_epoch(e), b.train_epoch(e), o.train_epoch(e);
    const std::string n = c.name;
    check(P == 1 || o.owned_rows(), n + ": the automatic MF schedule is the owned rows");
    check(o.embeddings() == a.embeddings(), n + ": owned rows give the all-gather's bits");
    if (c.s == sampler_kind::ans) check_epoch_terms(o, one, n), check_epoch_terms(a, one, n + " (all-gather)");
    {  // lopsided blocks: the last rank owns every row, so it never fetches one (and the others own none)
      ans::train::trainer<float> lop(data(), cfg);
      make_mf(lop, mfs::automatic);
      auto plan = lop.shard();
      plan.node_offsets.assign(static_cast<size_t>(P + 1), 0);
      plan.node_offsets.back() = lop.embeddings().rows();
      lop.set_shard(plan);
      for (int e = 0; e < kEpochs; ++e) lop.train_epoch(e);
      check(P == 1 || lop.owned_rows(), n + ": lopsided blocks keep the owned rows");
      check(lop.embeddings() == a.embeddings(), n + ": owned rows on blocks [0, 0, .., N) give the all-gather's bits");
    }
    {
      const auto& st = ex_owned->stats();
      const auto& oc = o.owned_row_counts();
      const std::uint64_t d = static_cast<std::uint64_t>(cfg.dim), Pu = std::uint64_t(P);
      const std::uint64_t dense = c.s == sampler_kind::ans ? (2 * d * d + 3 * d + 1) : 0;
      // per step: two count all-to-alls (4 bytes to each rank), then ids (8) and rows (4d) of the fetch (asked
      // ids out, served rows out) and of the gradients (ids and rows out), and the dense exchange. ANS's
      // gradient rows are its fetched rows: their counts and ids do not travel.
      const std::uint64_t grad_ids = c.s == sampler_kind::ans ? 0 : oc.gradients, n_counts = c.s == sampler_kind::ans ? 1 : 2;
      if (c.s == sampler_kind::ans) check(oc.gradients == oc.fetched, n + ": ANS sends a gradient row for every fetched row");
      const std::uint64_t formula = st.steps * (n_counts * 4 * Pu + 4 + 4 + 8 + 4 * dense) + 8 * (oc.fetched + grad_ids) +
                                    4 * d * (oc.served + oc.gradients);
      const auto& off = o.node_block_offsets();
      // and, at each epoch's end, the gathers of E0 and of the optimiser state (lazy Adam: its row step counts)
      const std::uint64_t block = std::uint64_t(off[g_rank + 1] - off[g_rank]);
      const std::uint64_t per_epoch = 4 * block * d * (1 + (c.o == optimizer_kind::sgd ? 0 : 2)) +
                                      (c.o == optimizer_kind::lazy_adam ? 8 * block : 0);
      char obuf[320];
      std::snprintf(obuf, sizeof obuf,
                    "%s: owned rows, rank %d (block [%lld, %lld)): %llu bytes over %llu steps, formula %llu (%.1f rows "
                    "fetched, %.1f served, %.1f gradients sent per step)",
                    c.name, g_rank, (long long)off[g_rank], (long long)off[g_rank + 1], (unsigned long long)st.bytes_sent,
                    (unsigned long long)st.steps, (unsigned long long)(formula + kEpochs * per_epoch), double(oc.fetched) / double(st.steps),
                    double(oc.served) / double(st.steps), double(oc.gradients) / double(st.steps));
      check(st.bytes_sent == formula + kEpochs * per_epoch, obuf);
    }
    check(a.embeddings() == b.embeddings(), n + ": two data-parallel runs are bit-identical");
    check(same_on_every_rank(a.embeddings()), n + ": every rank holds the same parameters");
    const double diff = max_abs_diff(a.embeddings(), one.embeddings());
    const double scale = double(one.embeddings().cwiseAbs().maxCoeff());
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s: %d ranks against 1 process after %d epochs: max |ΔE0| = %.2e (max |E0| = %.3f), tolerance 1e-5·max|E0|",
                  c.name, P, kEpochs, diff, scale);
    check(P == 1 ? diff == 0 : diff <= 1e-5 * scale, buf);
    const auto ma = a.evaluate("test"), mo = one.evaluate("test");
    std::snprintf(buf, sizeof buf, "%s: test Recall@20 %.5f (data-parallel) against %.5f (1 process)", c.name,
                  ma.at("Recall@20"), mo.at("Recall@20"));
    check(std::fabs(ma.at("Recall@20") - mo.at("Recall@20")) <= 2e-3, buf);
    // bytes per step: 4 + 8|T_r| (ids), 4 + 4·d·|T_r| (rows), 4·n_dense (ANS), 8 (loss) — Σ over steps
    const auto& st = ex->stats();
    const std::uint64_t d = static_cast<std::uint64_t>(cfg.dim);
    const std::uint64_t dense = c.s == sampler_kind::ans ? (2 * d * d + 3 * d + 1) : 0;
    const std::uint64_t formula = st.steps * (4 + 4 + 8 + 4 * dense) + st.rows_sent * (8 + 4 * d);
    std::snprintf(buf, sizeof buf, "%s: %llu bytes sent by rank %d over %llu steps, formula %llu (%.1f rows per step, union %.1f)",
                  c.name, (unsigned long long)st.bytes_sent, g_rank, (unsigned long long)st.steps,
                  (unsigned long long)formula, double(st.rows_sent) / double(st.steps), double(st.rows_union) / double(st.steps));
    check(st.bytes_sent == formula, buf);
    // resume: rank 0 writes the checkpoint of epoch 2, every rank loads it and trains epoch 3
    const std::string dir = "/tmp/ans_mpi_test_ckpt_" + std::to_string(static_cast<int>(c.s));
    ans::train::trainer<float> r2(data(), cfg);
    ans::dist::make_data_parallel(r2, comm);  // owned rows
    for (int e = 0; e < kEpochs - 1; ++e) r2.train_epoch(e);
    if (g_rank == 0) r2.save(dir);
    comm.barrier();
    ans::train::trainer<float> resumed(data(), cfg);
    ans::dist::make_data_parallel(resumed, comm);
    resumed.load(dir);
    resumed.train_epoch(kEpochs - 1);
    check(resumed.embeddings() == a.embeddings(), n + ": every rank resumes from rank 0's checkpoint exactly");
    comm.barrier();
    if (g_rank == 0) std::system(("rm -rf '" + dir + "'").c_str());
  }
  // LightGCN-ANS: the propagation split over the ranks (propagation::row_block)
  using sched = ans::train::shard_plan<float>::schedule;
  struct lg_case {
    const char* name;
    int layers;
    optimizer_kind o;
    sched sc;
    bool concat;
  };
  const lg_case lg_cases[] = {
      {"ANS LightGCN L=2, Adam, bipartite chains", 2, optimizer_kind::adam, sched::bipartite, false},
      {"ANS LightGCN L=3, Adam, row blocks", 3, optimizer_kind::adam, sched::rows, false},
      {"ANS LightGCN L=1 concat, SGD, bipartite chains", 1, optimizer_kind::sgd, sched::bipartite, true}};
  auto lg_config = [&](const lg_case& c) {
    auto cfg = config(sampler_kind::ans, c.o);
    cfg.n_layers = c.layers;
    if (c.concat) cfg.readout = ans::propagation::readout_kind::concat;
    if (c.o == optimizer_kind::sgd) cfg.lr = 0.05;
    return cfg;
  };
  auto make_lg = [&](ans::train::trainer<float>& t, sched sc, std::vector<ans::index_t> blocks = {}) {
    auto ex = ans::dist::make_data_parallel(t, comm);
    auto plan = t.shard();
    plan.lightgcn = sc;
    if (!blocks.empty()) plan.node_offsets = blocks;
    t.set_shard(plan);
    return ex;
  };
  const int kLgEpochs = 2;
  for (const auto& c : lg_cases) {
    if (c.sc == sched::bipartite && P != 2) continue;
    const auto cfg = lg_config(c);
    const std::string n = c.name;
    char buf[320];
    ans::train::trainer<float> one(data(), cfg);
    for (int e = 0; e < kLgEpochs; ++e) one.train_epoch(e);
    ans::train::trainer<float> a(data(), cfg), b(data(), cfg);
    auto ex = make_lg(a, c.sc);
    make_lg(b, c.sc);
    for (int e = 0; e < kLgEpochs; ++e) a.train_epoch(e), b.train_epoch(e);
    check(a.embeddings() == b.embeddings() && a.ans_parameters().W_u == b.ans_parameters().W_u,
          n + ": two data-parallel runs are bit-identical");
    check(same_on_every_rank(a.embeddings()), n + ": every rank holds the same parameters (after the epoch's gather)");
    check_epoch_terms(a, one, n);
    const double diff = max_abs_diff(a.embeddings(), one.embeddings());
    const double scale = double(one.embeddings().cwiseAbs().maxCoeff());
    std::snprintf(buf, sizeof buf, "%s: %d ranks against 1 process after %d epochs: max |ΔE0| = %.2e (max |E0| = %.3f), tolerance 1e-5·max|E0|",
                  c.name, P, kLgEpochs, diff, scale);
    check(P == 1 ? diff == 0 : diff <= 1e-5 * scale, buf);
    const auto ma = a.evaluate("test"), mo = one.evaluate("test");
    std::snprintf(buf, sizeof buf, "%s: test Recall@20 %.5f (data-parallel) against %.5f (1 process)", c.name,
                  ma.at("Recall@20"), mo.at("Recall@20"));
    check(std::fabs(ma.at("Recall@20") - mo.at("Recall@20")) <= 2e-3, buf);
    // the schedule and the node blocks change only the speed: the other schedule, and lopsided blocks, give the same bits
    {
      ans::train::trainer<float> other(data(), cfg);
      const ans::index_t nn = a.graph().n_nodes();
      std::vector<ans::index_t> lopsided(static_cast<size_t>(P) + 1, nn);
      for (int r = 0; r < P; ++r) lopsided[r] = nn * r / (4 * P);  // most rows on the last rank
      make_lg(other, sched::rows, lopsided);
      for (int e = 0; e < kLgEpochs; ++e) other.train_epoch(e);
      check(other.embeddings() == a.embeddings(),
            n + ": row blocks [0, N/8, N) (2 ranks) give the same bits as the run above");
    }
    // bytes: the per-row gradients (dU, dP, dN; pooled with λ on row blocks: and their ego rows), the layer and E0 all-gathers
    // (row blocks), the moments (and E0 for the chains) at each epoch's end, 4 + 4 + 8 + 4·n_dense per exchange,
    // 8·K per pair of the shard (its candidate ids)
    {
      const auto& st = ex->stats();
      const std::uint64_t d = std::uint64_t(cfg.dim), K = std::uint64_t(cfg.num_neg), L = std::uint64_t(c.layers);
      // pooled: separate ego rows, gathered on row blocks; the chains compute the other shard's (squared R)
      const std::uint64_t Hd = c.concat ? (L + 1) * d : d, reg_w = c.concat || c.sc == sched::bipartite ? 0 : d;
      const auto& off = a.node_block_offsets();
      const std::uint64_t block = std::uint64_t(off[g_rank + 1] - off[g_rank]);
      const ans::index_t nnz = data().train.nnz(), B = cfg.batch_size;
      std::uint64_t sync = 0, cand_ids = 0;
      for (int e = 0; e < kLgEpochs; ++e) {
        for (ans::index_t lo = 0; lo < nnz; lo += B) {
          const ans::index_t Bb = std::min(B, nnz - lo);
          const auto [r0, r1] = ans::train::shard_rows(Bb, g_rank, P);
          const std::uint64_t Br = std::uint64_t(r1 - r0);
          sync += 4 * Br * (2 + K) * (Hd + reg_w);
          cand_ids += 8 * Br * K;  // the shard's candidate ids, all-gathered
          if (c.sc == sched::rows) sync += 4 * block * d * (2 * L);  // L forward, L − 1 backward, E0
        }
        const std::uint64_t moments = c.o == optimizer_kind::adam ? 2 : 0;
        sync += 4 * block * d * (moments + (c.sc == sched::bipartite ? 1 : 0));
      }
      const std::uint64_t dense = 2 * d * d + 3 * d + 1, fixed = st.steps * (4 + 4 + 8 + 4 * dense) + cand_ids;
      std::snprintf(buf, sizeof buf, "%s: rank %d sent %llu bytes in row-block all-gathers over %llu steps, formula %llu",
                    c.name, g_rank, (unsigned long long)st.sync_bytes, (unsigned long long)st.steps, (unsigned long long)sync);
      check(st.sync_bytes == sync, buf);
      // the chains' rows: at most ⌈H/2⌉ hops of each node of the other shard (fewer when nodes repeat)
      std::uint64_t bound = 0;
      for (int e = 0; e < kLgEpochs; ++e)
        for (ans::index_t lo = 0; lo < nnz; lo += B) {
          const ans::index_t Bb = std::min(B, nnz - lo);
          const auto [o0, o1] = ans::train::shard_rows(Bb, 1 - g_rank, 2);
          bound += 4 * std::uint64_t(o1 - o0) * (2 + K) * ((L + 2) / 2) * d;
        }
      std::snprintf(buf, sizeof buf, "%s: rank %d sent %llu bytes of chain rows (bound %llu), %llu in total = syncs + rows + %llu",
                    c.name, g_rank, (unsigned long long)st.swap_bytes, (unsigned long long)(c.sc == sched::bipartite ? bound : 0),
                    (unsigned long long)st.bytes_sent, (unsigned long long)fixed);
      check((c.sc == sched::bipartite ? st.swap_bytes > 0 && st.swap_bytes <= bound : st.swap_bytes == 0) &&
                st.bytes_sent == st.sync_bytes + st.swap_bytes + fixed && st.rows_sent == 0,
            buf);
    }
    // resume: rank 0's checkpoint after epoch 1, loaded by every rank, continues exactly
    const std::string dir = "/tmp/ans_mpi_test_ckpt_lg" + std::to_string(c.layers);
    ans::train::trainer<float> r1(data(), cfg);
    make_lg(r1, c.sc);
    for (int e = 0; e < kLgEpochs - 1; ++e) r1.train_epoch(e);
    if (g_rank == 0) r1.save(dir);
    comm.barrier();
    ans::train::trainer<float> resumed(data(), cfg);
    make_lg(resumed, c.sc);
    resumed.load(dir);
    resumed.train_epoch(kLgEpochs - 1);
    check(resumed.embeddings() == a.embeddings(), n + ": every rank resumes from rank 0's checkpoint exactly");
    comm.barrier();
    if (g_rank == 0) std::system(("rm -rf '" + dir + "'").c_str());
  }
  // refused configurations name the reason
  {
    auto cfg = config(sampler_kind::dns, optimizer_kind::adam);
    cfg.n_layers = 2;
    ans::train::trainer<float> t(data(), cfg);
    bool refused = false;
    try {
      ans::dist::make_data_parallel(t, comm);
    } catch (const ans::error& e) {
      refused = std::string(e.what()).find("LightGCN with ANS") != std::string::npos;
    }
    check(P == 1 || refused, "LightGCN with DNS is refused with a message naming what runs");
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0) std::printf("%s\n", total == 0 ? "all checks passed" : "checks failed");
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
