/// @file fit.hpp
/// @brief The epoch loop of a trainer with callbacks: `fit(trainer, epochs, callbacks...)`.
///
/// A *callback* is any object with any subset of these members (each detected at compile time; a callback
/// with none of them is a compile error, so a misspelt member does not pass silently):
/// @code
///   void on_train_begin(Trainer& t, int epochs);  // once per fit(), before the first epoch; `epochs` = fit's
///   void on_epoch_begin(Trainer& t, int epoch);
///   void on_batch_end(Trainer& t, int epoch, index_t batch, double mean_loss, index_t samples);
///   void on_epoch_end(Trainer& t, int epoch, double loss);
///   bool should_stop() const;          // asked after every on_epoch_end; true ends the run
///   void on_train_end(Trainer& t);     // once per fit(), after the last epoch run (also after a stop)
/// @endcode
/// Epochs are 0-based; fit resumes at t.epochs_done() (after trainer::load). Built-in: `evaluation`
/// (evaluate every N epochs, early stopping with a direction, a checkpoint at every new best) and
/// `progress_callback` (the progress bar of callbacks.hpp).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ans/train/callbacks.hpp"

namespace ans::train {

namespace detail {
template <class C, class T, class = void>
struct has_epoch_begin : std::false_type {};
template <class C, class T>
struct has_epoch_begin<C, T, std::void_t<decltype(std::declval<C&>().on_epoch_begin(std::declval<T&>(), 0))>>
    : std::true_type {};
template <class C, class T, class = void>
struct has_batch_end : std::false_type {};
template <class C, class T>
struct has_batch_end<C, T,
                     std::void_t<decltype(std::declval<C&>().on_batch_end(std::declval<T&>(), 0, index_t{}, 0.0,
                                                                          index_t{}))>> : std::true_type {};
template <class C, class T, class = void>
struct has_epoch_end : std::false_type {};
template <class C, class T>
struct has_epoch_end<C, T, std::void_t<decltype(std::declval<C&>().on_epoch_end(std::declval<T&>(), 0, 0.0))>>
    : std::true_type {};
template <class C, class T, class = void>
struct has_train_begin : std::false_type {};
template <class C, class T>
struct has_train_begin<C, T, std::void_t<decltype(std::declval<C&>().on_train_begin(std::declval<T&>(), 0))>>
    : std::true_type {};
template <class C, class T, class = void>
struct has_train_end : std::false_type {};
template <class C, class T>
struct has_train_end<C, T, std::void_t<decltype(std::declval<C&>().on_train_end(std::declval<T&>()))>>
    : std::true_type {};
template <class C, class = void>
struct has_should_stop : std::false_type {};
template <class C>
struct has_should_stop<C, std::void_t<decltype(bool(std::declval<const C&>().should_stop()))>> : std::true_type {};
}  // namespace detail

/// True when C has at least one of the callback members for trainer type T.
template <class C, class T>
inline constexpr bool is_callback_v = detail::has_train_begin<C, T>::value || detail::has_epoch_begin<C, T>::value ||
                                      detail::has_batch_end<C, T>::value || detail::has_epoch_end<C, T>::value ||
                                      detail::has_should_stop<C>::value || detail::has_train_end<C, T>::value;

/// What fit() did.
struct fit_result {
  int epochs_run = 0;         ///< epochs trained by this call
  bool stopped_early = false; ///< a callback's should_stop() ended the run
  std::vector<double> loss;   ///< training loss per epoch of this call
};

/// Trains from t.epochs_done() up to `epochs` epochs, calling the callbacks in the order given.
template <class Trainer, class... Callbacks>
fit_result fit(Trainer& t, int epochs, Callbacks&... cbs) {
  static_assert((is_callback_v<Callbacks, Trainer> && ...),
                "fit: every callback needs at least one of on_train_begin(Trainer&, int), on_epoch_begin(Trainer&, int), "
                "on_batch_end(Trainer&, int, index_t, double, index_t), on_epoch_end(Trainer&, int, double), "
                "bool should_stop() const, on_train_end(Trainer&) (ans/train/fit.hpp)");
  fit_result r;
  auto train_begin = [&](auto& c) {
    if constexpr (detail::has_train_begin<std::decay_t<decltype(c)>, Trainer>::value) c.on_train_begin(t, epochs);
  };
  (train_begin(cbs), ...);
  for (int e = t.epochs_done(); e < epochs; ++e) {
    auto begin = [&](auto& c) {
      if constexpr (detail::has_epoch_begin<std::decay_t<decltype(c)>, Trainer>::value) c.on_epoch_begin(t, e);
    };
    (begin(cbs), ...);
    const double loss = t.train_epoch(e, [&](index_t b, double l, index_t s) {
      auto batch = [&](auto& c) {
        if constexpr (detail::has_batch_end<std::decay_t<decltype(c)>, Trainer>::value) c.on_batch_end(t, e, b, l, s);
      };
      (batch(cbs), ...);
    });
    r.loss.push_back(loss);
    ++r.epochs_run;
    auto end = [&](auto& c) {
      if constexpr (detail::has_epoch_end<std::decay_t<decltype(c)>, Trainer>::value) c.on_epoch_end(t, e, loss);
    };
    (end(cbs), ...);
    bool stop = false;
    auto ask = [&](auto& c) {
      if constexpr (detail::has_should_stop<std::decay_t<decltype(c)>>::value) stop = c.should_stop() || stop;
    };
    (ask(cbs), ...);
    if (stop) {
      r.stopped_early = true;
      break;
    }
  }
  auto train_end = [&](auto& c) {
    if constexpr (detail::has_train_end<std::decay_t<decltype(c)>, Trainer>::value) c.on_train_end(t);
  };
  (train_end(cbs), ...);
  return r;
}

/// What the evaluation callback does (evaluation_options).
struct evaluation_options {
  std::string target = "dev";     ///< the split the model is selected on ("dev"; "test" only when labelled so)
  std::string metric = "NDCG@20"; ///< the selection metric (a name t.evaluate returns, e.g. "Recall@20")
  int every = 1;                  ///< evaluate after every `every`-th epoch, and after the last epoch of fit()
  int patience = 10;              ///< early stopping (<= 0: never stop)
  stop_rule rule = stop_rule::patience;
  direction dir = direction::maximize;
  /// Also evaluated at every evaluation (e.g. "test"); best_report() is then its metrics at the epoch selected
  /// on `target` (the validation-selected test figure). Empty: none.
  std::string report;
  std::string save_dir;           ///< at every new best, t.save(save_dir) (empty: no checkpoint)
};

/// Evaluation callback: after every `every`-th epoch and after the last epoch of fit(), t.evaluate(target,
/// protocol) (and the `report` split); early stopping on `metric` in the given direction and rule; at each
/// new best, an optional checkpoint (t.save(save_dir)) and a copy of the metrics (best_metrics(),
/// best_report()).
template <class Trainer>
class evaluation {
 public:
  using protocol_t = typename Trainer::protocol;
  explicit evaluation(evaluation_options o, protocol_t p = protocol_t::full)
      : o_(std::move(o)), protocol_(p), stopper_(o_.patience, o_.rule, o_.dir) {
    ANS_CHECK(o_.every >= 1, "evaluation: every must be >= 1, got " << o_.every);
  }
  evaluation(std::string target, std::string metric, int every = 1, int patience = 10,
             direction dir = direction::maximize, protocol_t p = protocol_t::full, std::string save_dir = "")
      : evaluation(make(std::move(target), std::move(metric), every, patience, dir, std::move(save_dir)), p) {}

