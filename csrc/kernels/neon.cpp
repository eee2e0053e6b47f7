// NEON kernels (aarch64, where NEON and FMA are always present), every slot of the set in
// 4-wide vectors: IndexMap's products, HAM's row layout (decoded rows looked up 16 at a
// time), HCSR's row layout (the portable decoder with fused multiply-adds, so the fixed
// layout's kernels give the same bits), the lane layouts (lanes_simd.hpp with LaneOps128),
// the fixed layout (fixed_neon.hpp) and the blocked matrix-matrix tiles (matmat.hpp, also
// convolution's).
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
#include "pool.hpp"

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
  struct tail {  // the lanes of a partial vector, for loads in a loop
    unsigned n;
  };
  static tail tail_of(unsigned n) { return {n}; }
  static reg load(const float* p, tail m) {  // m.n lanes, the rest 0
    float t[4] = {};
    std::copy(p, p + m.n, t);
    return vld1q_f32(t);
  }
  static reg load(const float* p, unsigned n) { return n == 4 ? vld1q_f32(p) : load(p, tail{n}); }
  static void store(float* p, reg v, tail m) {
    float t[4];
    vst1q_f32(t, v);
    std::copy(t, t + m.n, p);
  }
  static void store(float* p, reg v, unsigned n) {
    if (n == 4) return vst1q_f32(p, v);
    store(p, v, tail{n});
  }
  static reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  static void transpose8(const float* src, uint64_t lds, float* dst, uint64_t ldd) {
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) dst[c * ldd + r] = src[r * lds + c];
  }
};

using Vec = V128;

