/// @file gemm64.hpp
/// @brief Small matrix products with 64 columns, the shape of the gate's GEMMs at d = 64 (docs/performance.md):
///
///   rows64:  C[r,:] (+)= Σ_i A[r,i] · B[i,:]          (C, A: m x 64, B: 64 x 64, all row-major)
///   atx64:   G[o,:] +=   Σ_r A[r,o] · X[r,:]          (G: 64 x 64, A, X: m x 64)
///
/// The 64 x 64 operand (16 KB in float) stays in L1 and the rows stream through it. Register-blocked with
/// GCC/Clang vector extensions (64-byte vectors: one zmm with AVX-512, two ymm with AVX2): 4 float rows (2
/// double rows) of accumulators per step. No packing, no heap. Sums run over i (or r) in increasing order, so
/// the result does not depend on the thread count. `available<Scalar>()` is false where the compiler has no
/// vector extensions; callers then use Eigen.
#pragma once

#include <cstring>
#include <type_traits>

#include "ans/types.hpp"

namespace ans::disentangle::gemm64 {

#if defined(__GNUC__) || defined(__clang__)
// 64-byte vector types passed by value change the ABI without AVX-512 (-Wpsabi); these helpers are inline and
// never cross a translation unit, and config.hpp already tells a build without AVX2 what it costs.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
namespace detail {
template <class S>
struct vt;
template <>
struct vt<float> {
  typedef float V __attribute__((vector_size(64)));
  static constexpr int R = 4;  // rows of accumulators per step (4 x 4 zmm)
};
template <>
struct vt<double> {
  typedef double V __attribute__((vector_size(64)));
  static constexpr int R = 2;  // 2 x 8 zmm
};
template <class S>
inline typename vt<S>::V load(const S* p) {
  typename vt<S>::V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class S>
inline void store(S* p, const typename vt<S>::V& v) {
  std::memcpy(p, &v, sizeof(v));
}

// C[r,:] (+)= Σ_i A[r*lda + i] B[i*ldb + :] (+ bias) for R rows.
template <class S, int R, bool Accum>
inline void rows_kernel(const S* A, index_t lda, const S* B, index_t ldb, S* C, index_t ldc, const S* bias) {
  using V = typename vt<S>::V;
  constexpr int L = 64 / static_cast<int>(sizeof(S));  // lanes per vector
  constexpr int NV = 64 / L;                              // vectors per 64-wide row
  V acc[R][NV];
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < NV; ++v) {
      if (Accum)
        acc[q][v] = load(C + q * ldc + v * L);
      else if (bias)
        acc[q][v] = load(bias + v * L);
      else
        acc[q][v] = V{};
    }
  for (int i = 0; i < 64; ++i) {
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = load(B + i * ldb + v * L);
    for (int q = 0; q < R; ++q) {
      const S a = A[q * lda + i];
      for (int v = 0; v < NV; ++v) acc[q][v] += a * b[v];
    }
  }
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < NV; ++v) store(C + q * ldc + v * L, acc[q][v]);
}

// G[o+q,:] += Σ_r A[r*lda + o + q] X[r*ldx + :] for R output rows.
template <class S, int R>
inline void atx_kernel(const S* A, index_t lda, const S* X, index_t ldx, index_t m, S* G, index_t ldg) {
  using V = typename vt<S>::V;
  constexpr int L = 64 / static_cast<int>(sizeof(S));
  constexpr int NV = 64 / L;
  V acc[R][NV];
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < NV; ++v) acc[q][v] = load(G + q * ldg + v * L);
  for (index_t r = 0; r < m; ++r) {
    V x[NV];
    for (int v = 0; v < NV; ++v) x[v] = load(X + r * ldx + v * L);
    for (int q = 0; q < R; ++q) {
      const S a = A[r * lda + q];
      for (int v = 0; v < NV; ++v) acc[q][v] += a * x[v];
    }
  }
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < NV; ++v) store(G + q * ldg + v * L, acc[q][v]);
}
}  // namespace detail

template <class Scalar>
constexpr bool available() {
  return std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value;
}

/// C[r,:] = bias + Σ_i A[r,i] B[i,:] (Accum = false; bias may be null) or C[r,:] += Σ_i A[r,i] B[i,:] (Accum).
template <bool Accum, class S>
inline void rows64(const S* A, index_t lda, index_t m, const S* B, index_t ldb, S* C, index_t ldc,
                   const S* bias = nullptr) {
  constexpr int R = detail::vt<S>::R;
  index_t r = 0;
  for (; r + R <= m; r += R) detail::rows_kernel<S, R, Accum>(A + r * lda, lda, B, ldb, C + r * ldc, ldc, bias);
  for (; r < m; ++r) detail::rows_kernel<S, 1, Accum>(A + r * lda, lda, B, ldb, C + r * ldc, ldc, bias);
}

/// G[o,:] += Σ_r A[r,o] X[r,:] over r < m (G = G + Aᵀ X, 64 x 64).
template <class S>
inline void atx64(const S* A, index_t lda, const S* X, index_t ldx, index_t m, S* G, index_t ldg) {
  constexpr int R = detail::vt<S>::R;
  for (index_t o = 0; o < 64; o += R) detail::atx_kernel<S, R>(A + o, lda, X, ldx, m, G + o * ldg, ldg);
}
#pragma GCC diagnostic pop
#else
template <class Scalar>
constexpr bool available() {
  return false;
}
template <bool Accum, class S>
inline void rows64(const S*, index_t, index_t, const S*, index_t, S*, index_t, const S* = nullptr) {}
template <class S>
inline void atx64(const S*, index_t, const S*, index_t, index_t, S*, index_t) {}
#endif

}  // namespace ans::disentangle::gemm64
