// A libFuzzer binary for one target of harness.hpp (scripts/fuzz.sh builds it once per target with
// -DANS_FUZZ_TARGET=<name>). Not part of ans_tests: tests/CMakeLists.txt leaves this file out.
#include "harness.hpp"

#ifndef ANS_FUZZ_TARGET
#error "build with -DANS_FUZZ_TARGET=lightgcn|recbole|rechorus|npy|manifest"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ans_fuzz::ANS_FUZZ_TARGET(data, size);
}
