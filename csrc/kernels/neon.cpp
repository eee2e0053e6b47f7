// NEON kernels (aarch64, where NEON and FMA are always present): IndexMap's products, HAM's
// row layout (decoded rows looked up 16 at a time) and the blocked matrix-matrix tiles
// (matmat.hpp, also convolution's) in 4-wide vectors.  HCSR (every layout) and the lane
// layouts have no NEON kernels yet: the scalar ones serve, which also keeps HCSR's fixed
// layout bit for bit equal to its row layout on this set, as on the others.
//
// Codebook lookups: the codebook split into four byte planes (byte b of every float), each
// looked up 16 indices at a time by vqtbl1q_u8 (16 entries), vqtbl4q_u8 (64), or vqtbl4q_u8
// and vqtbx4q_u8 on 64-entry pieces (128, 256), then zipped back into floats in entry order.
#if defined(__aarch64__)  // aarch64 only (dispatch.hpp)
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#define CNN_TARGET_FEATURES 0  // every aarch64 CPU
#define CNN_KERNEL_FMA 1
#define CNN_KERNEL_ISA neon
#include "decode.hpp"
#include "dispatch.hpp"
#include "matmat.hpp"

namespace cnn::kernels::neon {
namespace {

struct V128 {
  using reg = float32x4_t;
  static constexpr unsigned width = 4;
  // 6 x 4 accumulators of 32 registers (as AVX-512's 6 x 4 of 32).
  static constexpr int tile_rows = 6;
  static constexpr int tile_vectors = 4;
  static reg zero() { return vdupq_n_f32(0.0f); }
  static reg set1(float v) { return vdupq_n_f32(v); }
  static reg loadu(const float* p) { return vld1q_f32(p); }
  static reg load(const float* p, unsigned n) {  // n lanes, the rest 0
    if (n == 4) return vld1q_f32(p);
    float t[4] = {};
    std::copy(p, p + n, t);
    return vld1q_f32(t);
  }
  static void store(float* p, reg v, unsigned n) {
    if (n == 4) return vst1q_f32(p, v);
    float t[4];
    vst1q_f32(t, v);
    std::copy(t, t + n, p);
  }
  static reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
};

using Vec = V128;

// The codebook (k <= 2^Bits entries, zero-padded) as four byte planes of kBytes entries.
template <int Bits>
struct Lut {
  static constexpr int kBytes = Bits <= 4 ? 16 : Bits <= 6 ? 64 : 64 << (Bits - 6);
  static constexpr int kPieces = kBytes < 64 ? 1 : kBytes / 64;  // of 64 entries
  alignas(16) uint8_t bytes[4][kBytes] = {};
  Lut(const float* codebook, uint32_t k) {
    for (uint32_t e = 0; e < std::min<uint32_t>(k, kBytes); ++e) {
      uint32_t bits;
      std::memcpy(&bits, codebook + e, 4);
      for (int b = 0; b < 4; ++b) bytes[b][e] = uint8_t(bits >> (8 * b));
    }
  }
  uint8x16_t plane(int b, uint8x16_t idx) const {
    if constexpr (kBytes == 16) {
      return vqtbl1q_u8(vld1q_u8(bytes[b]), idx);
    } else {
      // Indices past a 64-entry piece give 0 (tbl) or keep what an earlier piece gave (tbx).
      uint8x16_t r = vqtbl4q_u8(vld1q_u8_x4(bytes[b]), idx);
      for (int p = 1; p < kPieces; ++p)
        r = vqtbx4q_u8(r, vld1q_u8_x4(bytes[b] + 64 * p), vsubq_u8(idx, vdupq_n_u8(uint8_t(64 * p))));
      return r;
    }
  }
  // The weights of 16 byte indices in entry order: out[q] holds entries 4q .. 4q + 3.
  void operator()(uint8x16_t idx, float32x4_t out[4]) const {
    const uint8x16_t b0 = plane(0, idx), b1 = plane(1, idx), b2 = plane(2, idx), b3 = plane(3, idx);
    const uint16x8_t l01 = vreinterpretq_u16_u8(vzip1q_u8(b0, b1));
    const uint16x8_t h01 = vreinterpretq_u16_u8(vzip2q_u8(b0, b1));
    const uint16x8_t l23 = vreinterpretq_u16_u8(vzip1q_u8(b2, b3));
    const uint16x8_t h23 = vreinterpretq_u16_u8(vzip2q_u8(b2, b3));
    out[0] = vreinterpretq_f32_u16(vzip1q_u16(l01, l23));
    out[1] = vreinterpretq_f32_u16(vzip2q_u16(l01, l23));
    out[2] = vreinterpretq_f32_u16(vzip1q_u16(h01, h23));
    out[3] = vreinterpretq_f32_u16(vzip2q_u16(h01, h23));
  }
};

// Bits `shift` .. of 16 bytes at q, masked to `mask`.
inline uint8x16_t field(const uint8_t* q, unsigned shift, unsigned mask) {
  return vandq_u8(vshlq_u8(vld1q_u8(q), vdupq_n_s8(int8_t(-int(shift)))), vdupq_n_u8(uint8_t(mask)));
}

// IndexMap: the indices of the 16-entry chunk at entry p (p % 16 == 0), index_map.hpp's
// planes put together as avx2.cpp's im_idx8 does.
template <int Bits>
inline uint8x16_t im_idx16(const IMView& v, uint64_t p) {
  if constexpr (Bits == 0) {
    return vdupq_n_u8(0);  // k = 1: no planes (packed may be null)
  } else {
    const uint8_t* plane = v.packed + (p >> 7) * 16 * Bits;
    const unsigned f = unsigned(p >> 4) & 7;
    if constexpr (Bits == 8) return vld1q_u8(plane + f * 16);
    uint8x16_t idx = vdupq_n_u8(0);
    if constexpr ((Bits & 4) != 0) {
      idx = field(plane + (f / 2) * 16, (f & 1) * 4, 15);
      plane += 64;
    }
    if constexpr ((Bits & 2) != 0) {
      idx = vorrq_u8(idx, vshlq_n_u8(field(plane + (f / 4) * 16, (f & 3) * 2, 3), Bits & 4));
      plane += 32;
    }
    if constexpr ((Bits & 1) != 0) idx = vorrq_u8(idx, vshlq_n_u8(field(plane, f, 1), Bits & 6));
    return idx;
  }
}

// R rows whose entries start on 16-entry chunks (cols % 16 == 0): one load of x serves all
// R rows.
template <int Bits, int R>
inline void im_rows_aligned(const IMView& v, const Lut<Bits>& lut, const float* x, float* y,
                            uint64_t i) {
  float32x4_t a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = vdupq_n_f32(0.0f);
  const RowsAhead<Bits, R> ahead(v, i + R);
  for (uint64_t c = 0; c < v.cols; c += 16) {
    const float32x4_t x0 = vld1q_f32(x + c), x1 = vld1q_f32(x + c + 4);
    const float32x4_t x2 = vld1q_f32(x + c + 8), x3 = vld1q_f32(x + c + 12);
    for (int r = 0; r < R; ++r) {
      float32x4_t w[4];
      ahead(r, c);
      lut(im_idx16<Bits>(v, (i + r) * v.cols + c), w);
      a0[r] = vfmaq_f32(a0[r], w[0], x0);
      a1[r] = vfmaq_f32(a1[r], w[1], x1);
      a0[r] = vfmaq_f32(a0[r], w[2], x2);
      a1[r] = vfmaq_f32(a1[r], w[3], x3);
    }
  }
  for (int r = 0; r < R; ++r) y[i + r] = vaddvq_f32(vaddq_f32(a0[r], a1[r]));
}

// Weights of entries [p, p + n) as floats (any alignment).
template <int Bits>
void im_expand(const IMView& v, const Lut<Bits>& lut, uint64_t p, uint64_t n, float* out) {
  float32x4_t w[4];
  alignas(16) float t[16];
  const uint64_t e = p + n;
  for (uint64_t q = p & ~uint64_t(15); q < e; q += 16) {
    lut(im_idx16<Bits>(v, q), w);
    if (q >= p && q + 16 <= e) {
      for (int k = 0; k < 4; ++k) vst1q_f32(out + (q - p) + 4 * k, w[k]);
      continue;
    }
    for (int k = 0; k < 4; ++k) vst1q_f32(t + 4 * k, w[k]);
    const uint64_t lo = q < p ? p - q : 0, hi = std::min<uint64_t>(16, e - q);
    std::copy(t + lo, t + hi, out + (q + lo - p));
  }
}

// sum of w[j] x[j] over j < n, 4 lanes and two chains (the same order for any n).
inline float dot_floats(const float* w, const float* x, uint64_t n) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
  uint64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    a0 = vfmaq_f32(a0, vld1q_f32(w + j), vld1q_f32(x + j));
    a1 = vfmaq_f32(a1, vld1q_f32(w + j + 4), vld1q_f32(x + j + 4));
  }
  for (; j < n; j += 4) {
    const unsigned m = unsigned(std::min<uint64_t>(4, n - j));
    a0 = vfmaq_f32(a0, V128::load(w + j, m), V128::load(x + j, m));
  }
  return vaddvq_f32(vaddq_f32(a0, a1));
}

