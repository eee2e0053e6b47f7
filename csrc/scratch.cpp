#include "scratch.hpp"

#include <array>
#include <memory>

namespace cnn {

float* scratch(ScratchSlot slot, size_t n) {
  struct Buffer {
    std::unique_ptr<float[]> data;
    size_t size = 0;
  };
  thread_local std::array<Buffer, size_t(ScratchSlot::kCount)> buffers;
  Buffer& b = buffers[size_t(slot)];
  if (b.size < n) {
    b.data.reset();  // the old one goes first: never both at once
    b.size = 0;      // (and if new throws, the slot is empty, not a dangling size)
    b.data.reset(new float[n]);
    b.size = n;
  }
  return b.data.get();
}

}  // namespace cnn
