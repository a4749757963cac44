/// @file readout.hpp
/// @brief LightGCN's layer combination (readout): the embedding a node is scored with.
///
///   ē = Σ_{h=0..L} α_h Â^h E0        mean: α_h = 1/(L+1) (LightGCN, MixGCF, DENS, ReChorus, RecBole)
///                                    sum:  α_h = 1;   last: α_L = 1, the others 0
///   concat: ē = [E0 | Â E0 | ... | Â^L E0] (width (L+1)·d), so <ē_u, ē_i> = Σ_h <u_h, i_h> (the ANS
///           reference's per-hop training score, spec §6.7).
///
/// Gradient (Â is symmetric): ∂L/∂E0 = Σ_h α_h Â^h G with G = ∂L/∂ē (N x d), by reverse Horner
///   acc = α_L G;  acc = Â acc + α_h G (h = L−1..0);  ∂L/∂E0 += acc          (L sparse products)
/// and for concat ∂L/∂E0 = Σ_h Â^h G[:, h] (lightgcn::backward).
///
/// The forward keeps a running sum: two N x d layer buffers and the N x d output, never the N x (H·d)
/// stack (concat is the stack by definition). With L = 0 every readout is the identity.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/types.hpp"

namespace ans::propagation {

/// How the L + 1 hops of a node combine into the vector it is scored with.
enum class readout_kind { mean, sum, last, concat };

inline const char* to_string(readout_kind k) {
  switch (k) {
    case readout_kind::mean: return "mean";
    case readout_kind::sum: return "sum";
    case readout_kind::last: return "last";
    case readout_kind::concat: return "concat";
  }
  return "?";
}

/// Parses "mean", "sum", "last" or "concat"; anything else throws, naming the accepted values.
inline readout_kind parse_readout(const std::string& s) {
  if (s == "mean") return readout_kind::mean;
  if (s == "sum") return readout_kind::sum;
  if (s == "last") return readout_kind::last;
  if (s == "concat") return readout_kind::concat;
  ANS_CHECK(false, "readout: unknown kind '" << s << "' (mean, sum, last, concat)");
  return readout_kind::mean;
}

/// The weights α_0..α_L of a weighted readout (mean, sum, last); concat has none (empty).
template <class Scalar>
std::vector<Scalar> readout_weights(readout_kind k, int n_layers) {
  ANS_CHECK(n_layers >= 0, "readout: n_layers must be >= 0, got " << n_layers);
  const int h = n_layers + 1;
  switch (k) {
    case readout_kind::mean: return std::vector<Scalar>(h, Scalar(1) / Scalar(h));
    case readout_kind::sum: return std::vector<Scalar>(h, Scalar(1));
    case readout_kind::last: {
      std::vector<Scalar> w(h, Scalar(0));
      w.back() = Scalar(1);
      return w;
    }
    case readout_kind::concat: return {};
  }
  return {};
}

/// Row kernel of a weighted readout: out[0..d) = Σ_h α_h x_h, with `hop_row(h)` the address of the node's hop-h
/// row (wherever the hops live: a stacked [H·d] row, or E0 and the hop-major layers). The one place a pooled
/// row is formed outside the table-wide forward (batch rows of the BPR and ANS objectives).
template <class Scalar, class HopRow>
inline void readout_row(HopRow&& hop_row, const Scalar* alpha, index_t H, index_t d, Scalar* out) {
  const Scalar* x0 = hop_row(index_t(0));
  for (index_t c = 0; c < d; ++c) out[c] = alpha[0] * x0[c];
  for (index_t h = 1; h < H; ++h) {
    const Scalar a = alpha[h];
    const Scalar* xh = hop_row(h);
    for (index_t c = 0; c < d; ++c) out[c] += a * xh[c];
  }
}

/// The readout of a LightGCN encoder with its layer buffers (sized on first use, then reused). Not
/// thread-safe; the SpMMs inside are threaded and deterministic (each row summed on one thread in CSR order).
template <class Scalar>
class readout {
 public:
  readout(int n_layers, readout_kind kind)
      : prop_(n_layers), kind_(kind), alpha_(readout_weights<Scalar>(kind, n_layers)) {}

  int n_layers() const { return prop_.n_layers(); }
  readout_kind kind() const { return kind_; }
  /// α_0..α_L (empty for concat).
  const std::vector<Scalar>& weights() const { return alpha_; }
  /// Width of ē for embedding dimension d: d, or (L+1)·d for concat.
  index_t width(index_t d) const { return kind_ == readout_kind::concat ? prop_.n_hops() * d : d; }

