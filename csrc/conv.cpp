#include "conv.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/dispatch.hpp"
#include "kernels/epilogue.hpp"
#include "parallel.hpp"
#include "scratch.hpp"
#include "work.hpp"

namespace cnn {

void max_pool2(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y) {
  kernels::active().max_pool2(x, planes, h, w, y);
}

void relu(const float* x, float* y, uint64_t n) {
  for (uint64_t j = 0; j < n; ++j) y[j] = x[j] < 0.0f ? 0.0f : x[j];  // NaN and -0.0 stay
}

void check_conv(ConvShape& s) {
  constexpr uint64_t kLimit = uint64_t(1) << 31;
  for (uint64_t v : {s.kh, s.kw, s.sh, s.sw, s.dh, s.dw})
    if (v == 0 || v >= kLimit)
      throw InvalidInput("kernel size, stride and dilation must be positive and below 2^31");
  for (uint64_t v : {s.ph, s.pw, s.h, s.w, s.c})
    if (v >= kLimit) throw InvalidInput("convolution sizes must be below 2^31");
  int64_t span_h = int64_t(s.dh * (s.kh - 1) + 1), span_w = int64_t(s.dw * (s.kw - 1) + 1);
  int64_t in_h = int64_t(s.h + 2 * s.ph), in_w = int64_t(s.w + 2 * s.pw);
  if (span_h > in_h || span_w > in_w)
    throw InvalidInput("the kernel (" + std::to_string(span_h) + " x " + std::to_string(span_w) +
                       " with dilation) is larger than the padded input (" +
                       std::to_string(in_h) + " x " + std::to_string(in_w) + ")");
  s.ho = uint64_t((in_h - span_h) / int64_t(s.sh) + 1);
  s.wo = uint64_t((in_w - span_w) / int64_t(s.sw) + 1);
}

namespace {
// Unit column stride (most convolutions): each row of patches is a plain copy from a
// zero-padded copy of the image, with no clipping, by the kernel set's vector copies
// (ccexam's CNN, batch 64, one thread, Zen 5, AVX-512 set: its two convolutions with their
// relu 4.3 -> 3.8 ms).
void im2col_unit_stride(const float* image, const ConvShape& s, uint64_t oy0, uint64_t oy1,
                        float* cols) {
  const kernels::KernelSet& isa = kernels::active();
  const uint64_t hp = s.h + 2 * s.ph, wp = s.w + 2 * s.pw;
  const float* src = image;
  if (s.ph || s.pw) {
    float* padded = scratch(ScratchSlot::ConvPadded, s.c * hp * wp);
    std::memset(padded, 0, s.c * hp * wp * sizeof(float));
    for (uint64_t ci = 0; ci < s.c; ++ci)
      isa.copy_rows(padded + (ci * hp + s.ph) * wp + s.pw, wp, image + ci * s.h * s.w, s.w, s.h,
                    s.w);
    src = padded;
  }
  const uint64_t band = oy1 - oy0;
  for (uint64_t ci = 0; ci < s.c; ++ci)
    for (uint64_t i = 0; i < s.kh; ++i)
      for (uint64_t j = 0; j < s.kw; ++j, cols += band * s.wo)
        isa.copy_rows(cols, s.wo, src + (ci * hp + oy0 * s.sh + i * s.dh) * wp + j * s.dw,
                      s.sh * wp, band, s.wo);
}
}  // namespace

void im2col(const float* image, const ConvShape& s, uint64_t oy0, uint64_t oy1, float* cols) {
  if (s.sw == 1) return im2col_unit_stride(image, s, oy0, oy1, cols);
  const int64_t h = int64_t(s.h), w = int64_t(s.w), wo = int64_t(s.wo), sw = int64_t(s.sw);
  for (uint64_t ci = 0; ci < s.c; ++ci)
    for (uint64_t i = 0; i < s.kh; ++i)
      for (uint64_t j = 0; j < s.kw; ++j) {
        // Output column ox reads input column ox * sw + off; [lo, hi) are inside the input.
        const int64_t off = int64_t(j * s.dw) - int64_t(s.pw);
        const int64_t lo = std::min(wo, off >= 0 ? 0 : (-off + sw - 1) / sw);
        const int64_t hi = std::max(lo, std::min(wo, w - off <= 0 ? 0 : (w - off + sw - 1) / sw));
        for (uint64_t oy = oy0; oy < oy1; ++oy, cols += wo) {
          const int64_t iy = int64_t(oy * s.sh + i * s.dh) - int64_t(s.ph);
          if (iy < 0 || iy >= h) {
            for (int64_t ox = 0; ox < wo; ++ox) cols[ox] = 0.0f;
            continue;
          }
          // Rows are short (tens of floats): plain loops, not library calls.
          const float* src = image + (int64_t(ci) * h + iy) * w + off;
          for (int64_t ox = 0; ox < lo; ++ox) cols[ox] = 0.0f;
          if (sw == 1)
            for (int64_t ox = lo; ox < hi; ++ox) cols[ox] = src[ox];
          else
            for (int64_t ox = lo; ox < hi; ++ox) cols[ox] = src[ox * sw];
          for (int64_t ox = hi; ox < wo; ++ox) cols[ox] = 0.0f;
        }
      }
}

namespace {
bool is_pointwise(const ConvShape& s) {  // a 1x1 kernel, stride 1, no padding: x is its patches
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
}

// The body both entry points share.  `dense` (rows x patch floats, or null) multiplies the
// patches where given; otherwise f does.
void conv2d_with(const Format* f, const float* dense, uint64_t rows, const float* x,
                 const ConvShape& s, const float* bias, float* y, unsigned threads,
                 ConvThen then) {
  const bool with_relu = then.relu, pool = then.max_pool2;
  const uint64_t K = s.patch(), L = s.pixels(), in_size = s.c * s.h * s.w;
  const uint64_t out_size = rows * (pool ? (s.ho / 2) * (s.wo / 2) : L);
  if (s.n == 0 || out_size == 0) return;
  const kernels::KernelSet& isa = kernels::active();
  auto product = [&](const float* patches, uint64_t pixels, float* out) {
    if (dense) {
      isa.dense_matmat(dense, K, patches, pixels, out, 0, rows, bias, with_relu);
    } else {
      f->matmat(patches, pixels, out, 1);
      kernels::scalar::Epilogue{bias, with_relu}(0, rows, out, pixels, 0, pixels);
    }
  };
  // One image: its output rows in bands, one a thread, each with its own patches, so that no
  // two threads read the same patches or run tiles of fewer rows (ccexam's 64 x 32 x 3 x 3
  // convolution on 14 x 14 in the runtime: 0.044 -> 0.028 ms on two threads, Zen 5).
  if (s.n == 1) {
    // With pooling the bands fill the caller's buffer, pooled after.
    float* const y_pooled = y;
    if (pool) y = scratch(ScratchSlot::ConvOut, rows * L);
    const uint64_t n = threads ? threads : default_threads();
    const uint64_t band_rows = (s.ho + n - 1) / n;
    parallel_rows(s.ho, threads, work::conv_image(rows, K, s.wo), [&](uint64_t oy0, uint64_t oy1) {
      const uint64_t pixels = (oy1 - oy0) * s.wo;
      const float* patches = x;
      if (!is_pointwise(s)) {
        float* cols = scratch(ScratchSlot::ConvPatches, K * pixels);
        im2col(x, s, oy0, oy1, cols);
        patches = cols;
      } else if (oy1 - oy0 < s.ho) {  // x's columns of this band, contiguous
        float* cols = scratch(ScratchSlot::ConvPatches, K * pixels);
        for (uint64_t k = 0; k < K; ++k)
          std::copy_n(x + k * L + oy0 * s.wo, pixels, cols + k * pixels);
        patches = cols;
      }
      if (pixels == L) return product(patches, L, y);
      float* out = scratch(ScratchSlot::ConvBand, rows * pixels);
      product(patches, pixels, out);
      for (uint64_t r = 0; r < rows; ++r)
        std::copy_n(out + r * pixels, pixels, y + r * L + oy0 * s.wo);
    }, band_rows);
    if (pool) max_pool2(y, rows, s.ho, s.wo, y_pooled);
    return;
  }
  parallel_rows(
      s.n, threads, work::conv_image(rows, K, L),
      [&](uint64_t i0, uint64_t i1) {
        float* patches = is_pointwise(s) ? nullptr : scratch(ScratchSlot::ConvPatches, K * L);
        for (uint64_t i = i0; i < i1; ++i) {
          const float* p = x + i * in_size;
          if (patches) {
            im2col(p, s, 0, s.ho, patches);
            p = patches;
          }
          if (!pool) {
            product(p, L, y + i * out_size);
            continue;
          }
          float* out = scratch(ScratchSlot::ConvOut, rows * L);
          product(p, L, out);
          max_pool2(out, rows, s.ho, s.wo, y + i * out_size);
        }
      },
      1);
}
}  // namespace

void conv2d(const Format& f, const float* x, const ConvShape& s, const float* bias, float* y,
            unsigned threads, ConvThen then) {
  // Several images: weights small enough (as convolution kernels are) are decoded once, and
  // every image multiplies the float block, so decoding is paid once, not once per image.
  // A sparse HCSR matrix keeps its sparse product, which skips the zeros.
  constexpr uint64_t kDecodeOnce = uint64_t(1) << 20;  // weights (4 MiB as floats)
  const uint64_t rows = f.rows(), K = s.patch();
  float* dense = nullptr;
  if (s.n > 1 && rows * K <= kDecodeOnce &&
      !(f.id() == FormatId::HCSR && 4 * f.nnz() < rows * K)) {
    dense = scratch(ScratchSlot::ConvWeights, rows * K);
    f.to_dense(dense);
  }
  conv2d_with(&f, dense, rows, x, s, bias, y, threads, then);
}

void conv2d_dense(const float* W, uint64_t rows, const float* x, const ConvShape& s,
                  const float* bias, float* y, unsigned threads, ConvThen then) {
  conv2d_with(nullptr, W, rows, x, s, bias, y, threads, then);
}

}  // namespace cnn
