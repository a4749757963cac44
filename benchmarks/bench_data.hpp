// Shared by the benchmark suites: the Gowalla dataset from $ANS_DATA_DIR/gowalla, or, when it is absent, a
// synthetic dataset of similar size (30 000 users, 40 000 items, ~27 train items per user). Loaded once.
#pragma once

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "ans/data/detect.hpp"
#include "ans/data/synthetic.hpp"

namespace bench {

inline const ans::data::dataset& gowalla_or_synthetic() {
  static std::unique_ptr<ans::data::dataset> ds;
  if (!ds) {
    const char* dir = std::getenv("ANS_DATA_DIR");
    const std::string path = dir ? std::string(dir) + "/gowalla" : "";
    try {
      ds = std::make_unique<ans::data::dataset>(ans::data::load_any(path));
      std::cerr << "data: Gowalla (" << ds->train.n_users << " users, " << ds->train.n_items << " items, "
                << ds->train.nnz() << " train / " << ds->test.nnz() << " test)\n";
    } catch (const std::exception& e) {
      ans::data::synthetic_config cfg;
      cfg.n_users = 30000;
      cfg.n_items = 40000;
      cfg.interactions_per_user = 27;
      ds = std::make_unique<ans::data::dataset>(ans::data::generate_synthetic(cfg));
      std::cerr << "data: synthetic, " << ds->train.nnz() << " train (Gowalla not found: " << e.what() << ")\n";
    }
  }
  return *ds;
}

}  // namespace bench
