/// @file detect.hpp
/// @brief Detects a dataset's format from a folder's contents or a file name, and loads it.
#pragma once

#include <filesystem>
#include <string>

#include "ans/data/dataset.hpp"
#include "ans/data/lightgcn.hpp"
#include "ans/data/parse.hpp"
#include "ans/data/rechorus.hpp"
#include "ans/data/recbole.hpp"

namespace ans::data {

/// Returns "lightgcn", "rechorus" or "recbole" for `path`:
/// - a folder holding `train.txt` -> lightgcn; holding `train.csv` -> rechorus; holding a `*.inter` -> recbole;
/// - a file named `*.inter` -> recbole; `train.txt` / `test.txt` -> lightgcn (its folder);
///   `train.csv` / `dev.csv` / `test.csv` -> rechorus (its folder).
/// Throws ans::error (`PATH: ...`) when the path does not exist or matches none of these.
inline std::string detect_format(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(join_path(path, "train.txt"), ec)) return "lightgcn";
    if (fs::exists(join_path(path, "train.csv"), ec)) return "rechorus";
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.path().extension() == ".inter") return "recbole";
    parse_error(path, 0, "cannot detect the dataset format: no train.txt (LightGCN), train.csv (ReChorus) "
                         "or *.inter (RecBole) in this folder");
  }
  if (!fs::exists(path, ec)) parse_error(path, 0, "no such file or folder");
  const fs::path p(path);
  const std::string fn = p.filename().string();
  if (p.extension() == ".inter") return "recbole";
  if (fn == "train.txt" || fn == "test.txt") return "lightgcn";
  if (fn == "train.csv" || fn == "dev.csv" || fn == "test.csv") return "rechorus";
  parse_error(path, 0, "cannot detect the dataset format from the file name (expected *.inter, train.txt, "
                       "test.txt, train.csv, dev.csv or test.csv)");
}

/// Detects the format of `path` (see detect_format) and loads it with the matching loader. For a
/// LightGCN or ReChorus file name, its folder is loaded.
inline dataset load_any(const std::string& path, const load_options& opt = {}) {
  namespace fs = std::filesystem;
  const std::string fmt = detect_format(path);
  std::error_code ec;
  std::string dir = path;
  if (fmt != "recbole" && !fs::is_directory(path, ec)) {
    const fs::path p(path);
    dir = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  }
  if (fmt == "lightgcn") return load_lightgcn(dir, opt);
  if (fmt == "rechorus") return load_rechorus(dir, opt);
  return load_recbole(dir, opt);
}

}  // namespace ans::data
