// Row-parallel loops: rows split into contiguous ranges, one per thread, no shared output.
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace cnn {

// Threads used when a call does not say (set_num_threads; 0 = all cores).
unsigned default_threads();
void set_default_threads(unsigned n);

// Runs f(r0, r1) over [0, rows) in up to `threads` ranges (0 = default).  Ranges start on
// multiples of 4 rows, and no thread gets less than `min_work` units of `work_per_row`,
// so small products stay on the calling thread.
template <class F>
void parallel_rows(uint64_t rows, unsigned threads, double work_per_row, F&& f) {
  constexpr double kMinWork = 1 << 17;
  if (rows == 0) return;  // kernels allocate row scratch; an empty product needs none
  uint64_t n = threads ? threads : default_threads();
  uint64_t by_work = uint64_t(rows * work_per_row / kMinWork);
  n = std::max<uint64_t>(1, std::min({n, by_work, (rows + 3) / 4}));
  if (n == 1) {
    f(uint64_t(0), rows);
    return;
  }
  uint64_t chunk = ((rows + n - 1) / n + 3) / 4 * 4;
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(n);
  for (uint64_t t = 1; t < n; ++t) {
    uint64_t r0 = std::min(rows, t * chunk), r1 = std::min(rows, r0 + chunk);
    pool.emplace_back([&, t, r0, r1] {
      try {
        if (r0 < r1) f(r0, r1);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  try {
    f(uint64_t(0), std::min(rows, chunk));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace cnn