  /// ē = Σ_h α_h Â^h E0 (N x width(d)); `out` is resized when needed. L = 0: out = E0 (mean/sum/last/concat).
  void forward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& e0, matrix<Scalar>& out) {
    const index_t n = adj.n_nodes(), d = e0.cols();
    ANS_CHECK(e0.rows() == n, "readout::forward: E0 is " << e0.rows() << " x " << d << ", the graph has " << n
                                                          << " nodes");
    if (prop_.n_layers() == 0) {  // every readout is the identity
      out = e0;
      return;
    }
    if (kind_ == readout_kind::concat) {  // the stack itself
      prop_.forward(adj, e0, out);
      return;
    }
    ANS_CHECK(adj.has_edges(), "readout with L = " << prop_.n_layers()
                                                   << " over a graph without edges (node_counts_only is for L = 0)");
    if (out.rows() != n || out.cols() != d) out.resize(n, d);
    size(buf_, 2 * n, d);  // two N x d layers: the previous one and the next
    Scalar* cur = buf_.data();
    Scalar* next = cur + n * d;
    const Scalar a0 = alpha_[0];
    const Scalar* E = e0.data();
    Scalar* O = out.data();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t i = 0; i < n * d; ++i) O[i] = a0 * E[i];  // ē = α_0 E0
    const Scalar* prev = E;
    for (int l = 1; l <= prop_.n_layers(); ++l) {
      spmm(adj, prev, d, next, d, d);  // S_l = Â S_{l-1}
      const Scalar a = alpha_[l];
      const Scalar* S = next;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
      for (index_t i = 0; i < n * d; ++i) O[i] += a * S[i];  // ē += α_l S_l
      std::swap(cur, next);
      prev = cur;
    }
  }

  /// grad_e0 += Σ_h α_h Â^h G (G = ∂L/∂ē, N x width(d)); concat: grad_e0 += Σ_h Â^h G[:, h].
  void backward(const graph::normalized_adjacency<Scalar>& adj, const matrix<Scalar>& grad_out,
                matrix<Scalar>& grad_e0) {
    const index_t n = adj.n_nodes(), d = grad_e0.cols();
    ANS_CHECK(grad_e0.rows() == n, "readout::backward: grad_e0 is " << grad_e0.rows() << " x " << d
                                                                    << ", the graph has " << n << " nodes");
    ANS_CHECK(grad_out.rows() == n && grad_out.cols() == width(d),
              "readout::backward: grad_out is " << grad_out.rows() << " x " << grad_out.cols() << ", expected " << n
                                                << " x " << width(d));
    if (kind_ == readout_kind::concat) {
      prop_.backward(adj, grad_out, grad_e0);
      return;
    }
    const Scalar* G = grad_out.data();
    backward_sparse(adj, d, [&](index_t h, Scalar* Y, index_t ldy) {
      const Scalar a = alpha_[h];
      if (a == Scalar(0)) return;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static)
#endif
      for (index_t r = 0; r < n; ++r)
        for (index_t c = 0; c < d; ++c) Y[r * ldy + c] += a * G[r * d + c];  // + α_h G
    }, grad_e0);
  }

  /// The same reverse Horner when ∂L/∂ē is a batch's rows: `add_hop(h, Y, ldy)` must add α_h·G (weighted
  /// readouts) or G[:, h] (concat) into the N x d rows at Y. See lightgcn::backward_sparse.
  template <class AddHop>
  void backward_sparse(const graph::normalized_adjacency<Scalar>& adj, index_t d, AddHop&& add_hop,
                       matrix<Scalar>& grad_e0, Scalar* workspace = nullptr) {
    prop_.backward_sparse(adj, d, std::forward<AddHop>(add_hop), grad_e0, workspace);
  }

  lightgcn<Scalar>& propagation() { return prop_; }
  /// The forward's two N x d layer buffers (2·N·d scalars, dead once forward returned): a workspace for
  /// backward_sparse. Null before the first weighted forward with L >= 1.
  Scalar* workspace() { return buf_.size() > 0 ? buf_.data() : nullptr; }

 private:
  static void size(matrix<Scalar>& m, index_t r, index_t c) {
    if (m.rows() != r || m.cols() != c) m.resize(r, c);
  }
  lightgcn<Scalar> prop_;
  readout_kind kind_;
  std::vector<Scalar> alpha_;
  matrix<Scalar> buf_;  ///< 2N x d: the forward's running layers
};

}  // namespace ans::propagation
