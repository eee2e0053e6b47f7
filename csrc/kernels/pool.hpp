// The 2x2 max pool's loops (TU-local, like decode.hpp): the walk over planes and output rows
// that every set's kernel shares, and the scalar row loop (the scalar set's rows, the NEON
// set's tails).
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

// y (planes x h/2 x w/2) from x (planes x h x w): row(r0, r1, out, wo) writes the wo outputs
// of each output row from its two input rows; a last odd row or column is left out.
template <class Row>
inline void max_pool2_rows(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y,
                           Row row) {
  const uint64_t ho = h / 2, wo = w / 2;
  for (uint64_t plane = 0; plane < planes; ++plane, x += h * w)
    for (uint64_t oy = 0; oy < ho; ++oy, y += wo) row(x + 2 * oy * w, x + (2 * oy + 1) * w, y, wo);
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
