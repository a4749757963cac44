/// @file harness.hpp
/// @brief The fuzz targets of issue 15, shared by the libFuzzer binaries (fuzz_main.cpp, scripts/fuzz.sh) and
/// by the Catch2 replay of the regression corpus (test_fuzz_corpus.cpp).
///
/// Each target writes the input where a reader expects a file (under a per-process folder in /dev/shm, or
/// /tmp) and runs the reader. An `ans::error` is the expected outcome for bad input; anything else (another
/// exception, a crash, a sanitizer report, an allocation the input did not pay for) is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ans/data/lightgcn.hpp"
#include "ans/data/recbole.hpp"
#include "ans/data/rechorus.hpp"
#include "ans/io/checkpoint.hpp"
#include "ans/io/npy.hpp"

namespace ans_fuzz {

inline const std::string& work_dir() {
  static const std::string d = [] {
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string p = std::string(base) + "/ans_fuzz_" + std::to_string(::getpid());
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}
inline std::string put(const std::string& name, const std::uint8_t* data, std::size_t n) {
  const std::string p = work_dir() + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(p).parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  return p;
}
inline std::string put(const std::string& name, const std::string& text) {
  return put(name, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}
template <class F>
int expect_ans_error_only(F&& f) {
  try {
    f();
  } catch (const ans::error&) {
  }
  return 0;  // any other exception escapes: libFuzzer reports it (std::terminate), Catch2 fails
}

/// The readers' options for fuzzing: the id limit starts at 4096 rows instead of 2^20, so an input with a large
/// id runs the density check (and its error) without the reader allocating a million-row table on every
/// execution, which would bound the executions per second by memset speed instead of by parsing.
inline ans::data::load_options fuzz_load_options() {
  ans::data::load_options o;
  o.id_floor = 4096;
  return o;
}
/// LightGCN: the input is train.txt.
inline int lightgcn(const std::uint8_t* d, std::size_t n) {
  static const bool once = [] {
    put("lg/train.txt", "");
    std::filesystem::remove(work_dir() + "/lg/test.txt");
    return true;
  }();
  (void)once;
  put("lg/train.txt", d, n);
  return expect_ans_error_only([] { (void)ans::data::load_lightgcn(work_dir() + "/lg", fuzz_load_options()); });
}
/// RecBole: the input is one atomic .inter file.
inline int recbole(const std::uint8_t* d, std::size_t n) {
  const std::string p = put("rb/rb.inter", d, n);
  return expect_ans_error_only([&] { (void)ans::data::load_recbole(p); });
}
/// ReChorus: the first byte picks the file the rest becomes (train.csv, dev.csv or test.csv); the other two are
/// small valid files (dev/test with 3 fixed negatives).
inline int rechorus(const std::uint8_t* d, std::size_t n) {
  const char* names[3] = {"train.csv", "dev.csv", "test.csv"};
  const int which = n > 0 ? d[0] % 3 : 0;
  const std::string train = "user_id\titem_id\ttime\n1\t1\t1\n1\t2\t2\n2\t3\t3\n2\t1\t4\n";
  const std::string eval = "user_id\titem_id\ttime\tneg_items\n1\t3\t5\t[2, 4, 5]\n2\t2\t6\t[3, 4, 5]\n";
  static int last = -1;  // the file the previous input replaced: restore it, leave the third one as it is
  for (int s = 0; s < 3; ++s)
    if (s != which && (last < 0 || s == last)) put(std::string("rc/") + names[s], s == 0 ? train : eval);
  last = which;
  put(std::string("rc/") + names[which], n > 0 ? d + 1 : d, n > 0 ? n - 1 : 0);
  return expect_ans_error_only([] { (void)ans::data::load_rechorus(work_dir() + "/rc", fuzz_load_options()); });
}
/// .npy: the input is the file.
inline int npy(const std::uint8_t* d, std::size_t n) {
  const std::string p = put("x.npy", d, n);
  return expect_ans_error_only([&] { (void)ans::io::read_npy(p); });
}
/// Checkpoint manifest: the input is manifest.json of a folder that holds one valid array `x` (<f4, shape (3,))
/// as x.g1.npy; the manifest is checked and the array read into a buffer of the expected shape.
inline int manifest(const std::uint8_t* d, std::size_t n) {
  static const bool once = [] {
    const float x[3] = {1, 2, 3};
    ans::io::write_checkpoint(work_dir() + "/ck", {ans::io::checkpoint_array::of("x", const_cast<float*>(x), {3})},
                              {{"epochs_done", "1"}});
    return true;
  }();
  (void)once;
  put("ck/manifest.json", d, n);
  return expect_ans_error_only([] {
    const std::string dir = work_dir() + "/ck";
    const auto mf = ans::io::read_checkpoint_manifest(dir);
    (void)ans::io::checkpoint_meta_int(mf, dir, "epochs_done", 0, 1000000000);
    float y[3];
    ans::io::read_checkpoint_arrays(dir, mf, {ans::io::checkpoint_array::of("x", y, {3})});
  });
}

struct target {
  const char* name;
  int (*run)(const std::uint8_t*, std::size_t);
};
inline const std::vector<target>& targets() {
  static const std::vector<target> t{
      {"lightgcn", lightgcn}, {"recbole", recbole}, {"rechorus", rechorus}, {"npy", npy}, {"manifest", manifest}};
  return t;
}

}  // namespace ans_fuzz
