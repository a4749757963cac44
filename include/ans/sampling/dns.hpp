/// @file dns.hpp
/// @brief Dynamic negative sampling (DNS, Zhang et al. 2013): keep the highest-scoring candidate.
#pragma once

#include <cstdint>

#include "ans/config.hpp"
#include "ans/types.hpp"

namespace ans::sampling {

/// Returns the position k in [0, K) of the candidate maximising <user_row, items.row(candidates[k])>;
/// ties go to the first maximum (as torch.max / argmax on CPU). `user_row` has items.cols() entries.
///
/// With stacked per-hop embeddings laid out [rows, H*d] the single dot product is the sum of per-hop
/// scores, Σ_h <u_h, n_h>, i.e. the reference's training score (spec §6 item 6, faithful).
/// Requires K >= 1.
template <class Scalar, class ItemTable>
index_t dns_select(const Scalar* user_row, const ItemTable& items, const id_type* candidates,
                   index_t K) {
  ANS_CHECK(K >= 1, "dns_select: need at least one candidate, got K = " << K);
  const index_t D = items.cols();
  Eigen::Map<const vector<Scalar>> u(user_row, D);
  index_t best = 0;
  Scalar best_score = items.row(candidates[0]).dot(u.transpose());
  for (index_t k = 1; k < K; ++k) {
    const Scalar s = items.row(candidates[k]).dot(u.transpose());
    if (s > best_score) {
      best_score = s;
      best = k;
    }
  }
  return best;
}

/// Per-hop DNS: for every hop h in [0, H) chooses the candidate maximising <u_h, n_{k,h}> (the ANS
/// selection with no augmentation). `items` is [n_items, H*d]; writes H positions to `out_k`.
template <class Scalar, class ItemTable>
void dns_select_per_hop(const Scalar* user_row, const ItemTable& items, const id_type* candidates,
                        index_t K, index_t H, index_t* out_k) {
  ANS_CHECK(K >= 1, "dns_select_per_hop: need at least one candidate, got K = " << K);
  ANS_CHECK(H >= 1 && items.cols() % H == 0,
            "dns_select_per_hop: item width " << items.cols() << " is not a multiple of H = " << H);
  const index_t d = items.cols() / H;
  for (index_t h = 0; h < H; ++h) {
    Eigen::Map<const vector<Scalar>> u(user_row + h * d, d);
    index_t best = 0;
    Scalar best_score = items.row(candidates[0]).segment(h * d, d).dot(u.transpose());
    for (index_t k = 1; k < K; ++k) {
      const Scalar s = items.row(candidates[k]).segment(h * d, d).dot(u.transpose());
      if (s > best_score) {
        best_score = s;
        best = k;
      }
    }
    out_k[h] = best;
  }
}

}  // namespace ans::sampling
