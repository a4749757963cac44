#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ans/data/detect.hpp"
#include "ans/data/lightgcn.hpp"
#include "ans/data/parse.hpp"
#include "ans/data/recbole.hpp"
#include "ans/data/rechorus.hpp"
#include "data_test_util.hpp"

using namespace ans::data;
using Catch::Contains;

namespace {
/// Matcher: the message names `file` and `file:LINE:`.
class at_matcher : public Catch::MatcherBase<std::string> {
 public:
  at_matcher(std::string file, int line) : needle_(std::move(file) + ":" + std::to_string(line) + ":") {}
  bool match(const std::string& s) const override { return s.find(needle_) != std::string::npos; }
  std::string describe() const override { return "names " + needle_; }

 private:
  std::string needle_;
};
at_matcher at(const std::string& file, int line) { return at_matcher(file, line); }
}  // namespace

// ---------------------------------------------------------------- parse helpers

TEST_CASE("parse: helpers tokenize and report PATH:LINE", "[data]") {
  std::vector<std::string_view> t;
  split_whitespace("  3 4\t5  ", t);
  REQUIRE(t.size() == 3);
  CHECK(t[2] == "5");
  split_char("a\t\tb", '\t', t);
  REQUIRE(t.size() == 3);
  CHECK(t[1].empty());
  CHECK(parse_id("42", "f", 1, "item id") == 42);
  CHECK_THROWS_WITH(parse_id("4x", "f.txt", 7, "item id"), Contains("f.txt:7: non-numeric item id '4x'"));
  CHECK_THROWS_WITH(parse_id("-3", "f.txt", 2, "user id"), Contains("f.txt:2: negative user id -3"));
  std::vector<std::int64_t> v;
  parse_int_list("[1, 2,3 ,4]", "f", 1, "neg_items", v);
  CHECK(v == std::vector<std::int64_t>{1, 2, 3, 4});
  CHECK_THROWS_WITH(parse_int_list("1, 2", "f", 3, "neg_items", v), Contains("f:3: malformed neg_items"));
  CHECK_THROWS_WITH(parse_int_list("[1;2]", "f", 3, "neg_items", v), Contains("f:3: malformed neg_items"));
  CHECK_THROWS_WITH(parse_int_list("[1,,2]", "f", 3, "neg_items", v), Contains("f:3: malformed neg_items"));
  CHECK_THROWS_WITH(parse_int_list("[1, a]", "f", 3, "neg_items", v), Contains("f:3: malformed neg_items"));
  line_reader lr("a\r\nb\n\nc");
  std::string_view line;
  std::vector<std::string> lines;
  while (lr.next(line)) lines.emplace_back(line);
  CHECK(lines == std::vector<std::string>{"a", "b", "", "c"});
  CHECK(lr.line_no() == 4);
}

// ---------------------------------------------------------------- LightGCN

TEST_CASE("lightgcn: loads train/test, keeps ids, merges duplicates", "[data]") {
  ans_test::temp_dir tmp;
  const auto dir = tmp.sub("toy");
  tmp.write("toy/train.txt", "0 1 2 3\n1 0 0 4\n\n3 2\n");
  tmp.write("toy/test.txt", "0 4\n1 3\n2 5\n");
  auto d = load_lightgcn(dir);
  CHECK(d.format == "lightgcn");
  CHECK(d.name == "toy");
  CHECK(d.n_users() == 4);
  CHECK(d.n_items() == 6);  // max id 5 over train and test
  CHECK(d.train.nnz() == 6);
  CHECK(d.report.raw_train == 7);
  CHECK(d.test.nnz() == 3);
  CHECK(d.dev.nnz() == 0);
  CHECK(d.report.merged_train == 1);
  CHECK(d.report.merged_duplicates() == 1);
  CHECK(d.report.blank_lines == 1);
  CHECK(d.report.lines_read == 7);
  // item 5 never occurs in train; user 2 has no train line
  CHECK(d.report.unseen_item_test == 1);
  CHECK(d.report.unseen_user_test == 0);  // counted under the item reason
  CHECK(d.report.set_aside_total() == 0);
  CHECK(d.report.users_without_train == 1);
  CHECK(d.report.users_without_test == 1);  // user 3
  CHECK(d.train.contains(1, 0));
  CHECK(d.train.counts[d.train.indptr[1]] == 2);
}

