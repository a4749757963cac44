/// @file impression_ranking.hpp
/// @brief Impression-mode evaluation, ReChorus's `ImpressionRunner`: each list's positives are ranked among
/// the list's own negatives, and HR@K / NDCG@K are averaged over lists.
///
/// Per list (the first `max_pos` positives and the first `max_neg` negatives, ReChorus's test_max_pos_item and
/// test_max_neg_item, 20 each), with scores s = <ē_u, ē_i>:
///   - every positive's score is lowered by ε = 1e-6 in double precision (ReChorus subtracts `eps·a_mask`, a
///     float64 array, from the float32 predictions), and the candidates are sorted by that value, descending,
///     ties in column order (mergesort), positives' columns first: a positive tied with a negative after the
///     ε ranks above it, one within ε of it ranks below;
///   - rel_r = 1 when rank r (0-based) holds a positive; P = the number of positives ranked;
///   - NDCG@K = Σ_{r<K} rel_r / log2(r + 2)  /  Σ_{r<min(K,P)} 1 / log2(r + 2);
///   - HR@K   = 1 when some positive is in the first K (ReChorus divides the hits by min(P, K), then sets
///              every positive value to 1).
/// A NaN score ranks after every number (numpy's argsort puts NaN last).
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/impression.hpp"
#include "ans/eval/metrics.hpp"
#include "ans/types.hpp"

namespace ans::eval {

/// Options of impression_ranking: ReChorus's defaults.
struct impression_ranking_options {
  std::vector<index_t> ks{1, 2, 3, 5, 10};
  std::vector<metric_kind> kinds{metric_kind::ndcg, metric_kind::hit};
  index_t max_pos = 20;  ///< test_max_pos_item
  index_t max_neg = 20;  ///< test_max_neg_item
  double eps = 1e-6;     ///< the positives' tie-break offset
};

/// Row kernel: the metrics of one list from its scores, written to out[s] for each spec s (HR and NDCG only).
/// `order` is workspace of at least np + nn entries.
template <class Scalar>
void impression_list_metrics(const Scalar* pos_scores, index_t np, const Scalar* neg_scores, index_t nn, double eps,
                             const std::vector<metric_spec>& specs, std::vector<index_t>& order, double* out) {
  const index_t n = np + nn;
  order.resize(static_cast<size_t>(n));
  auto value = [&](index_t c) {  // the sorted value of column c (positives 0..np-1, then negatives)
    const double v = c < np ? double(pos_scores[c]) - eps : double(neg_scores[c - np]);
    return std::isnan(v) ? -HUGE_VAL : v;
  };
  auto is_nan = [&](index_t c) { return std::isnan(c < np ? double(pos_scores[c]) : double(neg_scores[c - np])); };
  for (index_t c = 0; c < n; ++c) order[c] = c;
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    const bool na = is_nan(a), nb = is_nan(b);
    if (na != nb) return nb;  // NaN last
    return value(a) > value(b);
  });
  for (size_t s = 0; s < specs.size(); ++s) {
    const index_t K = specs[s].k;
    if (specs[s].kind == metric_kind::hit) {
      double hit = 0;
      for (index_t r = 0; r < std::min(K, n); ++r) hit = order[r] < np ? 1.0 : hit;
      out[s] = hit;
    } else {
      double dcg = 0;
      for (index_t r = 0; r < std::min(K, n); ++r)
        if (order[r] < np) dcg += dcg_gain(r + 1);
      out[s] = np > 0 ? dcg / idcg_at(K, np) : 0.0;
    }
  }
}

/// Mean HR@K / NDCG@K over the lists of `lists` (keys "HR@2", "NDCG@2", ...), scores <user_factors.row(u),
/// item_factors.row(i)>. Parallel over lists; deterministic and thread-count independent (per-list values are
/// summed in list order).
template <class Scalar>
std::map<std::string, double> impression_ranking(const Eigen::Ref<const matrix<Scalar>>& user_factors,
                                                 const Eigen::Ref<const matrix<Scalar>>& item_factors,
                                                 const data::impression_lists& lists,
                                                 const impression_ranking_options& opt = {}) {
  ANS_CHECK(user_factors.cols() == item_factors.cols(),
            "impression_ranking: user width " << user_factors.cols() << " != item width " << item_factors.cols());
  ANS_CHECK(opt.max_pos >= 1 && opt.max_neg >= 1,
            "impression_ranking: max_pos and max_neg must be >= 1, got " << opt.max_pos << " and " << opt.max_neg);
  const auto specs = make_specs(opt.kinds, opt.ks);
  for (const auto& s : specs)
    ANS_CHECK(s.kind == metric_kind::hit || s.kind == metric_kind::ndcg,
              "impression_ranking: " << s.name() << " is not an impression metric (HR and NDCG, as ReChorus)");
  const index_t L = lists.size(), S = static_cast<index_t>(specs.size());
  ANS_CHECK(L > 0, "impression_ranking: no lists");
  for (index_t l = 0; l < L; ++l) {  // serial: an exception must not leave a parallel region
    ANS_CHECK(lists.users[l] >= 0 && lists.users[l] < user_factors.rows(),
              "impression_ranking: list " << l << ": user " << lists.users[l] << " outside [0, " << user_factors.rows() << ")");
  }
  for (const auto* v : {&lists.pos, &lists.neg})
    for (auto i : *v)
      ANS_CHECK(i >= 0 && i < item_factors.rows(),
                "impression_ranking: item " << i << " outside [0, " << item_factors.rows() << ")");
  std::vector<double> per(static_cast<size_t>(L * S));
#if ANS_HAS_OPENMP
#pragma omp parallel if (L > 256)
#endif
  {
    std::vector<Scalar> ps(static_cast<size_t>(opt.max_pos)), ns(static_cast<size_t>(opt.max_neg));
    std::vector<index_t> order;
#if ANS_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (index_t l = 0; l < L; ++l) {
      const auto u = user_factors.row(lists.users[l]);
      const index_t np = std::min(lists.n_pos(l), opt.max_pos), nn = std::min(lists.n_neg(l), opt.max_neg);
      for (index_t j = 0; j < np; ++j) ps[j] = u.dot(item_factors.row(lists.pos_of(l)[j]));
      for (index_t j = 0; j < nn; ++j) ns[j] = u.dot(item_factors.row(lists.neg_of(l)[j]));
      impression_list_metrics(ps.data(), np, ns.data(), nn, opt.eps, specs, order, per.data() + l * S);
    }
  }
  std::map<std::string, double> out;
  for (index_t s = 0; s < S; ++s) {
    double sum = 0;
    for (index_t l = 0; l < L; ++l) sum += per[l * S + s];
    out[specs[s].name()] = sum / double(L);
  }
  return out;
}

}  // namespace ans::eval
