/// @file interactions.hpp
/// @brief User x item interactions held as CSR: rows sorted, duplicates merged and counted.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ans/config.hpp"

namespace ans::data {

/// Binary user x item interaction matrix in compressed sparse row form.
///
/// Row u holds the items of user u in increasing order, each once; `counts[j]` says how many raw
/// interactions were merged into nonzero j (1 when the source had no duplicates).
struct interactions {
  index_t n_users = 0;
  index_t n_items = 0;
  std::vector<index_t> indptr{0};       ///< size n_users + 1
  std::vector<id_type> indices;    ///< item ids, sorted within each row
  std::vector<std::uint32_t> counts;    ///< raw interactions merged into each nonzero

  index_t nnz() const { return static_cast<index_t>(indices.size()); }
  index_t row_size(index_t u) const { return indptr[u + 1] - indptr[u]; }
  const id_type* row_begin(index_t u) const { return indices.data() + indptr[u]; }
  const id_type* row_end(index_t u) const { return indices.data() + indptr[u + 1]; }

  /// True when user u has interacted with item i (binary search in the sorted row).
  bool contains(index_t u, index_t i) const {
    if (u < 0 || u >= n_users) return false;
    return std::binary_search(row_begin(u), row_end(u), static_cast<id_type>(i));
  }

  /// Sum of counts minus nnz: how many duplicate raw interactions were merged.
  index_t merged_duplicates() const {
    index_t total = 0;
    for (auto c : counts) total += static_cast<index_t>(c) - 1;
    return total;
  }
};

/// Builds the CSR from (user, item) pairs in O(n + n_users) (counting sort by user, then a sort per row).
/// Duplicate pairs are merged and counted. Throws ans::error for ids outside [0, n_users) x [0, n_items).
inline interactions from_pairs(index_t n_users, index_t n_items,
                               const std::vector<std::pair<index_t, index_t>>& pairs) {
  ANS_CHECK(n_users >= 0 && n_items >= 0, "negative shape " << n_users << " x " << n_items);
  ANS_CHECK(n_items <= INT32_MAX, "n_items " << n_items << " does not fit the 32-bit item index");
  interactions m;
  m.n_users = n_users;
  m.n_items = n_items;
  std::vector<index_t> ptr(static_cast<size_t>(n_users) + 1, 0);
  for (const auto& [u, i] : pairs) {
    ANS_CHECK(u >= 0 && u < n_users, "user id " << u << " outside [0, " << n_users << ")");
    ANS_CHECK(i >= 0 && i < n_items, "item id " << i << " outside [0, " << n_items << ")");
    ++ptr[u + 1];
  }
  for (index_t u = 0; u < n_users; ++u) ptr[u + 1] += ptr[u];
  std::vector<id_type> raw(pairs.size());
  {
    std::vector<index_t> fill(ptr.begin(), ptr.end() - 1);
    for (const auto& [u, i] : pairs) raw[fill[u]++] = static_cast<id_type>(i);
  }
  m.indptr.assign(static_cast<size_t>(n_users) + 1, 0);
  m.indices.reserve(raw.size());
  m.counts.reserve(raw.size());
  for (index_t u = 0; u < n_users; ++u) {
    auto b = raw.begin() + ptr[u], e = raw.begin() + ptr[u + 1];
    std::sort(b, e);
    for (auto it = b; it != e; ++it) {
      if (it != b && *it == *(it - 1)) {
        ++m.counts.back();
      } else {
        m.indices.push_back(*it);
        m.counts.push_back(1);
      }
    }
    m.indptr[u + 1] = static_cast<index_t>(m.indices.size());
  }
  return m;
}

}  // namespace ans::data