template <int Bits>
void im_matvec_b(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  const Lut<Bits> lut(v.codebook, v.k);
  uint64_t i = r0;
  if (v.cols % 16 == 0) {
    for (; i + 4 <= r1; i += 4) im_rows_aligned<Bits, 4>(v, lut, x, y, i);
    for (; i < r1; ++i) im_rows_aligned<Bits, 1>(v, lut, x, y, i);
    return;
  }
  std::vector<float> w(v.cols);
  for (; i < r1; ++i) {
    im_expand<Bits>(v, lut, i * v.cols, v.cols, w.data());
    y[i] = dot_floats(w.data(), x, v.cols);
  }
}

// HAM with k <= 256: a decoded row's byte indices looked up 16 at a time (the row buffer has
// 16 bytes of slack past n).
template <int Bits>
inline float dot_bytes(const Lut<Bits>& lut, const uint8_t* idx, const float* x, uint64_t n) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
  float32x4_t w[4];
  uint64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    lut(vld1q_u8(idx + j), w);
    a0 = vfmaq_f32(a0, w[0], vld1q_f32(x + j));
    a1 = vfmaq_f32(a1, w[1], vld1q_f32(x + j + 4));
    a0 = vfmaq_f32(a0, w[2], vld1q_f32(x + j + 8));
    a1 = vfmaq_f32(a1, w[3], vld1q_f32(x + j + 12));
  }
  if (j < n) {
    lut(vld1q_u8(idx + j), w);
    for (int q = 0; q < 4 && j + 4 * q < n; ++q) {
      const unsigned m = unsigned(std::min<uint64_t>(4, n - j - 4 * q));
      a0 = vfmaq_f32(a0, w[q], V128::load(x + j + 4 * q, m));
    }
  }
  return vaddvq_f32(vaddq_f32(a0, a1));
}

}  // namespace
}  // namespace cnn::kernels::neon