TEST_CASE("lightgcn: set_aside policy moves unseen test items out and counts them", "[data]") {
  ans_test::temp_dir tmp;
  const auto dir = tmp.sub("toy");
  tmp.write("toy/train.txt", "0 1 2\n1 2\n");
  tmp.write("toy/test.txt", "0 3 0\n1 1\n2 1\n");
  load_options opt;
  opt.unseen = unseen_policy::set_aside;
  auto d = load_lightgcn(dir, opt);
  // item 3 and item 0 are not in train; user 2 is not in train
  CHECK(d.report.set_aside_item_test == 2);
  CHECK(d.report.set_aside_user_test == 1);
  CHECK(d.report.set_aside_total() == 3);
  CHECK(d.set_aside.size() == 3);
  CHECK(d.test.nnz() == 1);
  CHECK(d.test.contains(1, 1));
  CHECK(d.report.raw_test == 4);
  // nothing lost: kept + set aside = read
  CHECK(d.test.nnz() + d.report.merged_test + d.report.set_aside_total() == d.report.raw_test);
  auto k = load_lightgcn(dir);
  CHECK(k.test.nnz() == 4);
  CHECK(k.report.unseen_item_test == 2);
  CHECK(k.report.unseen_user_test == 1);
}

TEST_CASE("lightgcn: bad input names file and line", "[data]") {
  ans_test::temp_dir tmp;
  SECTION("non-numeric id") {
    tmp.write("a/train.txt", "0 1 2\n1 x3\n");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"), at("train.txt", 2) && Contains("non-numeric item id 'x3'"));
  }
  SECTION("negative id") {
    tmp.write("a/train.txt", "0 1\n1 2\n-2 3\n");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"), at("train.txt", 3) && Contains("negative user id -2"));
  }
  SECTION("bad test file") {
    tmp.write("a/train.txt", "0 1\n");
    tmp.write("a/test.txt", "0 1.5\n");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"), at("test.txt", 1) && Contains("non-numeric"));
  }
  SECTION("empty file") {
    tmp.write("a/train.txt", "");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"), at("train.txt", 1) && Contains("empty file"));
  }
  SECTION("a stray line with a huge user id (issue 15: OOM kill before)") {
    std::string text;
    for (int u = 0; u < 50; ++u) text += std::to_string(u) + " 1 2\n";
    tmp.write("a/train.txt", text + "2147483647 1 2\n");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"),
                      at("train.txt", 51) && Contains("user id 2147483647 would make a table of 2147483648 rows") &&
                          Contains("re-index"));
  }
  SECTION("the id limit's floor is an option (the fuzz targets lower it)") {
    tmp.write("a/train.txt", "0 1 2\n1 5000\n2 3\n");
    CHECK(load_lightgcn(tmp.str() + "/a").n_items() == 5001);  // below the default floor of 2^20 rows
    ans::data::load_options o;
    o.id_floor = 4096;
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a", o),
                      at("train.txt", 2) && Contains("item id 5000 would make a table of 5001 rows") &&
                          Contains("above 2^12 rows"));
    o.id_density = 0;  // no limit
    CHECK(load_lightgcn(tmp.str() + "/a", o).n_items() == 5001);
  }
  SECTION("a huge item id") {
    tmp.write("a/train.txt", "0 1 2\n1 2147483646\n2 3\n");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"), at("train.txt", 2) && Contains("item id 2147483646"));
  }
  SECTION("an id past the 32-bit range") {
    tmp.write("a/train.txt", "0 1 2\n1 4294967296\n");
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/a"), at("train.txt", 2) && Contains("too large"));
  }
  SECTION("unreadable path") {
    CHECK_THROWS_AS(load_lightgcn(tmp.str() + "/missing"), ans::error);
    CHECK_THROWS_WITH(load_lightgcn(tmp.str() + "/missing"), Contains("missing/train.txt: cannot open"));
  }
}

