#include "parallel.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cnn {

namespace {
std::atomic<unsigned> configured{0};

// Spins for up to `limit` until done() holds; false if it never did.  Waking a sleeping
// thread costs 100-200 us on a virtual machine, about a small product's whole time, so
// both sides wait actively for a moment before they block.
template <class Done>
bool spin(Done done, std::chrono::microseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
    if (i % 64 == 0 && std::chrono::steady_clock::now() > until) return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// The pool's state lives on the heap and is never freed: a forked child gets a fresh one
// (the parent's workers do not exist there), and at exit no destructor has to stop workers
// that may still be blocked.
struct Pool {
  static constexpr std::chrono::microseconds kSpin{100};
  std::mutex user;  // held by the one caller whose tasks the workers run
  std::mutex m;     // guards the sleeps below
  std::condition_variable wake, done;
  std::vector<std::thread>* workers = new std::vector<std::thread>;
  const std::function<void(unsigned)>* task = nullptr;
  std::vector<std::exception_ptr> errors;
  // The current job: its number (high 32 bits) and task count n (low 32), published after
  // task and errors are set.  One word, so that a worker sitting out a job (id >= n) cannot
  // pair that job's number with the next job's count while the caller moves on (with
  // separate fields it could run a task twice and leave `pending` wrapped: a hang).
  std::atomic<uint64_t> job{0};
  std::atomic<unsigned> pending{0};  // tasks of the job still running on workers

  void work(unsigned id) {  // worker `id` runs task(id) of every job with n > id
    uint64_t seen = 0;
    auto fresh = [&] { return job.load(std::memory_order_acquire) != seen; };
    for (;;) {
      if (!spin(fresh, kSpin)) {
        std::unique_lock<std::mutex> lock(m);
        wake.wait(lock, fresh);
      }
      seen = job.load(std::memory_order_acquire);
      // A job with id < n cannot end without this worker, so its task stays valid here.
      if (id >= uint32_t(seen)) continue;
      try {
        (*task)(id);
      } catch (...) {
        errors[id] = std::current_exception();
      }
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(m);
        done.notify_one();
      }
    }
  }

  // Workers 1..n-1 exist afterwards, or fewer if the system refused threads.
  unsigned grow(unsigned want) {
    while (workers->size() + 1 < want) {
      unsigned id = unsigned(workers->size()) + 1;
      try {
        workers->emplace_back([this, id] { work(id); });
      } catch (const std::system_error&) {
        break;
      }
    }
    return std::min<unsigned>(want, unsigned(workers->size()) + 1);
  }

  void run(unsigned count, const std::function<void(unsigned)>& t) {
    task = &t;
    errors.assign(count, nullptr);
    pending.store(count - 1, std::memory_order_relaxed);
    const uint64_t number = (job.load(std::memory_order_relaxed) >> 32) + 1;
    job.store(number << 32 | count, std::memory_order_release);
    { std::lock_guard<std::mutex> lock(m); }  // a worker between its check and its sleep
    wake.notify_all();                        // is now asleep and gets this
    std::exception_ptr first;
    try {
      t(0);
    } catch (...) {
      first = std::current_exception();
    }
    auto finished = [&] { return pending.load(std::memory_order_acquire) == 0; };
    if (!spin(finished, kSpin)) {
      std::unique_lock<std::mutex> lock(m);
      done.wait(lock, finished);
    }
    for (auto& e : errors)
      if (e && !first) first = e;
    if (first) std::rethrow_exception(first);
  }
};

Pool* pool = new Pool;

// An OpenMP runtime already loaded in the process (PyTorch's libgomp), whose threads run our
// tasks instead of the pool's: one set of threads per core, not two competing sets.
struct OpenMP {
  void (*parallel)(void (*)(void*), void*, unsigned, unsigned);  // GOMP_parallel
  int (*thread_num)();
  int (*num_threads)();
};
std::atomic<const OpenMP*> openmp{nullptr};

void fresh_pool_in_child() {  // the parent's pool is abandoned, not freed
  pool = new Pool;
  openmp.store(nullptr);  // libgomp's threads do not survive fork either
}

struct OpenMPJob {
  const OpenMP* omp;
  const std::function<void(unsigned)>* task;
  unsigned n;
  std::vector<std::exception_ptr> errors;
};

void openmp_body(void* p) {
  auto& job = *static_cast<OpenMPJob*>(p);
  const unsigned team = unsigned(std::max(1, job.omp->num_threads()));
  for (unsigned t = unsigned(job.omp->thread_num()); t < job.n; t += team) {
    try {
      (*job.task)(t);
    } catch (...) {
      job.errors[t] = std::current_exception();
    }
  }
}

const bool at_fork_registered = pthread_atfork(nullptr, nullptr, fresh_pool_in_child) == 0;

void run_serially(unsigned n, const std::function<void(unsigned)>& task) {
  for (unsigned t = 0; t < n; ++t) task(t);
}
}  // namespace

