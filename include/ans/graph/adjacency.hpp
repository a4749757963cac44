/// @file adjacency.hpp
/// @brief The symmetric normalised user-item adjacency `Â = D^-1/2 A D^-1/2`, built straight into CSR.
///
/// Nodes are users first, then items: node `u` is user u, node `n_users + i` is item i, N = n_users + n_items.
/// A is the symmetric bipartite adjacency without self-loops (binary: a pair seen twice is one edge), and
/// `D = rowcount(A) + 1e-7`, as in the reference (`ans.py` line 99), so degree-0 nodes get an empty row and
/// no division by zero. Building takes O(nnz + N) time and memory; no N x N structure is ever formed.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ans/config.hpp"
#include "ans/data/interactions.hpp"

namespace ans::graph {

/// Row-major CSR of `Â`. Rows are sorted by column; the matrix is symmetric.
template <class Scalar>
struct normalized_adjacency {
  index_t n_users = 0;
  index_t n_items = 0;
  std::vector<index_t> indptr{0};     ///< size n_nodes() + 1
  std::vector<id_type> indices;  ///< column (node) ids
  std::vector<Scalar> values;         ///< `1/sqrt((deg_r + 1e-7)(deg_c + 1e-7))`

  index_t n_nodes() const { return n_users + n_items; }
  index_t nnz() const { return static_cast<index_t>(indices.size()); }
  /// false for the node counts alone (node_counts_only): enough for L = 0, refused by propagation.
  bool has_edges() const { return static_cast<index_t>(indptr.size()) == n_nodes() + 1; }
};

/// The node counts of `train` without the edges: all an L = 0 (MF) model needs, since no propagation runs
/// (saves the O(nnz) CSR: 13 MB on Gowalla). Propagating over it raises ans::error.
template <class Scalar>
normalized_adjacency<Scalar> node_counts_only(const data::interactions& train) {
  normalized_adjacency<Scalar> adj;
  adj.n_users = train.n_users;
  adj.n_items = train.n_items;
  return adj;
}

/// The degree offset of the reference (`D = rowcount(A>0) + 1e-7`).
inline constexpr double degree_epsilon = 1e-7;

/// Builds `Â` from a binary user x item interaction CSR (the training interactions) in O(nnz + N).
/// The weights are computed in double and rounded once to Scalar.
template <class Scalar>
normalized_adjacency<Scalar> build_normalized_adjacency(const data::interactions& train) {
  normalized_adjacency<Scalar> adj;
  const index_t nu = train.n_users, ni = train.n_items, n = nu + ni;
  ANS_CHECK(n < INT32_MAX, "graph with " << n << " nodes does not fit 32-bit node ids");
  adj.n_users = nu;
  adj.n_items = ni;
  // Degrees: users from the row lengths, items by counting (the CSR is binary: rows hold each item once).
  std::vector<index_t> item_deg(static_cast<size_t>(ni), 0);
  for (auto i : train.indices) ++item_deg[i];
  std::vector<double> dinv(static_cast<size_t>(n));
  for (index_t u = 0; u < nu; ++u) dinv[u] = 1.0 / std::sqrt(double(train.row_size(u)) + degree_epsilon);
  for (index_t i = 0; i < ni; ++i) dinv[nu + i] = 1.0 / std::sqrt(double(item_deg[i]) + degree_epsilon);

  const index_t e = train.nnz();
  adj.indptr.assign(static_cast<size_t>(n) + 1, 0);
  adj.indices.resize(static_cast<size_t>(2 * e));
  adj.values.resize(static_cast<size_t>(2 * e));
  // User rows come first and are the training rows shifted to item node ids.
  for (index_t u = 0; u < nu; ++u) adj.indptr[u + 1] = train.indptr[u + 1];
  for (index_t i = 0; i < ni; ++i) adj.indptr[nu + i + 1] = adj.indptr[nu + i] + item_deg[i];
  for (index_t u = 0; u < nu; ++u) {
    for (index_t j = train.indptr[u]; j < train.indptr[u + 1]; ++j) {
      const index_t col = nu + train.indices[j];
      adj.indices[j] = static_cast<id_type>(col);
      adj.values[j] = static_cast<Scalar>(dinv[u] * dinv[col]);
    }
  }
  // Item rows: the transpose, filled by scanning users in increasing order, so each item row is sorted.
  std::vector<index_t> fill(adj.indptr.begin() + nu, adj.indptr.end() - 1);
  for (index_t u = 0; u < nu; ++u) {
    for (index_t j = train.indptr[u]; j < train.indptr[u + 1]; ++j) {
      const index_t i = train.indices[j];
      const index_t pos = fill[i]++;
      adj.indices[pos] = static_cast<id_type>(u);
      adj.values[pos] = adj.values[j];
    }
  }
  return adj;
}

}  // namespace ans::graph
