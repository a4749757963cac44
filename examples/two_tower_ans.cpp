// Example (c): a user-defined encoder, two towers with item features, trained with the ANS loss through the
// trainer's Encoder policy (docs/tutorial.md, part 3).
//   two-tower-ans [EPOCHS] [ans|dns]   (a synthetic dataset whose item features are noisy copies of its factors)
// Users: a free table θ_u (n_users x d). Items: an id table V plus a linear tower over features X (n_items x f),
//   e_i = V_i + W x_i + b   (W: d x f, b: d),  so  ∂L/∂V_i = ∂L/∂e_i,  ∂L/∂W = Σ_i ∂L/∂e_i x_iᵀ,  ∂L/∂b = Σ_i ∂L/∂e_i.
// (Without V, hard-negative selection, DNS or ANS, shrinks the shared W towards 0 within an epoch: the selected
// negatives are those W scores highest, so their gradient points along −W for every pair. docs/tutorial.md.)
// The trainer runs the sampler, the ANS objective and the γ warm-up on E0 = [θ_u; V + X Wᵀ + b], hands ∂L/∂E0
// back to backward(), and step() applies one Adam over the encoder's parameter group.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <ans/data/synthetic.hpp>
#include <ans/optim/param_group.hpp>
#include <ans/train/trainer.hpp>

using ans::index_t;
using mat = ans::matrix<float>;
using vec = ans::vector<float>;

struct two_tower {
  index_t nu = 0;
  mat X;                    // item features, n_items x f
  mat theta_u, V, W;        // user table (nu x d), item id table (ni x d), item tower weight (d x f)
  vec b;                    // item tower bias (d)
  mat g_theta_u, g_V, g_W;  // their gradients
  vec g_b;
  ans::optim::param_group<float> group;
  std::unique_ptr<ans::optim::group_adam<float>> opt;

  two_tower(index_t n_users, mat features, index_t d, std::uint64_t seed) : nu(n_users), X(std::move(features)) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    theta_u = mat::NullaryExpr(nu, d, [&] { return nd(rng); });
    V = mat::NullaryExpr(X.rows(), d, [&] { return nd(rng); });
    W = mat::NullaryExpr(d, X.cols(), [&] { return nd(rng) / std::sqrt(float(X.cols())); });
    b = vec::Zero(d);
    g_theta_u = mat::Zero(nu, d), g_V = mat::Zero(X.rows(), d), g_W = mat::Zero(d, X.cols()), g_b = vec::Zero(d);
  }
  // Built once the object has its final address (the group keeps the addresses of the tensors).
  void make_optimiser() {
    group.add("theta_u", theta_u, g_theta_u).add("V", V, g_V).add("W", W, g_W).add("b", b, g_b);
    opt = std::make_unique<ans::optim::group_adam<float>>(group, ans::optim::adam_options{1e-3});
  }

  void forward(mat& e0) {  // E0 = [θ_u; X Wᵀ + b]
    e0.topRows(nu) = theta_u;
    e0.bottomRows(X.rows()).noalias() = X * W.transpose();
    e0.bottomRows(X.rows()).rowwise() += b.transpose();
    e0.bottomRows(X.rows()) += V;
  }
  void backward(const mat& g, const std::vector<index_t>& rows) {
    if (!opt) make_optimiser();
    for (index_t r : rows) {  // MF (L = 0): only the batch's rows have a gradient
      if (r < nu) {
        g_theta_u.row(r) += g.row(r);
      } else {
        g_W.noalias() += g.row(r).transpose() * X.row(r - nu);  // ∂W += ∂e_i x_iᵀ
        g_b += g.row(r).transpose();                            // ∂b += ∂e_i
        g_V.row(r - nu) += g.row(r);
      }
    }
  }
  void step() { opt->step(); }  // Adam on θ_u, W, b; then their gradients are zeroed
};

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 10;
  ans::data::synthetic_config sc;
  ans::data::synthetic_truth truth;
  const ans::data::dataset ds = ans::data::generate_synthetic(sc, &truth);
  // item features: the planted item factors plus noise, f = 16 (what a content tower would see)
  std::mt19937_64 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  mat X(ds.n_items(), sc.dim);
  for (index_t i = 0; i < X.size(); ++i) X.data()[i] = float(truth.item_factors[size_t(i)]) + noise(rng);

  ans::train::trainer_config cfg;  // ANS, MF (no propagation), fixed mode with its default γ warm-up
  cfg.sampler = argc > 2 && std::string(argv[2]) == "dns" ? ans::train::sampler_kind::dns : ans::train::sampler_kind::ans;
  cfg.m = ans::mode::fixed;
  cfg.dim = 32;
  cfg.batch_size = 1024;
  cfg.num_neg = 16;
  cfg.topk = {20};
  using trainer_t = ans::train::trainer<float, ans::sampling::uniform_sampler, two_tower>;
  trainer_t tr(ds, cfg, ans::sampling::uniform_sampler(ds.train), two_tower(ds.n_users(), X, cfg.dim, 3));
  for (int e = 0; e < epochs; ++e) {
    const double loss = tr.train_epoch(e);
    const auto m = tr.evaluate("test");
    std::printf("epoch %d: loss %.4f, test Recall@20 %.4f NDCG@20 %.4f\n", e + 1, loss, m.at("Recall@20"),
                m.at("NDCG@20"));
  }
  return 0;
}
