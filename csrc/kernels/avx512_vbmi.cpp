// AVX-512 VBMI: IndexMap matvec for 64 < k <= 256 (7- and 8-bit indices), the codebook as
// four byte planes (byte b of every float) held in registers.  vpermi2b looks up 64
// indices in a 128-byte plane (two lookups and a blend on bit 7 for k > 128); unpacks
// interleave the four looked-up planes back into floats, lane by lane, in the order
// out[q] lane L = entries 16L + 4q .. 16L + 4q + 3, and x is permuted into that order once
// per call.  About 0.5 instructions a weight for k <= 256, against 0.75 for vpermt2ps on
// 32-entry tables with a tree of blends (avx512.cpp).  Its own file: VBMI is enabled only
// here and used only where the CPU has it (dispatch.cpp).
#if defined(__x86_64__) || defined(__i386__)  // x86 only (CNN_X86_KERNELS, dispatch.hpp)
#include <algorithm>
#include <cstring>
#include <vector>

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
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vbmi,avx2,fma,bmi,bmi2,lzcnt,popcnt")
#define CNN_TARGET_FEATURES \
  (cpu::kAvx512f | cpu::kAvx512bw | cpu::kAvx512vl | cpu::kAvx512vbmi | cpu::kAvx2 | \
   cpu::kFma | cpu::kBmi | cpu::kBmi2 | cpu::kLzcnt | cpu::kPopcnt)
#endif
#include "dispatch.hpp"

namespace cnn::kernels::avx512_vbmi {
namespace {

template <int Bits>
struct BytePlanes {
  static constexpr int kRegs = Bits == 8 ? 4 : 2;  // 64-byte registers per plane
  __m512i t[4][kRegs];
  BytePlanes(const float* codebook, uint32_t k) {
    alignas(64) uint8_t bytes[4][64 * kRegs] = {};
    for (uint32_t e = 0; e < std::min<uint32_t>(k, 64 * kRegs); ++e) {
      uint32_t bits;
      std::memcpy(&bits, codebook + e, 4);
      for (int b = 0; b < 4; ++b) bytes[b][e] = uint8_t(bits >> (8 * b));
    }
    for (int b = 0; b < 4; ++b)
      for (int r = 0; r < kRegs; ++r) t[b][r] = _mm512_load_si512(bytes[b] + 64 * r);
  }

  // The 64 byte indices of entries [p, p + 64), p a multiple of 64: chunks f .. f + 3 of a
  // 128-entry group (index_map.hpp), one per 128-bit lane.
  static __m512i indices(const IMView& v, uint64_t p) {
    const uint8_t* group = v.packed + (p >> 7) * 16 * Bits;
    if constexpr (Bits == 8) return _mm512_loadu_si512(group + (p & 127));
    const int64_t f = int64_t(p >> 4) & 7;  // 0 or 4
    const __m512i pairs = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
    // nibbles: chunk pairs (f, f + 1), (f + 2, f + 3) in the low and high halves of 16 bytes
    __m512i z = _mm512_castsi256_si512(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group + (f / 2) * 16)));
    z = _mm512_srlv_epi64(_mm512_permutexvar_epi64(pairs, z),
                          _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
    __m512i idx = _mm512_and_si512(z, _mm512_set1_epi8(15));
    // 2-bit fields: chunk f + j at bits 2 * j of the same 16 bytes
    auto lanes = [](const uint8_t* q) {
      return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    };
    z = _mm512_srlv_epi64(lanes(group + 64 + (f / 4) * 16),
                          _mm512_setr_epi64(0, 0, 2, 2, 4, 4, 6, 6));
    idx = _mm512_or_si512(idx, _mm512_slli_epi16(_mm512_and_si512(z, _mm512_set1_epi8(3)), 4));
    // 1-bit fields: chunk c at bit c of 16 bytes
    z = _mm512_srlv_epi64(lanes(group + 96),
                          _mm512_setr_epi64(f, f, f + 1, f + 1, f + 2, f + 2, f + 3, f + 3));
    return _mm512_or_si512(idx, _mm512_slli_epi16(_mm512_and_si512(z, _mm512_set1_epi8(1)), 6));
  }

  __m512i plane(int b, __m512i idx, __mmask64 high) const {
    __m512i lo = _mm512_permutex2var_epi8(t[b][0], idx, t[b][1]);
    if constexpr (Bits == 7) {
      (void)high;
      return lo;
    } else {
      return _mm512_mask_blend_epi8(high, lo, _mm512_permutex2var_epi8(t[b][2], idx, t[b][3]));
    }
  }

  void operator()(__m512i idx, __m512 out[4]) const {
    const __mmask64 high = Bits == 8 ? _mm512_movepi8_mask(idx) : 0;
    __m512i b0 = plane(0, idx, high), b1 = plane(1, idx, high);
    __m512i b2 = plane(2, idx, high), b3 = plane(3, idx, high);
    __m512i l01 = _mm512_unpacklo_epi8(b0, b1), h01 = _mm512_unpackhi_epi8(b0, b1);
    __m512i l23 = _mm512_unpacklo_epi8(b2, b3), h23 = _mm512_unpackhi_epi8(b2, b3);
    out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(l01, l23));
    out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(l01, l23));
    out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(h01, h23));
    out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(h01, h23));
  }
};

// x in BytePlanes' order, 64 entries at a time (n a multiple of 64).
void plane_order(const float* x, uint64_t n, float* out) {
  for (uint64_t c = 0; c < n; c += 64, out += 64)
    for (int q = 0; q < 4; ++q)
      for (int lane = 0; lane < 4; ++lane)
        for (int t = 0; t < 4; ++t) out[16 * q + 4 * lane + t] = x[c + 16 * lane + 4 * q + t];
}

template <int Bits, int R>
void rows(const IMView& v, const BytePlanes<Bits>& lut, const float* xp, float* y, uint64_t i) {
  __m512 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  const RowsAhead<Bits, R> ahead(v, i + R);
  for (uint64_t c = 0; c < v.cols; c += 64) {
    for (int r = 0; r < R; ++r) {
      __m512 w[4];
      ahead(r, c);
      lut(BytePlanes<Bits>::indices(v, (i + r) * v.cols + c), w);
      a0[r] = _mm512_fmadd_ps(w[0], _mm512_loadu_ps(xp + c), a0[r]);
      a1[r] = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(xp + c + 16), a1[r]);
      a0[r] = _mm512_fmadd_ps(w[2], _mm512_loadu_ps(xp + c + 32), a0[r]);
      a1[r] = _mm512_fmadd_ps(w[3], _mm512_loadu_ps(xp + c + 48), a1[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[i + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

template <int Bits>
void matvec(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  const BytePlanes<Bits> lut(v.codebook, v.k);
  std::vector<float> xp(v.cols);
  plane_order(x, v.cols, xp.data());
  uint64_t i = r0;
  for (; i + 2 <= r1; i += 2) rows<Bits, 2>(v, lut, xp.data(), y, i);
  for (; i < r1; ++i) rows<Bits, 1>(v, lut, xp.data(), y, i);
}

}  // namespace
}  // namespace cnn::kernels::avx512_vbmi

namespace cnn::kernels {

const uint32_t vbmi_features = CNN_TARGET_FEATURES;

void im_matvec_vbmi(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  if (v.index_bits == 7)
    avx512_vbmi::matvec<7>(v, x, y, r0, r1);
  else
    avx512_vbmi::matvec<8>(v, x, y, r0, r1);
}

}  // namespace cnn::kernels

#endif  // x86
