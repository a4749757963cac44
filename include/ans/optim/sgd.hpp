/// @file sgd.hpp
/// @brief Stochastic gradient descent with optional momentum, torch.optim.SGD semantics.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ans/config.hpp"
#include "ans/optim/state.hpp"
#include "ans/types.hpp"

namespace ans::optim {

struct sgd_options {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

/// SGD over a parameter block of `size` scalars, exactly torch.optim.SGD:
///   g = grad + weight_decay·p
///   if momentum ≠ 0:  b = g on the first step, else b = momentum·b + (1−dampening)·g
///                     g = nesterov ? g + momentum·b : b
///   p = p − lr·g
/// step_rows() applies the same rule to selected rows of an [n_rows, dim] table; a row's momentum buffer
/// is initialised on that row's first update (a lazy, row-sparse variant).
template <class Scalar>
class sgd {
 public:
  explicit sgd(index_t size, sgd_options options = {}, index_t dim = 1)
      : o_(options), dim_(dim), buf_(options.momentum != 0 ? size : 0, Scalar(0)),
        started_(options.momentum != 0 && dim > 0 ? size / dim : 0, 0) {
    ANS_CHECK(size >= 0, "sgd: negative size " << size);
    ANS_CHECK(dim >= 1 && size % dim == 0, "sgd: size " << size << " is not a multiple of dim " << dim);
    ANS_CHECK(o_.lr >= 0 && o_.momentum >= 0 && o_.weight_decay >= 0,
              "sgd: lr, momentum and weight_decay must be >= 0");
    ANS_CHECK(!o_.nesterov || (o_.momentum > 0 && o_.dampening == 0),
              "sgd: nesterov needs momentum > 0 and dampening = 0");
    size_ = size;
  }

  /// Dense step over all size() entries.
  void step(Scalar* param, const Scalar* grad) {
    ++t_;
    const index_t n_rows = size_ / dim_;
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (size_ > (1 << 14))
#endif
    for (index_t r = 0; r < n_rows; ++r) update_row(param, r, grad + r * dim_);
  }

  /// Row-sparse step: rows[i] of the [size/dim, dim] table gets gradient row i of `grads`. Rows must be
  /// distinct; unlisted rows are untouched.
  void step_rows(Scalar* table, const index_t* rows, const Scalar* grads, index_t n) {
    ++t_;
    for (index_t i = 0; i < n; ++i)
      ANS_CHECK(rows[i] >= 0 && rows[i] < size_ / dim_, "sgd: row " << rows[i] << " outside the table");
#if ANS_HAS_OPENMP
#pragma omp parallel for schedule(static) if (n * dim_ > (1 << 14))
#endif
    for (index_t i = 0; i < n; ++i) update_row(table, rows[i], grads + i * dim_);
  }

  /// The two halves of a step, for callers that schedule the rows themselves (train/row_update.hpp): one
  /// `begin_step()`, then `update_row(table, r, g)` once per row, from any threads (rows are independent).
  void begin_step() { ++t_; }
  /// The update of row r (dim entries) with gradient row `g_row`.
  void update_row(Scalar* table, index_t r, const Scalar* g_row) {
    Scalar* p = table + r * dim_;
    const auto lr = static_cast<Scalar>(o_.lr), wd = static_cast<Scalar>(o_.weight_decay);
    const auto mu = static_cast<Scalar>(o_.momentum), damp = static_cast<Scalar>(1.0 - o_.dampening);
    const bool decay = o_.weight_decay != 0, mom = o_.momentum != 0;
    Scalar* b = mom ? buf_.data() + r * dim_ : nullptr;
    const bool first = mom && !started_[r];
    if (mom) started_[r] = 1;
    for (index_t j = 0; j < dim_; ++j) {
      Scalar g = decay ? g_row[j] + wd * p[j] : g_row[j];
      if (mom) {
        b[j] = first ? g : mu * b[j] + damp * g;
        g = o_.nesterov ? g + mu * b[j] : b[j];
      }
      p[j] -= lr * g;
    }
  }

  index_t size() const { return size_; }
  index_t dim() const { return dim_; }
  std::int64_t step_count() const { return t_; }
  sgd_options& options() { return o_; }
  std::vector<Scalar>& momentum_buffer() { return buf_; }

  /// Named state: "momentum_buffer" (empty without momentum); counters "step", "row_started".
  state_view<Scalar> state() {
    state_view<Scalar> s;
    s.arrays.push_back({"momentum_buffer", buf_.data(), buf_.size()});
    s.counters.push_back({"step", &t_, 1});
    s.counters.push_back({"row_started", started_.data(), started_.size()});
    return s;
  }

 private:
  sgd_options o_;
  index_t size_ = 0;
  index_t dim_;
  std::vector<Scalar> buf_;
  std::vector<std::int64_t> started_;
  std::int64_t t_ = 0;
};

}  // namespace ans::optim
