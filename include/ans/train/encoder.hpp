/// @file encoder.hpp
/// @brief The encoder policy of train::trainer: where the ego embeddings E0 = [users; items] come from.
///
/// `table_encoder` (the default) is a free embedding table: E0 is the parameter, updated by the trainer's
/// own optimiser (dense or lazy Adam, SGD, hogwild SGD), checkpointed by save()/load().
///
/// A *user encoder* computes E0 from its own parameters θ (e.g. an item tower over item features) and owns
/// θ and its optimiser. It is any type `E` with
/// @code
///   void forward(matrix<Scalar>& e0);    // E0 = f_θ: writes every row of the n_nodes x d table
///   void backward(const matrix<Scalar>& grad_e0, const std::vector<index_t>& rows);
///                                        // accumulates ∂L/∂θ = Σ_r (∂E0[r]/∂θ)ᵀ ∂L/∂E0[r]; `rows` lists the
///                                        // rows with a nonzero gradient (sorted; empty = every row may be)
///   void step();                         // one optimiser step on θ, then zero θ's gradient
/// @endcode
/// The trainer calls forward() before every step and after every epoch (so evaluation ranks the current
/// θ), runs the objective (with the LightGCN propagation when n_layers > 0) on E0, then backward() and
/// step(); it zeroes ∂L/∂E0 itself. `is_encoder_v<E, Scalar>` checks the requirement.
#pragma once

#include <type_traits>
#include <utility>
#include <vector>

#include "ans/types.hpp"

namespace ans::train {

/// The default encoder: E0 is a free embedding table (MF; LightGCN's ego layer).
struct table_encoder {};

namespace detail {
template <class E, class Scalar, class = void>
struct is_encoder_impl : std::false_type {};
template <class E, class Scalar>
struct is_encoder_impl<E, Scalar,
                       std::void_t<decltype(std::declval<E&>().forward(std::declval<matrix<Scalar>&>())),
                                   decltype(std::declval<E&>().backward(std::declval<const matrix<Scalar>&>(),
                                                                        std::declval<const std::vector<index_t>&>())),
                                   decltype(std::declval<E&>().step())>> : std::true_type {};
}  // namespace detail

/// True for table_encoder and for every type with the user-encoder members above.
template <class E, class Scalar>
inline constexpr bool is_encoder_v = std::is_same_v<E, table_encoder> || detail::is_encoder_impl<E, Scalar>::value;

}  // namespace ans::train
