// Public building blocks of issue 14: the embedding table (gather, duplicate-safe scatter, touched rows) and
// the parameter group (named tensors, one optimiser step, zeroing, flat view, .npy save/load).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ans/model/embedding_table.hpp"
#include "ans/optim/param_group.hpp"
#include "ans/optim/sparse_adam.hpp"
#include "helpers.hpp"

using namespace ans_test;

TEST_CASE("embedding_table: gather, scatter with repeated ids, FD gradient, touched rows",
          "[components][building_blocks]") {
  std::mt19937_64 rng(21);
  const index_t rows = 7, d = 3;
  ans::model::embedding_table<double> table(rows, d);
  table.weights() = randn(rows, d, rng);
  const std::vector<std::int32_t> ids{4, 1, 4, 6, 4, 0};  // 4 three times; 2, 3, 5 untouched
  const index_t n = static_cast<index_t>(ids.size());
  const mat C = randn(n, d, rng);
  mat out(n, d);
  auto f = [&] {
    table.gather(ids.data(), n, out);
    return (C.array() * out.array()).sum();
  };
  f();
  for (index_t j = 0; j < n; ++j) CHECK(out.row(j) == table.weights().row(ids[j]));
  table.scatter_add(ids.data(), n, C);  // ∂f/∂W = scatter(C)
  std::vector<ans::testing::param_block> blocks{
      {"W", table.weights().data(), table.weights().size(), table.grad().data()}};
  const auto rep = ans::testing::check_gradient(f, blocks);
  INFO(rep.summary());
  CHECK(rep.global_rel_error < 1e-8);
  for (index_t r : {2, 3, 5}) CHECK(table.grad().row(r).isZero(0.0));  // exactly zero
  CHECK(table.grad().row(4) == C.row(0) + C.row(2) + C.row(4));
  CHECK(table.touched() == std::vector<index_t>{0, 1, 4, 6});

  // the touched rows feed a row-sparse optimiser, which needs distinct rows
  ans::optim::sparse_adam<double> opt(rows, d);
  const mat before = table.weights();
  opt.step_table(table.weights().data(), table.touched().data(), table.grad().data(),
                 static_cast<index_t>(table.touched().size()));
  table.clear_touched();
  CHECK(table.touched().empty());
  CHECK(table.grad().isZero(0.0));  // step_table read the gradient rows once and cleared them
  CHECK(table.weights().row(2) == before.row(2));
  CHECK(table.weights().row(4) != before.row(4));

  // bad input: an id outside the table, a wrongly shaped buffer
  const std::vector<std::int64_t> bad{0, 7};
  mat two(2, d);
  CHECK_THROWS_WITH(table.gather(bad.data(), 2, two), Catch::Contains("id 7 at position 1 outside [0, 7)"));
  CHECK_THROWS_WITH(table.scatter_add(ids.data(), n, mat(n, d + 1)),
                    Catch::Contains("embedding_table::scatter_add: dout has shape 6x4, expected 6x3"));
}

TEST_CASE("param_group: the ANS parameters as one group, one Adam step, flat view, save and load",
          "[components][building_blocks]") {
  const index_t d = 4;
  auto params = ans::model::ans_params<double>::init(d, ans::mode::faithful, 3);
  auto grads = ans::model::ans_params<double>::zeros(d);
  auto group = ans::model::ans_param_group(params, grads);
  REQUIRE(group.tensors().size() == 6);
  CHECK(group.size() == 2 * d * d + 3 * d + 1);
  CHECK(group.tensors()[0].shape == std::vector<index_t>{d, d});
  CHECK(group.tensors()[5].shape == std::vector<index_t>{1});

  std::mt19937_64 rng(8);
  const ans::vector<double> g = randv(group.size(), rng);
  index_t o = 0;  // fill the gradients through the tensors' pointers
  for (auto& t : group.tensors())
    for (index_t i = 0; i < t.size; ++i) t.grad[i] = g[o++];
  CHECK(group.flat_grads() == g);

  // group_adam is the trainer's one-Adam-per-block step, bit for bit
  auto p2 = params;
  auto g2 = grads;
  std::vector<ans::optim::adam<double>> per_block;
  for (const auto& t : group.tensors()) per_block.emplace_back(t.size);
  ans::optim::group_adam<double> opt(group);
  opt.step();
  auto group2 = ans::model::ans_param_group(p2, g2);
  for (size_t i = 0; i < 6; ++i) per_block[i].step(group2.tensors()[i].data, group2.tensors()[i].grad);
  CHECK(group.flat_values() == group2.flat_values());
  CHECK(group.flat_grads().isZero(0.0));  // the step zeroed the gradients
  group2.zero_grad();
  CHECK(group2.flat_grads().isZero(0.0));

  // save, perturb, load: the values come back; a shape mismatch names the file
  char tmpl[] = "/tmp/ans_param_group_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  group.save(dir, "p_");
  const ans::vector<double> saved = group.flat_values();
  group.set_flat_values(ans::vector<double>::Zero(group.size()));
  CHECK(params.W_u.isZero(0.0));
  group.load(dir, "p_");
  CHECK(group.flat_values() == saved);
  auto small = ans::model::ans_params<double>::zeros(d - 1), small_g = small;
  auto other = ans::model::ans_param_group(small, small_g);
  CHECK_THROWS_WITH(other.load(dir, "p_"), Catch::Contains("p_W_u.npy: shape (4, 4), expected (3, 3)"));
  CHECK_THROWS_WITH(group.set_flat_values(ans::vector<double>(3)), Catch::Contains("3 values for a group of"));
  for (const auto& t : group.tensors()) std::remove((dir + "/p_" + t.name + ".npy").c_str());
  std::remove(dir.c_str());
}
