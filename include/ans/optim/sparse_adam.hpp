/// @file sparse_adam.hpp
/// @brief Row-sparse ("lazy") Adam for embedding tables.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ans/config.hpp"
#include "ans/optim/adam.hpp"
#include "ans/optim/state.hpp"
#include "ans/types.hpp"

namespace ans::optim {

/// How sparse_adam counts steps for bias correction.
enum class sparse_step_count {
  per_row,  ///< each row counts the steps in which it received a gradient (lazy Adam; the default)
  global,   ///< one counter for the table, incremented every step() (torch.optim.SparseAdam)
};

/// Lazy Adam over an embedding table of n_rows x dim (row-major): a step touches only the given rows.
///
/// Semantics of step(table, rows, grads):
///   * rows not listed are bit-identical afterwards: parameters and moments do not move at all (unlike
///     dense Adam, whose zero-gradient entries keep moving from their moments);
///   * each listed row r gets the Adam update of adam.hpp with its own moments m_r, v_r, and with bias
///     correction t = the row's step count (`per_row`, the default: the number of steps in which row r
///     was updated, so a row's first update is always a full-size first Adam step) or the table's step
///     count (`global`: exactly torch.optim.SparseAdam, whose `state['step']` is per parameter tensor);
///   * rows must be distinct within one call (accumulate duplicate gradients first, as torch's coalesce
///     does); a duplicate raises ans::error;
///   * weight_decay adds weight_decay·p to the gradient of the listed rows only (SparseAdam has none).
/// Rows are updated in parallel (independent, so results do not depend on the thread count).
template <class Scalar>
class sparse_adam {
 public:
  sparse_adam(index_t n_rows, index_t dim, adam_options options = {},
              sparse_step_count counting = sparse_step_count::per_row)
      : o_(options), counting_(counting), n_rows_(n_rows), dim_(dim),
        m_(static_cast<size_t>(n_rows * dim), Scalar(0)), v_(static_cast<size_t>(n_rows * dim), Scalar(0)),
        row_steps_(static_cast<size_t>(n_rows), 0), seen_(static_cast<size_t>(n_rows), 0) {
    ANS_CHECK(n_rows >= 0 && dim >= 0, "sparse_adam: bad shape " << n_rows << " x " << dim);
    detail::check_adam_options(o_, "sparse_adam");
  }

  /// Updates rows[0..n) of `table` (n_rows x dim, row-major) with gradients `grads` laid out [n, dim]
  /// (grads row i belongs to table row rows[i]).
  void step(Scalar* table, const index_t* rows, const Scalar* grads, index_t n) {
    run<false>(table, rows, n, [&](index_t i, index_t) { return grads + i * dim_; });
  }

  /// The same step with the gradients in a table of the table's shape (row rows[i] of `grad_table` belongs to
  /// table row rows[i]): each listed gradient row is read once and then set to zero, so an accumulate /
  /// step / accumulate loop needs neither a gather nor a separate clear. Unlisted gradient rows are untouched.
  void step_table(Scalar* table, const index_t* rows, Scalar* grad_table, index_t n) {
    run<true>(table, rows, n, [&](index_t, index_t r) { return grad_table + r * dim_; });
  }

 private:
  // One step over the listed rows; `grad_of(i, r)` points at the gradient of table row r = rows[i]. Clear:
  // the gradient entries are zeroed after use.
  template <bool Clear, class GradOf>
  void run(Scalar* table, const index_t* rows, index_t n, GradOf grad_of) {
    check_rows(rows, n);
    begin_step();
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (n * dim_ > (1 << 14))
#endif
    for (index_t i = 0; i < n; ++i) update_row<Clear>(table, rows[i], grad_of(i, rows[i]));
  }

 public:
  /// The two halves of a step, for callers that schedule the rows themselves (train/row_update.hpp): one
  /// `begin_step()`, then `update_row(table, r, g)` once for each distinct row r of the step, from any threads
  /// (rows are independent; a row must not be updated twice in one step, which is not checked here).
  void begin_step() {
    ++t_;
    corrections_up_to(t_);
  }
  /// Prefetches row r of the table and of both moments (a hint: rows updated in a data-dependent order miss
  /// the cache otherwise).
  void prefetch_row(const Scalar* table, index_t r) const {
    prefetch_span(table + r * dim_, dim_);
    prefetch_span(m_.data() + r * dim_, dim_);
    prefetch_span(v_.data() + r * dim_, dim_);
  }
  /// Adam on table row r with gradient row `g` (dim entries; set to 0 after use when Clear).
  template <bool Clear = false>
  void update_row(Scalar* table, index_t r, std::conditional_t<Clear, Scalar*, const Scalar*> g) {
    const std::int64_t t = counting_ == sparse_step_count::global ? t_ : ++row_steps_[r];
    detail::adam_update_corrected<Clear>(table + r * dim_, g, m_.data() + r * dim_, v_.data() + r * dim_, dim_,
                                         bc1(t), bc2(t), o_);
  }

