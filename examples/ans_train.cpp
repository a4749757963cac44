// ans-train: trains BPRMF, LightGCN, DNS, MixGCF or ANS on a dataset folder (LightGCN, RecBole or ReChorus
// format, detected) or, without --dataset, on the built-in synthetic dataset, with the flags of the ReChorus
// command the method was evaluated with:
//
//   ans-train --model_name ANS --emb_size 64 --lr 1e-3 --l2 0 --loss_n BPR --dataset NAME --path DIR
//             --metric NDCG,HR --topk 1,2,3,5,10 --main_metric NDCG@2 --model_mode TopK
//
// --model_mode Impression trains and ranks on ReChorus impression lists (run_impression, docs/impression.md).
//
// Values left unset come from a framework preset (--preset rechorus|lightgcn|mixgcf|recbole; see
// preset_defaults and docs/training.md); the effective configuration is printed and written to the JSON.
//
// Bad flags or values give a one-line error naming the flag and exit code 2.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "ans/core/wait_policy.hpp"
#include "ans/data/detect.hpp"
#include "ans/data/split.hpp"
#include "ans/data/synthetic.hpp"
#include "ans/io/json.hpp"
#include "ans/train/callbacks.hpp"
#include "ans/train/fit.hpp"
#include "ans/version.hpp"
#include "ans/train/trainer.hpp"
#include "ans/data/impression.hpp"
#include "ans/sampling/exposure.hpp"
#include "ans/train/impression_trainer.hpp"
#if ANS_WITH_MPI
#include "ans/dist/communicator.hpp"
#include "ans/dist/data_parallel.hpp"
#endif

