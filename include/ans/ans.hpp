/// @file ans.hpp
/// @brief Umbrella header: includes every component of the library.
#pragma once

#include "ans/config.hpp"
#include "ans/version.hpp"
#include "ans/types.hpp"
#include "ans/graph/adjacency.hpp"
#include "ans/propagation/lightgcn.hpp"
#include "ans/data/interactions.hpp"
