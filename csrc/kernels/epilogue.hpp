// What a product does to each row of its output once the row's sums are complete: the bias
// and relu of a convolution (TU-local, like decode.hpp): the dense kernels of every set
// apply it to each block of rows while it is in cache, conv.cpp to each image's output of a
// compressed matrix (its scalar copy).
#pragma once
#include <cstdint>

#ifndef CNN_KERNEL_ISA
#define CNN_KERNEL_ISA scalar
#endif

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// Rows [i0, i1) of Y (ldy floats apart), columns [b, b_end): y + bias[i] (bias not null),
// then relu (NaN and -0.0 kept, as torch.relu).
struct Epilogue {
  const float* bias = nullptr;
  bool relu = false;
  void operator()(uint64_t i0, uint64_t i1, float* Y, uint64_t ldy, uint64_t b,
                  uint64_t b_end) const {
    if (!bias && !relu) return;
    for (uint64_t i = i0; i < i1; ++i) {
      float* y = Y + i * ldy;
      const float add = bias ? bias[i] : 0.0f;
      if (bias && relu)
        for (uint64_t c = b; c < b_end; ++c) y[c] = y[c] + add < 0.0f ? 0.0f : y[c] + add;
      else if (bias)
        for (uint64_t c = b; c < b_end; ++c) y[c] += add;
      else
        for (uint64_t c = b; c < b_end; ++c) y[c] = y[c] < 0.0f ? 0.0f : y[c];
    }
  }
};

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
