/// @file checkpoint.hpp
/// @brief All-or-nothing checkpoint folders: named arrays as .npy files and a manifest, written last, that names
/// each array's file, dtype, shape, byte count and checksum.
///
/// write_checkpoint(dir, arrays, meta):
///  1. the generation g is one more than that of the folder's current manifest (1 without one);
///  2. every array goes to `<name>.g<g>.npy` (temp file, fsync, rename): the current checkpoint's files are
///     never touched;
///  3. `manifest.json.tmp` is written and fsync'd, then renamed over `manifest.json` (atomic on POSIX), and the
///     folder is fsync'd;
///  4. files of other generations and temp files are removed.
/// A kill at any moment therefore leaves a `manifest.json` that names either the old generation's files (still
/// all present) or the new one's (all complete); what an interrupted save left behind is removed by the next
/// save. read_checkpoint validates the manifest (format, version, the array list) and every array (dtype,
/// shape, file size with no trailing bytes, FNV-1a checksum, finite values) before it writes any destination,
/// so a failed load leaves the caller's state untouched. Every error names the file and what was expected.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ans/config.hpp"
#include "ans/io/json.hpp"
#include "ans/io/npy.hpp"

namespace ans::io {

/// The manifest's "format" and "version" (version 1, before issue 15, had no checksums and wrote in place).
inline constexpr const char* kCheckpointFormat = "ans-checkpoint";
inline constexpr int kCheckpointVersion = 2;

/// Element types of checkpoint arrays.
enum class array_dtype { f32, f64, i64 };

inline const char* npy_descr(array_dtype t) {
  switch (t) {
    case array_dtype::f32: return "<f4";
    case array_dtype::f64: return "<f8";
    case array_dtype::i64: return "<i8";
  }
  return "?";
}
inline std::size_t dtype_width(array_dtype t) { return t == array_dtype::f32 ? 4 : 8; }
template <class T>
constexpr array_dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int64_t>,
                "checkpoint arrays are float, double or int64");
  return std::is_same_v<T, float> ? array_dtype::f32 : std::is_same_v<T, double> ? array_dtype::f64 : array_dtype::i64;
}

/// One named array of a checkpoint: written from `data` by write_checkpoint, read into `data` by
/// read_checkpoint (which requires exactly this dtype and shape).
struct checkpoint_array {
  std::string name;  ///< [A-Za-z0-9_]+, unique within the checkpoint
  array_dtype dtype = array_dtype::f32;
  std::vector<index_t> shape;
  void* data = nullptr;

  template <class T>
  static checkpoint_array of(std::string name, T* data, std::vector<index_t> shape) {
    return {std::move(name), dtype_of<T>(), std::move(shape), static_cast<void*>(data)};
  }
  index_t count() const {
    index_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  std::size_t bytes() const { return static_cast<std::size_t>(count()) * dtype_width(dtype); }
};

/// 64-bit FNV-1a of a byte range, as 16 hex digits.
inline std::string fnv1a64(const void* data, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  std::ostringstream os;
  os << std::hex << std::setw(16) << std::setfill('0') << h;
  return os.str();
}

namespace detail {
inline bool valid_array_name(const std::string& n) {
  if (n.empty()) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}
inline bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}
// A file this module writes: <name>.g<digits>.npy, <name>.g<digits>.npy.tmp and manifest.json.tmp (other
// files in the folder are never removed).
inline bool is_checkpoint_file(const std::string& f) {
  if (f == "manifest.json.tmp") return true;
  std::string s = f;
  if (s.size() > 4 && s.compare(s.size() - 4, 4, ".tmp") == 0) s.resize(s.size() - 4);
  if (s.size() < 4 || s.compare(s.size() - 4, 4, ".npy") != 0) return false;
  s.resize(s.size() - 4);
  std::size_t e = s.size();
  while (e > 0 && std::isdigit(static_cast<unsigned char>(s[e - 1]))) --e;
  return e < s.size() && e >= 3 && s[e - 1] == 'g' && s[e - 2] == '.' && valid_array_name(s.substr(0, e - 2));
}
// The generation of the folder's current manifest (0 when there is none or it cannot be read).
inline std::int64_t current_generation(const std::string& dir) {
  try {
    const auto mf = read_json(dir + "/manifest.json");
    return mf.contains("generation") ? mf.at("generation").as_int() : 0;
  } catch (const std::exception&) {
    return 0;
  }
}
}  // namespace detail