 private:

  // Rows in range and distinct (serial: an exception must not leave a parallel region).
  void check_rows(const index_t* rows, index_t n) {
    for (index_t i = 0; i < n; ++i) {
      const index_t r = rows[i];
      ANS_CHECK(r >= 0 && r < n_rows_, "sparse_adam: row " << r << " outside [0, " << n_rows_ << ")");
      if (seen_[r]) {
        for (index_t k = 0; k < i; ++k) seen_[rows[k]] = 0;
        ANS_THROW("sparse_adam: row " << r << " appears twice in one step; sum its gradients first");
      }
      seen_[r] = 1;
    }
    for (index_t i = 0; i < n; ++i) seen_[rows[i]] = 0;
  }
  // Bias corrections 1−β^t for t = 0..t_max, cached (a row's step count never exceeds the table's). The
  // cache stops growing once both have rounded to exactly 1.0 (β2 = 0.999: t ≈ 37k); later t read 1.0, the
  // value std::pow would give, so the cached step is bit-identical to adam_update's.
  void corrections_up_to(std::int64_t t_max) {
    if (bc_beta1_ != o_.beta1 || bc_beta2_ != o_.beta2) bc1_.clear(), bc2_.clear();  // options changed
    bc_beta1_ = o_.beta1, bc_beta2_ = o_.beta2;
    while (static_cast<std::int64_t>(bc1_.size()) <= t_max && !(bc1_.size() > 1 && bc1_.back() == 1.0 &&
                                                                  bc2_.back() == 1.0)) {
      const double t = static_cast<double>(bc1_.size());
      bc1_.push_back(1.0 - std::pow(o_.beta1, t));
      bc2_.push_back(1.0 - std::pow(o_.beta2, t));
    }
  }
  double bc1(std::int64_t t) const { return t < static_cast<std::int64_t>(bc1_.size()) ? bc1_[t] : 1.0; }
  double bc2(std::int64_t t) const { return t < static_cast<std::int64_t>(bc2_.size()) ? bc2_[t] : 1.0; }

 public:

  /// Eigen overload: `table` is the whole table, `grads` is [rows.size(), dim].
  void step(matrix<Scalar>& table, const std::vector<index_t>& rows, const matrix<Scalar>& grads) {
    ANS_CHECK(table.rows() == n_rows_ && table.cols() == dim_,
              "sparse_adam: table is " << table.rows() << " x " << table.cols() << ", expected " << n_rows_
                                       << " x " << dim_);
    ANS_CHECK(grads.rows() == static_cast<index_t>(rows.size()) && grads.cols() == dim_,
              "sparse_adam: gradient block is " << grads.rows() << " x " << grads.cols() << " for "
                                                << rows.size() << " rows of width " << dim_);
    step(table.data(), rows.data(), grads.data(), static_cast<index_t>(rows.size()));
  }

  index_t n_rows() const { return n_rows_; }
  index_t dim() const { return dim_; }
  std::int64_t step_count() const { return t_; }
  std::int64_t row_step_count(index_t r) const { return row_steps_[r]; }
  adam_options& options() { return o_; }
  std::vector<Scalar>& exp_avg() { return m_; }
  std::vector<Scalar>& exp_avg_sq() { return v_; }

  /// Named state: "exp_avg", "exp_avg_sq" ([n_rows*dim]); counters "step" (1) and "row_step" (n_rows).
  state_view<Scalar> state() {
    state_view<Scalar> s;
    s.arrays.push_back({"exp_avg", m_.data(), m_.size()});
    s.arrays.push_back({"exp_avg_sq", v_.data(), v_.size()});
    s.counters.push_back({"step", &t_, 1});
    s.counters.push_back({"row_step", row_steps_.data(), row_steps_.size()});
    return s;
  }

 private:
  adam_options o_;
  sparse_step_count counting_;
  index_t n_rows_, dim_;
  std::vector<Scalar> m_, v_;
  std::vector<std::int64_t> row_steps_;
  std::vector<std::uint8_t> seen_;
  std::vector<double> bc1_, bc2_;
  double bc_beta1_ = -1, bc_beta2_ = -1;
  std::int64_t t_ = 0;
};

}  // namespace ans::optim
