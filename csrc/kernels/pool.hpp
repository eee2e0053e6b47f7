// The 2x2 max pool's scalar loop (TU-local, like decode.hpp): the scalar set's kernel and the
// tails of vector ones.
#pragma once
#include <cstdint>

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// b where b > a or b is NaN: NaN goes through, as torch's max pooling lets it.
inline float max_nan(float a, float b) { return (b > a || b != b) ? b : a; }

// Outputs [ox, wo) of one output row from input rows r0 and r1.
inline void max_pool2_row(const float* r0, const float* r1, float* y, uint64_t ox, uint64_t wo) {
  for (; ox < wo; ++ox)
    y[ox] = max_nan(max_nan(r0[2 * ox], r0[2 * ox + 1]), max_nan(r1[2 * ox], r1[2 * ox + 1]));
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