namespace {

struct help_request {};  // --help: thrown by parse, answered by main
struct usage_error {
  std::string msg;
};

#if ANS_WITH_MPI
// Under mpirun -np P (built with ANS_WITH_MPI): every rank trains its shard of each batch (ans/dist); rank 0
// alone prints and writes --json, --log and --save; every rank evaluates, and they stop on rank 0's decision.
ans::dist::communicator* g_comm = nullptr;
#endif
// How a data-parallel trainer splits the work (train::shard_plan).
template <class Trainer>
const char* schedule_of(const Trainer& t) {
  if (t.config().n_layers > 0)
    return t.bipartite_chains() ? "LightGCN on the bipartite chains" : "LightGCN on row blocks";
  return t.owned_rows() ? "MF on owned rows" : "MF, sparse row all-gather";
}
// The evaluation callback, with the ranks agreeing on early stopping: every rank evaluates, and under mpirun
// rank 0's decision is broadcast, so the ranks stop together even if their scores differ in the last bits
// (ranks on machines whose kernels round differently). One process: the evaluation's own decision.
template <class Evaluation>
struct agreed_stop {
  Evaluation& ev;
  template <class T>
  void on_train_begin(T& t, int epochs) { ev.on_train_begin(t, epochs); }
  template <class T>
  void on_epoch_end(T& t, int epoch, double loss) { ev.on_epoch_end(t, epoch, loss); }
  bool should_stop() const {
    int stop = ev.should_stop() ? 1 : 0;
#if ANS_WITH_MPI
    if (g_comm && g_comm->size() > 1)
      ans::dist::detail::check(MPI_Bcast(&stop, 1, MPI_INT, 0, g_comm->handle()), "Bcast (early stopping)");
#endif
    return stop != 0;
  }
};
int world_size() {
#if ANS_WITH_MPI
  return g_comm ? g_comm->size() : 1;
#else
  return 1;
#endif
}
// An error on one rank must end every rank (the others may be waiting in a collective): MPI_Abort under mpirun.
int end_all(int code) {
#if ANS_WITH_MPI
  if (world_size() > 1) {
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
#endif
  return code;
}

[[noreturn]] void bad(const std::string& flag, const std::string& why) { throw usage_error{flag + ": " + why}; }

double to_double(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x)) bad(flag, "expected a number, got '" + v + "'");
  return x;
}
// An integer flag value in [lo, hi]: out-of-range values (also those past the range of long long) are an error
// naming the flag and its range, never truncated.
long long to_int(const std::string& flag, const std::string& v, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') bad(flag, "expected an integer, got '" + v + "'");
  if (errno == ERANGE || x < lo || x > hi)
    bad(flag, "'" + v + "' is outside the valid range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}
// A number flag value >= lo (and finite).
double to_double_min(const std::string& flag, const std::string& v, double lo) {
  const double x = to_double(flag, v);
  if (!(x >= lo)) {
    std::ostringstream os;
    os << "must be >= " << lo << ", got " << v;
    bad(flag, os.str());
  }
  return x;
}
// Fails before training when `path` cannot be written (its folder missing or read-only, or the file read-only).
void check_writable(const std::string& flag, const std::string& path, bool is_dir) {
  if (path.empty()) return;
  const auto slash = path.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (is_dir != S_ISDIR(st.st_mode)) bad(flag, "'" + path + "' exists and is " + (is_dir ? "not a folder" : "a folder"));
    if (::access(path.c_str(), W_OK) != 0) bad(flag, "'" + path + "' is not writable");
    return;
  }
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) bad(flag, "the folder '" + parent + "' does not exist");
  if (::access(parent.c_str(), W_OK) != 0) bad(flag, "the folder '" + parent + "' is not writable");
  // EEXIST: another process made it in between (every rank under mpirun checks the same --save folder)
  if (is_dir && ::mkdir(path.c_str(), 0755) != 0 && !(errno == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
    bad(flag, "cannot create the folder '" + path + "'");
}
std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string tok;
  while (std::getline(ss, tok, ',')) if (!tok.empty()) out.push_back(tok);
  return out;
}

// Values left unset on the command line come from the preset (see preset_defaults).
struct options {
  std::string model = "ANS", encoder = "", dataset, path, json, save, load, mode = "faithful";
  std::string preset;  // "" = auto: rechorus for BPRMF/LightGCN, recbole otherwise
  std::string scoring, log, margin;
  std::optional<std::string> optimizer, init, readout, main_metric, stop_rule, pair_sampling;
  int emb = 64, max_batches = 0, layers = -1, workers = 0;
  std::string dist_schedule = "auto";  ///< under mpirun: auto | allgather | owned (MF) | rows | bipartite (LightGCN)
  std::optional<int> epochs, early_stop, eval_every, test_all;
  std::optional<long> batch, num_neg;
  double lr = 1e-3, gamma = 0.1, eps = 0.1, noise_scale = -1;
  std::optional<double> l2, reg_weight, valid_ratio, init_std, gamma_warmup;
  double test_ratio = 0;
  std::optional<std::string> aux_form;
  long diagnose_every = 0;
  double id_density = 64;  ///< data::load_options::id_density
  std::uint64_t seed = 0;
  std::optional<std::vector<std::string>> metrics;
  std::optional<std::vector<ans::index_t>> topk;
  bool quiet = false, neg_exclude_all = false;
  // --model_mode Impression (ReChorus's ImpressionReader / ImpressionModel flags)
  bool impression = false;
  std::string impression_idkey = "time", impression_candidates = "exposure", impression_graph = "exposures";
  long train_max_pos = 20, train_max_neg = 20, test_max_pos = 20, test_max_neg = 20;
};

const char* kUsage =
    "usage: ans-train [--model_name BPRMF|LightGCN|DNS|MixGCF|ANS] [--encoder mf|lightgcn] [--dataset NAME --path DIR]\n"
    "  [--preset rechorus|lightgcn|mixgcf|recbole] (default: rechorus for BPRMF/LightGCN, recbole otherwise)\n"
    "  [--emb_size 64] [--lr 1e-3] [--l2 WD (Adam weight decay, ReChorus)] [--reg_weight LAMBDA (RecBole EmbLoss)]\n"
    "  [--neg_exclude train|all] [--epoch N] [--batch_size B] [--num_neg K] [--n_layers L] [--readout mean|sum|last|concat]\n"
    "  [--init xavier|normal] [--init_std S] [--pair_sampling shuffle|user_uniform] [--loss_n BPR] [--model_mode ''|TopK|Impression]\n"
    "  Impression: [--impression_idkey time|impression_id] [--train_max_pos_item 20] [--train_max_neg_item 20]\n"
    "    [--test_max_pos_item 20] [--test_max_neg_item 20] [--impression_candidates exposure|uniform (ANS, DNS)]\n"
    "    [--impression_graph exposures|clicks (LightGCN)]\n"
    "  [--gamma 0.1] [--gamma_warmup EPOCHS (fixed: 10)] [--aux_form norm|squared] [--diagnose_every STEPS] [--eps 0.1] [--noise_scale 0.1] [--margin inv_sigmoid|sigmoid_neg|clamped|none] [--mode faithful|fixed] [--random_seed 0] [--num_workers T]\n"
    "  [--early_stop N] [--stop_rule patience|rechorus|rechorus_head] [--metric NDCG,HR,Recall,Precision,MRR] [--topk 5,10] [--main_metric NDCG@5] [--test_all 0|1] [--id_density 64]\n"
    "  [--valid_ratio 0.1] [--test_ratio R (datasets without a test split)] [--eval_every N] [--optimizer lazy_adam|adam|sgd|hogwild_sgd] [--scoring trained|ego]\n"
    "  [--save DIR] [--load DIR] [--json FILE] [--log FILE.jsonl] [--max_batches N] [--quiet]\n"
    "  under mpirun (built with ANS_WITH_MPI): [--dist_schedule auto|allgather|owned|rows|bipartite]\n";

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (f == "--help" || f == "-h") throw help_request{};  // main prints the usage and returns (MPI_Finalize runs)
    if (f == "--quiet") { o.quiet = true; continue; }
    if (f.rfind("--", 0) != 0) bad(f, "unexpected argument (flags start with --)");
    if (i + 1 >= argc) bad(f, "missing value");
    const std::string v = argv[++i];
    if (f == "--model_name") {
      if (v != "BPRMF" && v != "LightGCN" && v != "DNS" && v != "MixGCF" && v != "ANS")
        bad(f, "unknown model '" + v + "' (BPRMF, LightGCN, DNS, MixGCF, ANS)");
      o.model = v;
    } else if (f == "--preset") {
      if (v != "rechorus" && v != "lightgcn" && v != "mixgcf" && v != "recbole")
        bad(f, "unknown preset '" + v + "' (rechorus, lightgcn, mixgcf, recbole)");
      o.preset = v;
    } else if (f == "--encoder") {
      if (v != "mf" && v != "lightgcn") bad(f, "expected mf or lightgcn, got '" + v + "'");
      o.encoder = v;
    } else if (f == "--emb_size") { o.emb = int(to_int(f, v, 1, 1 << 16));
    } else if (f == "--lr") { o.lr = to_double(f, v); if (!(o.lr > 0)) bad(f, "must be > 0, got " + v);
    } else if (f == "--l2" || f == "--weight_decay") {
      o.l2 = to_double(f, v); if (*o.l2 < 0) bad(f, "must be >= 0, got " + v);
    } else if (f == "--reg_weight") { o.reg_weight = to_double(f, v); if (*o.reg_weight < 0) bad(f, "must be >= 0, got " + v);
    } else if (f == "--loss_n") {
      if (v != "BPR") bad(f, "unsupported loss '" + v + "' (supported: BPR; ReChorus's BCE is for its CTR mode)");
    } else if (f == "--model_mode") {
      if (!v.empty() && v != "TopK" && v != "Impression")
        bad(f, "unsupported mode '" + v + "' (supported: '' or TopK: top-k ranking; Impression: impression lists; "
               "ReChorus's CTR mode is not supported)");
      o.impression = v == "Impression";
    } else if (f == "--impression_idkey") {
      if (v != "time" && v != "impression_id") bad(f, "expected time or impression_id, got '" + v + "'");
      o.impression_idkey = v;
    } else if (f == "--impression_candidates") {
      if (v != "exposure" && v != "uniform") bad(f, "expected exposure or uniform, got '" + v + "'");
      o.impression_candidates = v;
    } else if (f == "--impression_graph") {
      if (v != "exposures" && v != "clicks") bad(f, "expected exposures or clicks, got '" + v + "'");
      o.impression_graph = v;
    } else if (f == "--train_max_pos_item") { o.train_max_pos = to_int(f, v, 1, 1 << 16);
    } else if (f == "--train_max_neg_item") { o.train_max_neg = to_int(f, v, 1, 1 << 16);
    } else if (f == "--test_max_pos_item") { o.test_max_pos = to_int(f, v, 1, 1 << 16);
    } else if (f == "--test_max_neg_item") { o.test_max_neg = to_int(f, v, 1, 1 << 16);
    } else if (f == "--readout") {
      if (v != "mean" && v != "sum" && v != "last" && v != "concat") bad(f, "expected mean, sum, last or concat");
      o.readout = v;
    } else if (f == "--init") {
      if (v != "xavier" && v != "normal") bad(f, "expected xavier or normal");
      o.init = v;
    } else if (f == "--pair_sampling") {
      if (v != "shuffle" && v != "user_uniform") bad(f, "expected shuffle or user_uniform");
      o.pair_sampling = v;
    } else if (f == "--init_std") { o.init_std = to_double(f, v); if (!(*o.init_std > 0)) bad(f, "must be > 0");
    } else if (f == "--dataset") { o.dataset = v;
    } else if (f == "--path") { o.path = v;
    } else if (f == "--metric") {
      o.metrics = split_list(v);
      if (o.metrics->empty()) bad(f, "empty list");
      for (const auto& m : *o.metrics) {
        try { ans::eval::parse_metric(m + "@1"); } catch (const std::exception&) {
          bad(f, "unknown metric '" + m + "' (HR, NDCG, Recall, Precision, MRR)");
        }
      }
    } else if (f == "--topk") {
      o.topk.emplace();
      for (const auto& k : split_list(v)) { o.topk->push_back(to_int(f, k, 1, 1 << 20)); }
      if (o.topk->empty()) bad(f, "empty list");
    } else if (f == "--main_metric") { o.main_metric = v;
    } else if (f == "--epoch") { o.epochs = int(to_int(f, v, 0, 1000000000));
    } else if (f == "--batch_size") { o.batch = to_int(f, v, 1, 1LL << 30);
    } else if (f == "--num_neg") { o.num_neg = to_int(f, v, 1, 1 << 16);
    } else if (f == "--n_layers") { o.layers = int(to_int(f, v, 0, 64));
    } else if (f == "--gamma") { o.gamma = to_double_min(f, v, 0);
    } else if (f == "--eps") { o.eps = to_double_min(f, v, 0);
    } else if (f == "--neg_exclude") {
      if (v != "train" && v != "all") bad(f, "expected train or all");
      o.neg_exclude_all = v == "all";
    } else if (f == "--gamma_warmup") { o.gamma_warmup = to_double(f, v);
      if (!(*o.gamma_warmup >= 0) || !std::isfinite(*o.gamma_warmup)) bad(f, "must be a number of epochs >= 0, got " + v);
    } else if (f == "--aux_form") {
      if (v != "norm" && v != "squared") bad(f, "expected norm or squared, got '" + v + "'");
      o.aux_form = v;
    } else if (f == "--diagnose_every") { o.diagnose_every = to_int(f, v, 0, 1LL << 40);
    } else if (f == "--noise_scale") { o.noise_scale = to_double(f, v); if (o.noise_scale < 0) bad(f, "must be >= 0");
    } else if (f == "--margin") {
      if (v != "inv_sigmoid" && v != "sigmoid_neg" && v != "clamped" && v != "none")
        bad(f, "expected inv_sigmoid, sigmoid_neg, clamped or none");
      o.margin = v;
    } else if (f == "--mode") {
      if (v != "faithful" && v != "fixed") bad(f, "expected faithful or fixed, got '" + v + "'");
      o.mode = v;
    } else if (f == "--random_seed") { o.seed = static_cast<std::uint64_t>(to_int(f, v, 0, std::numeric_limits<long long>::max()));
    } else if (f == "--num_workers") { o.workers = int(to_int(f, v, 0, 4096));
    } else if (f == "--early_stop") { o.early_stop = int(to_int(f, v, 0, 1000000000));
    } else if (f == "--stop_rule") {
      if (v != "patience" && v != "rechorus" && v != "rechorus_head") bad(f, "expected patience, rechorus or rechorus_head");
      o.stop_rule = v;
    } else if (f == "--eval_every") { o.eval_every = int(to_int(f, v, 1, 1000000000));
    } else if (f == "--test_all") { o.test_all = int(to_int(f, v, 0, 1));
    } else if (f == "--id_density") { o.id_density = to_double_min(f, v, 0);
    } else if (f == "--test_ratio") { o.test_ratio = to_double(f, v); if (!(o.test_ratio >= 0 && o.test_ratio < 1)) bad(f, "must be in [0, 1)");
    } else if (f == "--valid_ratio") { o.valid_ratio = to_double(f, v); if (*o.valid_ratio < 0 || *o.valid_ratio >= 1) bad(f, "must be in [0, 1)");
    } else if (f == "--optimizer") {
      if (v != "lazy_adam" && v != "adam" && v != "sgd" && v != "hogwild_sgd")
        bad(f, "expected lazy_adam, adam, sgd or hogwild_sgd");
      o.optimizer = v;
    } else if (f == "--scoring") {
      if (v == "stack") bad(f, "'stack' is now '--readout concat' (scored with the training score by default)");
      if (v != "trained" && v != "ego") bad(f, "expected trained or ego");
      o.scoring = v;
    } else if (f == "--save") { o.save = v;
    } else if (f == "--load") { o.load = v;
    } else if (f == "--json") { o.json = v;
    } else if (f == "--dist_schedule") {
      o.dist_schedule = v;
      if (v != "auto" && v != "allgather" && v != "owned" && v != "rows" && v != "bipartite")
        bad(f, "expected auto, allgather, owned (MF), rows or bipartite (LightGCN), got '" + v + "'");
    } else if (f == "--max_batches") { o.max_batches = int(to_int(f, v, 0, std::numeric_limits<int>::max()));
    } else if (f == "--log") { o.log = v;
    } else {
      bad(f, "unknown flag");
    }
  }
  if (!o.path.empty() && o.dataset.empty()) bad("--path", "given without --dataset");
  // outputs are checked before any data is read or any epoch trained
  check_writable("--json", o.json, false);
  check_writable("--log", o.log, false);
  check_writable("--save", o.save, true);
  return o;
}