// ---------------------------------------------------------------- RecBole

TEST_CASE("recbole: token ids in order of first appearance, no split, timestamps kept", "[data]") {
  ans_test::temp_dir tmp;
  const auto path = tmp.write("ml/ml.inter",
                              "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                              "u9\ti7\t3\t100\n"
                              "u2\ti7\t4\t50\n"
                              "u9\tabc\t5\t200\n"
                              "u9\ti7\t1\t300\n");
  for (const std::string& p : {path, tmp.str() + "/ml"}) {
    auto d = load_recbole(p);
    CHECK(d.format == "recbole");
    CHECK(d.name == "ml");
    CHECK(d.n_users() == 2);
    CHECK(d.n_items() == 2);
    REQUIRE(d.user_ids);
    CHECK(d.user_ids->to_raw == std::vector<std::string>{"u9", "u2"});
    CHECK(d.item_ids->to_raw == std::vector<std::string>{"i7", "abc"});
    CHECK(d.item_ids->find("abc") == 1);
    CHECK(d.item_ids->find("zzz") == -1);
    CHECK(d.train.nnz() == 3);
    CHECK(d.report.merged_train == 1);
    CHECK(d.test.nnz() == 0);
    CHECK_FALSE(d.report.has_split);
    REQUIRE(d.events.size() == 4);
    CHECK(d.events[1].user == 1);
    CHECK(d.events[1].time == 50);
  }
}

TEST_CASE("recbole: split files are loaded when present", "[data]") {
  ans_test::temp_dir tmp;
  const std::string h = "user_id:token\titem_id:token\n";
  tmp.write("g/g.train.inter", h + "a\tx\na\ty\nb\ty\n");
  tmp.write("g/g.valid.inter", h + "a\tz\n");
  tmp.write("g/g.test.inter", h + "b\tx\nc\ty\n");
  auto d = load_recbole(tmp.str() + "/g");
  CHECK(d.report.has_split);
  CHECK(d.n_users() == 3);
  CHECK(d.n_items() == 3);
  CHECK(d.train.nnz() == 3);
  CHECK(d.dev.nnz() == 1);
  CHECK(d.test.nnz() == 2);
  CHECK(d.report.unseen_item_dev == 1);   // z
  CHECK(d.report.unseen_user_test == 1);  // c
  CHECK(d.events.empty());
  CHECK(detect_format(tmp.str() + "/g") == "recbole");
  CHECK(load_any(tmp.str() + "/g/g.train.inter").train.nnz() == 3);
}

