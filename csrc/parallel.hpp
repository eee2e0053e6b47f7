// Row-parallel loops on a persistent pool of worker threads: rows split into contiguous
// ranges, one per thread, no shared output.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace cnn {

// Threads used when a call does not say (set_num_threads; 0 = all cores).
unsigned default_threads();
void set_default_threads(unsigned n);

// Calls task(t) for t in [0, n): t = 0 on the calling thread, the others on pool workers,
// and returns when all are done, rethrowing the first exception a task threw.  The pool
// starts workers the first time they are needed and keeps them; if the system refuses a
// new thread, or another caller is using the workers (concurrent products, or a product
// inside a task), the tasks run one after another on the calling thread instead.  Either
// way each task does the same work, so results do not depend on where it ran.
void run_tasks(unsigned n, const std::function<void(unsigned)>& task);

// Run tasks on the threads of the GNU OpenMP runtime `library` (a path), which must already
// be loaded (PyTorch's, so that products and PyTorch's operators share one set of threads);
// "" goes back to the pool.  False if the library is not loaded or is not libgomp.
bool use_openmp(const std::string& library);
bool using_openmp();

// The sum of p[0..n) on up to `threads` threads: blocks of 2^20 floats, each summed in 32
// independent lanes (enough chains that adds never wait on each other).  A read-bandwidth
// probe for the benchmarks.
double parallel_sum(const float* p, uint64_t n, unsigned threads);

// While one lives on a thread, parallel_rows there gives a thread at least 2^17 units
// (about 33 us) instead of 2^19: the runtime runs a model's steps back to back, so the pool's
// workers are still spinning from the last step and start within a microsecond, and in a
// process that runs a model there is no other pool to compete with.
class BackToBack {
 public:
  BackToBack() : was_(active_) { active_ = true; }
  ~BackToBack() { active_ = was_; }
  BackToBack(const BackToBack&) = delete;
  BackToBack& operator=(const BackToBack&) = delete;
  static bool active() { return active_; }

 private:
  bool was_;
  static thread_local bool active_;
};

// Runs f(r0, r1) over [0, rows) on up to `threads` threads (0 = default), no thread
// getting less than `kMinWork` units of `work_per_row` (a unit: about 0.25 ns of one core's
// time, as work.hpp estimates it per product), so small products stay on the calling
// thread.  The rows are cut into chunks (multiples of `align` rows, about 8 per thread)
// that threads take in turn as they become free: a thread slowed by other work on its core
// (another pool's spinning threads, a noisy neighbour) simply takes fewer.
template <class F>
void parallel_rows(uint64_t rows, unsigned threads, double work_per_row, F&& f,
                   uint64_t align = 4) {
  // A second thread pays off from a few tens of microseconds of work on a quiet machine.
  // But where another pool's threads spin on the same cores (PyTorch's OpenMP, OpenBLAS),
  // a worker of our own pool preempted in mid-chunk holds the product up for a scheduler
  // time slice, so there a thread gets at least 2^19 units (about 130 us).
  // On PyTorch's own OpenMP threads (use_openmp) no other pool competes, and 2^16 units
  // (about 16 us) suffice: ccexam's CNN at batch 1 took 1.26 -> 1.21 ms, the VGG-style one
  // 1.77 -> 1.57 ms (2026-12-04, 2 vCPUs, Zen 1).
  const double kMinWork = using_openmp() ? 1 << 16 : BackToBack::active() ? 1 << 17 : 1 << 19;
  constexpr uint64_t kChunksPerThread = 8;
  if (rows == 0) return;  // kernels allocate row scratch; an empty product needs none
  uint64_t n = threads ? threads : default_threads();
  uint64_t by_work = uint64_t(rows * work_per_row / kMinWork);
  n = std::max<uint64_t>(1, std::min({n, by_work, (rows + align - 1) / align}));
  if (n == 1) {
    f(uint64_t(0), rows);
    return;
  }
  uint64_t chunk = std::max<uint64_t>(
      {align, (rows + n * kChunksPerThread - 1) / (n * kChunksPerThread),
       uint64_t(kMinWork / 4 / std::max(work_per_row, 1.0))});
  chunk = (chunk + align - 1) / align * align;
  const uint64_t count = (rows + chunk - 1) / chunk;
  std::atomic<uint64_t> next{0};
  run_tasks(unsigned(n), [&](unsigned) {
    for (uint64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < count;)
      f(c * chunk, std::min(rows, (c + 1) * chunk));
  });
}

}  // namespace cnn
