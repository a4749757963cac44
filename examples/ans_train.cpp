// ans-train: trains BPRMF, LightGCN, DNS, MixGCF or ANS on a dataset folder (LightGCN, RecBole or ReChorus
// format, detected) or, without --dataset, on the built-in synthetic dataset, with the flags of the ReChorus
// command the method was evaluated with:
//
//   ans-train --model_name ANS --emb_size 64 --lr 1e-3 --l2 0 --dataset NAME --path DIR
//             --metric NDCG,HR --topk 1,2,3,5,10 --main_metric NDCG@2
//
// Bad flags or values give a one-line error naming the flag and exit code 2.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ans/data/detect.hpp"
#include "ans/data/split.hpp"
#include "ans/data/synthetic.hpp"
#include "ans/io/json.hpp"
#include "ans/train/callbacks.hpp"
#include "ans/version.hpp"
#include "ans/train/trainer.hpp"

namespace {

struct usage_error {
  std::string msg;
};

[[noreturn]] void bad(const std::string& flag, const std::string& why) { throw usage_error{flag + ": " + why}; }

double to_double(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x)) bad(flag, "expected a number, got '" + v + "'");
  return x;
}
long to_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') bad(flag, "expected an integer, got '" + v + "'");
  return x;
}
std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string tok;
  while (std::getline(ss, tok, ',')) if (!tok.empty()) out.push_back(tok);
  return out;
}

struct options {
  std::string model = "ANS", encoder = "", dataset, path, json, save, load, mode = "faithful", optimizer = "lazy_adam";
  std::string main_metric, scoring, log;
  int emb = 64, max_batches = 0, epochs = -1, layers = -1, workers = 0, early_stop = 10, eval_every = 1, test_all = -1;
  long batch = -1, num_neg = 16;  // batch -1: 2048 (256 on the synthetic data)
  double lr = 1e-3, l2 = 1e-4, gamma = 0.1, eps = 0.1, valid_ratio = 0.1, noise_scale = -1, weight_decay = 0;
  std::string margin;
  std::uint64_t seed = 0;
  std::vector<std::string> metrics{"Recall", "NDCG"};
  std::vector<ans::index_t> topk{20};
  bool quiet = false, neg_exclude_all = false;
};

