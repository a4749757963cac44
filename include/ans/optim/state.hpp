/// @file state.hpp
/// @brief Named views of optimiser state, for checkpointing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ans/config.hpp"

namespace ans::optim {

/// A named, mutable view of one state array: read it to save, write through it to load.
template <class T>
struct named_array {
  std::string name;
  T* data = nullptr;
  std::size_t size = 0;
};

/// An optimiser's complete state: floating-point arrays (moments, momentum buffers) and integer arrays
/// (step counters).
template <class Scalar>
struct state_view {
  std::vector<named_array<Scalar>> arrays;
  std::vector<named_array<std::int64_t>> counters;
};

}  // namespace ans::optim
