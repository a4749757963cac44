/// @file fit.hpp
/// @brief The epoch loop of a trainer with callbacks: `fit(trainer, epochs, callbacks...)`.
///
/// A *callback* is any object with any subset of these members (each detected at compile time; a callback
/// with none of them is a compile error, so a misspelt member does not pass silently):
/// @code
///   void on_epoch_begin(Trainer& t, int epoch);
///   void on_batch_end(Trainer& t, int epoch, index_t batch, double mean_loss, index_t samples);
///   void on_epoch_end(Trainer& t, int epoch, double loss);
///   bool should_stop() const;          // asked after every on_epoch_end; true ends the run
/// @endcode
/// Epochs are 0-based; fit resumes at t.epochs_done() (after trainer::load). Built-in: `evaluation`
/// (evaluate every N epochs, early stopping with a direction, a checkpoint at every new best) and
/// `progress_callback` (the progress bar of callbacks.hpp).
#pragma once

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
template <class C, class = void>
struct has_should_stop : std::false_type {};
template <class C>
struct has_should_stop<C, std::void_t<decltype(bool(std::declval<const C&>().should_stop()))>> : std::true_type {};
}  // namespace detail

/// True when C has at least one of the callback members for trainer type T.
template <class C, class T>
inline constexpr bool is_callback_v = detail::has_epoch_begin<C, T>::value || detail::has_batch_end<C, T>::value ||
                                      detail::has_epoch_end<C, T>::value || detail::has_should_stop<C>::value;

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
                "fit: every callback needs at least one of on_epoch_begin(Trainer&, int), "
                "on_batch_end(Trainer&, int, index_t, double, index_t), on_epoch_end(Trainer&, int, double), "
                "bool should_stop() const (ans/train/fit.hpp)");
  fit_result r;
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
  return r;
}

/// Evaluation callback: every `every` epochs (and after the last), t.evaluate(target, protocol); early
/// stopping on `metric` in the given direction; at each new best, an optional checkpoint (t.save(save_dir))
/// and a copy of the metrics (best_metrics()).
template <class Trainer>
class evaluation {
 public:
  using protocol_t = typename Trainer::protocol;
  evaluation(std::string target, std::string metric, int every = 1, int patience = 10,
             direction dir = direction::maximize, protocol_t p = protocol_t::full, std::string save_dir = "")
      : target_(std::move(target)), metric_(std::move(metric)), every_(every), protocol_(p),
        save_dir_(std::move(save_dir)), stopper_(patience, stop_rule::patience, dir) {
    ANS_CHECK(every >= 1, "evaluation: every must be >= 1, got " << every);
  }

  void on_epoch_end(Trainer& t, int epoch, double) {
    if ((epoch + 1) % every_ != 0) return;
    last_ = t.evaluate(target_, protocol_);
    const auto it = last_.find(metric_);
    ANS_CHECK(it != last_.end(), "evaluation: metric '" << metric_ << "' is not computed (configure topk and metrics)");
    if (stopper_.update(epoch + 1, it->second)) {
      best_ = last_;
      if (!save_dir_.empty()) t.save(save_dir_);
    }
  }
  bool should_stop() const { return stopper_.should_stop(); }

  const std::map<std::string, double>& last_metrics() const { return last_; }
  const std::map<std::string, double>& best_metrics() const { return best_; }
  int best_epoch() const { return stopper_.best_epoch(); }  ///< 1-based epoch of the best value (-1: none yet)

 private:
  std::string target_, metric_;
  int every_;
  protocol_t protocol_;
  std::string save_dir_;
  early_stopping stopper_;
  std::map<std::string, double> last_, best_;
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
