/// @file selector.hpp
/// @brief The negative-selector policy: which of a pair's K candidates becomes its negative, from their scores.
///
/// The built-in selections are model::negative_selection (RNS: the first candidate; DNS: the highest score;
/// MixGCF: synthesised by mixing); `builtin_selection` (the default) keeps them. A *user selector* replaces
/// the choice of RNS/DNS in model::bpr_objective and train::trainer. It is any type `S` with
/// @code
///   template <class Rng>
///   index_t select(const Scalar* scores, index_t K, Rng& rng) const;
///       // scores[k] = the model's score of candidate k for this pair (<ū, c̄_k> on the readout the model
///       // trains with; Σ_h <u_h, c_{k,h}> for the concatenation), k < K; returns k in [0, K)
/// @endcode
/// `rng` is the counter-based stream of this (seed, step, pair) (sampling::stream): a stochastic selector
/// (e.g. a softmax over the scores) stays deterministic and thread-count independent. The call runs inside
/// the objective's parallel loop, one pair per call: it must be thread-safe (const, no shared state) and not
/// allocate. The chosen candidate gets the gradient of BPR like DNS's argmax (the choice itself is not
/// differentiated). A k outside [0, K) is an error raised after the loop, naming the pair.
/// `is_selector_v<S, Scalar>` checks the requirement at compile time.
#pragma once

#include <type_traits>
#include <utility>

#include "ans/config.hpp"
#include "ans/sampling/rng.hpp"

namespace ans::sampling {

/// The default selector policy: model::bpr_options::selection (RNS, DNS, MixGCF) decides.
struct builtin_selection {};

namespace detail {
template <class S, class Scalar, class = void>
struct is_selector_impl : std::false_type {};
template <class S, class Scalar>
struct is_selector_impl<S, Scalar,
                        std::enable_if_t<std::is_convertible_v<
                            decltype(std::declval<const S&>().select(std::declval<const Scalar*>(), index_t{},
                                                                     std::declval<rng&>())),
                            index_t>>> : std::true_type {};
}  // namespace detail

/// True for builtin_selection and for every type with the member above.
template <class S, class Scalar>
inline constexpr bool is_selector_v = std::is_same_v<S, builtin_selection> || detail::is_selector_impl<S, Scalar>::value;

}  // namespace ans::sampling
