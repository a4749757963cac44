/// @file table_optimizer.hpp
/// @brief The optimiser policy of train::trainer: how the embedding table E0 is updated from ∂L/∂E0.
///
/// `builtin_optimizer` (the default) is trainer_config::optimizer: dense Adam, row-sparse lazy Adam, SGD or
/// hogwild SGD (ans/optim/). A *user optimiser* is any type `O` with
/// @code
///   void step(matrix<Scalar>& table, const matrix<Scalar>& grad, const std::vector<index_t>& rows);
///       // one update of the N x d table from its gradient; `rows` lists the rows with a nonzero gradient,
///       // sorted and distinct (MF, L = 0), or is empty when every row may have one (LightGCN, L >= 1)
/// @endcode
/// and optionally `optim::state_view<Scalar> state()` (its moments and counters by name): trainer::save and
/// trainer::load then checkpoint it beside E0 as `opt_E0_<name>.npy`; without it a resumed run restarts the
/// optimiser's state. The trainer zeroes the gradient after each step. The gate and margin parameters of
/// ANS keep their dense Adam (trainer_config::lr); trainer_config::optimizer is ignored.
/// `is_table_optimizer_v<O, Scalar>` checks the requirement at compile time.
#pragma once

#include <type_traits>
#include <utility>
#include <vector>

#include "ans/optim/state.hpp"
#include "ans/types.hpp"

namespace ans::train {

/// The default optimiser policy: trainer_config::optimizer.
struct builtin_optimizer {};

namespace detail {
template <class O, class Scalar, class = void>
struct is_table_optimizer_impl : std::false_type {};
template <class O, class Scalar>
struct is_table_optimizer_impl<
    O, Scalar,
    std::void_t<decltype(std::declval<O&>().step(std::declval<matrix<Scalar>&>(), std::declval<const matrix<Scalar>&>(),
                                                 std::declval<const std::vector<index_t>&>()))>> : std::true_type {};
template <class O, class Scalar, class = void>
struct has_optimizer_state : std::false_type {};
template <class O, class Scalar>
struct has_optimizer_state<O, Scalar,
                           std::enable_if_t<std::is_same_v<decltype(std::declval<O&>().state()), optim::state_view<Scalar>>>>
    : std::true_type {};
}  // namespace detail

/// True for builtin_optimizer and for every type with the step member above.
template <class O, class Scalar>
inline constexpr bool is_table_optimizer_v =
    std::is_same_v<O, builtin_optimizer> || detail::is_table_optimizer_impl<O, Scalar>::value;

}  // namespace ans::train
