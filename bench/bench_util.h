// Shared by the benchmarks: a reporter that keeps each benchmark's CPU time, and cold-process
// timing for comparisons against command-line peers.
#ifndef BENCH_BENCH_UTIL_H_
#define BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"

namespace attest::bench {

// Prints the usual table and keeps each benchmark's CPU time per iteration (in its time unit).
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) times_[r.run_name.function_name] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
  double time(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> times_;
};

// Mean wall time, in milliseconds, of running argv `runs` times as cold processes (after warming
// the page cache); -1 if a run exits with another code than `expect_exit`.
inline double ProcessMillis(const std::vector<std::string>& argv, int runs, int expect_exit) {
  for (int i = 0; i < 3; ++i) testing::RunProcess(argv);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) {
    auto r = testing::RunProcess(argv);
    if (r.exit_code != expect_exit) {
      std::fprintf(stderr, "process %s exited %d: %s\n", argv[0].c_str(), r.exit_code,
                   r.err.c_str());
      return -1;
    }
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
             .count() /
         runs;
}

}  // namespace attest::bench

#endif  // BENCH_BENCH_UTIL_H_
