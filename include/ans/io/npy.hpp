/// @file npy.hpp
/// @brief Reading and writing NumPy .npy files: dtypes <f8, <f4, <i8, <i4, C order, any rank.
///
/// Floating data is held as double, integer data as int64. Errors (other dtypes, Fortran order, big-endian,
/// truncated files, trailing bytes after the data, a shape whose element count or byte size overflows or
/// exceeds the file) are `ans::error`s naming the path, checked before any allocation. `write_npy` writes
/// atomically (temp file, fsync, rename).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ans/config.hpp"

namespace ans::io {

/// An n-d array read from (or to be written to) a .npy file.
struct npy_array {
  std::vector<index_t> shape;
  bool is_integer = false;          ///< true for <i8/<i4 (data in `ints`), false for <f8/<f4 (`values`)
  std::string descr;                ///< dtype as found in the file ("<f8", ...)
  std::vector<double> values;
  std::vector<std::int64_t> ints;

  index_t size() const {
    index_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  index_t rank() const { return static_cast<index_t>(shape.size()); }
  /// The data as doubles (integers converted).
  std::vector<double> as_double() const {
    if (!is_integer) return values;
    return std::vector<double>(ints.begin(), ints.end());
  }
  /// The data as int64 (floating data must be integral).
  std::vector<std::int64_t> as_int() const {
    if (is_integer) return ints;
    std::vector<std::int64_t> r(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) r[i] = static_cast<std::int64_t>(values[i]);
    return r;
  }
};

namespace detail {
inline std::string npy_dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string k = "'" + key + "'";
  const auto pos = header.find(k);
  if (pos == std::string::npos) ANS_THROW(path << ": .npy header has no " << k << " entry");
  auto p = header.find(':', pos + k.size());
  if (p == std::string::npos) ANS_THROW(path << ": malformed .npy header");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) ANS_THROW(path << ": malformed .npy header");
  if (header[p] == '\'') {
    const auto e = header.find('\'', p + 1);
    if (e == std::string::npos) ANS_THROW(path << ": malformed .npy header");
    return header.substr(p + 1, e - p - 1);
  }
  if (header[p] == '(') {
    const auto e = header.find(')', p);
    if (e == std::string::npos) ANS_THROW(path << ": malformed .npy header");
    return header.substr(p + 1, e - p - 1);
  }
  auto e = p;
  while (e < header.size() && header[e] != ',' && header[e] != '}') ++e;
  return header.substr(p, e - p);
}

inline bool little_endian_host() {
  const std::uint16_t x = 1;
  unsigned char c;
  std::memcpy(&c, &x, 1);
  return c == 1;
}
}  // namespace detail