// The defaults of each framework preset, applied to every value the command line left unset. Each follows
// its framework's code (docs/training.md, "Presets"):
//   rechorus  THUwangcy/ReChorus: src/helpers/BaseRunner.py (Adam, --l2 = weight decay, batch 256, 200 epochs,
//             dev every epoch, eval_termination, NDCG,HR@5,10,20,50), src/models/BaseModel.py (one negative
//             per pair redrawn each epoch outside the train items, normal(0, 0.01) init), LightGCN.py (xavier,
//             mean of the layers)
//   lightgcn  gusye1234/LightGCN-PyTorch: code/world.py, model.py, utils.py (normal(0, 0.1), decay 1e-4 on
//             ½(‖u⁰‖²+‖p⁰‖²+‖n⁰‖²)/B, softplus BPR, batch 2048, lr 1e-3, user-uniform pair draws
//             (UniformSample_original), test every 10 epochs, full ranking on test: no validation split)
//   mixgcf    huangtinglin/MixGCF and Riwei-HEU/DENS: main.py, modules/LightGCN.py (xavier, λ 1e-4 on the
//             squared ego rows, softplus BPR, batch 2048, 16 candidates (MixGCF README's Amazon command,
//             --n_negs 16), test every 5 epochs, stop after 10
//             evaluations without a better Recall@20, full ranking)
//   recbole   the ANS reference (RecBole): xavier, λ 1e-4 EmbLoss, batch 2048, 16 candidates, lazy Adam for MF
void preset_defaults(options& o, bool synthetic) {
  const bool lgcn = o.model == "LightGCN" || o.encoder == "lightgcn";
  const bool sampler = o.model == "DNS" || o.model == "MixGCF" || o.model == "ANS";
  auto set = [](auto& opt, auto v) { if (!opt) opt = v; };
  if (o.preset == "rechorus") {
    set(o.optimizer, std::string("adam"));
    set(o.l2, 0.0);
    set(o.reg_weight, 0.0);
    set(o.batch, 256L);
    set(o.num_neg, sampler ? 16L : 1L);
    set(o.init, std::string(lgcn ? "xavier" : "normal"));
    set(o.init_std, 0.01);
    set(o.epochs, 200);
    set(o.eval_every, 1);
    set(o.early_stop, 10);
    set(o.stop_rule, std::string("rechorus"));
    set(o.metrics, std::vector<std::string>{"NDCG", "HR"});
    set(o.topk, std::vector<ans::index_t>{5, 10, 20, 50});
  } else if (o.preset == "lightgcn") {
    set(o.optimizer, std::string("adam"));
    set(o.l2, 0.0);
    set(o.reg_weight, 1e-4);
    set(o.batch, 2048L);
    set(o.num_neg, sampler ? 16L : 1L);
    set(o.init, std::string("normal"));
    set(o.init_std, 0.1);
    set(o.pair_sampling, std::string("user_uniform"));
    set(o.epochs, 1000);
    set(o.eval_every, 10);
    set(o.early_stop, 0);
    set(o.metrics, std::vector<std::string>{"Recall", "NDCG"});
    set(o.topk, std::vector<ans::index_t>{20});
    set(o.valid_ratio, 0.0);
    set(o.test_all, 1);
  } else if (o.preset == "mixgcf") {
    set(o.optimizer, std::string("adam"));
    set(o.l2, 0.0);
    set(o.reg_weight, 1e-4);
    set(o.batch, 2048L);
    set(o.num_neg, 16L);
    set(o.init, std::string("xavier"));
    set(o.epochs, 1000);
    set(o.eval_every, 5);
    set(o.early_stop, 10);
    set(o.metrics, std::vector<std::string>{"Recall", "NDCG", "Precision", "HR"});
    set(o.topk, std::vector<ans::index_t>{20});
    set(o.valid_ratio, 0.0);
    set(o.test_all, 1);
  } else {  // recbole
    set(o.optimizer, std::string("lazy_adam"));
    set(o.l2, 0.0);
    set(o.reg_weight, 1e-4);
    set(o.batch, synthetic ? 256L : 2048L);
    set(o.num_neg, 16L);
    set(o.init, std::string("xavier"));
    set(o.epochs, synthetic ? 20 : 60);
    set(o.eval_every, 1);
    set(o.early_stop, 10);
    set(o.metrics, std::vector<std::string>{"Recall", "NDCG"});
    set(o.topk, std::vector<ans::index_t>{20});
  }
  set(o.init_std, 0.01);
  set(o.pair_sampling, std::string("shuffle"));
  set(o.stop_rule, std::string("patience"));
  set(o.valid_ratio, 0.1);
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

// The evaluation callback's options from the flags: selection on `target`'s `metric`, test reported beside it,
// early stopping by --stop_rule, a checkpoint at each new best (--save). Shared by both modes.
ans::train::evaluation_options evaluation_of(const options& o, const std::string& target, const std::string& metric) {
  ans::train::evaluation_options eo;
  eo.target = target;
  eo.metric = metric;
  eo.every = *o.eval_every;
  eo.patience = *o.early_stop;
  eo.rule = *o.stop_rule == "rechorus"        ? ans::train::stop_rule::rechorus
            : *o.stop_rule == "rechorus_head" ? ans::train::stop_rule::rechorus_head
                                              : ans::train::stop_rule::patience;
  eo.report = "test";
  eo.save_dir = o.save;
  return eo;
}

// The pair trainer's configuration from the flags (after preset_defaults), shared by both modes.
struct model_setup {
  ans::train::trainer_config cfg;
  std::string enc, scoring;
  bool paper_loss = false;
  std::vector<std::string> names;  // every metric@k computed
};
model_setup make_model(const options& o) {
  using namespace ans;
  model_setup ms;
  train::trainer_config& cfg = ms.cfg;
  ms.enc = !o.encoder.empty() ? o.encoder : (o.model == "LightGCN" ? "lightgcn" : "mf");
  if (o.model == "BPRMF" && ms.enc == "lightgcn") bad("--encoder", "BPRMF is the MF encoder; use --model_name LightGCN");
  if (o.model == "LightGCN" && ms.enc == "mf") bad("--encoder", "LightGCN needs the lightgcn encoder");
  cfg.sampler = o.model == "DNS" ? train::sampler_kind::dns
                : o.model == "MixGCF" ? train::sampler_kind::mixgcf
                : o.model == "ANS" ? train::sampler_kind::ans : train::sampler_kind::rns;
  cfg.n_layers = ms.enc == "mf" ? 0 : (o.layers >= 0 ? o.layers : 3);
  if (ms.enc == "mf" && o.layers > 0) bad("--n_layers", "the mf encoder has no layers; add --encoder lightgcn");
  cfg.dim = o.emb;
  cfg.batch_size = *o.batch;
  cfg.num_neg = *o.num_neg;
  cfg.lr = o.lr;
  cfg.reg_weight = *o.reg_weight;
  cfg.weight_decay = *o.l2;
  cfg.negatives_exclude_eval = o.neg_exclude_all;
  cfg.m = o.mode == "fixed" ? mode::fixed : mode::faithful;
  cfg.gamma = o.gamma;
  cfg.eps = o.eps;
  ms.paper_loss = o.preset == "lightgcn" || o.preset == "mixgcf";  // softplus BPR, ½‖·‖²/B regulariser
  if (ms.paper_loss) cfg.reg_require_pow = true, cfg.bpr_stable = true;
  if (o.readout) cfg.readout = propagation::parse_readout(*o.readout);
  cfg.init = *o.init == "normal" ? train::init_kind::normal : train::init_kind::xavier;
  cfg.init_std = *o.init_std;
  cfg.pair_order = *o.pair_sampling == "user_uniform" ? sampling::pair_order::user_uniform : sampling::pair_order::shuffle;
  {
    auto ao = ans_options::make(cfg.m);
    ao.gamma = o.gamma;
    ao.eps = o.eps;
    ao.reg_weight = *o.reg_weight;
    if (ms.paper_loss) ao.reg_require_pow = true;
    if (o.noise_scale >= 0) ao.noise_scale = o.noise_scale;  // 0: no augmentation (ablation)
    if (!o.margin.empty())
      ao.margin = o.margin == "sigmoid_neg" ? margin_form::sigmoid_neg
                  : o.margin == "clamped"   ? margin_form::clamped
                  : o.margin == "none"      ? margin_form::none : margin_form::faithful_inv_sigmoid;
    if (o.aux_form) ao.distance_squared = ao.orth_squared = *o.aux_form == "squared";
    cfg.ans = ao;
  }
  cfg.gamma_warmup = o.gamma_warmup;  // unset: the mode's (fixed: 10 epochs)
  cfg.diagnose_every = o.diagnose_every;
  cfg.seed = o.seed;
  cfg.optimizer = *o.optimizer == "adam"          ? train::optimizer_kind::adam
                  : *o.optimizer == "sgd"         ? train::optimizer_kind::sgd
                  : *o.optimizer == "hogwild_sgd" ? train::optimizer_kind::hogwild_sgd
                                                  : train::optimizer_kind::lazy_adam;
  if (cfg.optimizer == train::optimizer_kind::hogwild_sgd &&
      (cfg.n_layers != 0 || (cfg.sampler != train::sampler_kind::rns && cfg.sampler != train::sampler_kind::dns)))
    bad("--optimizer", "hogwild_sgd trains MF (BPRMF or DNS with --encoder mf) only");
  ms.scoring = !o.scoring.empty() ? o.scoring : "trained";
  cfg.scoring = ms.scoring == "ego" ? train::scoring_kind::ego : train::scoring_kind::trained;
  cfg.topk = *o.topk;
  cfg.metrics.clear();
  std::vector<std::string>& names = ms.names;
  for (const auto& m : *o.metrics) cfg.metrics.push_back(eval::parse_metric(m + "@1").kind);
  for (const auto& m : *o.metrics)
    for (auto k : *o.topk) names.push_back(eval::metric_spec{eval::parse_metric(m + "@1").kind, k}.name());
  return ms;
}

int run(options o) {
  using namespace ans;
  const bool synthetic = o.dataset.empty();
  if (o.preset.empty()) o.preset = o.model == "BPRMF" || o.model == "LightGCN" ? "rechorus" : "recbole";
  preset_defaults(o, synthetic);
  if (o.workers > 0) {
#if ANS_HAS_OPENMP
    omp_set_num_threads(o.workers);
#endif
  }
  // ---- data ----
  data::dataset ds;
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
    if (data::is_impression_folder(dir))  // its label-0 rows are not interactions: never train on them silently
      bad("--model_mode", "'" + dir + "/train.csv' has a label column (impression data): run it with --model_mode "
                          "Impression; top-k mode would take every shown item for a positive");
    try {
      data::load_options lo;
      lo.id_density = o.id_density;
      ds = data::load_any(dir, lo);
    } catch (const std::exception& e) {
      struct stat st;
      if (::stat(dir.c_str(), &st) != 0) bad("--dataset", "no dataset folder '" + dir + "' (set --path DIR or ANS_DATA_DIR)");
      throw;
    }
  }
  // --test_ratio: a dataset without a test split (e.g. one RecBole .inter file) gets a seeded hold-out of each
  // user's items as test, before the validation hold-out below
  if (o.test_ratio > 0) {
    if (ds.test.nnz() > 0 || (ds.test_candidates && ds.test_candidates->rows() > 0))
      bad("--test_ratio", "dataset '" + ds.name + "' already has a test split");
    auto sp = data::holdout_split(ds.train, o.test_ratio, o.seed + 1010);
    ds.train = std::move(sp.train);
    ds.test = std::move(sp.dev);
  }
  const bool has_fixed = ds.test_candidates.has_value() && ds.test_candidates->rows() > 0;
  const bool full = o.test_all ? *o.test_all == 1 : !has_fixed;
  // Validation: the dataset's dev split, else a seeded hold-out of each user's training items.
  std::string selection = "dev";
  if (ds.dev.nnz() == 0 && !(ds.dev_candidates && ds.dev_candidates->rows() > 0)) {
    if (*o.valid_ratio > 0) {
      // round(ratio·n) of each user's items (at most n − 1), the reference's rule: 10% of the interactions
      auto sp = data::holdout_split(ds.train, *o.valid_ratio, o.seed + 2020);
      ds.train = std::move(sp.train);
      ds.dev = std::move(sp.dev);
      selection = "dev (" + std::to_string(int(std::lround(*o.valid_ratio * 100))) + "% of train held out)";
    } else {
      selection = "test (no validation split: --valid_ratio 0)";
    }
  }
  const bool select_on_test = ds.dev.nnz() == 0 && !(ds.dev_candidates && ds.dev_candidates->rows() > 0);

  // ---- model ----
  const model_setup setup = make_model(o);
  const train::trainer_config& cfg = setup.cfg;
  const std::string& enc = setup.enc;
  const std::string& scoring = setup.scoring;
  const bool paper_loss = setup.paper_loss;
  const std::vector<std::string>& names = setup.names;
  const long batch = *o.batch;
  std::string main_metric = o.main_metric ? *o.main_metric : names.front();
  if (std::find(names.begin(), names.end(), main_metric) == names.end())
    bad("--main_metric", "'" + main_metric + "' is not among the computed metrics (--metric x --topk)");
  const int epochs = *o.epochs;
  const std::string readout = cfg.n_layers == 0 ? "identity (L = 0)"
                                                : propagation::to_string(train::trainer<float>::effective_readout(cfg));
  const std::string optimizer =
      *o.optimizer == "lazy_adam" && cfg.n_layers > 0 ? std::string("adam (lazy_adam is for L = 0)") : *o.optimizer;

  train::trainer<float> tr(ds, cfg);
#if ANS_WITH_MPI
  std::shared_ptr<dist::sparse_row_exchange<float>> exchange;
  if (world_size() > 1) {
    exchange = dist::make_data_parallel(tr, *g_comm);
    if (o.dist_schedule != "auto") {
      using plan_t = train::shard_plan<float>;
      auto plan = tr.shard();
      const bool lg = cfg.n_layers > 0;
      if (o.dist_schedule == "allgather" || o.dist_schedule == "owned") {
        if (lg) bad("--dist_schedule", o.dist_schedule + " is an MF schedule; LightGCN runs rows or bipartite");
        plan.mf = o.dist_schedule == "owned" ? plan_t::mf_schedule::owned : plan_t::mf_schedule::allgather;
      } else {
        if (!lg) bad("--dist_schedule", o.dist_schedule + " is a LightGCN schedule; MF runs allgather or owned");
        plan.lightgcn = o.dist_schedule == "rows" ? plan_t::schedule::rows : plan_t::schedule::bipartite;
      }
      tr.set_shard(plan);
    }
    std::printf("data-parallel: %d ranks, %d thread(s) each, %s (docs/distributed.md)\n", world_size(),
                ans::max_threads(), schedule_of(tr));
  }
#endif
  if (!o.load.empty()) tr.load(o.load);
  // --max_batches: timing runs; the epoch time is extrapolated to the full epoch and labelled as such.
  const bool capped = o.max_batches > 0 && o.max_batches < tr.batches_per_epoch();
  if (capped) tr.set_max_batches(o.max_batches);
  const auto proto = full ? train::trainer<float>::protocol::full : train::trainer<float>::protocol::sampled;
  const std::string val_target = select_on_test ? "test" : "dev";

  // the effective configuration, printed and written into the JSON (every value the run used)
  std::vector<std::pair<std::string, std::string>> conf;
  auto q = [](const std::string& v) { return io::json_quote(v); };
  auto num = [](double v) { std::ostringstream os; os.precision(10); os << v; return os.str(); };
  std::string ks;
  for (auto k : *o.topk) ks += (ks.empty() ? "" : ",") + std::to_string(k);
  std::string ms;
  for (const auto& m : *o.metrics) ms += (ms.empty() ? "" : ",") + m;
  conf = {{"model_name", q(o.model)}, {"preset", q(o.preset)}, {"encoder", q(enc)}, {"n_layers", std::to_string(cfg.n_layers)},
          {"readout", q(readout)}, {"scoring", q(scoring)}, {"emb_size", std::to_string(o.emb)}, {"lr", num(o.lr)},
          {"l2", num(*o.l2)}, {"weight_decay", num(*o.l2)}, {"reg_weight", num(*o.reg_weight)},
          {"reg_form", q(paper_loss || cfg.m == mode::fixed ? "squared/2B" : "norm/B")},
          {"bpr_form", q(cfg.bpr_stable ? "softplus" : "log(sigmoid+1e-10)")},
          {"init", q(*o.init == "normal" ? "normal(0, " + num(*o.init_std) + ")" : "xavier_uniform")},
          {"optimizer", q(optimizer)}, {"pair_sampling", q(*o.pair_sampling)}, {"batch_size", std::to_string(batch)}, {"num_neg", std::to_string(*o.num_neg)},
          {"neg_exclude", q(o.neg_exclude_all ? "all" : "train")}, {"gamma", num(o.gamma)}, {"eps", num(o.eps)},
          {"noise_scale", num(cfg.ans->noise_scale)}, {"gamma_warmup", num(train::trainer<float>::effective_gamma_warmup(cfg))}, {"test_ratio", num(o.test_ratio)},
          {"aux_form", q(cfg.ans->distance_squared ? "squared" : "norm")}, {"diagnose_every", std::to_string(cfg.diagnose_every)}, {"mode", q(o.mode)}, {"random_seed", std::to_string(o.seed)},
          {"num_workers", std::to_string(ans::max_threads())},
          {"omp_wait_policy", q(std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "libgomp default")},
          {"epoch", std::to_string(epochs)},
          {"eval_every", std::to_string(*o.eval_every)}, {"early_stop", std::to_string(*o.early_stop)},
          {"stop_rule", q(*o.stop_rule)}, {"metric", q(ms)}, {"topk", q(ks)},
          {"protocol", q(full ? "full" : "sampled99")}, {"selection", q(selection)}, {"main_metric", q(main_metric)}};
  std::printf("ans-train %s: %s, preset %s\n", ans::version_string, o.model.c_str(), o.preset.c_str());
  std::printf("config:");
  for (const auto& [k, v] : conf) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf("\n");
  std::printf("data %s [%s]: %lld users, %lld items, train %lld, dev %lld, test %lld; protocol %s; selection on %s; threads %d\n",
              ds.name.c_str(), ds.format.c_str(), (long long)ds.n_users(), (long long)ds.n_items(),
              (long long)ds.train.nnz(), (long long)ds.dev.nnz(), (long long)ds.test.nnz(),
              full ? "full ranking" : "99 negatives", selection.c_str(), ans::max_threads());
  std::fflush(stdout);

  // The epoch loop is train::fit with four callbacks, run in this order after every epoch: the timer, the
  // evaluation (selection on val_target, test reported beside it, early stopping, --save at each new best),
  // and this program's record of the epoch (progress line, --log, the JSON's epochs).
  train::epoch_timer timer;
  const train::evaluation_options eo = evaluation_of(o, val_target, main_metric);
  using trainer_t = decltype(tr);
  train::evaluation<trainer_t> evaluator(eo, proto);
  struct epoch_rec {
    int epoch;
    double loss, seconds, sat;
    std::map<std::string, double> valid, test;
    std::array<double, 5> terms{};  // ANS: epoch means of M, L_c, D, O, R
  };
  struct recorder {
    const options& o;
    const data::dataset& ds;
    const train::epoch_timer& timer;
    const train::evaluation<trainer_t>& ev;
    const std::string& main_metric;
    bool capped, is_ans;
    train::progress bar;
    train::json_lines_log log;
    std::vector<epoch_rec> recs;
    std::vector<double> secs;

    void on_epoch_begin(trainer_t& t, int e) { bar.start_epoch(e + 1, t.batches_per_epoch()); }
    void on_batch_end(trainer_t&, int, index_t b, double l, index_t s) { bar.batch(b, l, s); }
    void on_epoch_end(trainer_t& t, int e, double loss) {
      double sec = timer.last_seconds();
      if (capped) sec *= double(t.batches_per_epoch()) / double(o.max_batches);  // extrapolated
      secs.push_back(sec);
      epoch_rec r{e + 1, loss, sec, is_ans ? t.epoch_saturated_margin_fraction() : 0.0, {}, {}, t.epoch_terms()};
      std::string extra;
      if (ev.evaluated()) {
        r.valid = ev.last_metrics();
        r.test = ev.last_report();
        extra = "valid " + fmt_metrics(r.valid, {main_metric}) + (ev.improved() ? " *" : "");
      }
      std::map<std::string, double> fields{{"loss", loss}, {"seconds", sec}};
      for (const auto& [k, v] : r.valid) fields["valid_" + k] = v;
      if (is_ans) {
        fields["saturated_margin_fraction"] = r.sat;
        const char* tn[5] = {"bpr", "sns", "distance", "orth", "reg"};
        for (size_t i = 0; i < 5; ++i) fields[std::string("term_") + tn[i]] = r.terms[i];
      }
      log.write(e + 1, fields);
      bar.end_epoch(loss, t.batches_per_epoch() > 0 ? ds.train.nnz() : 0, extra);
      recs.push_back(std::move(r));
    }
  } rec{o, ds, timer, evaluator, main_metric, capped, cfg.sampler == train::sampler_kind::ans, train::progress(o.quiet), {}, {}, {}};
  if (!o.log.empty()) rec.log.open(o.log);
  agreed_stop<decltype(evaluator)> agreed{evaluator};
  const train::fit_result fr = train::fit(tr, epochs, timer, agreed, rec);
#if ANS_WITH_MPI
  // every rank's exchange seconds per step (rank 0's alone hides which rank waits for which): gathered by all
  // and every rank's peak RSS (rank 0's own figure, printed below, does not show the others')
  std::vector<double> ex_secs, ex_sync, ex_swap, rss_by_rank;
  if (exchange) {
    const auto& st = exchange->stats();
    const double n = double(std::max<std::uint64_t>(1, st.steps));
    g_comm->allgather(st.seconds / n, ex_secs), g_comm->allgather(st.sync_seconds / n, ex_sync);
    g_comm->allgather(st.swap_seconds / n, ex_swap);
    g_comm->allgather(train::peak_rss_mb(), rss_by_rank);
  }
  auto rank_list = [](const std::vector<double>& v, const char* sep, double scale = 1e3) {
    std::ostringstream s;
    s.precision(4);
    for (size_t r = 0; r < v.size(); ++r) s << (r ? sep : "") << scale * v[r];
    return s.str();
  };
#endif
  if (fr.stopped_early)
    std::printf("early stop: %s did not improve for %d evaluations (%s rule)\n", main_metric.c_str(), *o.early_stop,
                o.stop_rule->c_str());
  const auto& recs = rec.recs;
  std::vector<double> secs = rec.secs;
  std::map<std::string, double> best_test = evaluator.best_report();
  if (recs.empty()) {  // nothing to train (e.g. resumed at the last epoch): evaluate the loaded model
    best_test = tr.evaluate("test", proto);
  }
  std::sort(secs.begin(), secs.end());
  const double median = secs.empty() ? 0.0 : secs[secs.size() / 2];
  // Best-on-test (the published logs select that way) beside the validation-selected figure.
  std::map<std::string, double> best_on_test;
  for (const auto& r : recs)
    for (const auto& [k, v] : r.test) best_on_test[k] = std::max(best_on_test[k], v);

  std::printf("\nBest epoch %d on %s %s\n", evaluator.best_epoch(), val_target.c_str(), main_metric.c_str());
  std::printf("Test After Training: %s\n", fmt_metrics(best_test, names).c_str());
  std::printf("\n%-14s %12s %12s\n", "metric", "test@best", "best-on-test");
  for (const auto& n : names)
    std::printf("%-14s %12.4f %12.4f\n", n.c_str(), best_test.count(n) ? best_test.at(n) : 0.0,
                best_on_test.count(n) ? best_on_test.at(n) : 0.0);
#if ANS_WITH_MPI
  if (exchange) {
    const auto& st = exchange->stats();
    const double n = double(std::max<std::uint64_t>(1, st.steps));
    std::printf("exchange: %.0f bytes sent per step by rank 0 (%.0f rows, union %.0f), %.2f ms per step\n",
                double(st.bytes_sent) / n, double(st.rows_sent) / n, double(st.rows_union) / n, 1e3 * st.seconds / n);
    std::printf("exchange ms per step, rank by rank: %s (the all-gathers %s; the chains' swap %s)\n",
                rank_list(ex_secs, ", ").c_str(), rank_list(ex_sync, ", ").c_str(), rank_list(ex_swap, ", ").c_str());
    if (st.syncs > 0)
      std::printf("row-block all-gathers: %.1f per step, %.0f bytes sent per step by rank 0, %.2f ms per step\n",
                  double(st.syncs) / n, double(st.sync_bytes) / n, 1e3 * st.sync_seconds / n);
    if (tr.owned_rows())
      std::printf("owned rows: %.0f rows fetched, %.0f served, %.0f gradient rows sent per step by rank 0\n",
                  double(tr.owned_row_counts().fetched) / n, double(tr.owned_row_counts().served) / n,
                  double(tr.owned_row_counts().gradients) / n);
    if (st.swaps > 0)
      std::printf("bipartite chains: %.0f bytes of rows sent per step by rank 0, %.2f ms per step\n",
                  double(st.swap_bytes) / n, 1e3 * st.swap_seconds / n);
    std::string rss;
    for (size_t r = 0; r < rss_by_rank.size(); ++r) rss += (r ? ", " : "") + std::to_string(std::lround(rss_by_rank[r]));
    std::printf("peak RSS rank by rank: %s MB\n", rss.c_str());
  }
#endif
  std::printf("median epoch %.2fs%s, peak RSS %.0f MB\n", median, capped ? " (extrapolated from --max_batches)" : "",
              train::peak_rss_mb());

  if (!o.json.empty()) {
    std::ofstream js(o.json);
    if (!js) bad("--json", "cannot write '" + o.json + "'");
    js.precision(10);
    js << "{\"dataset\": {\"name\": " << io::json_quote(ds.name) << ", \"format\": " << io::json_quote(ds.format)
       << ", \"users\": " << ds.n_users() << ", \"items\": " << ds.n_items() << ", \"train\": " << ds.train.nnz()
       << ", \"dev\": " << ds.dev.nnz() << ", \"test\": " << ds.test.nnz() << "},\n";
    js << " \"config\": {";
    for (size_t i = 0; i < conf.size(); ++i) js << (i ? ", " : "") << io::json_quote(conf[i].first) << ": " << conf[i].second;
    js << "},\n \"epochs\": [";
    for (size_t i = 0; i < recs.size(); ++i) {
      const auto& r = recs[i];
      js << (i ? ",\n   " : "\n   ") << "{\"epoch\": " << r.epoch << ", \"loss\": " << r.loss << ", \"seconds\": " << r.seconds
         << ", \"saturated_margin_fraction\": " << r.sat;
      if (cfg.sampler == train::sampler_kind::ans)
        js << ", \"terms\": {\"bpr\": " << r.terms[0] << ", \"sns\": " << r.terms[1] << ", \"distance\": " << r.terms[2]
           << ", \"orth\": " << r.terms[3] << ", \"reg\": " << r.terms[4] << "}";
      js << ", \"valid\": " << json_metrics(r.valid)
         << ", \"test\": " << json_metrics(r.test) << "}";
    }
    js << "],\n \"best_epoch\": " << evaluator.best_epoch() << ",\n \"test\": " << json_metrics(best_test)
       << ",\n \"best_on_test\": " << json_metrics(best_on_test) << ",\n \"train_seconds_per_epoch\": " << median
       << ",\n \"batches_per_epoch\": " << tr.batches_per_epoch()
       << ",\n \"batches_run_per_epoch\": " << (capped ? o.max_batches : tr.batches_per_epoch())
       << ",\n \"extrapolated\": " << (capped ? "true" : "false") << ",\n \"peak_rss_mb\": " << train::peak_rss_mb()
       << ",\n \"ranks\": " << world_size();
#if ANS_WITH_MPI
    if (exchange) {
      const auto& st = exchange->stats();
      js << ",\n \"exchange\": {\"steps\": " << st.steps << ", \"bytes_sent_per_step\": " << double(st.bytes_sent) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"rows_sent_per_step\": " << double(st.rows_sent) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"rows_union_per_step\": " << double(st.rows_union) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"seconds_per_step\": " << st.seconds / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"syncs_per_step\": " << double(st.syncs) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"sync_bytes_per_step\": " << double(st.sync_bytes) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"sync_seconds_per_step\": " << st.sync_seconds / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"chain_bytes_per_step\": " << double(st.swap_bytes) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"chain_seconds_per_step\": " << st.swap_seconds / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"ms_per_step_by_rank\": [" << rank_list(ex_secs, ", ") << "], \"sync_ms_per_step_by_rank\": ["
         << rank_list(ex_sync, ", ") << "], \"chain_ms_per_step_by_rank\": [" << rank_list(ex_swap, ", ") << "]"
         << ", \"peak_rss_mb_by_rank\": [" << rank_list(rss_by_rank, ", ", 1.0) << "]"
         << ", \"schedule\": \"" << schedule_of(tr) << "\""
         << ", \"owned_rows_per_step\": {\"fetched\": " << double(tr.owned_row_counts().fetched) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"served\": " << double(tr.owned_row_counts().served) / double(std::max<std::uint64_t>(1, st.steps))
         << ", \"gradients\": " << double(tr.owned_row_counts().gradients) / double(std::max<std::uint64_t>(1, st.steps)) << "}"
         << ", \"node_blocks\": [";
      for (size_t r = 0; r < tr.node_block_offsets().size(); ++r) js << (r ? ", " : "") << tr.node_block_offsets()[r];
      js << "]}";
    }
#endif
    if (!tr.diagnostics().empty()) {  // --diagnose_every: per-term gradient norms before the step
      js << ",\n \"diagnostics\": [";
      const auto& dg = tr.diagnostics();
      for (size_t i = 0; i < dg.size(); ++i) {
        const auto& g = dg[i];
        js << (i ? ",\n   " : "\n   ") << "{\"epoch\": " << g.epoch << ", \"batch\": " << g.batch << ", \"gamma\": " << g.gamma
           << ", \"user_norm\": " << g.user_norm << ", \"item_norm\": " << g.item_norm;
        const std::pair<const char*, const train::term_gradient*> ts[5] = {
            {"bpr", &g.bpr}, {"sns", &g.sns}, {"distance", &g.distance}, {"orth", &g.orth}, {"reg", &g.reg}};
        for (const auto& [name, t] : ts)
          js << ", \"" << name << "\": {\"value\": " << t->value << ", \"e0\": " << t->e0 << ", \"gate\": " << t->gate
             << ", \"margin\": " << t->margin << ", \"cos_bpr\": " << t->cos_bpr << ", \"frac_over_bpr\": " << t->frac_over_bpr
             << ", \"frac_without_bpr\": " << t->frac_without_bpr << "}";
        js << "}";
      }
      js << "]";
    }
    js << "}\n";
  }
  return 0;
}