TEST_CASE("recbole: bad input names file and line", "[data]") {
  ans_test::temp_dir tmp;
  SECTION("a timestamp that is not finite") {
    auto p = tmp.write("x.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\tnan\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 3) && Contains("timestamp 'nan' is not finite"));
    p = tmp.write("y.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tinf\n");
    CHECK_THROWS_WITH(load_recbole(p), at("y.inter", 2) && Contains("not finite"));
  }
  SECTION("a folder with two .inter files and none named after it") {
    tmp.write("two/a.inter", "user_id:token\titem_id:token\n1\t2\n");
    tmp.write("two/b.inter", "user_id:token\titem_id:token\n1\t2\n");
    CHECK_THROWS_WITH(load_recbole(tmp.str() + "/two"),
                      Contains("2 .inter files in the folder (") && Contains("a.inter") && Contains("b.inter") &&
                          Contains("none named two.inter"));
  }
  SECTION("no item_id in the header") {
    auto p = tmp.write("x.inter", "user_id:token\titem:token\n1\t2\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 1) && Contains("no item_id"));
  }
  SECTION("no user_id in the header") {
    auto p = tmp.write("x.inter", "\nitem_id:token\tuid:token\n1\t2\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 2) && Contains("no user_id"));
  }
  SECTION("untyped header field") {
    auto p = tmp.write("x.inter", "user_id\titem_id:token\n1\t2\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 1) && Contains("name:type"));
  }
  SECTION("unknown type") {
    auto p = tmp.write("x.inter", "user_id:token\titem_id:int\n1\t2\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 1) && Contains("unknown type"));
  }
  SECTION("missing column") {
    auto p = tmp.write("x.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t3\n4\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 3) && Contains("missing column"));
  }
  SECTION("non-numeric timestamp") {
    auto p = tmp.write("x.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tnoon\n");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 2) && Contains("non-numeric timestamp"));
  }
  SECTION("empty file") {
    auto p = tmp.write("x.inter", "");
    CHECK_THROWS_WITH(load_recbole(p), at("x.inter", 1) && Contains("empty file"));
  }
  SECTION("unreadable path") {
    CHECK_THROWS_WITH(load_recbole(tmp.str() + "/nope.inter"), Contains("nope.inter: cannot open"));
  }
}

// ---------------------------------------------------------------- ReChorus

namespace {
const char* rc_train =
    "user_id\titem_id\ttime\n"
    "1\t1\t10\n"
    "1\t2\t11\n"
    "2\t2\t12\n"
    "3\t3\t13\n"
    "1\t2\t14\n";
const char* rc_dev =
    "user_id\titem_id\ttime\tneg_items\n"
    "2\t3\t20\t[4, 4, 1]\n"
    "1\t3\t21\t[5, 6, 4]\n";
const char* rc_test =
    "user_id\titem_id\ttime\tneg_items\n"
    "3\t7\t30\t[1, 2, 6]\n"
    "1\t4\t31\t[6,5,6]\n";
}  // namespace

TEST_CASE("rechorus: ids shifted by one, fixed negatives kept in row order", "[data]") {
  ans_test::temp_dir tmp;
  tmp.write("rc/train.csv", rc_train);
  tmp.write("rc/dev.csv", rc_dev);
  tmp.write("rc/test.csv", rc_test);
  auto d = load_rechorus(tmp.str() + "/rc");
  CHECK(d.format == "rechorus");
  CHECK(d.n_users() == 3);
  CHECK(d.n_items() == 7);  // largest id 7 (test positive)
  CHECK(d.train.nnz() == 4);
  CHECK(d.report.merged_train == 1);
  CHECK(d.dev.nnz() == 2);
  CHECK(d.test.nnz() == 2);
  REQUIRE(d.test_candidates);
  REQUIRE(d.dev_candidates);
  const auto& t = *d.test_candidates;
  CHECK(t.n_neg == 3);
  CHECK(t.rows() == 2);
  CHECK(t.users == std::vector<std::int32_t>{2, 0});
  CHECK(t.positives == std::vector<std::int32_t>{6, 3});
  CHECK(t.negatives == std::vector<std::int32_t>{0, 1, 5, 5, 4, 5});  // duplicates kept
  CHECK(d.dev_candidates->negatives_of(0)[0] == 3);
  CHECK(d.dev_candidates->negatives_of(0)[1] == 3);
  // test items 7 and 4 (ids 6, 3) are not in train; dev item 3 (id 2) is
  CHECK(d.report.unseen_item_test == 2);
  CHECK(d.report.unseen_item_dev == 0);
  CHECK(d.report.users_without_test == 1);  // user 2 (file id 2)
  CHECK(detect_format(tmp.str() + "/rc") == "rechorus");
  CHECK(load_any(tmp.str() + "/rc/test.csv").test.nnz() == 2);
}

TEST_CASE("rechorus: bad input names file and line", "[data]") {
  ans_test::temp_dir tmp;
  const auto dir = tmp.str() + "/rc";
  tmp.write("rc/train.csv", rc_train);
  SECTION("malformed neg_items") {
    tmp.write("rc/test.csv", "user_id\titem_id\ttime\tneg_items\n1\t2\t3\t[1, 2, 3]\n1\t2\t3\t1, 2, 3\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("test.csv", 3) && Contains("malformed neg_items"));
  }
  SECTION("neg_items with a non-integer") {
    tmp.write("rc/dev.csv", "user_id\titem_id\ttime\tneg_items\n1\t2\t3\t[1, two, 3]\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("dev.csv", 2) && Contains("malformed neg_items"));
  }
  SECTION("empty neg_items (issue 15: every metric was 1)") {
    tmp.write("rc/dev.csv", "user_id\titem_id\ttime\tneg_items\n1\t2\t3\t[]\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("dev.csv", 2) && Contains("neg_items is empty"));
  }
  SECTION("a huge item id in neg_items") {
    tmp.write("rc/test.csv", "user_id\titem_id\ttime\tneg_items\n1\t2\t3\t[1, 2147483646]\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("test.csv", 2) && Contains("item id 2147483646 would make a table"));
  }
  SECTION("neg_items count differs") {
    tmp.write("rc/test.csv", "user_id\titem_id\ttime\tneg_items\n1\t2\t3\t[1, 2, 3]\n1\t2\t3\t[1, 2]\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("test.csv", 3) && Contains("neg_items has 2 ids"));
  }
  SECTION("missing header column") {
    tmp.write("rc/test.csv", "user_id\titem\ttime\n1\t2\t3\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("test.csv", 1) && Contains("no item_id"));
  }
  SECTION("missing column in a row") {
    tmp.write("rc/test.csv", "user_id\titem_id\ttime\n1\t2\t3\n1\t2\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("test.csv", 3) && Contains("missing column"));
  }
  SECTION("non-numeric id") {
    tmp.write("rc/dev.csv", "user_id\titem_id\ttime\nabc\t2\t3\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("dev.csv", 2) && Contains("non-numeric user id 'abc'"));
  }
  SECTION("negative id") {
    tmp.write("rc/dev.csv", "user_id\titem_id\ttime\n1\t-2\t3\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("dev.csv", 2) && Contains("negative item id -2"));
  }
  SECTION("padding id 0") {
    tmp.write("rc/dev.csv", "user_id\titem_id\ttime\n1\t0\t3\n");
    CHECK_THROWS_WITH(load_rechorus(dir), at("dev.csv", 2) && Contains("padding"));
  }
  SECTION("empty file") {
    tmp.write("rc/test.csv", "");
    CHECK_THROWS_WITH(load_rechorus(dir), at("test.csv", 1) && Contains("empty file"));
  }
  SECTION("header only train") {
    tmp.write("rc2/train.csv", "user_id\titem_id\ttime\n");
    CHECK_THROWS_WITH(load_rechorus(tmp.str() + "/rc2"), at("train.csv", 1) && Contains("no interactions"));
  }
  SECTION("unreadable path") {
    CHECK_THROWS_WITH(load_rechorus(tmp.str() + "/none"), Contains("none/train.csv: cannot open"));
  }
}

// ---------------------------------------------------------------- detection

TEST_CASE("detect: format from folder contents and file names", "[data]") {
  ans_test::temp_dir tmp;
  tmp.write("l/train.txt", "0 1\n");
  tmp.write("r/train.csv", "user_id\titem_id\n1\t1\n");
  tmp.write("b/x.inter", "user_id:token\titem_id:token\n1\t1\n");
  tmp.write("u/readme.md", "nothing\n");
  CHECK(detect_format(tmp.str() + "/l") == "lightgcn");
  CHECK(detect_format(tmp.str() + "/l/train.txt") == "lightgcn");
  CHECK(detect_format(tmp.str() + "/r") == "rechorus");
  CHECK(detect_format(tmp.str() + "/b") == "recbole");
  CHECK(detect_format(tmp.str() + "/b/x.inter") == "recbole");
  CHECK(load_any(tmp.str() + "/b").train.nnz() == 1);
  CHECK(load_any(tmp.str() + "/l/train.txt").train.nnz() == 1);
  CHECK_THROWS_WITH(detect_format(tmp.str() + "/u"), Contains("cannot detect"));
  CHECK_THROWS_WITH(detect_format(tmp.str() + "/u/readme.md"), Contains("readme.md: cannot detect"));
  CHECK_THROWS_WITH(load_any(tmp.str() + "/zzz"), Contains("zzz: no such file"));
}
