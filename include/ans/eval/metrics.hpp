/// @file metrics.hpp
/// @brief Top-K ranking metrics on one ranked list: Recall, NDCG, HR, Precision, MRR.
///
/// A ranked list is given as relevance flags `rel[0..len)`: rel[r] != 0 when the item at rank r+1 is a
/// test item. `n_test` = |T_u| (the number of relevant items, which may exceed len or K).
///   Recall@K    = (#hits in top K) / n_test
///   Precision@K = (#hits in top K) / K
///   HR@K        = [#hits in top K > 0]
///   MRR@K       = 1 / (rank of the first hit) if that rank <= K, else 0
///   NDCG@K      = DCG@K / IDCG@K,  DCG@K = Σ_{r<=K, hit} 1/log2(r+1),  IDCG@K = Σ_{r=1}^{min(K,n_test)} 1/log2(r+1)
/// Ranks beyond len count as misses (a list shorter than K, e.g. when masking leaves fewer items).
/// A user with n_test = 0 has every metric 0 (callers skip such users).
#pragma once

#include <algorithm>
#include <cctype>
#include <exception>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ans/config.hpp"

namespace ans::eval {

/// Which metric.
enum class metric_kind { recall, ndcg, hit, precision, mrr };

/// Printable prefix: "Recall", "NDCG", "HR", "Precision", "MRR".
inline const char* metric_prefix(metric_kind k) {
  switch (k) {
    case metric_kind::recall: return "Recall";
    case metric_kind::ndcg: return "NDCG";
    case metric_kind::hit: return "HR";
    case metric_kind::precision: return "Precision";
    case metric_kind::mrr: return "MRR";
  }
  return "?";
}

/// A metric at a cutoff, e.g. {ndcg, 20} named "NDCG@20".
struct metric_spec {
  metric_kind kind;
  index_t k;
  std::string name() const { return std::string(metric_prefix(kind)) + "@" + std::to_string(k); }
};

/// Parses "Recall@20", "NDCG@5", "HR@10" (also "Hit@10"), "Precision@10", "MRR@10" (case-insensitive).
inline metric_spec parse_metric(const std::string& s) {
  const auto at = s.find('@');
  ANS_CHECK(at != std::string::npos && at + 1 < s.size(), "metric '" << s << "' is not of the form Name@K");
  std::string name = s.substr(0, at);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  index_t k = 0;
  try {
    size_t used = 0;
    k = std::stoll(s.substr(at + 1), &used);
    ANS_CHECK(used == s.size() - at - 1, "");
  } catch (const std::exception&) {
    ANS_THROW("metric '" << s << "': cutoff after '@' is not an integer");
  }
  ANS_CHECK(k >= 1, "metric '" << s << "': K must be >= 1");
  metric_kind kind;
  if (name == "recall") kind = metric_kind::recall;
  else if (name == "ndcg") kind = metric_kind::ndcg;
  else if (name == "hr" || name == "hit") kind = metric_kind::hit;
  else if (name == "precision") kind = metric_kind::precision;
  else if (name == "mrr") kind = metric_kind::mrr;
  else ANS_THROW("unknown metric '" << s << "' (expected Recall, NDCG, HR, Precision or MRR)");
  return {kind, k};
}

/// Every kind in `kinds` at every cutoff in `ks` (kind-major: Recall@5, Recall@20, NDCG@5, ...).
inline std::vector<metric_spec> make_specs(const std::vector<metric_kind>& kinds, const std::vector<index_t>& ks) {
  std::vector<metric_spec> out;
  for (auto kind : kinds)
    for (auto k : ks) {
      ANS_CHECK(k >= 1, "metric cutoff K must be >= 1, got " << k);
      out.push_back({kind, k});
    }
  return out;
}

/// Largest cutoff among `specs` (0 when empty).
inline index_t max_k(const std::vector<metric_spec>& specs) {
  index_t m = 0;
  for (const auto& s : specs) m = std::max(m, s.k);
  return m;
}

/// 1/log2(r+1) for a 1-based rank r.
inline double dcg_gain(index_t rank) { return 1.0 / std::log2(static_cast<double>(rank) + 1.0); }

/// IDCG@K for n_test relevant items: Σ_{r=1}^{min(K, n_test)} 1/log2(r+1).
inline double idcg_at(index_t k, index_t n_test) {
  double s = 0;
  for (index_t r = 1; r <= std::min(k, n_test); ++r) s += dcg_gain(r);
  return s;
}

namespace detail {
inline index_t hits_at(const std::uint8_t* rel, index_t len, index_t k) {
  index_t h = 0;
  for (index_t r = 0; r < std::min(k, len); ++r) h += rel[r] != 0;
  return h;
}
}  // namespace detail

inline double recall_at(const std::uint8_t* rel, index_t len, index_t k, index_t n_test) {
  return n_test > 0 ? static_cast<double>(detail::hits_at(rel, len, k)) / static_cast<double>(n_test) : 0.0;
}
inline double precision_at(const std::uint8_t* rel, index_t len, index_t k, index_t n_test) {
  return n_test > 0 ? static_cast<double>(detail::hits_at(rel, len, k)) / static_cast<double>(k) : 0.0;
}
inline double hit_at(const std::uint8_t* rel, index_t len, index_t k, index_t n_test) {
  return n_test > 0 && detail::hits_at(rel, len, k) > 0 ? 1.0 : 0.0;
}
inline double mrr_at(const std::uint8_t* rel, index_t len, index_t k, index_t n_test) {
  if (n_test <= 0) return 0.0;
  for (index_t r = 0; r < std::min(k, len); ++r)
    if (rel[r]) return 1.0 / static_cast<double>(r + 1);
  return 0.0;
}
inline double ndcg_at(const std::uint8_t* rel, index_t len, index_t k, index_t n_test) {
  if (n_test <= 0) return 0.0;
  double dcg = 0;
  for (index_t r = 0; r < std::min(k, len); ++r)
    if (rel[r]) dcg += dcg_gain(r + 1);
  return dcg / idcg_at(k, n_test);
}

/// One metric of one ranked list.
inline double metric_value(const metric_spec& s, const std::uint8_t* rel, index_t len, index_t n_test) {
  switch (s.kind) {
    case metric_kind::recall: return recall_at(rel, len, s.k, n_test);
    case metric_kind::ndcg: return ndcg_at(rel, len, s.k, n_test);
    case metric_kind::hit: return hit_at(rel, len, s.k, n_test);
    case metric_kind::precision: return precision_at(rel, len, s.k, n_test);
    case metric_kind::mrr: return mrr_at(rel, len, s.k, n_test);
  }
  return 0.0;
}

/// All `specs` of one ranked list into out[0..specs.size()).
inline void ranking_metrics(const std::vector<metric_spec>& specs, const std::uint8_t* rel, index_t len,
                            index_t n_test, double* out) {
  for (size_t i = 0; i < specs.size(); ++i) out[i] = metric_value(specs[i], rel, len, n_test);
}

/// Convenience for tests and small callers: a ranked item list and a test set (any order).
inline std::vector<double> ranking_metrics(const std::vector<metric_spec>& specs,
                                           const std::vector<id_type>& ranked,
                                           std::vector<id_type> test_items) {
  std::sort(test_items.begin(), test_items.end());
  test_items.erase(std::unique(test_items.begin(), test_items.end()), test_items.end());
  std::vector<std::uint8_t> rel(ranked.size());
  for (size_t r = 0; r < ranked.size(); ++r)
    rel[r] = std::binary_search(test_items.begin(), test_items.end(), ranked[r]);
  std::vector<double> out(specs.size());
  ranking_metrics(specs, rel.data(), static_cast<index_t>(rel.size()), static_cast<index_t>(test_items.size()),
                  out.data());
  return out;
}

/// Sampled-protocol (ReChorus) metrics of a positive at 1-based `rank`:
///   HR@K = [rank <= K],  NDCG@K = [rank <= K] / log2(rank + 1).
/// Only `hit` and `ndcg` (and `mrr`: [rank <= K]/rank) are defined here; recall equals HR with one
/// positive and precision is HR/K.
inline double sampled_metric_value(const metric_spec& s, index_t rank) {
  const bool in = rank >= 1 && rank <= s.k;
  if (!in) return 0.0;
  switch (s.kind) {
    case metric_kind::hit:
    case metric_kind::recall: return 1.0;
    case metric_kind::ndcg: return dcg_gain(rank);
    case metric_kind::precision: return 1.0 / static_cast<double>(s.k);
    case metric_kind::mrr: return 1.0 / static_cast<double>(rank);
  }
  return 0.0;
}

}  // namespace ans::eval