// ReChorus's format_metric: cutoffs ascending, then metric names alphabetically, 4 decimals
// ("HR@1:0.1234,NDCG@1:0.1234,HR@2:...").
std::string fmt_rechorus(const std::map<std::string, double>& m, long only_k = -1) {
  std::vector<std::tuple<long, std::string, double>> v;
  for (const auto& [k, x] : m) {
    const auto at = k.find('@');
    const long kk = std::stol(k.substr(at + 1));
    if (only_k < 0 || kk == only_k) v.emplace_back(kk, k.substr(0, at), x);
  }
  std::sort(v.begin(), v.end());
  std::ostringstream os;
  os << std::fixed;
  os.precision(4);
  for (size_t i = 0; i < v.size(); ++i)
    os << (i ? "," : "") << std::get<1>(v[i]) << "@" << std::get<0>(v[i]) << ":" << std::get<2>(v[i]);
  return os.str();
}

// --model_mode Impression: ReChorus's impression-based ranking (ImpressionReader, ImpressionModel,
// ImpressionRunner; docs/impression.md). BPRMF and LightGCN train with the list-level BPR
// (train::impression_trainer); ANS, DNS and MixGCF train on the lists' (user, clicked item) pairs with
// candidates from the list's negatives (--impression_candidates exposure) or uniform ones, wrapped in
// train::impression_run. Both are ranked per list (eval::impression_ranking), selected on dev's main metric.
int run_impression(options o) {
  using namespace ans;
  if (o.dataset.empty()) bad("--model_mode", "Impression needs --dataset (a ReChorus impression folder)");
  if (world_size() > 1) bad("--model_mode", "impression mode runs in one process (data-parallel training is top-k MF)");
  if (o.preset.empty()) o.preset = "rechorus";
  if (o.preset != "rechorus") bad("--preset", "impression mode is ReChorus's: only the rechorus preset applies");
  if (o.test_all && *o.test_all != 0) bad("--test_all", "impression mode ranks each list's own items (test_all 0)");
  if (o.test_ratio > 0 || o.valid_ratio) bad("--model_mode", "impression data has its own dev and test lists");
  preset_defaults(o, false);
  for (const auto& m : *o.metrics) {
    const auto k = eval::parse_metric(m + "@1").kind;
    if (k != eval::metric_kind::hit && k != eval::metric_kind::ndcg)
      bad("--metric", "impression mode computes HR and NDCG (ReChorus's ImpressionRunner), not " + m);
  }
  if (o.workers > 0) {
#if ANS_HAS_OPENMP
    omp_set_num_threads(o.workers);
#endif
  }
  std::string root = o.path;
  if (root.empty()) root = std::getenv("ANS_DATA_DIR") ? std::getenv("ANS_DATA_DIR") : "data";
  const std::string dir = root + "/" + o.dataset;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) bad("--dataset", "no dataset folder '" + dir + "' (set --path DIR or ANS_DATA_DIR)");
  if (!data::is_impression_folder(dir))
    bad("--model_mode", "'" + dir + "/train.csv' has no label column: Impression needs ReChorus impression files "
                        "(user_id item_id time label); top-k folders run with --model_mode TopK");
  data::impression_options io_opts;
  io_opts.key = o.impression_idkey == "impression_id" ? data::impression_key::impression_id : data::impression_key::time;
  io_opts.load.id_density = o.id_density;
  const data::impression_dataset d = data::load_impression(dir, io_opts);

  const model_setup ms = make_model(o);
  const std::vector<std::string>& names = ms.names;
  const std::string main_metric = o.main_metric ? *o.main_metric : names.front();
  if (std::find(names.begin(), names.end(), main_metric) == names.end())
    bad("--main_metric", "'" + main_metric + "' is not among the computed metrics (--metric x --topk)");
  const long main_k = std::stol(main_metric.substr(main_metric.find('@') + 1));
  eval::impression_ranking_options ro;
  ro.ks = *o.topk;
  ro.kinds = ms.cfg.metrics;
  ro.max_pos = o.test_max_pos;
  ro.max_neg = o.test_max_neg;
  const bool list_model = o.model == "BPRMF" || o.model == "LightGCN";
  const bool exposure = !list_model && o.impression_candidates == "exposure";
  const int epochs = *o.epochs;

  auto q = [](const std::string& v) { return io::json_quote(v); };
  auto num = [](double v) { std::ostringstream os; os.precision(10); os << v; return os.str(); };
  std::string ks;
  for (auto k : *o.topk) ks += (ks.empty() ? "" : ",") + std::to_string(k);
  std::vector<std::pair<std::string, std::string>> conf = {
      {"model_name", q(o.model)}, {"model_mode", q("Impression")}, {"preset", q(o.preset)},
      {"loss", q(list_model ? "list BPR (ReChorus BaseImpressionModel, --loss_n BPR)" : "pair objective of " + o.model)},
      {"candidates", q(list_model ? "the list" : exposure ? "exposure (the list's negatives, topped up uniformly)" : "uniform")},
      {"n_layers", std::to_string(ms.cfg.n_layers)}, {"emb_size", std::to_string(o.emb)}, {"lr", num(o.lr)},
      {"l2", num(*o.l2)}, {"batch_size", std::to_string(*o.batch)}, {"num_neg", std::to_string(*o.num_neg)},
      {"init", q(*o.init == "normal" ? "normal(0, " + num(*o.init_std) + ")" : "xavier_uniform")},
      {"optimizer", q(list_model ? "adam (dense)" : *o.optimizer)}, {"mode", q(o.mode)},
      {"impression_idkey", q(o.impression_idkey)}, {"impression_graph", q(o.impression_graph)},
      {"train_max_pos_item", std::to_string(o.train_max_pos)}, {"train_max_neg_item", std::to_string(o.train_max_neg)},
      {"test_max_pos_item", std::to_string(o.test_max_pos)}, {"test_max_neg_item", std::to_string(o.test_max_neg)},
      {"random_seed", std::to_string(o.seed)}, {"num_workers", std::to_string(ans::max_threads())},
      {"epoch", std::to_string(epochs)}, {"eval_every", std::to_string(*o.eval_every)},
      {"early_stop", std::to_string(*o.early_stop)}, {"stop_rule", q(*o.stop_rule)}, {"topk", q(ks)},
      {"main_metric", q(main_metric)}};
  std::printf("ans-train %s: %s, model_mode Impression, preset %s\n", ans::version_string, o.model.c_str(), o.preset.c_str());
  std::printf("config:");
  for (const auto& [k, v] : conf) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf("\n%s", data::rechorus_log_lines(d).c_str());
  std::fflush(stdout);

  // one driver for both kinds of run: fit() with the timer, the dev selection (test reported at the selected
  // epoch) and ReChorus's epoch lines
  auto drive = [&](auto& run, index_t train_pairs, double uniform_fraction) {
    using run_t = std::decay_t<decltype(run)>;
    if (!o.load.empty()) run.load(o.load);
    train::epoch_timer timer;
    const train::evaluation_options eo = evaluation_of(o, "dev", main_metric);
    train::evaluation<run_t> ev(eo, run_t::protocol::impression);
    struct rec_t {
      int epoch;
      double loss, seconds;
      std::map<std::string, double> valid, test;
    };
    struct printer {
      const train::epoch_timer& timer;
      const train::evaluation<run_t>& ev;
      long main_k;
      bool quiet;
      std::vector<rec_t> recs;
      void on_epoch_end(run_t&, int e, double loss) {
        rec_t r{e + 1, loss, timer.last_seconds(), {}, {}};
        if (ev.evaluated()) r.valid = ev.last_metrics(), r.test = ev.last_report();
        if (!quiet) {
          std::printf("Epoch %-5d loss=%.4f [%.1f s]", e + 1, loss, r.seconds);
          if (ev.evaluated()) std::printf("\tdev=(%s)%s", fmt_rechorus(r.valid, main_k).c_str(), ev.improved() ? " *" : "");
          std::printf("\n");
          std::fflush(stdout);
        }
        recs.push_back(std::move(r));
      }
    } pr{timer, ev, main_k, o.quiet, {}};
    const auto t0 = std::chrono::steady_clock::now();
    agreed_stop<decltype(ev)> agreed{ev};
    const train::fit_result fr = train::fit(run, epochs, timer, agreed, pr);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (fr.stopped_early) std::printf("Early stop at %d based on dev result.\n", run.epochs_done());
    std::map<std::string, double> dev_best = ev.best_metrics(), test_best = ev.best_report();
    if (pr.recs.empty()) dev_best = run.evaluate("dev"), test_best = run.evaluate("test");
    std::printf("\nBest Iter(dev)=%5d\t dev=(%s) [%.1f s] \n", ev.best_epoch(), fmt_rechorus(dev_best, main_k).c_str(), total);
    std::printf("\nDev  After Training: (%s)\n", fmt_rechorus(dev_best).c_str());
    std::printf("\nTest After Training: (%s)\n", fmt_rechorus(test_best).c_str());
    std::vector<double> secs;
    for (const auto& r : pr.recs) secs.push_back(r.seconds);
    std::sort(secs.begin(), secs.end());
    const double median = secs.empty() ? 0.0 : secs[secs.size() / 2];
    std::printf("median epoch %.3fs for %lld training pairs (%.1f ns per pair), peak RSS %.0f MB\n", median,
                (long long)train_pairs, train_pairs ? 1e9 * median / double(train_pairs) : 0.0, train::peak_rss_mb());
    if (!o.json.empty()) {
      std::ofstream js(o.json);
      if (!js) bad("--json", "cannot write '" + o.json + "'");
      js.precision(10);
      const auto& r = d.report;
      js << "{\"dataset\": {\"name\": " << q(d.base.name) << ", \"format\": " << q(d.base.format)
         << ", \"users\": " << d.base.n_users() << ", \"items\": " << d.base.n_items() << ", \"entries\": " << r.entries()
         << ", \"positives\": " << r.positives() << ", \"lists\": [" << r.lists[0] << ", " << r.lists[1] << ", " << r.lists[2]
         << "], \"avg_pos\": " << r.avg_pos() << ", \"avg_neg\": " << r.avg_neg() << "},\n \"config\": {";
      for (size_t i = 0; i < conf.size(); ++i) js << (i ? ", " : "") << q(conf[i].first) << ": " << conf[i].second;
      js << "},\n \"epochs\": [";
      for (size_t i = 0; i < pr.recs.size(); ++i) {
        const auto& e = pr.recs[i];
        js << (i ? ",\n   " : "\n   ") << "{\"epoch\": " << e.epoch << ", \"loss\": " << e.loss << ", \"seconds\": " << e.seconds
           << ", \"valid\": " << json_metrics(e.valid) << ", \"test\": " << json_metrics(e.test) << "}";
      }
      js << "],\n \"best_epoch\": " << ev.best_epoch() << ",\n \"dev\": " << json_metrics(dev_best)
         << ",\n \"test\": " << json_metrics(test_best) << ",\n \"train_seconds_per_epoch\": " << median
         << ",\n \"train_pairs_per_epoch\": " << train_pairs << ",\n \"uniform_candidate_fraction\": " << uniform_fraction
         << ",\n \"peak_rss_mb\": " << train::peak_rss_mb() << "}\n";
    }
    return 0;
  };

  if (list_model) {
    train::impression_config ic;
    ic.n_layers = ms.cfg.n_layers;
    ic.dim = o.emb;
    ic.batch_size = *o.batch;
    ic.lr = o.lr;
    ic.weight_decay = *o.l2;
    ic.init = ms.cfg.init;
    ic.init_std = ms.cfg.init_std;
    ic.train_max_pos = o.train_max_pos;
    ic.train_max_neg = o.train_max_neg;
    ic.edges = o.impression_graph == "clicks" ? train::graph_edges::clicks : train::graph_edges::exposures;
    ic.seed = o.seed;
    ic.eval = ro;
    train::impression_trainer<float> tr(d, ic);
    index_t pairs = 0;
    for (index_t l = 0; l < d.train.size(); ++l)
      pairs += std::min<index_t>(d.train.n_pos(l), ic.train_max_pos) * std::min<index_t>(d.train.n_neg(l), ic.train_max_neg);
    return drive(tr, pairs, 0.0);
  }
  if (exposure) {
    using exp_trainer = train::trainer<float, sampling::exposure_sampler>;
    sampling::exposure_sampler sampler(d);
    const double uf = sampler.uniform_fraction(*o.num_neg);
    std::printf("exposure candidates: %.2f negatives per training pair on average; %.1f%% of the K = %ld slots are "
                "topped up uniformly\n", sampler.mean_pool(), 100 * uf, *o.num_neg);
    exp_trainer tr(d.base, ms.cfg, std::move(sampler));
    train::impression_run<exp_trainer> run(tr, d, ro);
    return drive(run, d.base.train.nnz(), uf);
  }
  train::trainer<float> tr(d.base, ms.cfg);
  train::impression_run<train::trainer<float>> run(tr, d, ro);
  return drive(run, d.base.train.nnz(), 1.0);
}

}  // namespace

