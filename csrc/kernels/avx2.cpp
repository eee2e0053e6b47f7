// AVX2 + FMA kernels: 8-wide products, codebook lookups held in registers (vpermps and
// blends) for k <= 64, decoding compiled with BMI2.
#if defined(__x86_64__) || defined(__i386__)  // x86 only (CNN_X86_KERNELS, dispatch.hpp)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#pragma GCC target("avx2,fma,bmi,bmi2,lzcnt,popcnt")
// The target's features, which the CPU must have to run this file's code.
#define CNN_TARGET_FEATURES \
  (cpu::kAvx2 | cpu::kFma | cpu::kBmi | cpu::kBmi2 | cpu::kLzcnt | cpu::kPopcnt)
#define CNN_KERNEL_FMA 1
#define CNN_KERNEL_ISA avx2
#include "decode.hpp"
#include "dispatch.hpp"
#include "matmat.hpp"
#include "pool.hpp"
#include "transpose_avx.hpp"

namespace cnn::kernels::avx2 {
namespace {

struct V256 {
  using reg = __m256;
  static constexpr unsigned width = 8;
  static constexpr int tile_rows = 6;
  static constexpr int tile_vectors = 2;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static __m256i mask(unsigned n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static reg load(const float* p, unsigned n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(n));
  }
  using tail = __m256i;  // the lanes of a partial vector, for loads in a loop
  static tail tail_of(unsigned n) { return mask(n); }
  static reg load(const float* p, tail m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, reg v, tail m) { _mm256_maskstore_ps(p, m, v); }
  static void store(float* p, reg v, unsigned n) {
    if (n == 8)
      _mm256_storeu_ps(p, v);
    else
      _mm256_maskstore_ps(p, mask(n), v);
  }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static void transpose8(const float* src, uint64_t lds, float* dst, uint64_t ldd) {
    transpose8x8(src, lds, dst, ldd);
  }
};

inline float hsum(__m256 s) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// The codebook (k <= 2^Bits entries, zero-padded) looked up 8 indices at a time: vpermps on
// 8-entry tables and blends on the higher index bits for Bits <= 6; a gather beyond.
template <int Bits>
struct Lut {
  static constexpr int kTables = Bits <= 3 ? 1 : 1 << (Bits - 3);
  static constexpr bool kRegisters = Bits <= 6;
  alignas(32) float pad[8 * kTables] = {};
  __m256 t[kRegisters ? kTables : 1];
  Lut(const float* codebook, uint32_t k) {
    std::memcpy(pad, codebook, std::min<uint32_t>(k, 8 * kTables) * sizeof(float));
    if constexpr (kRegisters)
      for (int i = 0; i < kTables; ++i) t[i] = _mm256_load_ps(pad + 8 * i);
  }
  __m256 operator()(__m256i idx) const {
    if constexpr (!kRegisters) {
      return _mm256_i32gather_ps(pad, idx, 4);
    } else {
      __m256 v[kTables];
      for (int p = 0; p < kTables; ++p) v[p] = _mm256_permutevar8x32_ps(t[p], idx);
      for (int n = kTables, bit = 3; n > 1; n /= 2, ++bit) {
        __m256 hi = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 31 - bit));
        for (int p = 0; p < n / 2; ++p) v[p] = _mm256_blendv_ps(v[2 * p], v[2 * p + 1], hi);
      }
      return v[0];
    }
  }
};

inline __m256i bytes8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

inline __m256i field(__m256i v, unsigned shift, int mask) {
  return _mm256_and_si256(_mm256_srl_epi32(v, _mm_cvtsi32_si128(int(shift))), _mm256_set1_epi32(mask));
}

// IndexMap: 8 indices, lanes 8h..8h+7 of chunk f (0..7) of a 128-entry group.
template <int Bits>
inline __m256i im_idx8(const uint8_t* group, unsigned f, unsigned h) {
  __m256i idx = _mm256_setzero_si256();
  if constexpr (Bits == 0) return idx;  // k = 1: no planes (group may be null)
  const uint8_t* plane = group + 8 * h;
  if constexpr (Bits == 8) idx = bytes8(plane + f * 16);
  if constexpr (Bits != 8 && (Bits & 4)) {
    idx = field(bytes8(plane + (f / 2) * 16), (f & 1) * 4, 15);
    plane += 64;
  }
  if constexpr (Bits != 8 && (Bits & 2)) {
    const __m256i two = field(bytes8(plane + (f / 4) * 16), (f & 3) * 2, 3);
    idx = _mm256_or_si256(idx, _mm256_slli_epi32(two, Bits & 4));
    plane += 32;
  }
  if constexpr (Bits != 8 && (Bits & 1))
    idx = _mm256_or_si256(idx, _mm256_slli_epi32(field(bytes8(plane), f, 1), Bits & 6));
  return idx;
}

