// Example (b): LightGCN + DNS assembled from the trainer's policies (docs/tutorial.md, part 2).
//   lightgcn-dns [EPOCHS] [DATASET_DIR]     (no folder: a synthetic dataset with planted structure)
// The policies: the candidate sampler (popularity-weighted here, alpha = 0.5, instead of the default uniform
// one), the encoder (the default free table under a 3-layer LightGCN, mean readout), the negative selector
// (DNS: the best-scored of K = 16 candidates), dense Adam; fit() runs the epochs with a progress display and
// an evaluation callback (early stopping on Recall@20, higher is better).
#include <cstdio>
#include <string>

#include <ans/data/detect.hpp>
#include <ans/data/synthetic.hpp>
#include <ans/sampling/popularity.hpp>
#include <ans/train/fit.hpp>
#include <ans/train/trainer.hpp>

int main(int argc, char** argv) {
  using namespace ans;
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 5;
  const data::dataset ds = argc > 2 ? data::load_any(argv[2]) : data::generate_synthetic({});

  train::trainer_config cfg;
  cfg.sampler = train::sampler_kind::dns;  // the negative selector
  cfg.n_layers = 3;                        // LightGCN; ranked with the readout it trains (mean)
  cfg.dim = 64;
  cfg.num_neg = 16;
  cfg.batch_size = 2048;
  cfg.lr = 1e-3;
  cfg.reg_weight = 1e-4;
  cfg.optimizer = train::optimizer_kind::adam;
  cfg.topk = {20};

  // the candidate sampler policy: any type with sample(user, pos_item, rng, out) const
  using sampler_t = sampling::popularity_sampler;
  train::trainer<float, sampler_t> tr(ds, cfg, sampler_t(ds.train, 0.5));

  // callbacks: progress bar, evaluation every epoch with early stopping (patience 3)
  const std::string target = ds.dev.nnz() > 0 ? "dev" : "test";  // the synthetic set has no dev split
  train::progress_callback bar;
  train::evaluation<decltype(tr)> ev(target, "Recall@20", /*every=*/1, /*patience=*/3, train::direction::maximize);
  struct report {
    const train::evaluation<train::trainer<float, sampler_t>>& ev;
    void on_epoch_end(train::trainer<float, sampler_t>&, int epoch, double loss) const {
      std::printf("epoch %d: loss %.4f, %s Recall@20 %.4f NDCG@20 %.4f\n", epoch + 1, loss, "eval",
                  ev.last_metrics().at("Recall@20"), ev.last_metrics().at("NDCG@20"));
    }
  } rep{ev};
  const auto r = train::fit(tr, epochs, bar, ev, rep);  // callbacks run in this order

  std::printf("%d epochs%s; best %s Recall@20 %.4f at epoch %d\n", r.epochs_run, r.stopped_early ? " (stopped early)" : "",
              target.c_str(), ev.best_metrics().at("Recall@20"), ev.best_epoch());
  if (target == "dev") std::printf("test at the last epoch: Recall@20 %.4f\n", tr.evaluate("test").at("Recall@20"));
  return 0;
}