/// Writes the checkpoint folder `dir` (created if missing) all-or-nothing (see the file comment). `meta` is a
/// list of (key, JSON text) pairs stored in the manifest beside the array list (e.g. {"epochs_done", "12"},
/// {"sampler", "\"ANS\""}); the keys "format", "version", "generation" and "arrays" are reserved.
inline void write_checkpoint(const std::string& dir, const std::vector<checkpoint_array>& arrays,
                             const std::vector<std::pair<std::string, std::string>>& meta) {
  ::mkdir(dir.c_str(), 0755);
  ANS_CHECK(detail::is_dir(dir), "checkpoint: cannot create the folder '" << dir << "'");
  std::set<std::string> names;
  for (const auto& a : arrays) {
    ANS_CHECK(detail::valid_array_name(a.name), "checkpoint: array name '" << a.name << "' is not [A-Za-z0-9_]+");
    ANS_CHECK(names.insert(a.name).second, "checkpoint: array name '" << a.name << "' appears twice");
    ANS_CHECK(a.data != nullptr || a.count() == 0, "checkpoint: array '" << a.name << "' has no data");
  }
  for (const auto& [k, v] : meta) {
    (void)v;
    ANS_CHECK(k != "format" && k != "version" && k != "generation" && k != "arrays",
              "checkpoint: meta key '" << k << "' is reserved");
  }
  const std::int64_t g = detail::current_generation(dir) + 1;
  std::ostringstream mf;
  mf << "{\"format\": " << json_quote(kCheckpointFormat) << ", \"version\": " << kCheckpointVersion
     << ", \"generation\": " << g;
  for (const auto& [k, v] : meta) mf << ", " << json_quote(k) << ": " << v;
  mf << ",\n \"arrays\": [";
  std::set<std::string> keep{"manifest.json"};
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const auto& a = arrays[i];
    const std::string file = a.name + ".g" + std::to_string(g) + ".npy";
    detail::write_npy_raw(dir + "/" + file, a.shape, npy_descr(a.dtype), a.data, a.bytes());
    keep.insert(file);
    mf << (i ? ",\n  " : "\n  ") << "{\"name\": " << json_quote(a.name) << ", \"file\": " << json_quote(file)
       << ", \"dtype\": " << json_quote(npy_descr(a.dtype)) << ", \"shape\": [";
    for (std::size_t j = 0; j < a.shape.size(); ++j) mf << (j ? ", " : "") << a.shape[j];
    mf << "], \"bytes\": " << a.bytes() << ", \"fnv1a64\": " << json_quote(fnv1a64(a.data, a.bytes())) << "}";
  }
  mf << "]}\n";
  const std::string tmp = dir + "/manifest.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    const std::string text = mf.str();
    out.write(text.data(), static_cast<std::streamsize>(text.size() / 2));
    out.flush();
    detail::save_point("manifest half written");
    out.write(text.data() + text.size() / 2, static_cast<std::streamsize>(text.size() - text.size() / 2));
    out.flush();
    ANS_CHECK(out.good(), "checkpoint: cannot write '" << tmp << "'");
  }
  detail::save_point("manifest written");
  detail::sync_file(tmp);
  detail::save_point("manifest synced");
  ANS_CHECK(std::rename(tmp.c_str(), (dir + "/manifest.json").c_str()) == 0,
            "checkpoint: cannot rename '" << tmp << "' to '" << dir << "/manifest.json'");
  detail::save_point("manifest renamed");  // from here on, the new checkpoint is the one that loads
  detail::sync_file(dir);  // the rename itself is durable
  detail::save_point("folder synced");
  for (const auto& f : detail::list_dir(dir))
    if (!keep.count(f) && detail::is_checkpoint_file(f)) {
      std::remove((dir + "/" + f).c_str());
      detail::save_point("old file removed");
    }
}

