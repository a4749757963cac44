// Example (a): an MF + ANS training loop written by hand from the components (docs/tutorial.md, part 1).
//   mf-ans-loop [EPOCHS] [DATASET_DIR]      (no folder: a synthetic dataset with planted structure)
// The pieces: a pair batcher and a candidate sampler, an embedding table (gather / duplicate-safe scatter /
// touched rows), the fused ANS loss, a row-sparse Adam for the table and one Adam for the gate and margin
// parameter group; full-ranking Recall@20 / NDCG@20 on the test split at the end of every epoch.
#include <cstdio>
#include <string>
#include <vector>

#include <ans/ans.hpp>
#include <ans/model/embedding_table.hpp>
#include <ans/optim/param_group.hpp>

int main(int argc, char** argv) {
  using namespace ans;
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 3;
  const data::dataset ds = argc > 2 ? data::load_any(argv[2]) : data::generate_synthetic({});
  const index_t nu = ds.n_users(), ni = ds.n_items(), d = 64, B = 2048, K = 16;
  const std::uint64_t seed = 0;

  // E0 = [users; items], xavier-uniform; its gradient table lives beside it
  model::embedding_table<float> E(nu + ni, d);
  auto init = sampling::stream(seed, 1);
  for (index_t r = 0; r < nu + ni; ++r)
    for (index_t j = 0; j < d; ++j)
      E.weights()(r, j) = float((2 * init.uniform01<double>() - 1) * std::sqrt(6.0 / double((r < nu ? nu : ni) + d)));
  optim::sparse_adam<float> table_opt(nu + ni, d, optim::adam_options{1e-3});

  // the ANS loss (fixed mode: the reference's bugs fixed), its parameters, and one optimiser for all of them
  ans_options opts = ans_options::make(mode::fixed);
  model::ans_loss<float> loss(opts);
  auto params = model::ans_params<float>::init(d, mode::fixed, seed + 1);
  auto grads = model::ans_params<float>::zeros(d);
  auto group = model::ans_param_group(params, grads);
  optim::group_adam<float> param_opt(group, optim::adam_options{1e-3});

  sampling::pair_batcher batcher(ds.train, B, seed);
  const sampling::uniform_sampler sampler(ds.train);
  std::vector<id_type> cands, pid, nid;  // node ids of the item rows (items are offset by nu)
  matrix<float> U, P, N, dU, dP, dN;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    batcher.start_epoch(epoch);
    double loss_sum = 0;
    const index_t nb = batcher.n_batches();
    for (index_t b = 0; b < nb; ++b) {
      const sampling::pair_batch batch = batcher.batch(b);
      const batch_shape s{batch.size, K, 1, d};  // MF: one hop
      cands.resize(size_t(s.B * K));
      sampling::sample_batch(sampler, batch, K, seed, cands.data());
      pid.resize(size_t(s.B)), nid.resize(size_t(s.B * K));
      for (index_t j = 0; j < s.B; ++j) pid[j] = id_type(nu + batch.items[j]);
      for (index_t j = 0; j < s.B * K; ++j) nid[j] = id_type(nu + cands[j]);
      U.resize(s.B, d), P.resize(s.B, d), N.resize(s.B * K, d);
      dU.resize(s.B, d), dP.resize(s.B, d), dN.resize(s.B * K, d);
      E.gather(batch.users, s.B, U), E.gather(pid.data(), s.B, P), E.gather(nid.data(), s.B * K, N);

      // γ warm-up over the first 10 epochs (fixed mode's default in the trainer, docs/results.md)
      loss.options().gamma = opts.gamma * std::min(1.0, double(epoch * nb + b) / double(10 * nb));
      const augment::counter_uniform_source noise{seed, std::uint64_t(epoch) << 32 | std::uint64_t(b)};
      // the regulariser acts on the same rows (hop 0 = the rows themselves): ego rows and gradients alias them
      const model::ego_rows<float> ego{U.data(), P.data(), N.data(), d};
      const model::ego_grads<float> ego_g{dU.data(), dP.data(), dN.data(), d};
      const auto& t = loss.forward_backward(s, U, P, N, params, noise, dU, dP, dN, grads, ego, ego_g);
      loss_sum += t.total;

      // ∂L/∂E0: scatter the row gradients (repeated ids add up), then step only the touched rows
      E.scatter_add(batch.users, s.B, dU), E.scatter_add(pid.data(), s.B, dP), E.scatter_add(nid.data(), s.B * K, dN);
      const auto& rows = E.touched();
      table_opt.step_table(E.weights().data(), rows.data(), E.grad().data(), index_t(rows.size()));
      E.clear_touched();
      param_opt.step();  // Adam on W_u, W_i, b_u, b_i, w_m, c_m, then their gradients are zeroed
    }
    eval::full_ranking_options fo;
    fo.ks = {20};
    const auto m = eval::full_ranking<float>(E.weights().topRows(nu), E.weights().bottomRows(ni), ds.train, ds.test,
                                             {}, fo);
    std::printf("epoch %d  loss %.4f  test Recall@20 %.4f  NDCG@20 %.4f\n", epoch + 1, loss_sum / double(nb),
                m.at("Recall@20"), m.at("NDCG@20"));
  }
  return 0;
}
