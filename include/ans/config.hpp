/// @file config.hpp
/// @brief Build-time switches and the library's error type.
///
/// OpenMP is used when the translation unit is compiled with it (`_OPENMP`); the CMake target adds it when
/// `ANS_USE_OPENMP` is on and OpenMP is found. Define `ANS_NO_OPENMP` to force the serial paths.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#if defined(_OPENMP) && !defined(ANS_NO_OPENMP)
#include <omp.h>
#define ANS_HAS_OPENMP 1
#else
#define ANS_HAS_OPENMP 0
#endif

// Speed needs the machine's vector units: without AVX2/FMA the training kernels ran 7.4x slower for an MF-ANS
// epoch and 6.5x for LightGCN-ANS (benchmarks/native_flags.sh, docs/performance.md "Compiler flags"). Say so at
// compile time; link the CMake target ans::native, or add -march=native / -mavx2 -mfma, or define
// ANS_NO_ISA_NOTICE to silence this.
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(__AVX2__) && !defined(ANS_NO_ISA_NOTICE)
#pragma message( \
    "ans: compiled without AVX2/FMA, the training kernels run several times slower; link ans::native or add -march=native (ANS_NO_ISA_NOTICE silences this)")
#endif

namespace ans {

/// Index type for sizes, offsets, rows of dense arrays and nonzero counts.
using index_t = std::int64_t;

/// The one id type of a user, an item or a graph node wherever ids are stored or passed: interaction
/// arrays, training batches (sampling::pair_batch, model::batch_ids), candidate lists, samplers and
/// evaluation rows. 32 bits (a table of 2^31 rows of d = 64 floats would be 512 GiB); loaders reject larger ids.
using id_type = std::int32_t;

/// Every error the library raises. `what()` starts with "file:line: " naming the source location that
/// detected the problem (or, for the data loaders, the data file and line that caused it).
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] inline void throw_error(const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << file << ':' << line << ": " << msg;
  throw error(os.str());
}
}  // namespace detail

/// Number of threads OpenMP regions will use (1 without OpenMP).
inline int max_threads() {
#if ANS_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Number of threads in the calling OpenMP region's team (1 outside a region and without OpenMP).
inline int team_size() {
#if ANS_HAS_OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/// Index of the calling thread inside an OpenMP region (0 without OpenMP).
inline int thread_id() {
#if ANS_HAS_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace ans

/// A read prefetch hint for the cache line holding `p` (no-op where the builtin is missing).
#if defined(__GNUC__) || defined(__clang__)
#define ANS_PREFETCH(p) __builtin_prefetch(static_cast<const void*>(p))
#else
#define ANS_PREFETCH(p) ((void)(p))
#endif

namespace ans {
/// Prefetches the cache lines of n contiguous elements starting at p (a hint, one ANS_PREFETCH per 64 bytes).
template <class T>
inline void prefetch_span(const T* p, index_t n) {
  for (index_t j = 0; j < n; j += 64 / static_cast<index_t>(sizeof(T))) ANS_PREFETCH(p + j);
}
}  // namespace ans

/// Throws ans::error with the current source file and line prepended. `msg` is a stream expression:
/// `ANS_THROW("bad K = " << k)`.
#define ANS_THROW(msg)                                  \
  do {                                                  \
    std::ostringstream ans_throw_os_;                   \
    ans_throw_os_ << msg;                               \
    ::ans::detail::throw_error(__FILE__, __LINE__, ans_throw_os_.str()); \
  } while (0)

/// Checks a precondition; throws ans::error naming file and line when it fails.
#define ANS_CHECK(cond, msg)                                    \
  do {                                                          \
    if (!(cond)) ANS_THROW("check failed (" #cond "): " << msg); \
  } while (0)