// Weights of flat entries [p, p + 16) (p a multiple of 16) as two vectors.
template <int Bits>
inline void im_weights16(const IMView& v, const Lut<Bits>& lut, uint64_t p, __m256& w0,
                         __m256& w1) {
  const uint8_t* group = v.packed + (p >> 7) * 16 * Bits;
  unsigned f = unsigned(p >> 4) & 7;
  w0 = lut(im_idx8<Bits>(group, f, 0));
  w1 = lut(im_idx8<Bits>(group, f, 1));
}

// R rows whose entries start on 16-entry chunks: one load of x serves all R rows.
template <int Bits, int R>
inline void im_rows_aligned(const IMView& v, const Lut<Bits>& lut, const float* x, float* y,
                            uint64_t i) {
  __m256 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  const RowsAhead<Bits, R> ahead(v, i + R);
  for (uint64_t c = 0; c < v.cols; c += 16) {
    __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
    for (int r = 0; r < R; ++r) {
      __m256 w0, w1;
      if constexpr (Lut<Bits>::kRegisters) ahead(r, c);  // (gathers set the pace, not memory)
      im_weights16<Bits>(v, lut, (i + r) * v.cols + c, w0, w1);
      a0[r] = _mm256_fmadd_ps(w0, x0, a0[r]);
      a1[r] = _mm256_fmadd_ps(w1, x1, a1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[i + r] = hsum(_mm256_add_ps(a0[r], a1[r]));
}

// Weights of entries [p, p + n) as floats (any alignment).
template <int Bits>
void im_expand(const IMView& v, const Lut<Bits>& lut, uint64_t p, uint64_t n, float* out) {
  alignas(32) float w[16];
  const uint64_t e = p + n;
  for (uint64_t q = p & ~uint64_t(15); q < e; q += 16) {
    __m256 w0, w1;
    im_weights16<Bits>(v, lut, q, w0, w1);
    if (q >= p && q + 16 <= e) {  // whole chunks straight out (a memcpy each cost ~30%)
      _mm256_storeu_ps(out + (q - p), w0);
      _mm256_storeu_ps(out + (q - p) + 8, w1);
      continue;
    }
    _mm256_store_ps(w, w0);
    _mm256_store_ps(w + 8, w1);
    uint64_t lo = q < p ? p - q : 0, hi = std::min<uint64_t>(16, e - q);
    std::copy(w + lo, w + hi, out + (q + lo - p));
  }
}

// 8 < k <= 64: the codebook as four byte planes (byte b of every float) in 16-entry tables, so
// vpshufb looks up 32 indices per plane and table (blends pick the table for k > 16);
// interleaving the planes gives back the floats in the order [0-3 | 16-19], [4-7 | 20-23],
// [8-11 | 24-27], [12-15 | 28-31] (unpacks stay in their 128-bit lane), and x is permuted
// into that order once per call.  Measured at 8192^2, 2 threads: k=16 8.4 -> 4.1-4.7 ms,
// k=32 15.9 -> 8.1 ms, k=64 30.6 -> 10.7 ms against vpermps on 8-entry tables and blends.
template <int Bits>
struct PlaneLut {
  static constexpr int kTables = Bits <= 4 ? 1 : 1 << (Bits - 4);
  __m256i table[4][kTables];
  PlaneLut(const float* codebook, uint32_t k) {
    alignas(16) uint8_t bytes[4][16 * kTables] = {};
    for (uint32_t e = 0; e < std::min<uint32_t>(k, 16 * kTables); ++e) {
      uint32_t bits;
      std::memcpy(&bits, codebook + e, 4);
      for (int b = 0; b < 4; ++b) bytes[b][e] = uint8_t(bits >> (8 * b));
    }
    for (int b = 0; b < 4; ++b)
      for (int t = 0; t < kTables; ++t)
        table[b][t] = _mm256_broadcastsi128_si256(
            _mm_load_si128(reinterpret_cast<__m128i*>(bytes[b] + 16 * t)));
  }
  // The 32 byte indices of entries [p, p + 32), p a multiple of 32 (chunks f, f + 1 of a
  // 128-entry group, index_map.hpp), entries 0-15 in the low lane.
  static __m256i indices(const IMView& v, uint64_t p) {
    const uint8_t* plane = v.packed + (p >> 7) * 16 * Bits;
    const int f = int(p >> 4) & 7;
    auto bits = [](__m128i b, int shift, int mask) {
      return _mm_and_si128(_mm_srl_epi16(b, _mm_cvtsi32_si128(shift)), _mm_set1_epi8(char(mask)));
    };
    auto load = [](const uint8_t* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
    __m256i idx = _mm256_setzero_si256();
    if constexpr (Bits & 4) {
      __m128i b = load(plane + (f / 2) * 16);
      idx = _mm256_set_m128i(bits(b, 4, 15), bits(b, 0, 15));
      plane += 64;
    }
    if constexpr (Bits & 2) {
      __m128i b = load(plane + (f / 4) * 16);
      __m256i two = _mm256_set_m128i(bits(b, ((f + 1) & 3) * 2, 3), bits(b, (f & 3) * 2, 3));
      idx = _mm256_or_si256(idx, _mm256_slli_epi16(two, Bits & 4));  // values < 4: no carry
      plane += 32;
    }
    if constexpr (Bits & 1) {
      __m128i b = load(plane);
      __m256i one = _mm256_set_m128i(bits(b, f + 1, 1), bits(b, f, 1));
      idx = _mm256_or_si256(idx, _mm256_slli_epi16(one, Bits & 6));
    }
    return idx;
  }
  __m256i lookup(int b, __m256i idx) const {
    __m256i r[kTables];
    for (int t = 0; t < kTables; ++t) r[t] = _mm256_shuffle_epi8(table[b][t], idx);
    // index bit 4 (then 5) moved to each byte's bit 7, where vpblendvb reads it
    for (int n = kTables, shift = 3; n > 1; n /= 2, --shift) {
      __m256i hi = _mm256_slli_epi16(idx, shift);
      for (int t = 0; t < n / 2; ++t) r[t] = _mm256_blendv_epi8(r[2 * t], r[2 * t + 1], hi);
    }
    return r[0];
  }
  void operator()(__m256i idx, __m256 out[4]) const {
    __m256i b0 = lookup(0, idx), b1 = lookup(1, idx), b2 = lookup(2, idx), b3 = lookup(3, idx);
    __m256i l01 = _mm256_unpacklo_epi8(b0, b1), h01 = _mm256_unpackhi_epi8(b0, b1);
    __m256i l23 = _mm256_unpacklo_epi8(b2, b3), h23 = _mm256_unpackhi_epi8(b2, b3);
    out[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(l01, l23));
    out[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(l01, l23));
    out[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(h01, h23));
    out[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(h01, h23));
  }
};

// x in PlaneLut's order, 32 entries at a time (n a multiple of 32).
inline void plane_order(const float* x, uint64_t n, float* out) {
  for (uint64_t c = 0; c < n; c += 32, out += 32)
    for (int q = 0; q < 4; ++q)
      for (int t = 0; t < 4; ++t) {
        out[8 * q + t] = x[c + 4 * q + t];
        out[8 * q + 4 + t] = x[c + 16 + 4 * q + t];
      }
}

template <int Bits, int R>
inline void im_rows_planes(const IMView& v, const PlaneLut<Bits>& lut, const float* xp, float* y,
                           uint64_t i) {
  __m256 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  const RowsAhead<Bits, R> ahead(v, i + R);
  for (uint64_t c = 0; c < v.cols; c += 32) {
    for (int r = 0; r < R; ++r) {
      __m256 w[4];
      ahead(r, c);
      lut(PlaneLut<Bits>::indices(v, (i + r) * v.cols + c), w);
      a0[r] = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xp + c), a0[r]);
      a1[r] = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xp + c + 8), a1[r]);
      a0[r] = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xp + c + 16), a0[r]);
      a1[r] = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xp + c + 24), a1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[i + r] = hsum(_mm256_add_ps(a0[r], a1[r]));
}