// The lookups run once per 16 (or 4) weights inside the kernels' loops: GCC kept the larger
// ones out of line, a call per lookup with the weights through memory.
#define CNN_NEON_INLINE __attribute__((always_inline)) inline

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
  CNN_NEON_INLINE uint8x16_t plane(int b, uint8x16_t idx) const {
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
  CNN_NEON_INLINE void operator()(uint8x16_t idx, float32x4_t out[4]) const {
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
  // The weights of 4 indices in 32-bit elements (the lane layouts' ranks): each index in
  // every byte of its element, byte b of the weight taken from plane b.
  CNN_NEON_INLINE float32x4_t operator()(uint32x4_t idx) const {
    const uint8x16_t i = vreinterpretq_u8_u32(vmulq_n_u32(idx, 0x01010101u));
    const uint8x16_t byte0 = vreinterpretq_u8_u32(vdupq_n_u32(0x000000FFu));
    const uint8x16_t byte2 = vreinterpretq_u8_u32(vdupq_n_u32(0x00FF0000u));
    const uint8x16_t low16 = vreinterpretq_u8_u32(vdupq_n_u32(0x0000FFFFu));
    const uint8x16_t b01 = vbslq_u8(byte0, plane(0, i), plane(1, i));
    const uint8x16_t b23 = vbslq_u8(byte2, plane(2, i), plane(3, i));
    return vreinterpretq_f32_u8(vbslq_u8(low16, b01, b23));
  }
};

// Bits `shift` .. of 16 bytes at q, masked to `mask`.
CNN_NEON_INLINE uint8x16_t field(const uint8_t* q, unsigned shift, unsigned mask) {
  return vandq_u8(vshlq_u8(vld1q_u8(q), vdupq_n_s8(int8_t(-int(shift)))), vdupq_n_u8(uint8_t(mask)));
}

// IndexMap: the indices of the 16-entry chunk at entry p (p % 16 == 0), index_map.hpp's
// planes put together as avx2.cpp's im_idx8 does.
template <int Bits>
CNN_NEON_INLINE uint8x16_t im_idx16(const IMView& v, uint64_t p) {
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

#include "lanes_simd.hpp"  // after Lut, which its lookups use

namespace cnn::kernels::neon {
namespace {

// The instructions lanes_simd.hpp asks for, 4 lanes per vector; a mask is a vector of
// all-ones or zero elements.  No gathers: codes, buckets and weights come from register
// lookups (Lut), x from four lane loads.
struct LaneOps128 {
  using vi = uint32x4_t;
  using vf = float32x4_t;
  using mask = uint32x4_t;
  using table8 = uint8x16x2_t;  // permute8's 8 entries
  static constexpr unsigned width = 4;
  static constexpr bool gather_tables = false;
  static vi set1(int32_t a) { return vdupq_n_u32(uint32_t(a)); }
  static vf set1_f(float a) { return vdupq_n_f32(a); }
  static vi loadu(const uint32_t* p) { return vld1q_u32(p); }
  static vf loadu_f(const float* p) { return vld1q_f32(p); }
  static void storeu(uint32_t* p, vi a) { vst1q_u32(p, a); }
  static void storeu_f(float* p, vf a) { vst1q_f32(p, a); }
  static vi add(vi a, vi b) { return vaddq_u32(a, b); }
  static vi sub(vi a, vi b) { return vsubq_u32(a, b); }
  static vi and_(vi a, vi b) { return vandq_u32(a, b); }
  static vi or_(vi a, vi b) { return vorrq_u32(a, b); }
  // Shifts by 32 or more give 0, as AVX2's variable shifts do.
  static vi srli(vi a, int n) { return vshlq_u32(a, vdupq_n_s32(-n)); }
  static vi sllv(vi a, vi n) { return vshlq_u32(a, vreinterpretq_s32_u32(n)); }
  static vi srlv(vi a, vi n) { return vshlq_u32(a, vnegq_s32(vreinterpretq_s32_u32(n))); }
  static vf gather_x(const float* x, vi i, mask m) {
    const vi c = vandq_u32(i, m);  // inactive lanes read x[0]
    float32x4_t r = vld1q_dup_f32(x + vgetq_lane_u32(c, 0));
    r = vld1q_lane_f32(x + vgetq_lane_u32(c, 1), r, 1);
    r = vld1q_lane_f32(x + vgetq_lane_u32(c, 2), r, 2);
    r = vld1q_lane_f32(x + vgetq_lane_u32(c, 3), r, 3);
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r), m));
  }
  static vf fmadd(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
  static table8 load8(const int32_t* p) {
    return {vreinterpretq_u8_s32(vld1q_s32(p)), vreinterpretq_u8_s32(vld1q_s32(p + 4))};
  }
  static vi permute8(table8 table, vi i) {  // i's low 3 bits, as vpermd
    const vi bytes = vmlaq_n_u32(vdupq_n_u32(0x03020100u), vandq_u32(i, vdupq_n_u32(7)), 0x04040404u);
    return vreinterpretq_u32_u8(vqtbl2q_u8(table, vreinterpretq_u8_u32(bytes)));
  }
  static vi as_int(vf a) { return vreinterpretq_u32_f32(a); }
  // (a[i], b[i]) pairs for i = 0..3 at p[0..7].
  static void store_pairs(uint32_t* p, vi a, vf b) { vst2q_u32(p, (uint32x4x2_t{{a, as_int(b)}})); }
  static vi add_if_greater(vi n, vi a, vi b) {
    return vsubq_u32(n, vcgtq_s32(vreinterpretq_s32_u32(a), vreinterpretq_s32_u32(b)));
  }
  static mask positive(vi a) { return vcgtq_s32(vreinterpretq_s32_u32(a), vdupq_n_s32(0)); }
  static bool any(mask m) { return vmaxvq_u32(m) != 0; }
  static vi masked(vi a, mask m) { return vandq_u32(a, m); }
  static vi dec(vi a, mask m) { return vaddq_u32(a, m); }
  static unsigned bits(mask m) {  // lane l's bit l
    static constexpr uint32_t kBit[4] = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(m, vld1q_u32(kBit)));
  }
  static unsigned zero_in(vi a, mask m) { return bits(vandq_u32(m, vceqzq_u32(a))); }
  // Lanes past 32 bits move to their next word; the words come from p in lane order.
  static void refill(vi& buf, vi& nxt, vi& pos, const uint32_t*& p) {
    const mask m = vcgtq_u32(pos, vdupq_n_u32(31));
    const unsigned b = bits(m);
    const uint8x16_t words = vqtbl1q_u8(vreinterpretq_u8_u32(vld1q_u32(p)), vld1q_u8(kExpand.at[b]));
    buf = vbslq_u32(m, nxt, buf);
    nxt = vbslq_u32(m, vreinterpretq_u32_u8(words), nxt);
    pos = vsubq_u32(pos, vandq_u32(m, vdupq_n_u32(32)));
    p += __builtin_popcount(b);
  }
  // For each 4-bit mask, the bytes of the loaded words each lane takes: lane j, if set, the
  // word numbered by the set lanes below it.
  struct Expand {
    uint8_t at[16][16];
    Expand() {
      for (unsigned b = 0; b < 16; ++b)
        for (unsigned j = 0; j < 4; ++j)
          for (unsigned k = 0; k < 4; ++k)
            at[b][4 * j + k] = uint8_t(4 * __builtin_popcount(b & ((1u << j) - 1)) + k);
    }
  };
  static const Expand kExpand;
};
const LaneOps128::Expand LaneOps128::kExpand;

// b where b > a or b is NaN, lane by lane (pool.hpp's max_nan).
inline float32x4_t max_nan(float32x4_t a, float32x4_t b) {
  return vbslq_f32(vorrq_u32(vcgtq_f32(b, a), vmvnq_u32(vceqq_f32(b, b))), b, a);
}

// Four outputs at a time, even and odd columns split by vld2q; the rest by pool.hpp's loop.
void max_pool2(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y) {
  max_pool2_rows(x, planes, h, w, y, [](const float* r0, const float* r1, float* out,
                                        uint64_t wo) {
    uint64_t ox = 0;
    for (; ox + 4 <= wo; ox += 4) {
      const float32x4x2_t a = vld2q_f32(r0 + 2 * ox), b = vld2q_f32(r1 + 2 * ox);
      vst1q_f32(out + ox, max_nan(max_nan(a.val[0], a.val[1]), max_nan(b.val[0], b.val[1])));
    }
    max_pool2_row(r0, r1, out, ox, wo);
  });
}

}  // namespace
}  // namespace cnn::kernels::neon

#include "entry_points.hpp"
#include "fixed_neon.hpp"

namespace cnn::kernels {

const KernelSet neon_kernels = neon::kernel_set<neon::LaneOps128>(
    "neon", CNN_TARGET_FEATURES, FixedMatvec(neon::fixed_matvec), FixedMatmat(neon::fixed_matmat));

}  // namespace cnn::kernels

#endif  // aarch64
