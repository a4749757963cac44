/// @file adam.hpp
/// @brief Dense Adam with exactly torch.optim.Adam's update (amsgrad = false, maximize = false).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ans/config.hpp"
#include "ans/core/math.hpp"
#include "ans/optim/state.hpp"
#include "ans/types.hpp"

namespace ans::optim {

/// Hyper-parameters shared by adam and sparse_adam (PyTorch defaults).
struct adam_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  ///< L2: grad += weight_decay * param (torch.optim.Adam, not AdamW)
};

namespace detail {
inline void check_adam_options(const adam_options& o, const char* who) {
  ANS_CHECK(o.lr >= 0, who << ": lr must be >= 0, got " << o.lr);
  ANS_CHECK(o.beta1 >= 0 && o.beta1 < 1, who << ": beta1 must be in [0, 1), got " << o.beta1);
  ANS_CHECK(o.beta2 >= 0 && o.beta2 < 1, who << ": beta2 must be in [0, 1), got " << o.beta2);
  ANS_CHECK(o.eps >= 0, who << ": eps must be >= 0, got " << o.eps);
  ANS_CHECK(o.weight_decay >= 0, who << ": weight_decay must be >= 0, got " << o.weight_decay);
}

/// One Adam update of n contiguous entries at step t (t >= 1), in PyTorch's operation order:
///   g ← g + wd·p;  m ← m + (1−β1)(g − m)  (torch's lerp);  v ← β2·v + (1−β2)·g²;
///   p ← p − (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps).
/// Bias corrections are computed in double, like PyTorch's Python floats.
/// `bc1` = 1−β1^t and `bc2` = 1−β2^t are given (adam_update computes them); with ClearGrad the gradient
/// entries are set to 0 after use (a fused "step, then zero_grad").
template <bool ClearGrad = false, class Scalar, class Grad>
inline void adam_update_corrected(Scalar* p, Grad* grad, Scalar* m, Scalar* v, index_t n, double bc1, double bc2,
                                  const adam_options& o) {
  const auto step_size = static_cast<Scalar>(o.lr / bc1);
  const auto bc2_sqrt = static_cast<Scalar>(std::sqrt(bc2));
  const auto w1 = static_cast<Scalar>(1.0 - o.beta1);
  const auto b2 = static_cast<Scalar>(o.beta2);
  const auto w2 = static_cast<Scalar>(1.0 - o.beta2);
  const auto eps = static_cast<Scalar>(o.eps);
  const auto wd = static_cast<Scalar>(o.weight_decay);
  const bool decay = o.weight_decay != 0.0;
  // Three vectorisable passes per chunk of <= 256 entries (kept in L1): the moments (plain loop), sqrt(v) by
  // math::sqrt_exact (the vector sqrt instruction; a loop around std::sqrt stays scalar under GCC's default
  // -fmath-errno: the lazy Adam step was 19 % of an MF-ANS training step that way), the update (plain loop).
  // The root is correctly rounded in every lane, so an entry's bits never depend on how a caller splits the
  // array into calls (row by row, 16-row blocks, 16 384-entry chunks): the fused MF step relies on it. (Eigen's
  // packet sqrt, used before, is an rsqrt + Newton approximation under EIGEN_FAST_MATH.)
  constexpr index_t chunk = 256;
  alignas(64) Scalar root[chunk];
  for (index_t c0 = 0; c0 < n; c0 += chunk) {
    const index_t len = std::min(chunk, n - c0);
    Scalar *pc = p + c0, *mc = m + c0, *vc = v + c0;
    auto* gc = grad + c0;
    for (index_t j = 0; j < len; ++j) {
      const Scalar g = decay ? gc[j] + wd * pc[j] : gc[j];
      mc[j] += w1 * (g - mc[j]);        // m ← m + (1−β1)(g − m)
      vc[j] = b2 * vc[j] + w2 * g * g;  // v ← β2·v + (1−β2)·g²
    }
    math::sqrt_exact(vc, root, len);
    for (index_t j = 0; j < len; ++j) {
      pc[j] -= step_size * (mc[j] / (root[j] / bc2_sqrt + eps));  // p ← p − lr/bc1 · m/(sqrt(v)/sqrt(bc2) + eps)
      if constexpr (ClearGrad) gc[j] = Scalar(0);
    }
  }
}

template <class Scalar>
inline void adam_update(Scalar* p, const Scalar* grad, Scalar* m, Scalar* v, index_t n, std::int64_t t,
                        const adam_options& o) {
  adam_update_corrected(p, grad, m, v, n, 1.0 - std::pow(o.beta1, static_cast<double>(t)),
                        1.0 - std::pow(o.beta2, static_cast<double>(t)), o);
}
}  // namespace detail