// 9 <= k <= 16, n_cols % 64 == 0: 32 bytes hold the 4-bit indices of 64 entries (index_map.hpp:
// entry 32b + 16h + t at nibble h of byte 16b + t).  Shifting the 8 dwords right by 4q puts
// the nibble of entry 32(L / 4) + 16(q & 1) + 4(L % 4) + q / 2 in lane L's low bits, where
// vpermps reads 3 of them, and a left shift moves its bit 3 to the sign bit that picks the
// second 8-entry table; x is permuted into that order once per call.  2 shuffles, 2 shifts
// and a blend per 8 weights against 3.25 shuffles through PlaneLut: 360x2048 47 -> 39 us on
// Zen 5, one thread.
struct NibbleLut {
  __m256 lo, hi;
  explicit NibbleLut(const float* codebook, uint32_t k) {
    alignas(32) float pad[16] = {};
    std::memcpy(pad, codebook, std::min<uint32_t>(k, 16) * sizeof(float));
    lo = _mm256_load_ps(pad);
    hi = _mm256_load_ps(pad + 8);
  }
  template <int Q>
  __m256 weights(__m256i z) const {
    const __m256i idx = Q ? _mm256_srli_epi32(z, 4 * Q) : z;
    const __m256i pick = Q < 7 ? _mm256_slli_epi32(z, 28 - 4 * Q) : z;
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                            _mm256_castsi256_ps(pick));
  }
};

