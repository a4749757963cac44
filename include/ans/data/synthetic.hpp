/// @file synthetic.hpp
/// @brief Deterministic synthetic implicit-feedback data with planted low-rank structure and power-law
/// item popularity, for tests, demos and benchmarks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/dataset.hpp"
#include "ans/data/random.hpp"

namespace ans::data {

/// Parameters of generate_synthetic. The defaults give about 60k interactions in a few milliseconds.
struct synthetic_config {
  index_t n_users = 2000;
  index_t n_items = 1500;
  int dim = 16;                        ///< rank of the latent factors
  double interactions_per_user = 30;   ///< mean items per user (log-normal spread, at least 2)
  double popularity_exponent = 1.0;    ///< item of popularity rank r has weight (r + 1)^-exponent
  double affinity = 4.0;               ///< beta: weight of <p_u, q_i> (factors are unit vectors)
  double test_fraction = 0.2;          ///< share of each user's items held out as test
  std::uint64_t seed = 42;
};

/// The planted model behind a synthetic dataset (optional output of generate_synthetic).
struct synthetic_truth {
  std::vector<double> user_factors;  ///< n_users x dim, row-major, unit rows
  std::vector<double> item_factors;  ///< n_items x dim, row-major, unit rows
  std::vector<double> popularity;    ///< n_items weights (sum 1)
};

namespace detail {

/// SplitMix64 step: derives independent per-user seeds from one seed.
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Vose alias table: O(1) draws from a discrete distribution.
struct alias_table {
  struct slot {
    double prob;         ///< keep slot i with this probability
    id_type alias;  ///< otherwise return this item
  };
  std::vector<slot> slots;  ///< one array of pairs: a draw touches one cache line

