/// @file golden.hpp
/// @brief Loading and running the golden cases of `shared/golden/` (manifest.json + .npy arrays).
///
/// Used by `ans-golden` and by the test suite. A model case (kind "model") runs the whole objective of
/// ans/model/ans_model.hpp with `run_model_case<Scalar>`. A loss case (kind "loss") is run with `run_loss_case<Scalar>`:
/// faithful options with the manifest's hyper-parameters, k* computed by the library (not read from the file),
/// noise from `noise_uniform.npy`. Each value and array is compared with the reference; the error of one entry
/// is |a − b| / max(|b|, abs_tol/rel_tol), so "≤ rel_tol" means |a − b| ≤ max(rel_tol·|b|, abs_tol).
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ans/io/json.hpp"
#include "ans/io/npy.hpp"
#include "ans/model/ans_loss.hpp"
#include "ans/model/ans_model.hpp"

namespace ans::testing {

/// One golden case folder.
struct golden_case {
  std::string dir, name, kind;
  io::json_value manifest;
  std::map<std::string, io::npy_array> arrays;  ///< keyed by file stem ("U", "grad_N", ...)

  const io::npy_array& array(const std::string& stem) const {
    const auto it = arrays.find(stem);
    if (it == arrays.end()) ANS_THROW(dir << ": golden case has no array '" << stem << ".npy'");
    return it->second;
  }
  bool has(const std::string& stem) const { return arrays.count(stem) > 0; }
  index_t size(const char* key) const { return manifest.at(key).as_int(); }
};

/// Reads `dir/manifest.json` and every array it lists.
inline golden_case load_golden_case(const std::string& dir) {
  golden_case c;
  c.dir = dir;
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  c.name = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
  c.manifest = io::read_json(d + "/manifest.json");
  c.kind = c.manifest.contains("kind") ? c.manifest.at("kind").as_string() : "loss";
  if (c.manifest.contains("arrays")) {
    for (const auto& a : c.manifest.at("arrays").as_array()) {
      std::string f = a.as_string();
      std::string stem = f.size() > 4 && f.substr(f.size() - 4) == ".npy" ? f.substr(0, f.size() - 4) : f;
      c.arrays[stem] = io::read_npy(d + "/" + f);
    }
  }
  return c;
}

/// Result of running one case: per-quantity worst error (see file comment) and the k* check.
struct golden_comparison {
  std::vector<std::pair<std::string, double>> errors;  ///< (quantity, worst scaled error)
  double max_error = 0;
  std::string worst;
  bool k_star_matches = true;  ///< library k* equals k_star.npy (when present)
  bool skipped = false;
  std::string note;

