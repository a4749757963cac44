/// @file ans_stats.cpp
/// @brief `ans-stats [PATH | --synthetic] [--json] [--set-aside-unseen]`: loads a dataset (format detected from
/// the path) or generates the default synthetic one, and prints one JSON object with its summary.
///
/// Exit codes: 0 success, 1 load error (message from the exception on stderr), 2 bad usage.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "ans/data/detect.hpp"
#include "ans/data/synthetic.hpp"

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

int usage(const std::string& why) {
  std::cerr << "ans-stats: " << why
            << " (usage: ans-stats [PATH | --synthetic] [--json] [--set-aside-unseen])\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  bool synthetic = false;
  ans::data::load_options opt;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--json") continue;  // JSON is the only output format
    if (arg == "--synthetic") synthetic = true;
    else if (arg == "--set-aside-unseen") opt.unseen = ans::data::unseen_policy::set_aside;
    else if (arg == "-h" || arg == "--help") return usage("help requested");
    else if (!arg.empty() && arg[0] == '-') return usage("unknown option " + arg);
    else if (!path.empty()) return usage("more than one PATH");
    else path = arg;
  }
  if (synthetic && !path.empty()) return usage("give either PATH or --synthetic, not both");
  if (path.empty()) synthetic = true;

  ans::data::dataset d;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    d = synthetic ? ans::data::generate_synthetic() : ans::data::load_any(path, opt);
  } catch (const std::exception& e) {
    std::cerr << "ans-stats: " << e.what() << "\n";
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& r = d.report;
  const int n_neg = d.test_candidates ? d.test_candidates->n_neg : (d.dev_candidates ? d.dev_candidates->n_neg : 0);
  std::string split = r.has_split ? (synthetic ? "generated" : "given") : "no split";
  char secbuf[32];
  std::snprintf(secbuf, sizeof secbuf, "%.3f", secs);
  std::cout << "{\"format\": " << json_string(d.format) << ", \"name\": " << json_string(d.name)
            << ", \"users\": " << d.n_users() << ", \"items\": " << d.n_items()
            << ", \"train\": " << d.train.nnz() << ", \"dev\": " << d.dev.nnz() << ", \"test\": " << d.test.nnz()
            << ", \"split\": " << json_string(split)
            << ", \"dev_rows\": " << (d.dev_candidates ? d.dev_candidates->rows() : 0)
            << ", \"test_rows\": " << (d.test_candidates ? d.test_candidates->rows() : 0)
            << ", \"merged_duplicates\": " << r.merged_duplicates()
            << ", \"set_aside\": {\"dev_unseen_item\": " << r.set_aside_item_dev
            << ", \"dev_unseen_user\": " << r.set_aside_user_dev << ", \"test_unseen_item\": " << r.set_aside_item_test
            << ", \"test_unseen_user\": " << r.set_aside_user_test << "}"
            << ", \"unseen_in_train\": {\"dev_item\": " << r.unseen_item_dev << ", \"dev_user\": " << r.unseen_user_dev
            << ", \"test_item\": " << r.unseen_item_test << ", \"test_user\": " << r.unseen_user_test << "}"
            << ", \"users_without_train\": " << r.users_without_train
            << ", \"users_without_test\": " << r.users_without_test << ", \"fixed_negatives\": " << n_neg
            << ", \"lines_read\": " << r.lines_read << ", \"load_seconds\": " << secbuf << "}" << std::endl;
  return 0;
}