// x in NibbleLut's order, 64 entries at a time (n a multiple of 64).
inline void nibble_order(const float* x, uint64_t n, float* out) {
  for (uint64_t c = 0; c < n; c += 64, out += 64)
    for (int q = 0; q < 8; ++q)
      for (int lane = 0; lane < 8; ++lane)
        out[8 * q + lane] = x[c + 32 * (lane / 4) + 16 * (q & 1) + 4 * (lane % 4) + q / 2];
}

template <int R>
inline void im_rows_nibbles(const IMView& v, const NibbleLut& lut, const float* xp, float* y,
                            uint64_t i) {
  __m256 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  const RowsAhead<4, R> ahead(v, i + R);
  auto step = [&](auto q, __m256i z, const float* xq, __m256& acc) {
    acc = _mm256_fmadd_ps(lut.weights<decltype(q)::value>(z), _mm256_loadu_ps(xq + 8 * q), acc);
  };
  using std::integral_constant;
  for (uint64_t c = 0; c < v.cols; c += 64) {
    for (int r = 0; r < R; ++r) {
      const __m256i z = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(v.packed + ((i + r) * v.cols + c) / 2));
      ahead(r, c);
      step(integral_constant<int, 0>(), z, xp + c, a0[r]);
      step(integral_constant<int, 1>(), z, xp + c, a1[r]);
      step(integral_constant<int, 2>(), z, xp + c, a0[r]);
      step(integral_constant<int, 3>(), z, xp + c, a1[r]);
      step(integral_constant<int, 4>(), z, xp + c, a0[r]);
      step(integral_constant<int, 5>(), z, xp + c, a1[r]);
      step(integral_constant<int, 6>(), z, xp + c, a0[r]);
      step(integral_constant<int, 7>(), z, xp + c, a1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[i + r] = hsum(_mm256_add_ps(a0[r], a1[r]));
}

template <int Bits>
void im_matvec_b(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  uint64_t i = r0;
  if constexpr (Bits == 4) {
    if (v.cols % 64 == 0) {
      const NibbleLut lut(v.codebook, v.k);
      std::vector<float> xp(v.cols);
      nibble_order(x, v.cols, xp.data());
      for (; i + 4 <= r1; i += 4) im_rows_nibbles<4>(v, lut, xp.data(), y, i);
      for (; i < r1; ++i) im_rows_nibbles<1>(v, lut, xp.data(), y, i);
      return;
    }
  }
  if constexpr (Bits >= 4 && Bits <= 6) {  // (fewer bits: vpermps on one 8-entry table is as fast)
    if (v.cols % 32 == 0) {
      const PlaneLut<Bits> lut(v.codebook, v.k);
      std::vector<float> xp(v.cols);
      plane_order(x, v.cols, xp.data());
      for (; i + 2 <= r1; i += 2) im_rows_planes<Bits, 2>(v, lut, xp.data(), y, i);
      for (; i < r1; ++i) im_rows_planes<Bits, 1>(v, lut, xp.data(), y, i);
      return;
    }
  }
  const Lut<Bits> lut(v.codebook, v.k);
  if (v.cols % 16 == 0) {
    for (; i + 4 <= r1; i += 4) im_rows_aligned<Bits, 4>(v, lut, x, y, i);
    for (; i < r1; ++i) im_rows_aligned<Bits, 1>(v, lut, x, y, i);
    return;
  }
  std::vector<float> w(v.cols);
  for (; i < r1; ++i) {
    im_expand<Bits>(v, lut, i * v.cols, v.cols, w.data());
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (uint64_t j = 0; j < v.cols; j += 8) {
      unsigned m = unsigned(std::min<uint64_t>(8, v.cols - j));
      acc[(j >> 3) & 1] = _mm256_fmadd_ps(V256::load(w.data() + j, m), V256::load(x + j, m), acc[(j >> 3) & 1]);
    }
    y[i] = hsum(_mm256_add_ps(acc[0], acc[1]));
  }
}

// HAM with k <= 256: decode a row to byte indices, then look them up 8 at a time.
template <int Bits>
inline float dot_bytes(const Lut<Bits>& lut, const uint8_t* idx, const float* x, uint64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  uint64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    a0 = _mm256_fmadd_ps(lut(bytes8(idx + j)), _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(lut(bytes8(idx + j + 8)), _mm256_loadu_ps(x + j + 8), a1);
  }
  for (; j < n; j += 8) {  // the row buffer has slack past n
    unsigned m = unsigned(std::min<uint64_t>(8, n - j));
    a0 = _mm256_fmadd_ps(lut(bytes8(idx + j)), V256::load(x + j, m), a0);
  }
  return hsum(_mm256_add_ps(a0, a1));
}

}  // namespace
}  // namespace cnn::kernels::avx2