  void add(const std::string& what, double e) {
    errors.emplace_back(what, e);
    if (!(e <= max_error)) max_error = e, worst = what;  // NaN counts as worst
  }
  bool pass(double rel_tol) const { return !skipped && max_error <= rel_tol && k_star_matches; }
};

/// Worst |a − b| / max(|b|, floor) over the entries (NaN if sizes differ or a value is not finite).
template <class A>
double scaled_error(const A* a, const std::vector<double>& b, index_t n, double floor) {
  if (static_cast<index_t>(b.size()) != n) return std::nan("");
  double worst = 0;
  for (index_t i = 0; i < n; ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - b[i]) / std::max(std::abs(b[i]), floor);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

namespace detail {

/// The error floor abs_tol/rel_tol from the manifest's tolerance (defaults rel 1e-9, abs 1e-12), unless given.
inline double golden_floor(const io::json_value& mf, double floor) {
  if (floor >= 0) return floor;
  double rel = 1e-9, abs = 1e-12;
  if (mf.contains("tolerance")) rel = mf.at("tolerance").number_or("rel", rel), abs = mf.at("tolerance").number_or("abs", abs);
  return abs / rel;
}

/// Faithful options with the manifest's hyper-parameters.
inline ans_options golden_options(const io::json_value& mf) {
  ans_options o = ans_options::make(mode::faithful);
  o.gamma = mf.number_or("gamma", o.gamma);
  o.eps = mf.number_or("eps", o.eps);
  o.reg_weight = mf.number_or("reg_weight", 0.0);
  o.noise_scale = mf.number_or("noise_scale", o.noise_scale);
  o.bpr_eps = mf.number_or("bpr_eps", o.bpr_eps);
  o.distance_eps = mf.number_or("pairwise_distance_eps", o.distance_eps);
  o.normalize_eps = mf.number_or("normalize_eps", o.normalize_eps);
  return o;
}

/// Array `stem` as Scalar values, checked to hold `expect` elements.
template <class Scalar>
std::vector<Scalar> golden_values(const golden_case& c, const std::string& stem, index_t expect) {
  const auto v = c.array(stem).as_double();
  ANS_CHECK(static_cast<index_t>(v.size()) == expect,
            c.dir << ": " << stem << ".npy has " << v.size() << " elements, expected " << expect);
  return std::vector<Scalar>(v.begin(), v.end());
}

/// The gate and margin parameters of a case.
template <class Scalar>
model::ans_params<Scalar> golden_params(const golden_case& c, index_t d) {
  model::ans_params<Scalar> prm = model::ans_params<Scalar>::zeros(d);
  auto fill = [&](const char* stem, Scalar* out, index_t n) {
    const auto v = golden_values<Scalar>(c, stem, n);
    std::copy(v.begin(), v.end(), out);
  };
  fill("W_u", prm.W_u.data(), d * d);
  fill("W_i", prm.W_i.data(), d * d);
  fill("b_u", prm.b_u.data(), d);
  fill("b_i", prm.b_i.data(), d);
  fill("w_m", prm.w_m.data(), d);
  fill("c_m", &prm.c_m, 1);
  return prm;
}

/// Adds the worst scaled error of array `stem` (skipped when the case lacks it).
template <class A>
void compare_array(golden_comparison& cmp, const golden_case& c, const std::string& stem, const A* a, index_t n,
                   double floor) {
  if (c.has(stem)) cmp.add(stem, scaled_error(a, c.array(stem).as_double(), n, floor));
}

/// Compares the loss terms present in the manifest (`reg` only for model cases) and the parameter gradients.
template <class Scalar>
void compare_terms_and_params(golden_comparison& cmp, const golden_case& c, const model::ans_terms<Scalar>& t,
                              const model::ans_params<Scalar>& gr, index_t d, double floor, bool with_reg) {
  const auto& mf = c.manifest;
  auto value = [&](const char* key, Scalar v) {
    if (!mf.contains(key)) return;
    const double ref = mf.at(key).as_number();
    cmp.add(key, std::abs(static_cast<double>(v) - ref) / std::max(std::abs(ref), floor));
  };
  value("bpr", t.bpr);
  value("sns", t.sns);
  value("distance", t.distance);
  value("orth", t.orth);
  if (with_reg) value("reg", t.reg);
  value("total", t.total);
  compare_array(cmp, c, "grad_W_u", gr.W_u.data(), d * d, floor);
  compare_array(cmp, c, "grad_b_u", gr.b_u.data(), d, floor);
  compare_array(cmp, c, "grad_W_i", gr.W_i.data(), d * d, floor);
  compare_array(cmp, c, "grad_b_i", gr.b_i.data(), d, floor);
  compare_array(cmp, c, "grad_w_m", gr.w_m.data(), d, floor);
  compare_array(cmp, c, "grad_c_m", &gr.c_m, 1, floor);
}

/// k* of the library against k_star.npy, when the case has it.
inline bool k_star_matches(const golden_case& c, const std::vector<index_t>& mine, index_t expect) {
  if (!c.has("k_star")) return true;
  const auto ks = c.array("k_star").as_int();
  return static_cast<index_t>(ks.size()) == expect && static_cast<index_t>(mine.size()) >= expect &&
         std::equal(ks.begin(), ks.end(), mine.begin());
}

}  // namespace detail


/// Runs a kind "loss" case in precision Scalar and compares every value and gradient. `floor` is the error
/// floor abs_tol/rel_tol; by default it comes from the manifest's tolerance.
template <class Scalar>
golden_comparison run_loss_case(const golden_case& c, double floor = -1) {
  const auto& mf = c.manifest;
  batch_shape s{mf.at("B").as_int(), mf.at("K").as_int(), mf.at("H").as_int(), mf.at("d").as_int()};
  s.check();
  floor = detail::golden_floor(mf, floor);
  const index_t d = s.d;
  const auto U = detail::golden_values<Scalar>(c, "U", s.pair_rows() * d);
  const auto P = detail::golden_values<Scalar>(c, "P", s.pair_rows() * d);
  const auto N = detail::golden_values<Scalar>(c, "N", s.cand_rows() * d);
  const auto r = detail::golden_values<Scalar>(c, "noise_uniform", s.cand_rows() * d);
  const auto prm = detail::golden_params<Scalar>(c, d);

  model::ans_loss<Scalar> loss(detail::golden_options(mf));
  augment::array_uniform_source<Scalar> src{r.data(), s};
  const auto& t = loss.forward(s, U.data(), P.data(), N.data(), prm, src);
  std::vector<Scalar> dU(U.size(), 0), dP(P.size(), 0), dN(N.size(), 0);
  model::ans_params<Scalar> gr = model::ans_params<Scalar>::zeros(d);
  loss.backward(dU.data(), dP.data(), dN.data(), gr);

  golden_comparison cmp;
  detail::compare_terms_and_params(cmp, c, t, gr, d, floor, /*with_reg=*/false);
  detail::compare_array(cmp, c, "grad_U", dU.data(), static_cast<index_t>(dU.size()), floor);
  detail::compare_array(cmp, c, "grad_P", dP.data(), static_cast<index_t>(dP.size()), floor);
  detail::compare_array(cmp, c, "grad_N", dN.data(), static_cast<index_t>(dN.size()), floor);
  detail::compare_array(cmp, c, "margin", loss.margin().data(), s.cand_rows(), floor);
  detail::compare_array(cmp, c, "gate", loss.gate().data(), s.cand_rows() * d, floor);
  cmp.k_star_matches = detail::k_star_matches(c, loss.k_star(), s.pair_rows());
  return cmp;
}

/// Runs a golden case of kind "model" (graph + E0 + batch) in precision Scalar, faithful mode, through the whole
/// objective of ans/model/ans_model.hpp, and compares every value and gradient.
template <class Scalar = double>
golden_comparison run_model_case(const golden_case& c, double floor = -1) {
  const auto& mf = c.manifest;
  const index_t B = mf.at("B").as_int(), K = mf.at("K").as_int(), L = mf.at("L").as_int(), d = mf.at("d").as_int();
  const index_t nu = mf.at("n_users").as_int(), ni = mf.at("n_items").as_int();
  floor = detail::golden_floor(mf, floor);

  const auto edges = c.array("edges").as_int();
  ANS_CHECK(edges.size() % 2 == 0, c.dir << ": edges.npy must be [E, 2]");
  std::vector<std::pair<index_t, index_t>> pairs;
  for (size_t e = 0; e < edges.size(); e += 2) pairs.emplace_back(edges[e], edges[e + 1]);
  const auto adj = graph::build_normalized_adjacency<Scalar>(data::from_pairs(nu, ni, pairs));

  auto ids = [&](const std::string& stem, index_t expect) {
    const auto v = c.array(stem).as_int();
    ANS_CHECK(static_cast<index_t>(v.size()) == expect,
              c.dir << ": " << stem << ".npy has " << v.size() << " elements, expected " << expect);
    return std::vector<id_type>(v.begin(), v.end());
  };
  matrix<Scalar> e0(nu + ni, d);
  const auto e0v = detail::golden_values<Scalar>(c, "E0", (nu + ni) * d);
  std::copy(e0v.begin(), e0v.end(), e0.data());
  const auto users = ids("users", B), pos = ids("pos_items", B), cands = ids("cand_items", B * K);
  const auto prm = detail::golden_params<Scalar>(c, d);
  const batch_shape s{B, K, L + 1, d};
  const auto r = detail::golden_values<Scalar>(c, "noise_uniform", s.cand_rows() * d);

  model::ans_objective<Scalar> obj(static_cast<int>(L), detail::golden_options(mf));
  augment::array_uniform_source<Scalar> src{r.data(), s};
  const auto& t = obj.forward(adj, e0, model::batch_ids{users.data(), pos.data(), cands.data(), B, K}, prm, src);
  matrix<Scalar> ge = matrix<Scalar>::Zero(nu + ni, d);
  model::ans_params<Scalar> gr = model::ans_params<Scalar>::zeros(d);
  obj.backward(ge, gr);

  golden_comparison cmp;
  detail::compare_terms_and_params(cmp, c, t, gr, d, floor, /*with_reg=*/true);
  detail::compare_array(cmp, c, "grad_E0", ge.data(), ge.size(), floor);
  cmp.k_star_matches = detail::k_star_matches(c, obj.loss().k_star(), s.pair_rows());
  return cmp;
}

}  // namespace ans::testing
