/// @file version.hpp
/// @brief Library version. CMake parses the three macros below; keep their format.
#pragma once

#define ANS_VERSION_MAJOR 0
#define ANS_VERSION_MINOR 1
#define ANS_VERSION_PATCH 0

namespace ans {
/// The version as "MAJOR.MINOR.PATCH".
inline constexpr const char* version_string = "0.1.0";
}  // namespace ans
