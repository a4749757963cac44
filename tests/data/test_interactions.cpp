#include <catch2/catch.hpp>

#include "ans/data/interactions.hpp"

TEST_CASE("interactions: CSR from pairs sorts rows and merges duplicates", "[data]") {
  auto m = ans::data::from_pairs(3, 5, {{2, 4}, {0, 3}, {0, 1}, {2, 4}, {0, 3}, {0, 3}});
  REQUIRE(m.nnz() == 3);
  CHECK(m.indptr == std::vector<ans::index_t>{0, 2, 2, 3});
  CHECK(m.indices == std::vector<std::int32_t>{1, 3, 4});
  CHECK(m.counts == std::vector<std::uint32_t>{1, 3, 2});
  CHECK(m.merged_duplicates() == 3);
  CHECK(m.contains(0, 3));
  CHECK_FALSE(m.contains(0, 2));
  CHECK_FALSE(m.contains(1, 0));
  CHECK_THROWS_WITH(ans::data::from_pairs(2, 2, {{0, 2}}), Catch::Contains("interactions.hpp:") &&
                                                           Catch::Contains("item id 2"));
}

TEST_CASE("interactions: the empty matrix", "[data]") {
  auto m = ans::data::from_pairs(0, 0, {});
  CHECK(m.nnz() == 0);
  CHECK(m.merged_duplicates() == 0);
  CHECK(m.indptr.size() == 1);
}
