// Portable kernels: the reference every SIMD set is tested against.
#include <cstring>
#include <vector>

#define CNN_KERNEL_ISA scalar
#include "decode.hpp"
#include "dispatch.hpp"
#include "fixed.hpp"
#include "lanes.hpp"
#include "epilogue.hpp"
#include "pool.hpp"

namespace cnn::kernels::scalar {
namespace {

// Eight partial sums in a fixed order.
template <class Idx>
float dot_indices(const Idx* idx, const float* cb, const float* x, uint64_t n) {
  float acc[8] = {};
  uint64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int t = 0; t < 8; ++t) acc[t] += cb[idx[j + t]] * x[j + t];
  for (; j < n; ++j) acc[j & 7] += cb[idx[j]] * x[j];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Y[i, :] = sum_j cb[idx[j]] X[j, :]
template <class Idx>
void axpy_rows(const Idx* idx, const float* cb, uint64_t cols, const float* X, uint64_t batch,
               float* y) {
  std::memset(y, 0, batch * sizeof(float));
  for (uint64_t j = 0; j < cols; ++j) {
    const float w = cb[idx[j]], *xj = X + j * batch;
    for (uint64_t b = 0; b < batch; ++b) y[b] += w * xj[b];
  }
}

void im_matvec(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  std::vector<uint32_t> idx(v.cols);
  for (uint64_t i = r0; i < r1; ++i) {
    im_decode_range(v, i * v.cols, v.cols, idx.data());
    y[i] = dot_indices(idx.data(), v.codebook, x, v.cols);
  }
}

void im_matmat(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
               uint64_t r1) {
  std::vector<uint32_t> idx(v.cols);
  for (uint64_t i = r0; i < r1; ++i) {
    im_decode_range(v, i * v.cols, v.cols, idx.data());
    axpy_rows(idx.data(), v.codebook, v.cols, X, batch, Y + i * batch);
  }
}

void ham_matvec(const HAMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  std::vector<uint16_t> idx(v.cols + 4);
  for (uint64_t i = r0; i < r1; ++i) {
    ham_decode_row(v, i, idx.data());
    y[i] = dot_indices(idx.data(), v.codebook, x, v.cols);
  }
}

void ham_matmat(const HAMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                uint64_t r1) {
  std::vector<uint16_t> idx(v.cols + 4);
  for (uint64_t i = r0; i < r1; ++i) {
    ham_decode_row(v, i, idx.data());
    axpy_rows(idx.data(), v.codebook, v.cols, X, batch, Y + i * batch);
  }
}

void hcsr_matmat(const HCSRView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                 uint64_t r1) {
  for (uint64_t i = r0; i < r1; ++i) {
    float* y = Y + i * batch;
    std::memset(y, 0, batch * sizeof(float));
    hcsr_for_each(v, i, [&](uint64_t c, float w) {
      const float* xc = X + c * batch;
      for (uint64_t b = 0; b < batch; ++b) y[b] += w * xc[b];
    });
  }
}

void dense_matmat(const float* W, uint64_t cols, const float* X, uint64_t batch, float* Y,
                  uint64_t r0, uint64_t r1, const float* bias, bool relu) {
  for (uint64_t i = r0; i < r1; ++i) {
    float* y = Y + i * batch;
    std::memset(y, 0, batch * sizeof(float));
    for (uint64_t j = 0; j < cols; ++j) {
      const float w = W[i * cols + j], *xj = X + j * batch;
      for (uint64_t b = 0; b < batch; ++b) y[b] += w * xj[b];
    }
  }
  Epilogue{bias, relu}(r0, r1, Y, batch, 0, batch);
}

void copy_rows(float* dst, uint64_t dst_stride, const float* src, uint64_t src_stride,
               uint64_t rows, uint64_t width) {
  for (uint64_t r = 0; r < rows; ++r, dst += dst_stride, src += src_stride)
    std::memcpy(dst, src, width * sizeof(float));
}

void max_pool2(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y) {
  max_pool2_rows(x, planes, h, w, y, [](const float* r0, const float* r1, float* out,
                                        uint64_t wo) { max_pool2_row(r0, r1, out, 0, wo); });
}

// Y[b, i] = sum_j cb[idx[j]] X[b, j], terms in column order as in axpy_rows
template <class Idx>
void dot_rows(const Idx* idx, const float* cb, uint64_t cols, const float* X, uint64_t batch,
              float* Y, uint64_t ldy) {
  for (uint64_t b = 0; b < batch; ++b) {
    float y = 0;
    for (uint64_t j = 0; j < cols; ++j) y += cb[idx[j]] * X[b * cols + j];
    Y[b * ldy] = y;
  }
}

void im_linear(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
               uint64_t r1) {
  std::vector<uint32_t> idx(v.cols);
  for (uint64_t i = r0; i < r1; ++i) {
    im_decode_range(v, i * v.cols, v.cols, idx.data());
    dot_rows(idx.data(), v.codebook, v.cols, X, batch, Y + i, v.rows);
  }
}

void ham_linear(const HAMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                uint64_t r1) {
  std::vector<uint16_t> idx(v.cols + 4);
  for (uint64_t i = r0; i < r1; ++i) {
    ham_decode_row(v, i, idx.data());
    dot_rows(idx.data(), v.codebook, v.cols, X, batch, Y + i, v.rows);
  }
}

}  // namespace
}  // namespace cnn::kernels::scalar

namespace cnn::kernels {

const KernelSet scalar_kernels = {
    "scalar",
    0,  // runs everywhere
    ImMatvec(scalar::im_matvec),
    ImMatmat(scalar::im_matmat),
    ImLinear(scalar::im_linear),
    HamMatvec(scalar::ham_matvec),
    HamMatmat(scalar::ham_matmat),
    HamLinear(scalar::ham_linear),
    HcsrMatvec(scalar::hcsr_matvec_rows),
    HcsrMatmat(scalar::hcsr_matmat),
    LanesMatvec(scalar::lanes_matvec_scalar),
    LanesMatmat(scalar::lanes_matmat_scalar),
    // Dense rows are lanes whose gaps are all 0: the general lane kernels serve.
    DenseLanesMatvec(scalar::lanes_matvec_scalar),
    DenseLanesMatmat(scalar::lanes_matmat_scalar),
    FixedMatvec(scalar::fixed_matvec_scalar),
    FixedMatmat(scalar::fixed_matmat_scalar),
    DenseMatmat(scalar::dense_matmat),
    CopyRows(scalar::copy_rows),
    MaxPool2(scalar::max_pool2),
};

}  // namespace cnn::kernels