const char* kUsage =
    "usage: ans-train [--model_name BPRMF|LightGCN|DNS|MixGCF|ANS] [--encoder mf|lightgcn] [--dataset NAME --path DIR]\n"
    "  [--emb_size 64] [--lr 1e-3] [--l2 1e-4] [--weight_decay 0] [--neg_exclude train|all] [--epoch N] [--batch_size 2048] [--num_neg 16] [--n_layers L]\n"
    "  [--gamma 0.1] [--eps 0.1] [--noise_scale 0.1] [--margin inv_sigmoid|sigmoid_neg|clamped|none] [--mode faithful|fixed] [--random_seed 0] [--num_workers T] [--early_stop 10]\n"
    "  [--metric NDCG,HR,Recall,Precision,MRR] [--topk 20] [--main_metric Recall@20] [--test_all 0|1]\n"
    "  [--valid_ratio 0.1] [--eval_every 1] [--optimizer lazy_adam|adam|sgd] [--scoring ego|stack]\n"
    "  [--save DIR] [--load DIR] [--json FILE] [--log FILE.jsonl] [--max_batches N] [--quiet]\n";

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (f == "--help" || f == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (f == "--quiet") { o.quiet = true; continue; }
    if (f.rfind("--", 0) != 0) bad(f, "unexpected argument (flags start with --)");
    if (i + 1 >= argc) bad(f, "missing value");
    const std::string v = argv[++i];
    if (f == "--model_name") {
      if (v != "BPRMF" && v != "LightGCN" && v != "DNS" && v != "MixGCF" && v != "ANS")
        bad(f, "unknown model '" + v + "' (BPRMF, LightGCN, DNS, MixGCF, ANS)");
      o.model = v;
    } else if (f == "--encoder") {
      if (v != "mf" && v != "lightgcn") bad(f, "expected mf or lightgcn, got '" + v + "'");
      o.encoder = v;
    } else if (f == "--emb_size") { o.emb = int(to_int(f, v)); if (o.emb < 1) bad(f, "must be >= 1");
    } else if (f == "--lr") { o.lr = to_double(f, v); if (!(o.lr > 0)) bad(f, "must be > 0, got " + v);
    } else if (f == "--l2") { o.l2 = to_double(f, v); if (o.l2 < 0) bad(f, "must be >= 0, got " + v);
    } else if (f == "--dataset") { o.dataset = v;
    } else if (f == "--path") { o.path = v;
    } else if (f == "--metric") {
      o.metrics = split_list(v);
      if (o.metrics.empty()) bad(f, "empty list");
      for (const auto& m : o.metrics) {
        try { ans::eval::parse_metric(m + "@1"); } catch (const std::exception&) {
          bad(f, "unknown metric '" + m + "' (HR, NDCG, Recall, Precision, MRR)");
        }
      }
    } else if (f == "--topk") {
      o.topk.clear();
      for (const auto& k : split_list(v)) { const long x = to_int(f, k); if (x < 1) bad(f, "K must be >= 1"); o.topk.push_back(x); }
      if (o.topk.empty()) bad(f, "empty list");
    } else if (f == "--main_metric") { o.main_metric = v;
    } else if (f == "--epoch") { o.epochs = int(to_int(f, v)); if (o.epochs < 0) bad(f, "must be >= 0");
    } else if (f == "--batch_size") { o.batch = to_int(f, v); if (o.batch < 1) bad(f, "must be >= 1");
    } else if (f == "--num_neg") { o.num_neg = to_int(f, v); if (o.num_neg < 1) bad(f, "K must be >= 1, got " + v);
    } else if (f == "--n_layers") { o.layers = int(to_int(f, v)); if (o.layers < 0) bad(f, "must be >= 0");
    } else if (f == "--gamma") { o.gamma = to_double(f, v);
    } else if (f == "--eps") { o.eps = to_double(f, v);
    } else if (f == "--neg_exclude") {
      if (v != "train" && v != "all") bad(f, "expected train or all");
      o.neg_exclude_all = v == "all";
    } else if (f == "--weight_decay") { o.weight_decay = to_double(f, v); if (o.weight_decay < 0) bad(f, "must be >= 0");
    } else if (f == "--noise_scale") { o.noise_scale = to_double(f, v); if (o.noise_scale < 0) bad(f, "must be >= 0");
    } else if (f == "--margin") {
      if (v != "inv_sigmoid" && v != "sigmoid_neg" && v != "clamped" && v != "none")
        bad(f, "expected inv_sigmoid, sigmoid_neg, clamped or none");
      o.margin = v;
    } else if (f == "--mode") {
      if (v != "faithful" && v != "fixed") bad(f, "expected faithful or fixed, got '" + v + "'");
      o.mode = v;
    } else if (f == "--random_seed") { o.seed = static_cast<std::uint64_t>(to_int(f, v));
    } else if (f == "--num_workers") { o.workers = int(to_int(f, v)); if (o.workers < 0) bad(f, "must be >= 0");
    } else if (f == "--early_stop") { o.early_stop = int(to_int(f, v));
    } else if (f == "--eval_every") { o.eval_every = int(to_int(f, v)); if (o.eval_every < 1) bad(f, "must be >= 1");
    } else if (f == "--test_all") { o.test_all = int(to_int(f, v)); if (o.test_all != 0 && o.test_all != 1) bad(f, "expected 0 or 1");
    } else if (f == "--valid_ratio") { o.valid_ratio = to_double(f, v); if (o.valid_ratio < 0 || o.valid_ratio >= 1) bad(f, "must be in [0, 1)");
    } else if (f == "--optimizer") {
      if (v != "lazy_adam" && v != "adam" && v != "sgd") bad(f, "expected lazy_adam, adam or sgd");
      o.optimizer = v;
    } else if (f == "--scoring") {
      if (v != "ego" && v != "stack") bad(f, "expected ego or stack");
      o.scoring = v;
    } else if (f == "--save") { o.save = v;
    } else if (f == "--load") { o.load = v;
    } else if (f == "--json") { o.json = v;
    } else if (f == "--max_batches") { o.max_batches = int(to_int(f, v)); if (o.max_batches < 0) bad(f, "must be >= 0");
    } else if (f == "--log") { o.log = v;
    } else {
      bad(f, "unknown flag");
    }
  }
  if (!o.path.empty() && o.dataset.empty()) bad("--path", "given without --dataset");
  return o;
}

std::string fmt_metrics(const std::map<std::string, double>& m, const std::vector<std::string>& order) {
  std::ostringstream os;
  os << "(";
  bool first = true;
  for (const auto& k : order) {
    auto it = m.find(k);
    if (it == m.end()) continue;
    os << (first ? "" : ",") << k << ":" << std::fixed;
    os.precision(4);
    os << it->second;
    first = false;
  }
  os << ")";
  return os.str();
}