/// Reads a .npy file. Throws ans::error naming `path` on any problem.
inline npy_array read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ANS_THROW(path << ": cannot open .npy file");
  in.seekg(0, std::ios::end);
  const std::streamoff file_end = in.tellg();  // every size the header claims is checked against this
  in.seekg(0);
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) ANS_THROW(path << ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  std::uint32_t hlen = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) ANS_THROW(path << ": truncated .npy header");
    hlen = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) ANS_THROW(path << ": truncated .npy header");
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  } else {
    ANS_THROW(path << ": unsupported .npy version " << major);
  }
  {  // checked before allocating: the header must fit the file, and NumPy's own headers are a few hundred bytes
    const std::streamoff left = file_end - in.tellg();
    if (std::streamoff(hlen) > left) ANS_THROW(path << ": truncated .npy header (" << hlen << " bytes claimed, " << left << " in the file)");
    if (hlen > (1u << 20)) ANS_THROW(path << ": .npy header of " << hlen << " bytes (more than 1 MiB)");
  }
  std::string header(hlen, '\0');
  if (!in.read(&header[0], hlen)) ANS_THROW(path << ": truncated .npy header");
  npy_array a;
  a.descr = detail::npy_dict_value(header, "descr", path);
  const std::string fo = detail::npy_dict_value(header, "fortran_order", path);
  if (fo.find("True") != std::string::npos) ANS_THROW(path << ": Fortran-order .npy arrays are not supported");
  const std::string sh = detail::npy_dict_value(header, "shape", path);
  std::size_t p = 0;
  std::int64_t count = 1;  // the element count, overflow-checked
  while (p < sh.size()) {
    while (p < sh.size() && (sh[p] == ' ' || sh[p] == ',')) ++p;
    if (p >= sh.size()) break;
    std::size_t e = p;
    std::int64_t dim = 0;
    for (; e < sh.size() && sh[e] >= '0' && sh[e] <= '9'; ++e)
      if (__builtin_mul_overflow(dim, std::int64_t(10), &dim) || __builtin_add_overflow(dim, std::int64_t(sh[e] - '0'), &dim))
        ANS_THROW(path << ": shape '" << sh << "' in .npy header has a dimension above " << std::numeric_limits<std::int64_t>::max());
    if (e == p || (e < sh.size() && sh[e] != ',' && sh[e] != ' '))
      ANS_THROW(path << ": malformed shape '" << sh << "' in .npy header (expected non-negative integers)");
    if (__builtin_mul_overflow(count, dim, &count))
      ANS_THROW(path << ": shape '" << sh << "' in .npy header has more than " << std::numeric_limits<std::int64_t>::max()
                     << " elements");
    a.shape.push_back(dim);
    p = e;
  }
  std::size_t width = 0;
  if (a.descr == "<f8") width = 8;
  else if (a.descr == "<f4") width = 4;
  else if (a.descr == "<i8") width = 8, a.is_integer = true;
  else if (a.descr == "<i4") width = 4, a.is_integer = true;
  else ANS_THROW(path << ": unsupported .npy dtype '" << a.descr << "' (supported: <f8, <f4, <i8, <i4)");
  if (!detail::little_endian_host()) ANS_THROW(path << ": big-endian hosts are not supported");
  // the data must be exactly the rest of the file: checked before allocating anything
  const std::streamoff data_begin = in.tellg();
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<std::int64_t>(width), &bytes) || bytes > file_end - data_begin)
    ANS_THROW(path << ": truncated .npy data (the header's shape (" << sh << ") needs " << count << " elements of "
                   << a.descr << ", the file has " << (file_end - data_begin) << " data bytes)");
  if (bytes < file_end - data_begin)
    ANS_THROW(path << ": " << (file_end - data_begin - bytes) << " trailing bytes after the .npy data (shape (" << sh
                   << "), " << a.descr << ")");
  const std::size_t n = static_cast<std::size_t>(count);
  std::vector<char> raw(static_cast<std::size_t>(bytes));
  if (n > 0 && !in.read(raw.data(), static_cast<std::streamsize>(raw.size())))
    ANS_THROW(path << ": truncated .npy data (expected " << n << " elements of " << a.descr << ")");
  if (a.is_integer) {
    a.ints.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (width == 8) std::memcpy(&a.ints[i], raw.data() + 8 * i, 8);
      else { std::int32_t v; std::memcpy(&v, raw.data() + 4 * i, 4); a.ints[i] = v; }
    }
  } else {
    a.values.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (width == 8) std::memcpy(&a.values[i], raw.data() + 8 * i, 8);
      else { float v; std::memcpy(&v, raw.data() + 4 * i, 4); a.values[i] = v; }
    }
  }
  return a;
}

namespace detail {
/// fsync(2) of a file or folder by path (best effort: a file system without fsync is not an error).
inline void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

/// A test hook for fault injection (issue 15): when set, the checkpoint writer calls it at each point where a
/// crash would leave a different state on disk (a temp file half-written, written, synced, renamed; the
/// manifest; each clean-up removal) with the point's name. The checkpoint test counts the calls of one save,
/// then kills a child process at each of them in turn. Null (the default) in every program.
inline void (*save_point_hook)(const char* point) = nullptr;
inline void save_point(const char* point) {
  if (save_point_hook) save_point_hook(point);
}

inline void write_npy_raw(const std::string& path, const std::vector<index_t>& shape, const char* descr,
                          const void* data, std::size_t bytes) {
  std::string sh = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) sh += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
  sh += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) ANS_THROW(tmp << ": cannot open for writing");
    const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(magic, 8);
    const unsigned char hl[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                 static_cast<unsigned char>(header.size() >> 8)};
    out.write(reinterpret_cast<const char*>(hl), 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.flush();
    save_point("npy header written");
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    out.flush();
    if (!out) ANS_THROW(tmp << ": write failed");
  }
  save_point("npy data written");
  sync_file(tmp);  // the data reaches the disk before the rename makes it visible
  save_point("npy synced");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    ANS_THROW(path << ": cannot rename temporary file " << tmp);
  }
  save_point("npy renamed");
}

inline index_t npy_count(const std::vector<index_t>& shape) {
  index_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}
}  // namespace detail

/// Writes `data` (C order, prod(shape) doubles) as <f8, atomically (path.tmp then rename).
inline void write_npy(const std::string& path, const std::vector<index_t>& shape, const double* data) {
  detail::write_npy_raw(path, shape, "<f8", data, sizeof(double) * detail::npy_count(shape));
}
/// Writes float data as <f4.
inline void write_npy(const std::string& path, const std::vector<index_t>& shape, const float* data) {
  detail::write_npy_raw(path, shape, "<f4", data, sizeof(float) * detail::npy_count(shape));
}
/// Writes int64 data as <i8.
inline void write_npy(const std::string& path, const std::vector<index_t>& shape, const std::int64_t* data) {
  detail::write_npy_raw(path, shape, "<i8", data, sizeof(std::int64_t) * detail::npy_count(shape));
}
/// Writes an npy_array (as <i8 or <f8).
inline void write_npy(const std::string& path, const npy_array& a) {
  if (a.is_integer) write_npy(path, a.shape, a.ints.data());
  else write_npy(path, a.shape, a.values.data());
}

}  // namespace ans::io
