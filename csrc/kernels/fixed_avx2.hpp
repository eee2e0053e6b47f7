// HCSR's fixed-width layout on AVX2: the 8 lanes of a group in one vector, kernels/fixed.hpp's
// schedule step for step.  The lanes' columns stay in general registers and x is read with 8
// scalar loads: on Zen 3 a vgatherdps of 8 floats costs about 3.8 ns, 8 loads about 2.35.
// Slots are looked up in 4 registers of 8 values (vpermps) and 3 blends on bits 3 and 4.
// Fillers have the value 0, so they add 0 * x = +0 to a sum that is never -0: an exact no-op
// unless x is inf or NaN, where the kernels mask x (v.finite says which).  TU-local;
// included by avx2.cpp.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "fixed.hpp"

namespace cnn::kernels::avx2 {
namespace {

struct FixedSlots {
  __m256 t0, t1, t2, t3;
  __m256i filler;
  explicit FixedSlots(const FixedView& v)
      : t0(_mm256_loadu_ps(v.slot_value)),
        t1(_mm256_loadu_ps(v.slot_value + 8)),
        t2(_mm256_loadu_ps(v.slot_value + 16)),
        t3(_mm256_loadu_ps(v.slot_value + 24)),
        filler(_mm256_set1_epi32(int(v.filler))) {}

  // The 8 lanes' values at a step's slot bytes; with Masked, `zero` gets the filler lanes.
  template <bool Masked>
  __m256 values(const uint8_t* s, __m256i& zero) const {
    uint32_t low;
    std::memcpy(&low, s, 4);
    const __m256i nib = _mm256_set1_epi32(int(low)), high = _mm256_set1_epi32(s[4]);
    // Lane l's nibble at the bottom (vpermps reads its low 3 bits), bit 3 and bit 4 at the top.
    const __m256i idx = _mm256_srlv_epi32(nib, _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
    const __m256 bit3 = _mm256_castsi256_ps(
        _mm256_sllv_epi32(nib, _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0)));
    const __m256i top = _mm256_sllv_epi32(high, _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24));
    const __m256 low16 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, idx),
                                          _mm256_permutevar8x32_ps(t1, idx), bit3);
    const __m256 high16 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t2, idx),
                                           _mm256_permutevar8x32_ps(t3, idx), bit3);
    if (Masked) {
      const __m256i slot = _mm256_or_si256(_mm256_and_si256(idx, _mm256_set1_epi32(15)),
                                           _mm256_and_si256(_mm256_srai_epi32(top, 31), _mm256_set1_epi32(16)));
      zero = _mm256_cmpeq_epi32(slot, filler);
    }
    return _mm256_blendv_ps(low16, high16, _mm256_castsi256_ps(top));
  }
};

