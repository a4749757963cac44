// A downstream program: includes the umbrella header and uses a few components.
#include <ans/ans.hpp>

#include <iostream>

int main() {
  auto m = ans::data::from_pairs(2, 3, {{0, 1}, {1, 2}, {0, 1}});
  std::cout << "ans " << ans::version_string << ": " << m.nnz() << " interactions, "
            << m.merged_duplicates() << " merged, threads " << ans::max_threads() << "\n";
  return m.nnz() == 2 ? 0 : 1;
}
