// Exact counts on the shared datasets. Reads the data folder from ANS_DATA_DIR; skips with a warning
// when it is unset or missing, so the suite passes on a fresh machine.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "ans/data/detect.hpp"
#include "ans/data/split.hpp"

using namespace ans::data;

namespace {
/// The dataset folder `sub` under ANS_DATA_DIR, or "" (after a WARN) when unavailable.
std::string data_dir(const std::string& sub) {
  const char* env = std::getenv("ANS_DATA_DIR");
  std::error_code ec;
  if (!env || !*env || !std::filesystem::is_directory(std::string(env) + "/" + sub, ec)) {
    WARN("ANS-SKIPPED: " << sub << " not found under ANS_DATA_DIR (set ANS_DATA_DIR to the shared data folder)");
    return "";
  }
  return std::string(env) + "/" + sub;
}
}  // namespace

TEST_CASE("shared data: gowalla (LightGCN)", "[data][shared]") {
  const auto dir = data_dir("gowalla");
  if (dir.empty()) return;
  CHECK(detect_format(dir) == "lightgcn");
  auto d = load_any(dir);
  CHECK(d.n_users() == 29858);
  CHECK(d.n_items() == 40981);
  CHECK(d.train.nnz() == 810128);
  CHECK(d.test.nnz() == 217242);
  CHECK(d.dev.nnz() == 0);
  CHECK(d.report.merged_duplicates() == 0);
  CHECK(d.report.unseen_item_test == 0);
  CHECK(d.report.users_without_test == 0);
}

TEST_CASE("shared data: amazon_beauty (LightGCN)", "[data][shared]") {
  const auto dir = data_dir("amazon_beauty");
  if (dir.empty()) return;
  auto d = load_any(dir);
  CHECK(d.n_users() == 7670);
  CHECK(d.n_items() == 10887);
  CHECK(d.train.nnz() == 63601);
  CHECK(d.test.nnz() == 18696);
  CHECK(d.report.users_without_test == 525);
  CHECK(d.report.unseen_item_test == 0);
  // --valid_ratio 0.1 holds out 6338 interactions (9.97%), the count the PyTorch reference reports for its split
  auto h = holdout_split(d.train, 0.1, 2020);
  CHECK(h.dev.nnz() == 6338);
  CHECK(h.train.nnz() == 63601 - 6338);
}

TEST_CASE("shared data: ml-100k (RecBole, no split)", "[data][shared]") {
  const auto dir = data_dir("ml-100k");
  if (dir.empty()) return;
  CHECK(detect_format(dir) == "recbole");
  auto d = load_any(dir);
  CHECK(d.n_users() == 943);
  CHECK(d.n_items() == 1682);
  CHECK(d.train.nnz() == 100000);
  CHECK(d.dev.nnz() == 0);
  CHECK(d.test.nnz() == 0);
  CHECK_FALSE(d.report.has_split);
  CHECK(d.user_ids->to_raw[0] == "196");  // first row of the file
  CHECK(d.item_ids->to_raw[0] == "242");
  REQUIRE(d.events.size() == 100000u);
  auto loo = leave_one_out(d.n_users(), d.n_items(), d.events);
  CHECK(loo.test.nnz() == 943);
  CHECK(loo.dev.nnz() == 943);
  CHECK(loo.train.nnz() == 100000 - 2 * 943);
  auto rs = random_split(d.train, {0.8, 0.1, 0.1}, 2020);
  CHECK(rs.train.nnz() + rs.dev.nnz() + rs.test.nnz() == 100000);
}

TEST_CASE("shared data: grocery_and_gourmet_food (ReChorus)", "[data][shared]") {
  const auto dir = data_dir("grocery_and_gourmet_food");
  if (dir.empty()) return;
  CHECK(detect_format(dir) == "rechorus");
  auto d = load_any(dir);
  CHECK(d.n_users() == 14681);
  CHECK(d.n_items() == 8713);
  CHECK(d.train.nnz() == 121892);
  CHECK(d.dev.nnz() == 14681);
  CHECK(d.test.nnz() == 14681);
  REQUIRE(d.test_candidates);
  REQUIRE(d.dev_candidates);
  CHECK(d.test_candidates->rows() == 14681);
  CHECK(d.dev_candidates->rows() == 14681);
  CHECK(d.test_candidates->n_neg == 99);
  // first test row: user 6185, item 762, negatives [2733, 3265, 4860, ...] (file ids, shifted by one here)
  CHECK(d.test_candidates->users[0] == 6184);
  CHECK(d.test_candidates->positives[0] == 761);
  CHECK(d.test_candidates->negatives_of(0)[0] == 2732);
  CHECK(d.test_candidates->negatives_of(0)[2] == 4859);
  // README: 26 test items and 24 dev items never occur in train (170 and 54 interactions)
  CHECK(d.report.unseen_item_test == 170);
  CHECK(d.report.unseen_item_dev == 54);
  CHECK(d.report.set_aside_total() == 0);
}