  explicit alias_table(const std::vector<double>& w) {
    const size_t n = w.size();
    slots.assign(n, slot{1.0, 0});
    double sum = 0;
    for (double x : w) sum += x;
    std::vector<double> p(n);
    std::vector<id_type> small, large;
    for (size_t i = 0; i < n; ++i) {
      p[i] = w[i] * static_cast<double>(n) / sum;
      (p[i] < 1 ? small : large).push_back(static_cast<id_type>(i));
    }
    while (!small.empty() && !large.empty()) {
      const auto s = small.back(), l = large.back();
      small.pop_back();
      slots[s] = slot{p[s], l};
      p[l] = (p[l] + p[s]) - 1;
      if (p[l] < 1) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (auto l : large) slots[l] = slot{1.0, l};
    for (auto s : small) slots[s] = slot{1.0, s};
  }

  id_type draw(rng_t& rng) const {
    const auto i = static_cast<id_type>(uniform_index(rng, slots.size()));
    return uniform01(rng) < slots[i].prob ? i : slots[i].alias;
  }
};

}  // namespace detail

/// Generates a synthetic dataset (format "synthetic", name "synthetic").
///
/// Model: item i gets popularity pop_i = (r_i + 1)^-popularity_exponent for a random rank permutation r,
/// users and items get random unit latent factors p_u, q_i in R^dim. User u draws k_u distinct items (log-normal
/// around interactions_per_user, at least 2, at most n_items / 2) with probability
/// ∝ pop_i * exp(affinity * <p_u, q_i>), sequentially without replacement. Sampling uses Gumbel-top-k: over all
/// items when n_items is small, otherwise over a pool of 4 k_u + 32 candidates drawn from the popularity alias
/// table (sampling-importance-resampling, O(k_u * dim) per user). Then round(test_fraction * k_u) random items
/// of each user (at least 1 when test_fraction > 0) go to test, the rest to train.
///
/// The result depends only on the config (users use seeds derived from `seed`; OpenMP does not change it).
inline dataset generate_synthetic(const synthetic_config& cfg = {}, synthetic_truth* truth = nullptr) {
  ANS_CHECK(cfg.n_users > 0 && cfg.n_items >= 4, "need n_users > 0 and n_items >= 4");
  ANS_CHECK(cfg.n_items <= INT32_MAX, "n_items too large");
  ANS_CHECK(cfg.dim > 0, "dim must be positive");
  ANS_CHECK(cfg.interactions_per_user >= 1, "interactions_per_user must be >= 1");
  ANS_CHECK(cfg.test_fraction >= 0 && cfg.test_fraction < 1, "test_fraction must be in [0, 1)");
  const index_t nu = cfg.n_users, ni = cfg.n_items;
  const int dim = cfg.dim;
  rng_t rng(cfg.seed);
  synthetic_truth local;
  synthetic_truth& t = truth ? *truth : local;
  auto unit_rows = [&](std::vector<double>& f, index_t n) {
    f.resize(static_cast<size_t>(n) * dim);
    for (index_t r = 0; r < n; ++r) {
      double norm = 0;
      for (int k = 0; k < dim; ++k) {
        const double x = standard_normal(rng);
        f[r * dim + k] = x;
        norm += x * x;
      }
      norm = std::sqrt(norm) + 1e-300;
      for (int k = 0; k < dim; ++k) f[r * dim + k] /= norm;
    }
  };
  unit_rows(t.item_factors, ni);
  unit_rows(t.user_factors, nu);
  {
    std::vector<id_type> rank(static_cast<size_t>(ni));
    for (index_t i = 0; i < ni; ++i) rank[i] = static_cast<id_type>(i);
    shuffle(rank.begin(), rank.end(), rng);
    t.popularity.resize(static_cast<size_t>(ni));
    double sum = 0;
    for (index_t i = 0; i < ni; ++i) sum += t.popularity[i] = std::pow(rank[i] + 1.0, -cfg.popularity_exponent);
    for (auto& p : t.popularity) p /= sum;
  }
  // Per-user sizes, drawn sequentially so they do not depend on the thread count.
  const double sigma = 0.5;
  const index_t k_max = std::max<index_t>(2, ni / 2);
  std::vector<index_t> k_of(static_cast<size_t>(nu)), n_test(static_cast<size_t>(nu));
  std::vector<index_t> train_ptr(static_cast<size_t>(nu) + 1, 0), test_ptr(static_cast<size_t>(nu) + 1, 0);
  for (index_t u = 0; u < nu; ++u) {
    const double z = standard_normal(rng);
    auto k = static_cast<index_t>(std::llround(cfg.interactions_per_user * std::exp(sigma * z - sigma * sigma / 2)));
    k = std::clamp<index_t>(k, 2, k_max);
    index_t nt = static_cast<index_t>(std::llround(cfg.test_fraction * static_cast<double>(k)));
    if (cfg.test_fraction > 0) nt = std::clamp<index_t>(nt, 1, k - 1);
    k_of[u] = k;
    n_test[u] = nt;
    train_ptr[u + 1] = train_ptr[u] + (k - nt);
    test_ptr[u + 1] = test_ptr[u] + nt;
  }
  dataset d;
  d.name = "synthetic";
  d.format = "synthetic";
  d.train.n_users = d.test.n_users = d.dev.n_users = nu;
  d.train.n_items = d.test.n_items = d.dev.n_items = ni;
  d.dev.indptr.assign(static_cast<size_t>(nu) + 1, 0);
  d.train.indptr = train_ptr;
  d.test.indptr = test_ptr;
  d.train.indices.resize(static_cast<size_t>(train_ptr[nu]));
  d.test.indices.resize(static_cast<size_t>(test_ptr[nu]));
  d.train.counts.assign(d.train.indices.size(), 1);
  d.test.counts.assign(d.test.indices.size(), 1);
  const detail::alias_table pop_table(t.popularity);
  std::vector<double> log_pop(static_cast<size_t>(ni));
  for (index_t i = 0; i < ni; ++i) log_pop[i] = std::log(t.popularity[i]);
  const double beta = cfg.affinity;
  // float copy of the item factors for scoring: half the memory traffic of the random item lookups
  const std::vector<float> item_f(t.item_factors.begin(), t.item_factors.end());
  const std::uint64_t user_seed_base = detail::splitmix64(cfg.seed ^ 0x5eedull);

#if ANS_HAS_OPENMP
#pragma omp parallel
#endif
  {
    std::vector<std::pair<double, id_type>> keys;
    std::vector<id_type> pool, chosen;
#if ANS_HAS_OPENMP
#pragma omp for schedule(dynamic, 256)
#endif
    for (index_t u = 0; u < nu; ++u) {
      rng_t ur(detail::splitmix64(user_seed_base + static_cast<std::uint64_t>(u)));
      const index_t k = k_of[u];
      const double* p = &t.user_factors[u * dim];
      auto score = [&](id_type i) {
        const float* q = &item_f[static_cast<index_t>(i) * dim];
        float s = 0;
        for (int c = 0; c < dim; ++c) s += static_cast<float>(p[c]) * q[c];
        return beta * static_cast<double>(s);
      };
      auto gumbel = [&]() { return -std::log(-std::log(uniform_open01(ur))); };
      keys.clear();
      const index_t pool_size = 4 * k + 32;
      if (pool_size >= ni) {  // exact Gumbel-top-k over all items
        for (index_t i = 0; i < ni; ++i)
          keys.emplace_back(log_pop[i] + score(static_cast<id_type>(i)) + gumbel(),
                            static_cast<id_type>(i));
      } else {  // SIR: popularity proposals, importance weight exp(beta s), Gumbel-top-k over particles
        pool.resize(static_cast<size_t>(pool_size));
        for (auto& i : pool) i = pop_table.draw(ur);
        std::sort(pool.begin(), pool.end());
        for (size_t a = 0; a < pool.size();) {
          size_t b = a;
          while (b < pool.size() && pool[b] == pool[a]) ++b;
          // the max of m Gumbel keys with equal weight is one Gumbel key shifted by log m
          keys.emplace_back(std::log(static_cast<double>(b - a)) + score(pool[a]) + gumbel(), pool[a]);
          a = b;
        }
        // Rare case (tiny catalogue relative to k): top up with unseen items by exact keys.
        if (static_cast<index_t>(keys.size()) < k) {
          std::vector<char> in(static_cast<size_t>(ni), 0);
          for (auto& kv : keys) in[kv.second] = 1;
          for (index_t i = 0; i < ni; ++i)
            if (!in[i])
              keys.emplace_back(-1e6 + log_pop[i] + score(static_cast<id_type>(i)) + gumbel(),
                                static_cast<id_type>(i));
        }
      }
      std::partial_sort(keys.begin(), keys.begin() + k, keys.end(),
                        [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
      chosen.resize(static_cast<size_t>(k));
      for (index_t j = 0; j < k; ++j) chosen[j] = keys[j].second;
      shuffle(chosen.begin(), chosen.end(), ur);  // random train/test assignment
      const index_t nt = n_test[u];
      std::sort(chosen.begin(), chosen.begin() + nt);
      std::sort(chosen.begin() + nt, chosen.end());
      std::copy(chosen.begin(), chosen.begin() + nt, d.test.indices.begin() + test_ptr[u]);
      std::copy(chosen.begin() + nt, chosen.end(), d.train.indices.begin() + train_ptr[u]);
    }
  }
  d.report.raw_train = d.train.nnz();
  d.report.raw_test = d.test.nnz();
  d.report.users_without_test = 0;
  for (index_t u = 0; u < nu; ++u)
    if (d.test.row_size(u) == 0) ++d.report.users_without_test;
  return d;
}

}  // namespace ans::data
