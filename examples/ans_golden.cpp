// ans-golden DIR...: runs the library (double, faithful mode) on golden case folders (manifest.json + .npy)
// and prints, per case, the worst scaled error of every value and gradient and PASS/FAIL.
//
// Error of one entry: |a − b| / max(|b|, abs/rel) with the manifest's tolerance (default rel 1e-9, abs 1e-12),
// so an error ≤ 1e-9 means "within 1e-9 relative or 1e-12 absolute". k* is computed by the library and
// compared with k_star.npy. Exit status 0 only when every case passes.
#include <cstdio>
#include <exception>
#include <string>
#include <sys/stat.h>

#include "ans/testing/golden.hpp"


int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CASE_DIR...\n", argv[0]);
    return 2;
  }
  int failures = 0, skipped = 0, passed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string dir = argv[i];
    struct stat st;
    if (stat((dir + "/manifest.json").c_str(), &st) != 0) {
      std::printf("%-16s SKIP (no manifest.json: not a case folder)\n", dir.c_str());
      ++skipped;
      continue;
    }
    try {
      const auto c = ans::testing::load_golden_case(dir);
      double rel = 1e-9;
      if (c.manifest.contains("tolerance")) rel = c.manifest.at("tolerance").number_or("rel", rel);
      ans::testing::golden_comparison cmp;
      if (c.kind == "loss") {
        cmp = ans::testing::run_loss_case<double>(c);
      } else if (c.kind == "model") {
        cmp = ans::testing::run_model_case<double>(c);
      } else {
        std::printf("%-16s %-6s FAIL (unknown kind)\n", c.name.c_str(), c.kind.c_str());
        ++failures;
        continue;
      }
      std::printf("%-16s %-6s", c.name.c_str(), c.kind.c_str());
      for (const auto& e : cmp.errors) std::printf(" %s=%.2e", e.first.c_str(), e.second);
      if (!cmp.k_star_matches) std::printf(" k_star=DIFFERS");
      const bool ok = cmp.pass(rel);
      std::printf("  max=%.2e (%s)  %s\n", cmp.max_error, cmp.worst.c_str(), ok ? "PASS" : "FAIL");
      ok ? ++passed : ++failures;
    } catch (const std::exception& ex) {
      std::printf("%-16s ERROR %s\n", dir.c_str(), ex.what());
      ++failures;
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failures, skipped);
  return failures == 0 ? 0 : 1;
}
