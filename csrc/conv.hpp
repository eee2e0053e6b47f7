// 2-D convolution (groups = 1) as a compressed matrix times im2col patches.
#pragma once
#include <cstdint>

#include "format.hpp"

namespace cnn {

struct ConvShape {
  uint64_t n, c, h, w;  // input (n, c, h, w), row-major
  uint64_t kh, kw, sh, sw, ph, pw, dh, dw;  // kernel, stride, zero padding, dilation
  uint64_t ho, wo;                         // output size, set by check_conv

  uint64_t patch() const { return c * kh * kw; }  // the matrix's columns
  uint64_t pixels() const { return ho * wo; }
};

// Checks the parameters (positive kernel, stride and dilation; a kernel that fits the padded
// input; sizes inside 2^31) and fills in ho, wo.  Throws InvalidInput.
void check_conv(ConvShape& s);

// Patches of output rows [oy0, oy1) of one image: row (ci * kh + i) * kw + j holds, for each
// of their output pixels, the input value under kernel tap (i, j) of channel ci, or 0 in the
// padding.
void im2col(const float* image, const ConvShape& s, uint64_t oy0, uint64_t oy1, float* cols);

// y (n, rows, ho, wo) = W * patches of each image, plus bias[row] when bias is not null, then
// relu when `with_relu` (each image's while it is in cache).  Images are split between threads;
// a single image splits its rows.
void conv2d(const Format& f, const float* x, const ConvShape& s, const float* bias, float* y,
            unsigned threads, bool with_relu = false);
// The same with a float32 weight W (rows x patch, row-major): a layer kept dense.
void conv2d_dense(const float* W, uint64_t rows, const float* x, const ConvShape& s,
                  const float* bias, float* y, unsigned threads, bool with_relu = false);

// y = max(x, 0), NaN kept (torch.relu); y may be x.
void relu(const float* x, float* y, uint64_t n);

}  // namespace cnn
