// Replays the fuzzing regression corpus (tests/fuzz/corpus/<target>/*: inputs that once failed, plus the
// hand-made seeds) through the same targets as the libFuzzer binaries: each must end in success or an
// ans::error, under every build of the suite (Release, ASan+UBSan, TSan).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "harness.hpp"

TEST_CASE("fuzz corpus: every stored input is rejected cleanly or loads", "[data][fuzz]") {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(ANS_SOURCE_DIR) / "tests" / "fuzz" / "corpus";
  std::size_t inputs = 0;
  for (const auto& t : ans_fuzz::targets()) {
    const fs::path dir = root / t.name;
    REQUIRE(fs::is_directory(dir));
    for (const auto& e : fs::directory_iterator(dir)) {
      std::ifstream in(e.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO(t.name << ": " << e.path().filename().string());
      CHECK_NOTHROW(t.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      ++inputs;
    }
  }
  CHECK(inputs >= ans_fuzz::targets().size());
}
