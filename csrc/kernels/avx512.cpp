// AVX-512 kernels (F, BW, VL with BMI2): codebook lookups held in registers (vpermps,
// vpermt2ps and blends, never a gather), several rows per pass, masked tails.
//
// Built with COMPACTNN_EMULATE_AVX512 (a test build only), the same source compiles against
// SIMDe's portable AVX-512 intrinsics on an AVX2 target, so its logic can be checked against
// the scalar kernels on a CPU without AVX-512.
#if defined(__x86_64__) || defined(__i386__)  // x86 only (CNN_X86_KERNELS, dispatch.hpp)
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

// The target pragma comes after the standard headers so none of their inline code is
// compiled for AVX-512 (the linker could pick that copy for the whole program).
// CNN_TARGET_FEATURES: the target's features, which the CPU must have to run this file's
// code (dispatch.hpp).
#ifdef CNN_EMULATE_AVX512
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include "avx512_emulation.hpp"
#pragma GCC target("avx2,fma,bmi,bmi2,lzcnt,popcnt")
#define CNN_TARGET_FEATURES \
  (cpu::kAvx2 | cpu::kFma | cpu::kBmi | cpu::kBmi2 | cpu::kLzcnt | cpu::kPopcnt)
#else
#include <immintrin.h>
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,bmi,bmi2,lzcnt,popcnt")
#define CNN_TARGET_FEATURES \
  (cpu::kAvx512f | cpu::kAvx512bw | cpu::kAvx512vl | cpu::kAvx2 | cpu::kFma | cpu::kBmi | \
   cpu::kBmi2 | cpu::kLzcnt | cpu::kPopcnt)
#endif
#define CNN_KERNEL_FMA 1
#define CNN_KERNEL_ISA avx512
#include "decode.hpp"
#include "dispatch.hpp"
#include "matmat.hpp"
#include "pool.hpp"
#include "transpose_avx.hpp"

