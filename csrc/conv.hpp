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

// What a convolution does to each image's output while it is in cache: relu, then a 2x2 max
// pool of stride 2 (y then holds n x rows x ho/2 x wo/2).
struct ConvThen {
  bool relu = false;
  bool max_pool2 = false;
};

// y (n, rows, ho, wo) = W * patches of each image, plus bias[row] when bias is not null, then
// `then`.  Images are split between threads; a single image splits its output rows.
void conv2d(const Format& f, const float* x, const ConvShape& s, const float* bias, float* y,
            unsigned threads, ConvThen then = {});
// The same with a float32 weight W (rows x patch, row-major): a layer kept dense.
void conv2d_dense(const float* W, uint64_t rows, const float* x, const ConvShape& s,
                  const float* bias, float* y, unsigned threads, ConvThen then = {});

// y (planes x h/2 x w/2) = the largest of each 2x2 block of x (planes x h x w), NaN kept (as
// torch's max pooling); a last odd row or column is left out.
void max_pool2(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y);

// y = max(x, 0), NaN kept (torch.relu); y may be x.
void relu(const float* x, float* y, uint64_t n);

}  // namespace cnn
