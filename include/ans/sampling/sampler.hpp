/// @file sampler.hpp
/// @brief The negative-sampler interface (a compile-time concept) and a minimal span.
///
/// A *sampler* is any type `S` with a const member
/// @code
///   template <class Rng> void sample(index_t user, index_t pos_item, Rng& rng, item_span out) const;
/// @endcode
/// that fills every slot of `out` with a candidate item id for the training pair (user, pos_item).
/// Samplers are used through templates (no virtual dispatch in the hot loop); `is_sampler_v<S>` checks
/// the requirement and `sample_batch` (batch.hpp) drives any sampler over a batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "ans/config.hpp"
#include "ans/sampling/rng.hpp"

namespace ans::sampling {

/// A non-owning view of `size` contiguous elements (C++17 stand-in for std::span).
template <class T>
struct span {
  T* ptr = nullptr;
  index_t n = 0;

  span() = default;
  span(T* p, index_t count) : ptr(p), n(count) {}
  T* data() const { return ptr; }
  index_t size() const { return n; }
  bool empty() const { return n == 0; }
  T& operator[](index_t i) const { return ptr[i]; }
  T* begin() const { return ptr; }
  T* end() const { return ptr + n; }
  span subspan(index_t offset, index_t count) const { return span(ptr + offset, count); }
};

/// Output buffer of candidate item ids.
using item_span = span<id_type>;

namespace detail {
template <class S, class = void>
struct is_sampler_impl : std::false_type {};
template <class S>
struct is_sampler_impl<S, std::void_t<decltype(std::declval<const S&>().sample(
                              index_t{}, index_t{}, std::declval<rng&>(), std::declval<item_span>()))>>
    : std::true_type {};

template <class S, class = void>
struct has_prefetch_impl : std::false_type {};
template <class S>
struct has_prefetch_impl<S, std::void_t<decltype(std::declval<const S&>().prefetch(index_t{}))>> : std::true_type {};
}  // namespace detail

/// True when `S` has the optional `void prefetch(index_t user) const`: a hint, called a few pairs ahead, that
/// the sampler will soon draw for `user` (e.g. to bring the user's row of the training matrix into cache).
template <class S>
inline constexpr bool has_prefetch_v = detail::has_prefetch_impl<S>::value;

/// True when `S` satisfies the sampler concept with the default generator.
template <class S>
inline constexpr bool is_sampler_v = detail::is_sampler_impl<S>::value;

}  // namespace ans::sampling
