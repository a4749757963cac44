/// @file wait_policy.hpp
/// @brief Passive OpenMP waiting for a program's process (`ans-train` calls it first thing in main).
///
/// libgomp's default lets a thread that reaches a barrier first spin for a while (GOMP_SPINCOUNT, 300 000
/// iterations) before it sleeps. On a machine that is doing other work, the peer it waits for is often the
/// one that was descheduled, and the spinning thread holds the core that peer needs: measured on the 2-core
/// development machine, an MF BPR epoch (lazy Adam, Gowalla) took 6.4 s with 2 threads beside a niced
/// 2-thread process against 0.84 s with OMP_WAIT_POLICY=passive (and 0.77 s with 1 thread); see
/// docs/performance.md. libgomp reads the policy once, when it is loaded, so a process can only change it by
/// starting again: `use_passive_wait(argv)` sets OMP_WAIT_POLICY=passive and re-executes the program
/// (/proc/self/exe, same arguments) when the variable is unset. A value the user set is kept (`active`
/// restores spinning). Without OpenMP, or when the re-execution fails, it returns and nothing changes.
#pragma once

#include <cstdlib>

#if defined(__linux__)
#include <unistd.h>
#endif

namespace ans::core {

/// Re-executes the program with OMP_WAIT_POLICY=passive unless the variable is already set. Call it before
/// anything else in main (before any OpenMP region and before any output).
inline void use_passive_wait(char** argv) {
#if defined(__linux__) && defined(_OPENMP)
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (std::getenv("ANS_WAIT_POLICY_REEXEC") != nullptr) return;  // a second pass: never loop
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::setenv("ANS_WAIT_POLICY_REEXEC", "1", 1);
  ::execv("/proc/self/exe", argv);
  // exec failed: continue with the policy libgomp already read
  ::unsetenv("OMP_WAIT_POLICY");
#else
  (void)argv;
#endif
}

}  // namespace ans::core