  void on_train_begin(Trainer&, int epochs) { epochs_ = epochs; }
  void on_epoch_end(Trainer& t, int epoch, double) {
    evaluated_ = false;
    if ((epoch + 1) % o_.every != 0 && epoch + 1 != epochs_) return;
    last_ = t.evaluate(o_.target, protocol_);
    if (!o_.report.empty()) last_report_ = o_.report == o_.target ? last_ : t.evaluate(o_.report, protocol_);
    const auto it = last_.find(o_.metric);
    ANS_CHECK(it != last_.end(), "evaluation: metric '" << o_.metric << "' is not computed (configure topk and metrics)");
    evaluated_ = true;
    improved_ = stopper_.update(epoch + 1, it->second);
    if (improved_) {
      best_ = last_;
      best_report_ = last_report_;
      if (!o_.save_dir.empty()) t.save(o_.save_dir);
    }
  }
  bool should_stop() const { return stopper_.should_stop(); }

  bool evaluated() const { return evaluated_; }  ///< the last epoch was evaluated
  bool improved() const { return evaluated_ && improved_; }  ///< ... and gave a new best
  const std::map<std::string, double>& last_metrics() const { return last_; }
  const std::map<std::string, double>& best_metrics() const { return best_; }
  const std::map<std::string, double>& last_report() const { return last_report_; }
  const std::map<std::string, double>& best_report() const { return best_report_; }
  int best_epoch() const { return stopper_.best_epoch(); }  ///< 1-based epoch of the best value (-1: none yet)
  const evaluation_options& options() const { return o_; }

 private:
  static evaluation_options make(std::string target, std::string metric, int every, int patience, direction dir,
                                 std::string save_dir) {
    evaluation_options o;
    o.target = std::move(target), o.metric = std::move(metric), o.every = every, o.patience = patience, o.dir = dir;
    o.save_dir = std::move(save_dir);
    return o;
  }

  evaluation_options o_;
  protocol_t protocol_;
  early_stopping stopper_;
  int epochs_ = 0;
  bool evaluated_ = false, improved_ = false;
  std::map<std::string, double> last_, best_, last_report_, best_report_;
};

/// Wall-clock seconds of each epoch's training (on_epoch_begin to on_epoch_end; put it first in fit()'s
/// callback list so that no other callback's on_epoch_end is timed).
class epoch_timer {
 public:
  template <class Trainer>
  void on_epoch_begin(Trainer&, int) {
    t0_ = std::chrono::steady_clock::now();
  }
  template <class Trainer>
  void on_epoch_end(Trainer&, int, double) {
    last_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    all_.push_back(last_);
  }
  double last_seconds() const { return last_; }
  const std::vector<double>& seconds() const { return all_; }

 private:
  std::chrono::steady_clock::time_point t0_{};
  double last_ = 0;
  std::vector<double> all_;
};

/// The progress display of callbacks.hpp as a fit() callback.
class progress_callback {
 public:
  explicit progress_callback(bool quiet = false) : bar_(quiet) {}
  template <class Trainer>
  void on_epoch_begin(Trainer& t, int epoch) {
    bar_.start_epoch(epoch + 1, t.batches_per_epoch());
  }
  template <class Trainer>
  void on_batch_end(Trainer&, int, index_t b, double loss, index_t samples) {
    bar_.batch(b, loss, samples);
    samples_ = samples;
  }
  template <class Trainer>
  void on_epoch_end(Trainer&, int, double loss) {
    bar_.end_epoch(loss, samples_, "");
  }

 private:
  progress bar_;
  index_t samples_ = 0;
};

}  // namespace ans::train
