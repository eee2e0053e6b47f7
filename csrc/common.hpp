// Shared definitions: error types and limits used by every format.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace cnn {

// Bad arguments from the caller (shapes, values); surfaces in Python as ValueError.
struct InvalidInput : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A serialized matrix that fails validation; surfaces as compactnn.FormatError.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr uint32_t kMaxCodebook = 65536;
// Shapes are kept well inside 64-bit index arithmetic (flat positions, bit offsets).
constexpr uint64_t kMaxDim = uint64_t(1) << 40;
constexpr uint64_t kMaxEntries = uint64_t(1) << 56;

inline void check_shape(uint64_t rows, uint64_t cols) {
  if (rows > kMaxDim || cols > kMaxDim || (rows && cols > kMaxEntries / rows))
    throw InvalidInput("matrix shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
                       ") is too large");
}

// True for +0.0 alone (not -0.0): the value HCSR leaves implicit.
inline bool is_plus_zero(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b == 0;
}

// Bits of v without its leading zeros (0 for 0).
inline unsigned bit_width(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

// Bits needed to write any index below k (0 when k == 1).
inline unsigned index_bits(uint32_t k) {
  unsigned b = 0;
  while ((uint64_t(1) << b) < k) ++b;
  return b;
}

}  // namespace cnn