// x at the 8 lanes' columns.
inline __m256 fixed_x(const float* x, const uint64_t* c) {
  __m128 lo = _mm_load_ss(x + c[0]), hi = _mm_load_ss(x + c[4]);
  lo = _mm_insert_ps(lo, _mm_load_ss(x + c[1]), 0x10);
  hi = _mm_insert_ps(hi, _mm_load_ss(x + c[5]), 0x10);
  lo = _mm_insert_ps(lo, _mm_load_ss(x + c[2]), 0x20);
  hi = _mm_insert_ps(hi, _mm_load_ss(x + c[6]), 0x20);
  lo = _mm_insert_ps(lo, _mm_load_ss(x + c[3]), 0x30);
  hi = _mm_insert_ps(hi, _mm_load_ss(x + c[7]), 0x30);
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

template <bool Masked>
void fixed_matvec_groups(const FixedView& v, const float* x, float* y, uint64_t g0, uint64_t g1) {
  const FixedSlots slots(v);
  for (uint64_t g = g0; g < g1; ++g) {
    uint64_t c[kFixedLanes] = {};
    __m256 acc = _mm256_setzero_ps();
    __m256i zero;
    const uint8_t* step = v.steps + v.first[g] * kFixedLanes;
    const uint8_t* slot = v.slots + v.first[g] * kFixedSlotBytes;
    for (uint64_t t = v.first[g]; t < v.first[g + 1]; ++t) {
      fixed_advance(c, step);
      __m256 xv = fixed_x(x, c);
      const __m256 w = slots.values<Masked>(slot, zero);
      if (Masked) xv = _mm256_andnot_ps(_mm256_castsi256_ps(zero), xv);
      acc = _mm256_fmadd_ps(w, xv, acc);
      step += kFixedLanes;
      slot += kFixedSlotBytes;
    }
    alignas(32) float out[kFixedLanes];
    _mm256_store_ps(out, acc);
    fixed_store(v, g, out, y);
  }
}

void fixed_matvec(const FixedView& v, const float* x, float* y, uint64_t g0, uint64_t g1) {
  if (v.finite)
    fixed_matvec_groups<false>(v, x, y, g0, g1);
  else
    fixed_matvec_groups<true>(v, x, y, g0, g1);
}

// Y[r, :] = W[r] X (fixed.hpp's fixed_matmat_chunks): each chunk's terms meet X 8 columns
// at a time in 8 accumulators, one per lane.
template <bool Finite>
void fixed_matmat_groups(const FixedView& v, const float* X, uint64_t batch, float* Y,
                         uint64_t g0, uint64_t g1) {
  const FixedSlots slots(v);
  auto decode = [&](const uint8_t* s, float* w, uint32_t* zero) {
    __m256i z;
    _mm256_store_ps(w, slots.values<!Finite>(s, z));
    if (!Finite) _mm256_store_si256(reinterpret_cast<__m256i*>(zero), z);
  };
  auto multiply = [&](const float* w, const uint64_t* at, uint64_t n, float* const* y) {
    // Columns b0.. of the chunk's terms; Full: 8 of them, else nb < 8 under a mask.
    auto panel = [&](uint64_t b0, auto full) {
      constexpr bool Full = decltype(full)::value;
      const unsigned nb = unsigned(std::min<uint64_t>(8, batch - b0));
      const __m256i part = V256::mask(nb);
      auto load = [&](const float* p) {
        return Full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, part);
      };
      __m256 acc[kFixedLanes];
      for (unsigned l = 0; l < kFixedLanes; ++l)
        acc[l] = y[l] ? load(y[l] + b0) : _mm256_setzero_ps();
      const float* xb = X + b0;
      for (uint64_t t = 0; t < n; ++t)
#pragma GCC unroll 8
        for (unsigned l = 0; l < kFixedLanes; ++l) {
          const uint64_t a = at[t * kFixedLanes + l];
          if (!Finite && a == kFixedSkip) continue;
          acc[l] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t * kFixedLanes + l), load(xb + a),
                                   acc[l]);
        }
      for (unsigned l = 0; l < kFixedLanes; ++l)
        if (y[l]) {
          if (Full)
            _mm256_storeu_ps(y[l] + b0, acc[l]);
          else
            _mm256_maskstore_ps(y[l] + b0, part, acc[l]);
        }
    };
    uint64_t b0 = 0;
    for (; b0 + 8 <= batch; b0 += 8) panel(b0, std::true_type());
    if (b0 < batch) panel(b0, std::false_type());
  };
  fixed_matmat_chunks<Finite>(v, batch, Y, g0, g1, decode, multiply);
}

void fixed_matmat(const FixedView& v, const float* X, uint64_t batch, float* Y, uint64_t g0,
                  uint64_t g1) {
  if (v.finite)
    fixed_matmat_groups<true>(v, X, batch, Y, g0, g1);
  else
    fixed_matmat_groups<false>(v, X, batch, Y, g0, g1);
}

}  // namespace
}  // namespace cnn::kernels::avx2
