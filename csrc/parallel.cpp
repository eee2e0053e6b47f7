#include "parallel.hpp"

#include <atomic>

namespace cnn {

namespace {
std::atomic<unsigned> configured{0};
}

unsigned default_threads() {
  unsigned n = configured.load();
  if (n) return n;
  n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

void set_default_threads(unsigned n) { configured.store(n); }

}  // namespace cnn
