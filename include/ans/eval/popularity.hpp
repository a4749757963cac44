/// @file popularity.hpp
/// @brief The most-popular baseline: score(u, i) = training count of item i, for every user.
#pragma once

#include <utility>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"
#include "ans/types.hpp"

namespace ans::eval {

/// Item popularity in `train`: the number of users per item (`use_raw_counts = false`) or the number of
/// raw interactions including merged duplicates (`true`). Returns an [n_items] vector.
template <class Scalar>
vector<Scalar> popularity_scores(const data::interactions& train, bool use_raw_counts = false) {
  vector<Scalar> s = vector<Scalar>::Zero(train.n_items);
  for (index_t j = 0; j < train.nnz(); ++j)
    s[train.indices[j]] += use_raw_counts && !train.counts.empty() ? static_cast<Scalar>(train.counts[j]) : Scalar(1);
  return s;
}

/// Rank-1 factors that reproduce the popularity ranking through full_ranking / sampled_ranking:
/// user factors [n_users, 1] of ones and item factors [n_items, 1] = popularity_scores. Ties are then
/// broken by the lower item id (full_ranking) or against the positive (sampled_ranking).
template <class Scalar>
std::pair<matrix<Scalar>, matrix<Scalar>> popularity_factors(const data::interactions& train,
                                                             bool use_raw_counts = false) {
  matrix<Scalar> users = matrix<Scalar>::Ones(train.n_users, 1);
  matrix<Scalar> items = popularity_scores<Scalar>(train, use_raw_counts);
  return {std::move(users), std::move(items)};
}

}  // namespace ans::eval
