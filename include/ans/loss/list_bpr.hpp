/// @file list_bpr.hpp
/// @brief The list-level BPR of ReChorus's impression models (`BaseImpressionModel.loss`, `--loss_n BPR`,
/// the default "between" reweighting): for one list with positive scores s_1..s_P and negative scores
/// t_1..t_N,
///
///   a = softmax(s),  b = softmax(t),  σ_ij = σ(s_i − t_j)
///   ℓ = −log Z,      Z = Σ_i a_i Σ_j b_j σ_ij
///
/// (high-scoring positives and high-scoring negatives weigh more; with P = N = 1 it is BPR, −log σ(s − t)).
/// The batch loss is the mean of ℓ over the batch's lists. The softmax weights are part of the graph, so
///
///   r_i = Σ_j b_j σ_ij,  q_i = Σ_j b_j σ_ij (1 − σ_ij),  c_j = Σ_i a_i σ_ij,  w_j = Σ_i a_i σ_ij (1 − σ_ij)
///   ∂ℓ/∂s_i = −a_i [(r_i − Z) + q_i] / Z
///   ∂ℓ/∂t_j = −b_j [(c_j − Z) − w_j] / Z
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ans/config.hpp"
#include "ans/core/math.hpp"

namespace ans::loss {

/// Workspace scalars list_bpr_row needs for P positives and N negatives.
inline index_t list_bpr_workspace(index_t P, index_t N) { return 3 * (P + N); }

/// Row kernel: returns ℓ of one list and, when `ds` is non-null, adds scale·∂ℓ/∂s into ds[0..P) and
/// scale·∂ℓ/∂t into dt[0..N). `work` holds list_bpr_workspace(P, N) scalars. P, N >= 1.
/// (`scale`, `ds`, `dt` and `work` do not take part in deducing Scalar, so `nullptr` and literals pass.)
template <class Scalar>
Scalar list_bpr_row(const Scalar* s, index_t P, const Scalar* t, index_t N, std::common_type_t<Scalar> scale,
                    std::common_type_t<Scalar>* ds, std::common_type_t<Scalar>* dt, std::common_type_t<Scalar>* work) {
  Scalar* a = work;          // softmax(s)
  Scalar* r = a + P;         // r_i
  Scalar* q = r + P;         // q_i
  Scalar* b = q + P;         // softmax(t)
  Scalar* c = b + N;         // c_j
  Scalar* w = c + N;         // w_j
  auto softmax = [](const Scalar* x, index_t n, Scalar* y) {
    const Scalar m = *std::max_element(x, x + n);
    Scalar z = 0;
    for (index_t k = 0; k < n; ++k) z += (y[k] = std::exp(x[k] - m));
    for (index_t k = 0; k < n; ++k) y[k] /= z;
  };
  softmax(s, P, a);
  softmax(t, N, b);
  std::fill(r, r + 2 * P, Scalar(0));
  std::fill(c, c + 2 * N, Scalar(0));
  for (index_t i = 0; i < P; ++i)
    for (index_t j = 0; j < N; ++j) {
      const Scalar sg = math::sigmoid(s[i] - t[j]), sd = sg * (Scalar(1) - sg);
      r[i] += b[j] * sg;
      q[i] += b[j] * sd;
      c[j] += a[i] * sg;
      w[j] += a[i] * sd;
    }
  Scalar Z = 0;
  for (index_t i = 0; i < P; ++i) Z += a[i] * r[i];
  if (ds != nullptr) {
    const Scalar k = scale / Z;
    for (index_t i = 0; i < P; ++i) ds[i] -= k * a[i] * ((r[i] - Z) + q[i]);  // ∂ℓ/∂s_i = −a_i[(r_i − Z) + q_i]/Z
    for (index_t j = 0; j < N; ++j) dt[j] -= k * b[j] * ((c[j] - Z) - w[j]);  // ∂ℓ/∂t_j = −b_j[(c_j − Z) − w_j]/Z
  }
  return -std::log(Z);
}

}  // namespace ans::loss
