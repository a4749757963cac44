/// @file callbacks.hpp
/// @brief Trainer callbacks: early stopping on a validation metric, a progress display, a JSON-lines log,
/// and process statistics (peak resident memory).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ans/config.hpp"

namespace ans::train {

/// Peak resident set size of this process in MiB (VmHWM from /proc/self/status; 0 when unavailable).
inline double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream is(line.substr(6));
      double kb = 0;
      is >> kb;
      return kb / 1024.0;
    }
  }
  return 0.0;
}

/// When early stopping ends a run (higher metric values are better):
/// - `patience`: after `patience` evaluations without a new best;
/// - `rechorus`: ReChorus's `BaseRunner.eval_termination` as of commit 1312ed8 (2022-08, the code that
///   produced its published `log/exp.csv`): after more than 20 evaluations when the last `patience` values
///   are non-increasing, or when more than 20 evaluations passed since the best one;
/// - `rechorus_head`: the same function in later ReChorus (2024 on), where both 20s became `patience`.
enum class stop_rule { patience, rechorus, rechorus_head };

/// Whether a larger or a smaller metric is better (Recall, NDCG: maximize; a validation loss: minimize).
enum class direction { maximize, minimize };

/// Early stopping on a validation metric. `patience <= 0` never stops. Ties are not a new best. With
/// direction::minimize every rule reads "better" as "smaller" (the values are compared negated).
class early_stopping {
 public:
  explicit early_stopping(int patience = 10, stop_rule rule = stop_rule::patience, direction dir = direction::maximize)
      : patience_(patience), rule_(rule), sign_(dir == direction::maximize ? 1.0 : -1.0) {}
  /// Records the metric of `epoch`; returns true when this is a new best.
  bool update(int epoch, double metric) {
    ANS_CHECK(std::isfinite(metric), "early stopping: metric of epoch " << epoch << " is not finite");
    const double value = sign_ * metric;  // larger is better from here on
    history_.push_back(value);
    if (best_epoch_ < 0 || value > best_) {
      best_ = value;
      best_epoch_ = epoch;
      best_index_ = static_cast<int>(history_.size()) - 1;
      bad_ = 0;
      return true;
    }
    ++bad_;
    return false;
  }
  bool should_stop() const {
    if (patience_ <= 0) return false;
    if (rule_ == stop_rule::patience) return bad_ >= patience_;
    const int n = static_cast<int>(history_.size());
    const int horizon = rule_ == stop_rule::rechorus ? 20 : patience_;
    if (n > horizon) {  // utils.non_increasing(criterion[-early_stop:])
      bool non_increasing = true;
      for (int i = n - patience_ + 1; i < n; ++i) non_increasing = non_increasing && history_[i] <= history_[i - 1];
      if (non_increasing) return true;
    }
    return n - best_index_ > horizon;
  }
  int best_epoch() const { return best_epoch_; }
  double best() const { return sign_ * best_; }  ///< the best metric as recorded

 private:
  int patience_;
  stop_rule rule_;
  double sign_ = 1.0;
  int bad_ = 0;
  int best_epoch_ = -1, best_index_ = -1;
  double best_ = 0;
  std::vector<double> history_;
};

/// Progress display: a bar redrawn in place (epoch, batch, loss, samples/s, ETA) when stdout is a
/// terminal, and one plain line per epoch otherwise. `quiet` silences it.
class progress {
 public:
  explicit progress(bool quiet = false) : quiet_(quiet), tty_(isatty(fileno(stdout)) != 0) {}

  void start_epoch(int epoch, index_t n_batches) {
    epoch_ = epoch;
    n_batches_ = n_batches;
    t0_ = clock::now();
  }
  /// Called after each batch with the running mean loss and the samples processed so far this epoch.
  void batch(index_t b, double loss, index_t samples) {
    if (quiet_ || !tty_) return;
    const double s = seconds();
    const double rate = s > 0 ? samples / s : 0.0;
    const double eta = b + 1 > 0 ? s / double(b + 1) * double(n_batches_ - b - 1) : 0.0;
    const int width = 30;
    const int done = n_batches_ > 0 ? int(width * double(b + 1) / double(n_batches_)) : width;
    std::printf("\repoch %3d [%.*s%*s] %lld/%lld loss %.5f %.0f samples/s ETA %.1fs ", epoch_, done,
                "##############################", width - done, "", (long long)(b + 1),
                (long long)n_batches_, loss, rate, eta);
    std::fflush(stdout);
  }
  /// Ends the epoch line; `extra` is appended (validation metrics).
  void end_epoch(double loss, index_t samples, const std::string& extra) {
    if (quiet_) return;
    const double s = seconds();
    if (tty_) std::printf("\r%*s\r", 110, "");
    std::printf("epoch %3d loss %.6f %.1fs %.0f samples/s%s%s\n", epoch_, loss, s, s > 0 ? samples / s : 0.0,
                extra.empty() ? "" : " ", extra.c_str());
    std::fflush(stdout);
  }
  double seconds() const { return std::chrono::duration<double>(clock::now() - t0_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  bool quiet_, tty_;
  int epoch_ = 0;
  index_t n_batches_ = 0;
  clock::time_point t0_ = clock::now();
};

/// Appends one JSON object per line to a file (flushed per record, so a crash loses at most one line).
class json_lines_log {
 public:
  json_lines_log() = default;
  explicit json_lines_log(const std::string& path) { open(path); }
  void open(const std::string& path) {
    out_.open(path, std::ios::app);
    ANS_CHECK(out_.good(), "cannot open log file '" << path << "' for writing");
  }
  bool is_open() const { return out_.is_open(); }
  /// Writes `{"epoch": e, "<k>": v, ...}`.
  void write(int epoch, const std::map<std::string, double>& fields) {
    if (!out_.is_open()) return;
    out_ << "{\"epoch\": " << epoch;
    for (const auto& [k, v] : fields) {
      out_ << ", \"" << k << "\": ";
      if (std::isfinite(v)) out_ << v; else out_ << "null";
    }
    out_ << "}\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

}  // namespace ans::train