#include "lanes_simd.hpp"  // after Lut, which its lookups use

namespace cnn::kernels::avx2 {
namespace {

// The instructions lanes_simd.hpp asks for, 8 lanes per vector; a mask is a vector of
// all-ones or zero elements.
struct LaneOps256 {
  using vi = __m256i;
  using table8 = vi;  // permute8's 8 entries
  using vf = __m256;
  using mask = __m256i;
  static constexpr unsigned width = 8;
  static constexpr bool gather_tables = true;
  static vi set1(int32_t a) { return _mm256_set1_epi32(a); }
  static vf set1_f(float a) { return _mm256_set1_ps(a); }
  static vi loadu(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static vf loadu_f(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(uint32_t* p, vi a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), a); }
  static void storeu_f(float* p, vf a) { _mm256_storeu_ps(p, a); }
  static vi add(vi a, vi b) { return _mm256_add_epi32(a, b); }
  static vi sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
  static vi and_(vi a, vi b) { return _mm256_and_si256(a, b); }
  static vi or_(vi a, vi b) { return _mm256_or_si256(a, b); }
  static vi srli(vi a, int n) { return _mm256_srli_epi32(a, n); }
  static vi sllv(vi a, vi n) { return _mm256_sllv_epi32(a, n); }
  static vi srlv(vi a, vi n) { return _mm256_srlv_epi32(a, n); }
  static vi gather(const uint32_t* t, vi i) {
    return _mm256_i32gather_epi32(reinterpret_cast<const int*>(t), i, 4);
  }
  static vf gather_f(const float* t, vi i) { return _mm256_i32gather_ps(t, i, 4); }
  static vf gather_x(const float* x, vi i, mask m) {
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), x, i, _mm256_castsi256_ps(m), 4);
  }
  static vf fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
  static vi load8(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static vi permute8(vi table, vi i) { return _mm256_permutevar8x32_epi32(table, i); }
  static vi as_int(vf a) { return _mm256_castps_si256(a); }
  // (a[i], b[i]) pairs for i = 0..7 at p[0..15].
  static void store_pairs(uint32_t* p, vi a, vf b) {
    const __m256i lo = _mm256_unpacklo_epi32(a, _mm256_castps_si256(b));
    const __m256i hi = _mm256_unpackhi_epi32(a, _mm256_castps_si256(b));
    storeu(p, _mm256_permute2x128_si256(lo, hi, 0x20));
    storeu(p + 8, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
  static vi add_if_greater(vi n, vi a, vi b) { return _mm256_sub_epi32(n, _mm256_cmpgt_epi32(a, b)); }
  static mask positive(vi a) { return _mm256_cmpgt_epi32(a, _mm256_setzero_si256()); }
  static bool any(mask m) { return !_mm256_testz_si256(m, m); }
  static vi masked(vi a, mask m) { return _mm256_and_si256(a, m); }
  static vi dec(vi a, mask m) { return _mm256_add_epi32(a, m); }
  static unsigned zero_in(vi a, mask m) {
    const __m256i z = _mm256_and_si256(m, _mm256_cmpeq_epi32(a, _mm256_setzero_si256()));
    return unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(z)));
  }
  // Lanes past 32 bits move to their next word; the words come from p in lane order.
  static void refill(vi& buf, vi& nxt, vi& pos, const uint32_t*& p) {
    const __m256i m = _mm256_cmpgt_epi32(pos, _mm256_set1_epi32(31));
    const unsigned bits = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(m)));
    const __m256i to = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kExpand.at[bits])));
    const __m256i words = _mm256_permutevar8x32_epi32(loadu(p), to);
    buf = _mm256_blendv_epi8(buf, nxt, m);
    nxt = _mm256_blendv_epi8(nxt, words, m);
    pos = _mm256_sub_epi32(pos, _mm256_and_si256(m, _mm256_set1_epi32(32)));
    p += __builtin_popcount(bits);
  }
  // For each 8-bit mask, the element of the loaded words each lane takes: lane j, if set,
  // the number of set lanes below it.
  struct Expand {
    uint8_t at[256][8];
    Expand() {
      for (unsigned b = 0; b < 256; ++b)
        for (unsigned j = 0; j < 8; ++j) at[b][j] = uint8_t(__builtin_popcount(b & ((1u << j) - 1)));
    }
  };
  static const Expand kExpand;
};
const LaneOps256::Expand LaneOps256::kExpand;