std::string json_metrics(const std::map<std::string, double>& m) {
  std::ostringstream os;
  os.precision(10);
  os << "{";
  bool first = true;
  for (const auto& [k, v] : m) os << (first ? "" : ", ") << ans::io::json_quote(k) << ": " << v, first = false;
  os << "}";
  return os.str();
}

int run(const options& o) {
  using namespace ans;
  if (o.workers > 0) {
#if ANS_HAS_OPENMP
    omp_set_num_threads(o.workers);
#endif
  }
  // ---- data ----
  data::dataset ds;
  bool synthetic = o.dataset.empty();
  if (synthetic) {
    data::synthetic_config sc;
    sc.n_users = 2000;
    sc.n_items = 1500;
    sc.dim = 8;
    sc.affinity = 20;
    sc.popularity_exponent = 0.5;
    sc.seed = 42;
    ds = data::generate_synthetic(sc);
    ds.name = "synthetic";
  } else {
    std::string root = o.path;
    if (root.empty()) root = std::getenv("ANS_DATA_DIR") ? std::getenv("ANS_DATA_DIR") : "data";
    const std::string dir = root + "/" + o.dataset;
    try {
      ds = data::load_any(dir);
    } catch (const std::exception& e) {
      struct stat st;
      if (::stat(dir.c_str(), &st) != 0) bad("--dataset", "no dataset folder '" + dir + "' (set --path DIR or ANS_DATA_DIR)");
      throw;
    }
  }
  const bool has_fixed = ds.test_candidates.has_value() && ds.test_candidates->rows() > 0;
  const bool full = o.test_all == 1 || (o.test_all < 0 && !has_fixed);
  // Validation: the dataset's dev split, else a seeded hold-out of each user's training items.
  std::string selection = "dev";
  if (ds.dev.nnz() == 0 && !(ds.dev_candidates && ds.dev_candidates->rows() > 0)) {
    if (o.valid_ratio > 0) {
      // round(ratio·n) of each user's items (at most n − 1), the reference's rule: 10% of the interactions
      auto sp = data::holdout_split(ds.train, o.valid_ratio, o.seed + 2020);
      ds.train = std::move(sp.train);
      ds.dev = std::move(sp.dev);
      selection = "dev (" + std::to_string(int(std::lround(o.valid_ratio * 100))) + "% of train held out)";
    } else {
      selection = "test (no validation split: --valid_ratio 0)";
    }
  }
  const bool select_on_test = ds.dev.nnz() == 0 && !(ds.dev_candidates && ds.dev_candidates->rows() > 0);

  // ---- model ----
  train::trainer_config cfg;
  const std::string enc = !o.encoder.empty() ? o.encoder : (o.model == "LightGCN" ? "lightgcn" : "mf");
  if (o.model == "BPRMF" && enc == "lightgcn") bad("--encoder", "BPRMF is the MF encoder; use --model_name LightGCN");
  if (o.model == "LightGCN" && enc == "mf") bad("--encoder", "LightGCN needs the lightgcn encoder");
  cfg.sampler = o.model == "DNS" ? train::sampler_kind::dns
                : o.model == "MixGCF" ? train::sampler_kind::mixgcf
                : o.model == "ANS" ? train::sampler_kind::ans : train::sampler_kind::rns;
  cfg.n_layers = enc == "mf" ? 0 : (o.layers >= 0 ? o.layers : 3);
  if (enc == "mf" && o.layers > 0) bad("--n_layers", "the mf encoder has no layers; add --encoder lightgcn");
  cfg.dim = o.emb;
  const long batch = o.batch > 0 ? o.batch : (synthetic ? 256 : 2048);
  cfg.batch_size = batch;
  cfg.num_neg = o.num_neg;
  cfg.lr = o.lr;
  cfg.l2 = o.l2;
  cfg.weight_decay = o.weight_decay;
  cfg.negatives_exclude_eval = o.neg_exclude_all;
  cfg.m = o.mode == "fixed" ? mode::fixed : mode::faithful;
  cfg.gamma = o.gamma;
  cfg.eps = o.eps;
  {
    auto ao = ans_options::make(cfg.m);
    ao.gamma = o.gamma;
    ao.eps = o.eps;
    ao.reg_weight = o.l2;
    if (o.noise_scale >= 0) ao.noise_scale = o.noise_scale;  // 0: no augmentation (ablation)
    if (!o.margin.empty())
      ao.margin = o.margin == "sigmoid_neg" ? margin_form::sigmoid_neg
                  : o.margin == "clamped"   ? margin_form::clamped
                  : o.margin == "none"      ? margin_form::none : margin_form::faithful_inv_sigmoid;
    cfg.ans = ao;
  }
  cfg.seed = o.seed;
  cfg.optimizer = o.optimizer == "adam" ? train::optimizer_kind::adam
                  : o.optimizer == "sgd" ? train::optimizer_kind::sgd : train::optimizer_kind::lazy_adam;
  const std::string scoring = !o.scoring.empty() ? o.scoring : (o.mode == "fixed" ? "stack" : "ego");
  cfg.scoring = scoring == "stack" ? train::scoring_kind::stack : train::scoring_kind::ego;
  cfg.topk = o.topk;
  cfg.metrics.clear();
  std::vector<std::string> names;
  for (const auto& m : o.metrics) {
    const auto kind = eval::parse_metric(m + "@1").kind;
    cfg.metrics.push_back(kind);
  }
  for (const auto& m : o.metrics)
    for (auto k : o.topk) names.push_back(eval::metric_spec{eval::parse_metric(m + "@1").kind, k}.name());
  std::string main_metric = o.main_metric;
  if (main_metric.empty()) main_metric = names.front();
  if (std::find(names.begin(), names.end(), main_metric) == names.end())
    bad("--main_metric", "'" + main_metric + "' is not among the computed metrics (--metric x --topk)");
  const int epochs = o.epochs >= 0 ? o.epochs : (synthetic ? 20 : 60);

  train::trainer<float> tr(ds, cfg);
  if (!o.load.empty()) tr.load(o.load);
  // --max_batches: timing runs; the epoch time is extrapolated to the full epoch and labelled as such.
  const bool capped = o.max_batches > 0 && o.max_batches < tr.batches_per_epoch();
  if (capped) tr.set_max_batches(o.max_batches);
  const auto proto = full ? train::trainer<float>::protocol::full : train::trainer<float>::protocol::sampled;
  const std::string val_target = select_on_test ? "test" : "dev";

  std::printf("ans-train %s: %s (%s encoder, L = %d, d = %d, K = %ld, batch %ld, lr %g, l2 %g, mode %s, scoring %s)\n",
              ans::version_string, o.model.c_str(), enc.c_str(), cfg.n_layers, o.emb, o.num_neg, batch, o.lr, o.l2,
              o.mode.c_str(), scoring.c_str());
  std::printf("data %s [%s]: %lld users, %lld items, train %lld, dev %lld, test %lld; protocol %s; selection on %s; threads %d\n",
              ds.name.c_str(), ds.format.c_str(), (long long)ds.n_users(), (long long)ds.n_items(),
              (long long)ds.train.nnz(), (long long)ds.dev.nnz(), (long long)ds.test.nnz(),
              full ? "full ranking" : "99 negatives", selection.c_str(), ans::max_threads());
  std::fflush(stdout);

  train::progress bar(o.quiet);
  train::early_stopping stopper(o.early_stop);
  train::json_lines_log log;
  if (!o.log.empty()) log.open(o.log);
  struct epoch_rec {
    int epoch;
    double loss, seconds, sat;
    std::map<std::string, double> valid, test;
  };
  std::vector<epoch_rec> recs;
  std::map<std::string, double> best_test;
  std::vector<double> secs;
  for (int e = tr.epochs_done(); e < epochs; ++e) {
    bar.start_epoch(e + 1, tr.batches_per_epoch());
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = tr.train_epoch(e, [&](index_t b, double l, index_t s) { bar.batch(b, l, s); });
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (capped) sec *= double(tr.batches_per_epoch()) / double(o.max_batches);  // extrapolated
    secs.push_back(sec);
    epoch_rec r{e + 1, loss, sec, cfg.sampler == train::sampler_kind::ans ? tr.epoch_saturated_margin_fraction() : 0.0, {}, {}};
    std::string extra;
    const bool last = e + 1 == epochs;
    if ((e + 1) % o.eval_every == 0 || last) {
      r.valid = tr.evaluate(val_target, proto);
      r.test = select_on_test ? r.valid : tr.evaluate("test", proto);
      extra = "valid " + fmt_metrics(r.valid, {main_metric});
      if (stopper.update(e + 1, r.valid.at(main_metric))) {
        best_test = r.test;
        extra += " *";
        if (!o.save.empty()) tr.save(o.save);
      }
    }
    std::map<std::string, double> fields{{"loss", loss}, {"seconds", sec}};
    for (const auto& [k, v] : r.valid) fields["valid_" + k] = v;
    if (cfg.sampler == train::sampler_kind::ans) fields["saturated_margin_fraction"] = r.sat;
    log.write(e + 1, fields);
    bar.end_epoch(loss, tr.batches_per_epoch() > 0 ? ds.train.nnz() : 0, extra);
    recs.push_back(r);
    if (stopper.should_stop()) {
      std::printf("early stop: %s did not improve for %d evaluations\n", main_metric.c_str(), o.early_stop);
      break;
    }
  }
  if (recs.empty()) {  // nothing to train (e.g. resumed at the last epoch): evaluate the loaded model
    best_test = tr.evaluate("test", proto);
  }
  std::sort(secs.begin(), secs.end());
  const double median = secs.empty() ? 0.0 : secs[secs.size() / 2];
  // Best-on-test (the published logs select that way) beside the validation-selected figure.
  std::map<std::string, double> best_on_test;
  for (const auto& r : recs)
    for (const auto& [k, v] : r.test) best_on_test[k] = std::max(best_on_test[k], v);

  std::printf("\nBest epoch %d on %s %s\n", stopper.best_epoch(), val_target.c_str(), main_metric.c_str());
  std::printf("Test After Training: %s\n", fmt_metrics(best_test, names).c_str());
  std::printf("\n%-14s %12s %12s\n", "metric", "test@best", "best-on-test");
  for (const auto& n : names)
    std::printf("%-14s %12.4f %12.4f\n", n.c_str(), best_test.count(n) ? best_test.at(n) : 0.0,
                best_on_test.count(n) ? best_on_test.at(n) : 0.0);
  std::printf("median epoch %.2fs%s, peak RSS %.0f MB\n", median, capped ? " (extrapolated from --max_batches)" : "",
              train::peak_rss_mb());

  if (!o.json.empty()) {
    std::ofstream js(o.json);
    if (!js) bad("--json", "cannot write '" + o.json + "'");
    js.precision(10);
    js << "{\"dataset\": {\"name\": " << io::json_quote(ds.name) << ", \"format\": " << io::json_quote(ds.format)
       << ", \"users\": " << ds.n_users() << ", \"items\": " << ds.n_items() << ", \"train\": " << ds.train.nnz()
       << ", \"dev\": " << ds.dev.nnz() << ", \"test\": " << ds.test.nnz() << "},\n";
    js << " \"config\": {\"model_name\": " << io::json_quote(o.model) << ", \"encoder\": " << io::json_quote(enc)
       << ", \"n_layers\": " << cfg.n_layers << ", \"emb_size\": " << o.emb << ", \"lr\": " << o.lr << ", \"l2\": " << o.l2 << ", \"weight_decay\": " << o.weight_decay << ", \"neg_exclude\": " << (o.neg_exclude_all ? "\"all\"" : "\"train\"")
       << ", \"batch_size\": " << batch << ", \"num_neg\": " << o.num_neg << ", \"gamma\": " << o.gamma
       << ", \"eps\": " << o.eps << ", \"noise_scale\": " << cfg.ans->noise_scale << ", \"mode\": " << io::json_quote(o.mode) << ", \"scoring\": " << io::json_quote(scoring)
       << ", \"optimizer\": " << io::json_quote(o.optimizer) << ", \"random_seed\": " << o.seed
       << ", \"num_workers\": " << ans::max_threads() << ", \"epoch\": " << epochs << ", \"early_stop\": " << o.early_stop
       << ", \"protocol\": " << io::json_quote(full ? "full" : "sampled99") << ", \"selection\": " << io::json_quote(selection)
       << ", \"main_metric\": " << io::json_quote(main_metric) << "},\n \"epochs\": [";
    for (size_t i = 0; i < recs.size(); ++i) {
      const auto& r = recs[i];
      js << (i ? ",\n   " : "\n   ") << "{\"epoch\": " << r.epoch << ", \"loss\": " << r.loss << ", \"seconds\": " << r.seconds
         << ", \"saturated_margin_fraction\": " << r.sat << ", \"valid\": " << json_metrics(r.valid)
         << ", \"test\": " << json_metrics(r.test) << "}";
    }
    js << "],\n \"best_epoch\": " << stopper.best_epoch() << ",\n \"test\": " << json_metrics(best_test)
       << ",\n \"best_on_test\": " << json_metrics(best_on_test) << ",\n \"train_seconds_per_epoch\": " << median
       << ",\n \"batches_per_epoch\": " << tr.batches_per_epoch()
       << ",\n \"batches_run_per_epoch\": " << (capped ? o.max_batches : tr.batches_per_epoch())
       << ",\n \"extrapolated\": " << (capped ? "true" : "false") << ",\n \"peak_rss_mb\": " << train::peak_rss_mb() << "}\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse(argc, argv);
    return run(o);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "ans-train: %s\n", e.msg.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ans-train: %s\n", e.what());
    return 1;
  }
}
