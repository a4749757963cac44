// Golden parity: every case folder under $ANS_GOLDEN_DIR (kind "loss") in double and in float.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "ans/testing/golden.hpp"

namespace {
std::vector<std::string> golden_case_dirs() {
  std::vector<std::string> out;
  const char* env = std::getenv("ANS_GOLDEN_DIR");
  if (!env || !*env) return out;
  const std::string root = env;
  DIR* dp = opendir(root.c_str());
  if (!dp) return out;
  while (dirent* e = readdir(dp)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string dir = root + "/" + name;
    struct stat st;
    if (stat((dir + "/manifest.json").c_str(), &st) == 0) out.push_back(dir);
  }
  closedir(dp);
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("golden cases match PyTorch autograd (double, float)", "[components][golden]") {
  const auto dirs = golden_case_dirs();
  if (dirs.empty()) {
    WARN("ANS-SKIPPED: ANS_GOLDEN_DIR is unset or holds no case folders; golden parity not checked");
    return;
  }
  auto run = [](const ans::testing::golden_case& c, auto precision, double floor) {
    using S = decltype(precision);
    if (c.kind == "model") return ans::testing::run_model_case<S>(c, floor);
    REQUIRE(c.kind == "loss");
    return ans::testing::run_loss_case<S>(c, floor);
  };
  for (const auto& dir : dirs) {
    const auto c = ans::testing::load_golden_case(dir);
    SECTION("double " + c.name) {
      const auto cmp = run(c, double{}, -1.0);
      INFO(c.name << ": worst " << cmp.worst << " = " << cmp.max_error);
      CHECK(cmp.k_star_matches);
      CHECK(cmp.errors.size() >= 8);  // every value and gradient was compared
      CHECK(cmp.max_error <= 1e-9);
    }
    SECTION("float " + c.name) {
      // float vs the float64 reference: 1e-4 relative with an absolute floor of 1e-6 (floor 1e-2 x 1e-4).
      const auto cmp = run(c, float{}, 1e-2);
      INFO(c.name << ": worst " << cmp.worst << " = " << cmp.max_error);
      CHECK(cmp.k_star_matches);
      CHECK(cmp.max_error <= 1e-4);
    }
  }
}
