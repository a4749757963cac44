// .npy and JSON readers/writers.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "ans/io/json.hpp"
#include "ans/io/npy.hpp"

namespace {
std::string tmp_path(const char* name) { return std::string("/tmp/ans_components_test_") + name; }
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}
std::string npy_bytes(const std::string& dict, const std::string& payload) {
  std::string h = dict;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string b = "\x93NUMPY";
  b += char(1), b += char(0), b += char(h.size() & 0xff), b += char(h.size() >> 8);
  return b + h + payload;
}
}  // namespace

TEST_CASE("npy: round trip f8, f4, i8 of several ranks", "[components][io]") {
  const std::string p = tmp_path("a.npy");
  std::vector<double> v = {1.5, -2, 3e-300, 4, 5, 6};
  ans::io::write_npy(p, {2, 3}, v.data());
  auto a = ans::io::read_npy(p);
  CHECK(a.shape == std::vector<ans::index_t>{2, 3});
  CHECK(a.descr == "<f8");
  CHECK(a.values == v);
  std::vector<float> f = {1.25f, 2.5f};
  ans::io::write_npy(p, {2}, f.data());
  a = ans::io::read_npy(p);
  CHECK(a.shape == std::vector<ans::index_t>{2});
  CHECK(a.values == std::vector<double>{1.25, 2.5});
  std::vector<std::int64_t> iv = {7, -8, 9, 10, 11, 12, 13, 14};
  ans::io::write_npy(p, {2, 2, 2}, iv.data());
  a = ans::io::read_npy(p);
  CHECK(a.is_integer);
  CHECK(a.ints == iv);
  CHECK(a.as_double()[1] == -8.0);
  double s = 3.0;
  ans::io::write_npy(p, std::vector<ans::index_t>{}, &s);
  a = ans::io::read_npy(p);
  CHECK(a.rank() == 0);
  CHECK(a.values == std::vector<double>{3.0});
  std::remove(p.c_str());
}

TEST_CASE("npy: clear errors naming the path", "[components][io]") {
  const std::string p = tmp_path("bad.npy");
  write_bytes(p, npy_bytes("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", std::string(4, '\0')));
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains(p) && Catch::Contains("dtype"));
  write_bytes(p, npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", std::string(32, '\0')));
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains("Fortran"));
  write_bytes(p, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", std::string(16, '\0')));
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains("truncated") && Catch::Contains(p));
  write_bytes(p, "not numpy");
  CHECK_THROWS_AS(ans::io::read_npy(p), ans::error);
  CHECK_THROWS_WITH(ans::io::read_npy(tmp_path("missing.npy")), Catch::Contains("missing.npy"));
  write_bytes(p, npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", std::string("\x01\0\0\0\xff\xff\xff\xff", 8)));
  auto a = ans::io::read_npy(p);
  CHECK(a.ints == std::vector<std::int64_t>{1, -1});
  std::remove(p.c_str());
}

TEST_CASE("json: parse values, errors with offset and line, writer round trip", "[components][io]") {
  auto v = ans::io::parse_json(R"({"B": 4, "x": -1.5e-3, "s": "a\"b\u00e9", "arr": [1, true, null, {"k": []}], "f": false})");
  CHECK(v.at("B").as_int() == 4);
  CHECK(v.at("x").as_number() == -1.5e-3);
  CHECK(v.at("s").as_string() == "a\"b\xc3\xa9");
  CHECK(v.at("arr").as_array().size() == 4);
  CHECK(v.at("arr").as_array()[1].as_bool());
  CHECK(v.at("arr").as_array()[2].is_null());
  CHECK(v.at("arr").as_array()[3].at("k").as_array().empty());
  CHECK_FALSE(v.at("f").as_bool());
  CHECK(v.number_or("missing", 2.5) == 2.5);
  CHECK_THROWS_WITH(v.at("nope"), Catch::Contains("nope"));
  const auto w = ans::io::parse_json(ans::io::to_json(v));
  CHECK(ans::io::to_json(w) == ans::io::to_json(v));
  CHECK_THROWS_WITH(ans::io::parse_json("{\"a\": 1,\n \"b\": }", "cfg.json"),
                    Catch::Contains("cfg.json") && Catch::Contains("line 2") && Catch::Contains("offset"));
  CHECK_THROWS_AS(ans::io::parse_json("[1, 2"), ans::error);
  CHECK_THROWS_AS(ans::io::parse_json("{} x"), ans::error);
  CHECK_THROWS_AS(ans::io::parse_json("\"abc"), ans::error);
  CHECK_THROWS_WITH(ans::io::read_json(tmp_path("none.json")), Catch::Contains("none.json"));
}

TEST_CASE("npy: overflowing, oversized and malformed shapes and trailing bytes fail before any allocation",
          "[components][io]") {
  const std::string p = tmp_path("shape.npy");
  auto with_shape = [&](const std::string& shape, const std::string& payload) {
    write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }", payload));
  };
  with_shape("(4294967296, 4294967296, 16)", "");  // 2^68 elements: the product overflows int64
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains(p) && Catch::Contains("elements"));
  with_shape("(99999999999999999999,)", "");  // one dimension above int64
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains(p) && Catch::Contains("dimension above"));
  with_shape("(1000000000000,)", std::string(16, '\0'));  // 4 TB claimed, 16 bytes present: no bad_alloc
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains(p) && Catch::Contains("truncated") && Catch::Contains("16 data bytes"));
  with_shape("(1e12,)", "");
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains(p) && Catch::Contains("malformed shape"));
  with_shape("(2,)", std::string(8, '\0') + "xyz");  // 3 bytes after the data
  CHECK_THROWS_WITH(ans::io::read_npy(p), Catch::Contains(p) && Catch::Contains("3 trailing bytes"));
  with_shape("(2,)", std::string(8, '\0'));
  CHECK(ans::io::read_npy(p).values == std::vector<double>{0.0, 0.0});
  std::remove(p.c_str());
}

TEST_CASE("json: duplicate keys and non-integers are errors", "[components][io]") {
  CHECK_THROWS_WITH(ans::io::parse_json("{\"a\": 1,\n \"a\": 2}", "m.json"),
                    Catch::Contains("m.json") && Catch::Contains("duplicate key \"a\"") && Catch::Contains("line 2"));
  const auto v = ans::io::parse_json(R"({"i": -7, "big": 1e300, "half": 1.5, "max": 9007199254740992})");
  CHECK(v.at("i").as_int() == -7);
  CHECK(v.at("max").as_int() == 9007199254740992LL);
  CHECK_THROWS_WITH(v.at("big").as_int(), Catch::Contains("not an integer"));
  CHECK_THROWS_WITH(v.at("half").as_int(), Catch::Contains("not an integer"));
}