/// Reads and checks `dir/manifest.json`: the format and version, and a well-formed array list (unique names,
/// one file each). Returns the manifest for the caller's checks of its meta keys (checkpoint_meta_*).
inline json_value read_checkpoint_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  ANS_CHECK(detail::is_dir(dir), "checkpoint: '" << dir << "' is not a folder");
  const json_value mf = read_json(path);
  ANS_CHECK(mf.is_object(), path << ": the manifest is not a JSON object");
  ANS_CHECK(mf.contains("format") && mf.at("format").is_string() && mf.at("format").as_string() == kCheckpointFormat,
            path << ": \"format\" must be \"" << kCheckpointFormat << "\"");
  ANS_CHECK(mf.contains("version") && mf.at("version").is_number(), path << ": no \"version\"");
  const double version = mf.at("version").as_number();
  ANS_CHECK(version == kCheckpointVersion,
            path << ": checkpoint version " << version << ", this build reads version " << kCheckpointVersion
                 << (version == 1 ? " (version 1 had no checksums; train again or re-save with the build that wrote it)" : ""));
  ANS_CHECK(mf.contains("generation") && mf.at("generation").is_number() && mf.at("generation").as_number() >= 1 &&
                mf.at("generation").as_number() == std::floor(mf.at("generation").as_number()),
            path << ": \"generation\" must be an integer >= 1");
  ANS_CHECK(mf.contains("arrays") && mf.at("arrays").is_array(), path << ": no \"arrays\" list");
  std::set<std::string> names;
  for (const auto& a : mf.at("arrays").as_array()) {
    ANS_CHECK(a.is_object() && a.contains("name") && a.at("name").is_string() && a.contains("file") &&
                  a.at("file").is_string() && a.contains("dtype") && a.at("dtype").is_string() && a.contains("shape") &&
                  a.at("shape").is_array() && a.contains("bytes") && a.at("bytes").is_number() &&
                  a.contains("fnv1a64") && a.at("fnv1a64").is_string(),
              path << ": every entry of \"arrays\" needs name, file, dtype, shape, bytes and fnv1a64");
    const std::string& n = a.at("name").as_string();
    ANS_CHECK(detail::valid_array_name(n), path << ": array name '" << n << "' is not [A-Za-z0-9_]+");
    ANS_CHECK(names.insert(n).second, path << ": array '" << n << "' is listed twice");
    const std::string& f = a.at("file").as_string();
    ANS_CHECK(f.find('/') == std::string::npos && f.size() > 4 && f.compare(f.size() - 4, 4, ".npy") == 0,
              path << ": array '" << n << "' names the file '" << f << "' (a .npy file in the folder expected)");
  }
  return mf;
}

/// A string meta value of the manifest that must equal `expected`.
inline void checkpoint_meta_equals(const json_value& mf, const std::string& dir, const std::string& key,
                                   const std::string& expected, const std::string& what) {
  const std::string path = dir + "/manifest.json";
  ANS_CHECK(mf.contains(key) && mf.at(key).is_string(), path << ": no string \"" << key << "\" (" << what << ")");
  ANS_CHECK(mf.at(key).as_string() == expected, path << ": " << what << " is \"" << mf.at(key).as_string()
                                                     << "\", this run's is \"" << expected << "\"");
}
/// An integer meta value in [lo, hi] (exactly an integer: 1.5, 1e300 and -7 outside the range are errors).
inline index_t checkpoint_meta_int(const json_value& mf, const std::string& dir, const std::string& key, index_t lo,
                                   index_t hi) {
  const std::string path = dir + "/manifest.json";
  ANS_CHECK(mf.contains(key) && mf.at(key).is_number(), path << ": no number \"" << key << "\"");
  const double x = mf.at(key).as_number();
  ANS_CHECK(x == std::floor(x) && x >= double(lo) && x <= double(hi),
            path << ": \"" << key << "\" is " << x << ", expected an integer in [" << lo << ", " << hi << "]");
  return static_cast<index_t>(x);
}

