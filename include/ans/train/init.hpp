/// @file init.hpp
/// @brief The initial embedding table E0 = [users; items] of the trainers.
///
///   xavier: U(−a, a) per table, a = sqrt(6 / (rows + d))   (RecBole, LightGCN in ReChorus, MixGCF, DENS)
///   normal: N(0, σ²), Box–Muller on the same stream          (BPRMF in ReChorus: σ = 0.01; LightGCN-PyTorch: 0.1)
///
/// One counter-based stream keyed by (seed, "INIT") fills the users' rows, then the items' rows, so a table
/// depends only on (n_users, n_items, d, kind, σ, seed).
#pragma once

#include <cmath>
#include <cstdint>

#include "ans/config.hpp"
#include "ans/sampling/rng.hpp"
#include "ans/types.hpp"

namespace ans::train {

/// Initial embedding table: xavier-uniform per table or normal(0, init_std).
enum class init_kind { xavier, normal };

/// Resizes `e0` to (n_users + n_items) x d and fills it (see the file comment).
template <class Scalar>
void init_embeddings(matrix<Scalar>& e0, index_t n_users, index_t n_items, index_t d, init_kind kind,
                     double init_std, std::uint64_t seed) {
  ANS_CHECK(n_users >= 0 && n_items >= 0 && d > 0,
            "init_embeddings: shape " << n_users << " + " << n_items << " x " << d << " is not valid");
  ANS_CHECK(kind == init_kind::xavier || (init_std > 0 && std::isfinite(init_std)),
            "init_std must be positive, got " << init_std);
  e0.resize(n_users + n_items, d);
  auto r = sampling::stream(seed, 0x494E4954ULL /* "INIT" */);
  auto fill = [&](index_t row0, index_t rows) {
    const double a = std::sqrt(6.0 / double(rows + d));
    for (index_t i = row0 * d; i < (row0 + rows) * d; ++i) {
      if (kind == init_kind::xavier) {
        e0.data()[i] = Scalar((2.0 * r.template uniform01<double>() - 1.0) * a);
      } else {
        const double u1 = 1.0 - r.template uniform01<double>(), u2 = r.template uniform01<double>();
        e0.data()[i] = Scalar(init_std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
      }
    }
  };
  fill(0, n_users);
  fill(n_users, n_items);
}

}  // namespace ans::train
