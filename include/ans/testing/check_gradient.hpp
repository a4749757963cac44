/// @file check_gradient.hpp
/// @brief Finite-difference gradient checker for users and tests (central differences, double precision).
///
/// @code
///   std::vector<ans::testing::param_block> blocks = {{"U", U.data(), U.size(), dU.data()}, ...};
///   auto rep = ans::testing::check_gradient([&] { return f(); }, blocks);   // f reads the live buffers
///   REQUIRE(rep.global_rel_error < 1e-6);
/// @endcode
/// The checker perturbs each coordinate in place (x ± h), evaluates f, and restores the value exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "ans/config.hpp"

namespace ans::testing {

/// One block of parameters: `size` doubles at `data` (perturbed in place), with the analytic gradient at `grad`.
struct param_block {
  std::string name;
  double* data = nullptr;
  index_t size = 0;
  const double* grad = nullptr;
};

/// Per-block and global comparison of analytic and numerical gradients.
struct gradient_report {
  struct block_stats {
    std::string name;
    double rel_error = 0;        ///< ‖g − ĝ‖ / max(‖g‖, ‖ĝ‖, tiny) over the block
    double worst_coord_error = 0;
    index_t worst_index = -1;
  };
  double global_rel_error = 0;    ///< ‖g − ĝ‖ / max(‖g‖, ‖ĝ‖, tiny) over all blocks
  double worst_coord_error = 0;   ///< max_i |g_i − ĝ_i| / max(|g_i|, |ĝ_i|, abs_tol)
  std::string worst_block;
  index_t worst_index = -1;
  double worst_analytic = 0, worst_numeric = 0;
  std::vector<block_stats> blocks;
  std::vector<double> numeric;    ///< all numerical gradients, blocks concatenated

  /// Human-readable summary.
  std::string summary() const {
    std::ostringstream os;
    os << "global rel error " << global_rel_error << ", worst coordinate " << worst_block << "[" << worst_index
       << "]: analytic " << worst_analytic << " numeric " << worst_numeric << " (rel " << worst_coord_error << ")";
    for (const auto& b : blocks) os << "\n  " << b.name << ": rel " << b.rel_error << ", worst coord " << b.worst_coord_error;
    return os.str();
  }
};

/// Central differences (f(x+h) − f(x−h))/(2h) for every coordinate of every block, compared with the analytic
/// gradients. The per-coordinate error uses `abs_tol` as a near-zero guard in the denominator.
inline gradient_report check_gradient(const std::function<double()>& f, const std::vector<param_block>& blocks,
                                      double h = 1e-6, double abs_tol = 1e-8) {
  gradient_report rep;
  constexpr double tiny = std::numeric_limits<double>::min();
  double diff2 = 0, a2 = 0, n2 = 0;
  for (const auto& blk : blocks) {
    ANS_CHECK(blk.data && blk.grad && blk.size >= 0, "check_gradient: block '" << blk.name << "' is incomplete");
    gradient_report::block_stats bs;
    bs.name = blk.name;
    double bd2 = 0, ba2 = 0, bn2 = 0;
    for (index_t i = 0; i < blk.size; ++i) {
      const double x0 = blk.data[i];
      blk.data[i] = x0 + h;
      const double fp = f();
      blk.data[i] = x0 - h;
      const double fm = f();
      blk.data[i] = x0;
      const double num = (fp - fm) / (2 * h);
      const double ana = blk.grad[i];
      rep.numeric.push_back(num);
      const double dd = ana - num;
      bd2 += dd * dd, ba2 += ana * ana, bn2 += num * num;
      const double ce = std::abs(dd) / std::max({std::abs(ana), std::abs(num), abs_tol});
      if (ce > bs.worst_coord_error || bs.worst_index < 0) bs.worst_coord_error = ce, bs.worst_index = i;
      if (ce > rep.worst_coord_error || rep.worst_index < 0) {
        rep.worst_coord_error = ce, rep.worst_index = i, rep.worst_block = blk.name;
        rep.worst_analytic = ana, rep.worst_numeric = num;
      }
    }
    bs.rel_error = std::sqrt(bd2) / std::max({std::sqrt(ba2), std::sqrt(bn2), tiny});
    rep.blocks.push_back(bs);
    diff2 += bd2, a2 += ba2, n2 += bn2;
  }
  rep.global_rel_error = std::sqrt(diff2) / std::max({std::sqrt(a2), std::sqrt(n2), tiny});
  return rep;
}

/// Returns the first row of a rows x cols row-major gradient that is outside `allowed_rows` and not exactly
/// zero, or −1 when every such row is exactly zero.
inline index_t first_nonzero_row_outside(const double* grad, index_t rows, index_t cols,
                                         const std::vector<index_t>& allowed_rows) {
  for (index_t r = 0; r < rows; ++r) {
    if (std::find(allowed_rows.begin(), allowed_rows.end(), r) != allowed_rows.end()) continue;
    for (index_t j = 0; j < cols; ++j)
      if (grad[r * cols + j] != 0.0) return r;
  }
  return -1;
}

/// True when every row outside `allowed_rows` is exactly zero.
inline bool rows_outside_are_zero(const double* grad, index_t rows, index_t cols,
                                  const std::vector<index_t>& allowed_rows) {
  return first_nonzero_row_outside(grad, rows, cols, allowed_rows) < 0;
}

}  // namespace ans::testing