thread_local bool BackToBack::active_ = false;

unsigned default_threads() {
  unsigned n = configured.load();
  if (n) return n;
  // hardware_concurrency() reads /sys on every call (about 8 us): ask once.
  static const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return cores;
}

void set_default_threads(unsigned n) { configured.store(n); }

bool use_openmp(const std::string& library) {
  if (library.empty()) {
    openmp.store(nullptr);
    return true;
  }
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_NOLOAD);  // only if already loaded
  if (!lib) return false;
  auto* omp = new OpenMP{
      reinterpret_cast<decltype(OpenMP::parallel)>(dlsym(lib, "GOMP_parallel")),
      reinterpret_cast<decltype(OpenMP::thread_num)>(dlsym(lib, "omp_get_thread_num")),
      reinterpret_cast<decltype(OpenMP::num_threads)>(dlsym(lib, "omp_get_num_threads"))};
  if (!omp->parallel || !omp->thread_num || !omp->num_threads) {
    delete omp;
    return false;
  }
  openmp.store(omp);  // kept for the life of the process, like the library
  return true;
}

bool using_openmp() { return openmp.load() != nullptr; }

double parallel_sum(const float* p, uint64_t n, unsigned threads) {
  constexpr unsigned kBlockBits = 20;
  constexpr uint64_t kBlock = uint64_t(1) << kBlockBits;
  std::vector<double> part((n + kBlock - 1) >> kBlockBits);
  parallel_rows(part.size(), threads, double(kBlock), [&](uint64_t b0, uint64_t b1) {
    for (uint64_t b = b0; b < b1; ++b) {
      float acc[32] = {};
      const uint64_t lo = b << kBlockBits, hi = std::min(n, lo + kBlock);
      for (uint64_t j = lo; j + 32 <= hi; j += 32)
        for (int t = 0; t < 32; ++t) acc[t] += p[j + t];
      double s = 0;
      for (float v : acc) s += v;
      for (uint64_t j = lo + (hi - lo) / 32 * 32; j < hi; ++j) s += p[j];
      part[b] = s;
    }
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

void run_tasks(unsigned n, const std::function<void(unsigned)>& task) {
  (void)at_fork_registered;
  if (const OpenMP* omp = openmp.load(); omp && n > 1) {
    OpenMPJob job{omp, &task, n, std::vector<std::exception_ptr>(n)};
    omp->parallel(openmp_body, &job, n, 0);
    for (auto& e : job.errors)
      if (e) std::rethrow_exception(e);
    return;
  }
  Pool& p = *pool;
  std::unique_lock<std::mutex> user(p.user, std::try_to_lock);
  if (n > 1 && user.owns_lock() && p.grow(n) == n)
    p.run(n, task);
  else  // busy, refused or nothing to share: the caller does every task itself
    run_serially(n, task);
}

}  // namespace cnn
