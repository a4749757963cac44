/// @file param_group.hpp
/// @brief A group of named parameter tensors with their gradients, and Adam over the whole group.
///
/// What a training loop otherwise writes by hand for every model: the list of (name, value, gradient,
/// shape) blocks, zeroing the gradients, one optimiser step over all of them, flattening them into one vector
/// (for a gradient check or a user's optimiser) and saving/loading them as one .npy file per tensor.
/// `model::ans_param_group(params, grads)` builds the group of the six ANS gate and margin blocks.
///
/// group_adam keeps one dense Adam state per tensor; Adam is element-wise, so this is the same update as one
/// Adam over the concatenated vector, and bit-identical to one optim::adam per block (the trainer's layout).
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ans/io/npy.hpp"
#include "ans/optim/adam.hpp"
#include "ans/types.hpp"

namespace ans::optim {

template <class Scalar>
class param_group {
 public:
  /// One tensor: `size` values at `data` with their gradient at `grad` (C order, `shape`).
  struct tensor {
    std::string name;
    Scalar* data = nullptr;
    Scalar* grad = nullptr;
    std::vector<index_t> shape;
    index_t size = 0;
  };

  /// Adds a tensor given by pointers. The group keeps the addresses: the storage must outlive it.
  param_group& add(std::string name, Scalar* data, Scalar* grad, std::vector<index_t> shape) {
    ANS_CHECK(data && grad, "param_group::add: '" << name << "' has a null value or gradient");
    for (const auto& t : tensors_) ANS_CHECK(t.name != name, "param_group::add: duplicate tensor name '" << name << "'");
    index_t n = 1;
    for (index_t s : shape) {
      ANS_CHECK(s >= 0, "param_group::add: '" << name << "' has a negative extent");
      n *= s;
    }
    tensors_.push_back({std::move(name), data, grad, std::move(shape), n});
    total_ += n;
    return *this;
  }
  /// Adds an Eigen matrix or vector and its gradient (same shape, checked); a matrix keeps its row-major
  /// [rows, cols] shape, a vector [size].
  template <class M, class = std::enable_if_t<!std::is_arithmetic_v<M>>>
  param_group& add(std::string name, M& value, M& grad) {
    ANS_CHECK(value.rows() == grad.rows() && value.cols() == grad.cols(),
              "param_group::add: '" << name << "' is " << value.rows() << "x" << value.cols() << ", its gradient "
                                    << grad.rows() << "x" << grad.cols());
    std::vector<index_t> shape = M::ColsAtCompileTime == 1 ? std::vector<index_t>{value.rows()}
                                                           : std::vector<index_t>{value.rows(), value.cols()};
    return add(std::move(name), value.data(), grad.data(), std::move(shape));
  }
  /// Adds one scalar parameter and its gradient (shape [1]).
  param_group& add(std::string name, Scalar& value, Scalar& grad) { return add(std::move(name), &value, &grad, {1}); }
  // The group keeps addresses: temporaries do not compile.
  template <class M>
  param_group& add(std::string, const M&&, M&) = delete;
  template <class M>
  param_group& add(std::string, M&, const M&&) = delete;

  const std::vector<tensor>& tensors() const { return tensors_; }
  /// Total number of values over the tensors.
  index_t size() const { return total_; }

  /// Sets every gradient to zero.
  void zero_grad() {
    for (auto& t : tensors_) std::fill(t.grad, t.grad + t.size, Scalar(0));
  }
  /// The values (or the gradients) as one vector, tensors in the order they were added (a copy).
  vector<Scalar> flat_values() const { return flatten(false); }
  vector<Scalar> flat_grads() const { return flatten(true); }
  /// Writes a vector of size() values back into the tensors (the inverse of flat_values).
  void set_flat_values(const vector<Scalar>& v) {
    ANS_CHECK(v.size() == total_, "param_group::set_flat_values: " << v.size() << " values for a group of " << total_);
    index_t o = 0;
    for (auto& t : tensors_) std::copy(v.data() + o, v.data() + o + t.size, t.data), o += t.size;
  }

  /// Writes `dir/<prefix><name>.npy` for every tensor (atomically, io::write_npy); `dir` must exist.
  void save(const std::string& dir, const std::string& prefix = "") const {
    for (const auto& t : tensors_) io::write_npy(dir + "/" + prefix + t.name + ".npy", t.shape, t.data);
  }
  /// Reads the files save() wrote; a missing file or a shape that differs from the tensor's is an error
  /// naming the file.
  void load(const std::string& dir, const std::string& prefix = "") {
    for (auto& t : tensors_) {
      const std::string path = dir + "/" + prefix + t.name + ".npy";
      const io::npy_array a = io::read_npy(path);
      ANS_CHECK(a.shape == t.shape, path << ": shape " << shape_str(a.shape) << ", expected " << shape_str(t.shape));
      const auto v = a.as_double();
      for (index_t i = 0; i < t.size; ++i) t.data[i] = static_cast<Scalar>(v[static_cast<size_t>(i)]);
    }
  }

 private:
  vector<Scalar> flatten(bool grads) const {
    vector<Scalar> v(total_);
    index_t o = 0;
    for (const auto& t : tensors_) {
      const Scalar* src = grads ? t.grad : t.data;
      std::copy(src, src + t.size, v.data() + o), o += t.size;
    }
    return v;
  }
  static std::string shape_str(const std::vector<index_t>& s) {
    std::string out = "(";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + ")";
  }

  std::vector<tensor> tensors_;
  index_t total_ = 0;
};

/// Dense Adam over every tensor of a group: step() updates all of them and zeroes their gradients.
template <class Scalar>
class group_adam {
 public:
  /// The group's tensors are fixed from here on (the optimiser sizes one state per tensor).
  group_adam(param_group<Scalar>& group, adam_options o = {}) : group_(&group) {
    for (const auto& t : group.tensors()) state_.emplace_back(t.size, o);
  }
  group_adam(param_group<Scalar>&&, adam_options = {}) = delete;  ///< it keeps the group's address

  /// One Adam step on every tensor, then its gradient is set to zero.
  void step() {
    const auto& ts = group_->tensors();
    ANS_CHECK(ts.size() == state_.size(), "group_adam: the group changed after the optimiser was built ("
                                              << ts.size() << " tensors, " << state_.size() << " states)");
    for (size_t i = 0; i < ts.size(); ++i) state_[i].step_and_clear(ts[i].data, ts[i].grad);
  }
  /// Optimiser state for checkpoints (moments and step counts per tensor, named "<tensor>_<array>").
  state_view<Scalar> state() {
    state_view<Scalar> out;
    const auto& ts = group_->tensors();
    for (size_t i = 0; i < state_.size(); ++i) {
      auto s = state_[i].state();
      for (auto& a : s.arrays) out.arrays.push_back({ts[i].name + "_" + a.name, a.data, a.size});
      for (auto& c : s.counters) out.counters.push_back({ts[i].name + "_" + c.name, c.data, c.size});
    }
    return out;
  }

 private:
  param_group<Scalar>* group_;
  std::vector<adam<Scalar>> state_;
};

}  // namespace ans::optim