/// Reads every array of `expected` from the checkpoint whose manifest is `mf` (read_checkpoint_manifest) into
/// its `data`. The manifest must list exactly these names; each file must have the manifest's and the
/// expected dtype and shape, the manifest's byte count and checksum, and finite values (floating arrays). All
/// files are read and checked before any destination is written.
inline void read_checkpoint_arrays(const std::string& dir, const json_value& mf,
                                   const std::vector<checkpoint_array>& expected) {
  const std::string mpath = dir + "/manifest.json";
  std::map<std::string, const json_value*> listed;
  for (const auto& a : mf.at("arrays").as_array()) listed[a.at("name").as_string()] = &a;
  for (const auto& e : expected)
    ANS_CHECK(listed.count(e.name), mpath << ": no array '" << e.name << "' (this run needs it; was the checkpoint "
                                          << "written by another model, sampler or optimiser?)");
  if (listed.size() != expected.size()) {
    std::set<std::string> want;
    for (const auto& e : expected) want.insert(e.name);
    for (const auto& [n, a] : listed)
      ANS_CHECK(want.count(n), mpath << ": array '" << n << "' is not part of this run's state (was the checkpoint "
                                     << "written by another model, sampler or optimiser?)");
  }
  std::vector<std::vector<char>> staged(expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const json_value& a = *listed.at(e.name);
    const std::string file = dir + "/" + a.at("file").as_string();
    const std::string descr = npy_descr(e.dtype);
    ANS_CHECK(a.at("dtype").as_string() == descr,
              mpath << ": array '" << e.name << "' is " << a.at("dtype").as_string() << ", expected " << descr);
    std::vector<index_t> mshape;
    for (const auto& s : a.at("shape").as_array()) mshape.push_back(s.as_int());
    auto fmt = [](const std::vector<index_t>& s) {
      std::ostringstream os;
      os << "(";
      for (std::size_t j = 0; j < s.size(); ++j) os << (j ? ", " : "") << s[j];
      os << ")";
      return os.str();
    };
    ANS_CHECK(mshape == e.shape, mpath << ": array '" << e.name << "' has shape " << fmt(mshape) << ", expected "
                                       << fmt(e.shape));
    ANS_CHECK(a.at("bytes").as_number() == double(e.bytes()),
              mpath << ": array '" << e.name << "' has " << a.at("bytes").as_number() << " bytes, expected " << e.bytes());
    const npy_array arr = read_npy(file);  // header, size and trailing-byte checks
    ANS_CHECK(arr.descr == descr, file << ": dtype " << arr.descr << ", the manifest says " << descr);
    ANS_CHECK(arr.shape == e.shape, file << ": shape " << fmt(arr.shape) << ", the manifest says " << fmt(e.shape));
    std::vector<char>& buf = staged[i];
    buf.resize(e.bytes());
    const std::size_t n = static_cast<std::size_t>(e.count());
    for (std::size_t j = 0; j < n; ++j) {  // back to the file's bytes (float -> double -> float is exact)
      if (e.dtype == array_dtype::f32) {
        const float v = static_cast<float>(arr.values[j]);
        std::memcpy(buf.data() + 4 * j, &v, 4);
      } else if (e.dtype == array_dtype::f64) {
        std::memcpy(buf.data() + 8 * j, &arr.values[j], 8);
      } else {
        std::memcpy(buf.data() + 8 * j, &arr.ints[j], 8);
      }
    }
    const std::string sum = fnv1a64(buf.data(), buf.size());
    ANS_CHECK(sum == a.at("fnv1a64").as_string(), file << ": checksum " << sum << ", the manifest says "
                                                        << a.at("fnv1a64").as_string() << " (the file is corrupt or from another save)");
    if (e.dtype != array_dtype::i64)
      for (std::size_t j = 0; j < n; ++j)
        ANS_CHECK(std::isfinite(arr.values[j]),
                  file << ": value " << j << " is " << arr.values[j] << " (a checkpoint holds finite values)");
  }
  for (std::size_t i = 0; i < expected.size(); ++i)
    if (!staged[i].empty()) std::memcpy(expected[i].data, staged[i].data(), staged[i].size());
}

}  // namespace ans::io