namespace cnn::kernels::avx512 {
namespace {

struct V512 {
  using reg = __m512;
  static constexpr unsigned width = 16;
  static constexpr int tile_rows = 6;
  static constexpr int tile_vectors = 4;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static __mmask16 mask(unsigned n) { return __mmask16((1u << n) - 1); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static reg load(const float* p, unsigned n) {
    return n == 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask(n), p);
  }
  using tail = __mmask16;  // the lanes of a partial vector, for loads in a loop
  static tail tail_of(unsigned n) { return mask(n); }
  static reg load(const float* p, tail m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, reg v, tail m) { _mm512_mask_storeu_ps(p, m, v); }
  static void store(float* p, reg v, unsigned n) {
    if (n == 16)
      _mm512_storeu_ps(p, v);
    else
      _mm512_mask_storeu_ps(p, mask(n), v);
  }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static void transpose8(const float* src, uint64_t lds, float* dst, uint64_t ldd) {
    transpose8x8(src, lds, dst, ldd);
  }
};

// The codebook (k <= 2^Bits entries, zero-padded) in registers; looks up 16 indices at once.
template <int Bits>
struct Lut {
  static constexpr int kTables = Bits <= 4 ? 1 : 1 << (Bits - 4);
  __m512 t[kTables];
  Lut(const float* codebook, uint32_t k) {
    alignas(64) float pad[16 * kTables] = {};
    std::memcpy(pad, codebook, std::min<uint32_t>(k, 16 * kTables) * sizeof(float));
    for (int i = 0; i < kTables; ++i) t[i] = _mm512_load_ps(pad + 16 * i);
  }
  __m512 operator()(__m512i idx) const {
    if constexpr (Bits <= 4) {
      return _mm512_permutexvar_ps(idx, t[0]);
    } else {
      // vpermt2ps picks from 32 entries by bits 0-4; blends on bits 5, 6, 7 pick the 32.
      __m512 v[kTables / 2];
      for (int p = 0; p < kTables / 2; ++p) v[p] = _mm512_permutex2var_ps(t[2 * p], idx, t[2 * p + 1]);
      for (int n = kTables / 2, bit = 5; n > 1; n /= 2, ++bit) {
        __mmask16 hi = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(1 << bit));
        for (int p = 0; p < n / 2; ++p) v[p] = _mm512_mask_blend_ps(hi, v[2 * p], v[2 * p + 1]);
      }
      return v[0];
    }
  }
};

inline __m512i bytes16(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m512i field(__m512i v, unsigned shift, int mask) {
  return _mm512_and_si512(_mm512_srl_epi32(v, _mm_cvtsi32_si128(int(shift))), _mm512_set1_epi32(mask));
}

// IndexMap: the 16 indices of chunk f (0..7) of a 128-entry group (index_map.hpp).
template <int Bits>
inline __m512i im_idx16(const uint8_t* group, unsigned f) {
  __m512i idx = _mm512_setzero_si512();
  const uint8_t* plane = group;
  if constexpr (Bits == 8) idx = bytes16(plane + f * 16);
  if constexpr (Bits != 8 && (Bits & 4)) {
    idx = field(bytes16(plane + (f / 2) * 16), (f & 1) * 4, 15);
    plane += 64;
  }
  if constexpr (Bits != 8 && (Bits & 2)) {
    __m512i v = field(bytes16(plane + (f / 4) * 16), (f & 3) * 2, 3);
    idx = _mm512_or_si512(idx, _mm512_slli_epi32(v, Bits & 4));
    plane += 32;
  }
  if constexpr (Bits != 8 && (Bits & 1)) {
    __m512i v = field(bytes16(plane), f, 1);
    idx = _mm512_or_si512(idx, _mm512_slli_epi32(v, Bits & 6));
  }
  return idx;
}

template <int Bits>
inline __m512 im_weights16(const IMView& v, const Lut<Bits>& lut, uint64_t p) {
  return lut(im_idx16<Bits>(v.packed + (p >> 7) * 16 * Bits, unsigned(p >> 4) & 7));
}

// R rows whose entries start on 16-entry chunks (cols % 16 == 0): one load of x serves
// all R rows; two accumulators per row, chunk pairs alternating between them.
template <int Bits, int R>
inline void im_rows_aligned(const IMView& v, const Lut<Bits>& lut, const float* x, float* y,
                            uint64_t i) {
  __m512 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  const uint64_t n = v.cols;
  const RowsAhead<Bits, R> ahead(v, i + R);
  uint64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
    for (int r = 0; r < R; ++r) {
      uint64_t p = (i + r) * n + c;
      ahead(r, c);
      a0[r] = _mm512_fmadd_ps(im_weights16<Bits>(v, lut, p), x0, a0[r]);
      a1[r] = _mm512_fmadd_ps(im_weights16<Bits>(v, lut, p + 16), x1, a1[r]);
    }
  }
  if (c < n) {
    __m512 x0 = _mm512_loadu_ps(x + c);
    for (int r = 0; r < R; ++r)
      a0[r] = _mm512_fmadd_ps(im_weights16<Bits>(v, lut, (i + r) * n + c), x0, a0[r]);
  }
  for (int r = 0; r < R; ++r) y[i + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

// Any cols: one row, chunks clipped to the row with masks.
template <int Bits>
inline float im_row_masked(const IMView& v, const Lut<Bits>& lut, const float* x, uint64_t i) {
  const uint64_t s = i * v.cols, e = s + v.cols;
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  unsigned n = 0;
  for (uint64_t q = s & ~uint64_t(15); q < e; q += 16, ++n) {
    unsigned lo = q < s ? unsigned(s - q) : 0, hi = unsigned(std::min<uint64_t>(16, e - q));
    __mmask16 m = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
    // x index of lane 0 is q - s, negative on the first chunk; masked lanes are not read.
    const float* xq = reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(x) +
                                                     (q - s) * sizeof(float));
    __m512 xv = _mm512_maskz_loadu_ps(m, xq);
    acc[n & 1] = _mm512_fmadd_ps(im_weights16<Bits>(v, lut, q), xv, acc[n & 1]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
}

// 9 <= k <= 16 (4-bit indices), n_cols % 32 == 0: 16 bytes hold the indices of 32 entries
// (low nibbles, then high), widened once; vpermps reads only an index's low 4 bits, so the
// low nibbles need no mask and the high ones one shift: about 0.25 instructions a weight
// against 0.4 through im_idx16.
template <int R>
inline void im_rows_nibbles(const IMView& v, const Lut<4>& lut, const float* x, float* y,
                            uint64_t i) {
  __m512 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  const RowsAhead<4, R> ahead(v, i + R);
  for (uint64_t c = 0; c < v.cols; c += 32) {
    __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
    for (int r = 0; r < R; ++r) {
      const uint64_t p = (i + r) * v.cols + c;
      ahead(r, c);
      __m512i z = bytes16(v.packed + (p >> 7) * 64 + ((p >> 5) & 3) * 16);
      a0[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(z, lut.t[0]), x0, a0[r]);
      a1[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(z, 4), lut.t[0]), x1,
                              a1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[i + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

template <int Bits>
void im_matvec_b(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  if (Bits >= 7 && v.cols % 64 == 0 && vbmi_available())
    return im_matvec_vbmi(v, x, y, r0, r1);
  const Lut<Bits> lut(v.codebook, v.k);
  uint64_t i = r0;
  if constexpr (Bits == 4) {
    if (v.cols % 32 == 0) {
      for (; i + 4 <= r1; i += 4) im_rows_nibbles<4>(v, lut, x, y, i);
      for (; i < r1; ++i) im_rows_nibbles<1>(v, lut, x, y, i);
      return;
    }
  }
  if (v.cols % 16 == 0) {
    for (; i + 4 <= r1; i += 4) im_rows_aligned<Bits, 4>(v, lut, x, y, i);
    for (; i < r1; ++i) im_rows_aligned<Bits, 1>(v, lut, x, y, i);
  } else {
    for (; i < r1; ++i) y[i] = im_row_masked<Bits>(v, lut, x, i);
  }
}

// Weights of entries [p, p + n) as floats, for the matmat blocks.
template <int Bits>
void im_expand(const IMView& v, const Lut<Bits>& lut, uint64_t p, uint64_t n, float* out) {
  const uint64_t e = p + n;
  for (uint64_t q = p & ~uint64_t(15); q < e; q += 16) {
    unsigned lo = q < p ? unsigned(p - q) : 0, hi = unsigned(std::min<uint64_t>(16, e - q));
    __mmask16 m = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
    float* oq = reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(out) + (q - p) * sizeof(float));
    _mm512_mask_storeu_ps(oq, m, im_weights16<Bits>(v, lut, q));
  }
}

// HAM with k <= 256: decode a row to byte indices, then look them up 16 at a time.
template <int Bits>
inline float dot_bytes(const Lut<Bits>& lut, const uint8_t* idx, const float* x, uint64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  uint64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    a0 = _mm512_fmadd_ps(lut(bytes16(idx + j)), _mm512_loadu_ps(x + j), a0);
    a1 = _mm512_fmadd_ps(lut(bytes16(idx + j + 16)), _mm512_loadu_ps(x + j + 16), a1);
  }
  for (; j < n; j += 16) {
    unsigned m = unsigned(std::min<uint64_t>(16, n - j));
    __m512 w = lut(bytes16(idx + j));  // the row buffer has 16 bytes of slack
    a0 = _mm512_fmadd_ps(w, V512::load(x + j, m), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

}  // namespace
}  // namespace cnn::kernels::avx512

#include "lanes_simd.hpp"  // after Lut, which its lookups use

namespace cnn::kernels::avx512 {
namespace {

// The instructions lanes_simd.hpp asks for: one vector holds a group's 16 lanes, a refill
// is one expand-load.
struct LaneOps512 {
  using vi = __m512i;
  using table8 = vi;  // permute8's 8 entries
  using vf = __m512;
  using mask = __mmask16;
  static constexpr unsigned width = 16;
  static constexpr bool gather_tables = false;
  static vi set1(int32_t a) { return _mm512_set1_epi32(a); }
  static vf set1_f(float a) { return _mm512_set1_ps(a); }
  static vi loadu(const uint32_t* p) { return _mm512_loadu_si512(p); }
  static vf loadu_f(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(uint32_t* p, vi a) { _mm512_storeu_si512(p, a); }
  static void storeu_f(float* p, vf a) { _mm512_storeu_ps(p, a); }
  static vi add(vi a, vi b) { return _mm512_add_epi32(a, b); }
  static vi sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
  static vi and_(vi a, vi b) { return _mm512_and_si512(a, b); }
  static vi or_(vi a, vi b) { return _mm512_or_si512(a, b); }
  static vi srli(vi a, unsigned n) { return _mm512_srli_epi32(a, n); }
  static vi sllv(vi a, vi n) { return _mm512_sllv_epi32(a, n); }
  static vi srlv(vi a, vi n) { return _mm512_srlv_epi32(a, n); }
  static vf gather_x(const float* x, vi i, mask m) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, i, x, 4);
  }
  static vf fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
  static vi load8(const int32_t* p) {
    // The upper half stays undefined: permute8 reads elements 0..7 only.
    return _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static vi permute8(vi table, vi i) { return _mm512_permutexvar_epi32(i, table); }
  static vi as_int(vf a) { return _mm512_castps_si512(a); }
  // (a[i], b[i]) pairs for i = 0..15 at p[0..31].
  static void store_pairs(uint32_t* p, vi a, vf b) {
    const __m512i bi = _mm512_castps_si512(b);
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    storeu(p, _mm512_permutex2var_epi32(a, lo, bi));
    storeu(p + 16, _mm512_permutex2var_epi32(a, hi, bi));
  }
  static vi add_if_greater(vi n, vi a, vi b) {
    return _mm512_mask_add_epi32(n, _mm512_cmpgt_epi32_mask(a, b), n, _mm512_set1_epi32(1));
  }
  static mask positive(vi a) { return _mm512_cmpgt_epi32_mask(a, _mm512_setzero_si512()); }
  static bool any(mask m) { return m != 0; }
  static vi masked(vi a, mask m) { return _mm512_maskz_mov_epi32(m, a); }
  static vi dec(vi a, mask m) { return _mm512_mask_sub_epi32(a, m, a, _mm512_set1_epi32(1)); }
  static unsigned zero_in(vi a, mask m) {
    return _mm512_mask_cmpeq_epi32_mask(m, a, _mm512_setzero_si512());
  }
  static void refill(vi& buf, vi& nxt, vi& pos, const uint32_t*& p) {
    const __mmask16 m = _mm512_cmpgt_epi32_mask(pos, _mm512_set1_epi32(31));
    buf = _mm512_mask_mov_epi32(buf, m, nxt);
    nxt = _mm512_mask_expandloadu_epi32(nxt, m, p);
    pos = _mm512_mask_sub_epi32(pos, m, pos, _mm512_set1_epi32(32));
    p += __builtin_popcount(m);
  }
};

using Vec = V512;

// b where b > a or b is NaN, lane by lane (pool.hpp's max_nan).
inline __m512 max_nan(__m512 a, __m512 b) {
  return _mm512_mask_blend_ps(
      _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), a, b);
}

// Sixteen outputs at a time: each input row's 32 floats in two registers, their even and odd
// columns gathered by one two-register permute each (the compiler's own vectorisation of the
// scalar loop made ccexam's CNN 1.4x slower).
void max_pool2(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  max_pool2_rows(x, planes, h, w, y, [&](const float* r0, const float* r1, float* out,
                                         uint64_t wo) {
    for (uint64_t ox = 0; ox < wo; ox += 16) {
      const unsigned n = unsigned(std::min<uint64_t>(16, wo - ox));  // outputs, 2n inputs
      const unsigned lo = std::min(16u, 2 * n);
      const __mmask16 first = V512::mask(lo), second = V512::mask(2 * n - lo);  // no branches
      const float* rows[2] = {r0, r1};
      __m512 m[2];
      for (int k = 0; k < 2; ++k) {
        const __m512 a = _mm512_maskz_loadu_ps(first, rows[k] + 2 * ox);
        const __m512 b = _mm512_maskz_loadu_ps(second, rows[k] + 2 * ox + 16);
        m[k] = max_nan(_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b));
      }
      _mm512_mask_storeu_ps(out + ox, V512::mask(n), max_nan(m[0], m[1]));
    }
  });
}

}  // namespace
}  // namespace cnn::kernels::avx512

#include "entry_points.hpp"

namespace cnn::kernels {

// HCSR's fixed-width layout has no AVX-512 kernels yet: the AVX2 ones serve (every CPU with
// this set's features runs them).
const KernelSet avx512_kernels = avx512::kernel_set<avx512::LaneOps512>(
    "avx512", CNN_TARGET_FEATURES, FixedMatvec::of<avx2_kernels, &KernelSet::fixed_matvec>(),
    FixedMatmat::of<avx2_kernels, &KernelSet::fixed_matmat>());

}  // namespace cnn::kernels

#endif  // x86
