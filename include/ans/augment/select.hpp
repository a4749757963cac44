/// @file select.hpp
/// @brief Candidate selection (paper Eqs. 12–13; spec §7 F10–F11, §6 item 5). No gradient flows through it.
///
///   score[b,k,h] = <U,Ñ> + ε(<U,Ñ> − <U,N>)
///   per hop (faithful): k*[b,h] = argmax_k score[b,k,h]
///   per pair:           k*[b]   = argmax_k Σ_h score[b,k,h], replicated over h
///   Ties go to the first maximum (PyTorch CPU).
#pragma once

#include "ans/core/batch.hpp"

namespace ans::augment {

/// Writes k* (length B*H, index b*H+h) from `syth` = <U,Ñ> and `norm` = <U,N> (length B*K*H each).
template <class Scalar>
void select_candidates(const batch_shape& s, const Scalar* syth, const Scalar* norm, Scalar eps, bool per_hop,
                       index_t* k_star) {
  for (index_t b = 0; b < s.B; ++b) {
    if (per_hop) {
      for (index_t h = 0; h < s.H; ++h) {
        index_t best = 0;
        Scalar best_v = 0;
        for (index_t k = 0; k < s.K; ++k) {
          const index_t r = s.nrow(b, k, h);
          const Scalar v = syth[r] + eps * (syth[r] - norm[r]);
          if (k == 0 || v > best_v) best = k, best_v = v;
        }
        k_star[s.urow(b, h)] = best;
      }
    } else {
      index_t best = 0;
      Scalar best_v = 0;
      for (index_t k = 0; k < s.K; ++k) {
        Scalar v = 0;
        for (index_t h = 0; h < s.H; ++h) {
          const index_t r = s.nrow(b, k, h);
          v += syth[r] + eps * (syth[r] - norm[r]);
        }
        if (k == 0 || v > best_v) best = k, best_v = v;
      }
      for (index_t h = 0; h < s.H; ++h) k_star[s.urow(b, h)] = best;
    }
  }
}

}  // namespace ans::augment