#include "entry_points.hpp"

namespace cnn::kernels {

const KernelSet neon_kernels = {
    "neon",
    CNN_TARGET_FEATURES,
    ImMatvec(neon::im_matvec),
    ImMatmat(neon::im_matmat),
    ImLinear(neon::im_linear),
    HamMatvec(neon::ham_matvec),
    HamMatmat(neon::ham_matmat_rows<neon::Vec>),
    HamLinear(neon::ham_linear_rows<neon::Vec>),
    // HCSR and the lane layouts: the scalar kernels (see the top of this file).
    HcsrMatvec::of<scalar_kernels, &KernelSet::hcsr_matvec>(),
    HcsrMatmat::of<scalar_kernels, &KernelSet::hcsr_matmat>(),
    LanesMatvec::of<scalar_kernels, &KernelSet::lanes_matvec>(),
    LanesMatmat::of<scalar_kernels, &KernelSet::lanes_matmat>(),
    DenseLanesMatvec::of<scalar_kernels, &KernelSet::dense_lanes_matvec>(),
    DenseLanesMatmat::of<scalar_kernels, &KernelSet::dense_lanes_matmat>(),
    FixedMatvec::of<scalar_kernels, &KernelSet::fixed_matvec>(),
    FixedMatmat::of<scalar_kernels, &KernelSet::fixed_matmat>(),
    DenseMatmat(neon::dense_matmat_rows<neon::Vec>),
};

}  // namespace cnn::kernels

#endif  // aarch64