/// Dense Adam over one parameter block of `size` scalars (an embedding table, a weight matrix, ...).
///
/// Every call to step() updates every entry, including entries whose gradient is zero (their moments
/// decay and they keep moving): this is PyTorch's dense Adam, which the reference uses (spec R.6).
/// Update, with t the number of steps taken so far (1 on the first call):
///   g = grad + weight_decay·p
///   m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
///   p = p − lr·m̂/(sqrt(v̂) + eps),  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)
/// computed in torch's order (eps is added after dividing sqrt(v) by sqrt(1−β2^t)).
/// The parameter block is split into chunks updated in parallel (element-wise, so results do not depend
/// on the thread count).
template <class Scalar>
class adam {
 public:
  explicit adam(index_t size, adam_options options = {}) : o_(options), m_(size, Scalar(0)), v_(size, Scalar(0)) {
    ANS_CHECK(size >= 0, "adam: negative size " << size);
    detail::check_adam_options(o_, "adam");
  }

  /// One step over raw arrays of size() entries.
  void step(Scalar* param, const Scalar* grad) { run(param, grad, 0, size()); }

  /// One step, then grad = 0, in the same pass over memory (PyTorch's step() + zero_grad()).
  void step_and_clear(Scalar* param, Scalar* grad) { run<true>(param, grad, 0, size()); }

  /// One step that updates only entries [offset, offset + n) (then clears their gradient): the entries a
  /// data-parallel rank owns (train::node_blocks), whose updates equal the whole step's on those entries.
  /// `param` and `grad` point at entry 0. The other entries' moments are not advanced: the ranks' blocks
  /// together make one step, and their moments are gathered before a checkpoint.
  void step_and_clear_range(Scalar* param, Scalar* grad, index_t offset, index_t n) {
    ANS_CHECK(offset >= 0 && n >= 0 && offset + n <= size(),
              "adam::step_and_clear_range: entries [" << offset << ", " << offset + n << ") outside " << size());
    run<true>(param, grad, offset, n);
  }

 private:
  template <bool Clear = false, class Grad>
  void run(Scalar* param, Grad* grad, index_t offset, index_t n) {
    begin_step();
    constexpr index_t chunk = 1 << 14;
    const index_t n_chunks = (n + chunk - 1) / chunk;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (n_chunks > 1)
#endif
    for (index_t c = 0; c < n_chunks; ++c) {
      const index_t b = offset + c * chunk;
      update_range<Clear>(param + b, grad + b, b, std::min(offset + n, b + chunk) - b);
    }
  }

 public:
  /// The two halves of a step, for callers that schedule the entries themselves (train/row_update.hpp): one
  /// `begin_step()`, then `update_range(param, grad, offset, n)` over disjoint ranges that together cover all
  /// size() entries, from any threads (the update is element-wise). Bits do not depend on how the entries are
  /// split when every range starts at a multiple of 256 (the kernel's chunk).
  void begin_step() {
    ++t_;
    bc1_ = 1.0 - std::pow(o_.beta1, static_cast<double>(t_));
    bc2_ = 1.0 - std::pow(o_.beta2, static_cast<double>(t_));
  }
  /// Adam on entries [offset, offset + n) of the block: `param` and `grad` point at entry `offset` of the
  /// parameters and of their gradient (which may live elsewhere, e.g. a compact row); the gradient is set to 0
  /// after use when Clear.
  template <bool Clear = false, class Grad>
  void update_range(Scalar* param, Grad* grad, index_t offset, index_t n) {
    detail::adam_update_corrected<Clear>(param, grad, m_.data() + offset, v_.data() + offset, n, bc1_, bc2_, o_);
  }

  /// One step over an Eigen block (any dense, contiguous storage of size() entries).
  template <class P, class G>
  void step(Eigen::DenseBase<P>& param, const Eigen::DenseBase<G>& grad) {
    ANS_CHECK(param.size() == size() && grad.size() == size(),
              "adam: parameter/gradient sizes " << param.size() << "/" << grad.size() << " differ from "
                                                << size());
    step(param.derived().data(), grad.derived().data());
  }

  index_t size() const { return static_cast<index_t>(m_.size()); }
  std::int64_t step_count() const { return t_; }
  const adam_options& options() const { return o_; }
  adam_options& options() { return o_; }  ///< e.g. to change lr between steps
  std::vector<Scalar>& exp_avg() { return m_; }
  std::vector<Scalar>& exp_avg_sq() { return v_; }

  /// Named state ("exp_avg", "exp_avg_sq"; counter "step" of size 1), PyTorch's names.
  state_view<Scalar> state() {
    state_view<Scalar> s;
    s.arrays.push_back({"exp_avg", m_.data(), m_.size()});
    s.arrays.push_back({"exp_avg_sq", v_.data(), v_.size()});
    s.counters.push_back({"step", &t_, 1});
    return s;
  }

 private:
  adam_options o_;
  std::vector<Scalar> m_, v_;
  std::int64_t t_ = 0;
  double bc1_ = 0, bc2_ = 0;  ///< 1−β1^t, 1−β2^t of the current step
};

}  // namespace ans::optim