using Vec = V256;

// b where b > a or b is NaN, lane by lane (pool.hpp's max_nan).
inline __m256 max_nan(__m256 a, __m256 b) {
  return _mm256_blendv_ps(
      a, b, _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_GT_OQ), _mm256_cmp_ps(b, b, _CMP_UNORD_Q)));
}

// Eight outputs at a time: each input row's 16 floats in two registers, even and odd columns
// split by shuffles within 128-bit halves (outputs 0 1 4 5 | 2 3 6 7), put in order once at
// the end.
void max_pool2(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y) {
  max_pool2_rows(x, planes, h, w, y, [](const float* r0, const float* r1, float* out,
                                        uint64_t wo) {
    for (uint64_t ox = 0; ox < wo; ox += 8) {
      const unsigned n = unsigned(std::min<uint64_t>(8, wo - ox));  // outputs, 2n inputs
      const unsigned lo = std::min(8u, 2 * n), hi = 2 * n - lo;
      const float* rows[2] = {r0, r1};
      __m256 m[2];
      for (int k = 0; k < 2; ++k) {
        const __m256 a = V256::load(rows[k] + 2 * ox, lo), b = V256::load(rows[k] + 2 * ox + 8, hi);
        m[k] = max_nan(_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xDD));
      }
      const __m256 pairs = max_nan(m[0], m[1]);
      V256::store(out + ox, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), 0xD8)),
                  n);
    }
  });
}

}  // namespace
}  // namespace cnn::kernels::avx2

#include "entry_points.hpp"
#include "fixed_avx2.hpp"

namespace cnn::kernels {

const KernelSet avx2_kernels = avx2::kernel_set<avx2::LaneOps256>(
    "avx2", CNN_TARGET_FEATURES, FixedMatvec(avx2::fixed_matvec), FixedMatmat(avx2::fixed_matmat));

}  // namespace cnn::kernels

#endif  // x86