int main(int argc, char** argv) {
  ans::core::use_passive_wait(argv);  // OMP_WAIT_POLICY=passive unless set (see the header)
  options o;
#if ANS_WITH_MPI
  // Open MPI's own transport choice stands: its shared-memory default copies a large message once
  // (process_vm_readv, CMA). Its copy-in/out path (btl_vader_single_copy_mechanism=none), which ans-train used
  // to force, was behind in 9 of 13 interleaved rounds, MF and LightGCN (docs/distributed.md, "The transport").
  // OpenMP threads run beside MPI, and only the main thread calls it: MPI_THREAD_FUNNELED
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  struct finalize {
    ~finalize() { MPI_Finalize(); }
  } fin;  // destroyed after comm, which frees its duplicate of MPI_COMM_WORLD first
  ans::dist::communicator comm(MPI_COMM_WORLD);
  g_comm = &comm;
  if (provided < MPI_THREAD_FUNNELED && comm.rank() == 0)
    std::fprintf(stderr, "ans-train: this MPI does not provide MPI_THREAD_FUNNELED: run one thread per rank (--num_workers 1)\n");
  if (comm.rank() != 0) {  // one voice: the other ranks train silently and write nothing
    if (!std::freopen("/dev/null", "w", stdout)) return 1;
  }
#endif
  try {
    o = parse(argc, argv);
#if ANS_WITH_MPI
    if (comm.rank() != 0) o.json.clear(), o.log.clear(), o.save.clear();
#endif
    return o.impression ? run_impression(o) : run(o);
  } catch (const help_request&) {
    std::fputs(kUsage, stdout);
    return 0;
  } catch (const usage_error& e) {
    std::fprintf(stderr, "ans-train: %s\n", e.msg.c_str());
    return end_all(2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ans-train: %s\n", e.what());
    return end_all(1);
  }
}
