// HCSR's fixed-width layout on NEON: the 8 lanes of a group in two float32x4 vectors,
// kernels/fixed.hpp's schedule step for step, as fixed_avx2.hpp does it on AVX2.  The lanes'
// columns stay in general registers and x is read with 8 lane loads (NEON has no gather).
// A step's 8 slots become bytes (a table lookup spreads the nibbles, shifts pick bit 4) and
// are looked up in the 32 slot values as byte planes (neon.cpp's Lut).  Fillers have the
// value 0 and add 0 * x = +0, an exact no-op unless x is inf or NaN, where the kernels mask
// x (v.finite says which).  TU-local; included by neon.cpp.
#pragma once
#include <arm_neon.h>

#include <algorithm>
#include <type_traits>

#include "fixed.hpp"

namespace cnn::kernels::neon {
namespace {

struct FixedSlots {
  const Lut<5> lut;
  const uint8x8_t filler;
  explicit FixedSlots(const FixedView& v)
      : lut(v.slot_value, kFixedSlots), filler(vdup_n_u8(uint8_t(v.filler))) {}

  // The 8 lanes' slots of a step: lane l's nibble (byte l / 2 of the first 4, low nibble
  // first) and bit l of the fifth byte as its bit 4.
  static uint8x8_t slots(const uint8_t* s) {
    uint32_t low;
    std::memcpy(&low, s, 4);
    const uint8x8_t pairs = vtbl1_u8(vcreate_u8(low), vcreate_u8(0x0303020201010000));
    const uint8x8_t nib =
        vand_u8(vshl_u8(pairs, vcreate_s8(0xFC00FC00FC00FC00)), vdup_n_u8(15));  // >> 0, 4
    const uint8x8_t bit4 =
        vand_u8(vshl_u8(vdup_n_u8(s[4]), vcreate_s8(0xF9FAFBFCFDFEFF00)), vdup_n_u8(1));  // >> l
    return vorr_u8(nib, vshl_n_u8(bit4, 4));
  }

  // The values of lanes 0-3 and 4-7; with Masked, `zero` gets the filler lanes (all ones).
  template <bool Masked>
  void values(const uint8_t* s, float32x4_t w[2], uint32x4_t zero[2]) const {
    const uint8x8_t idx = slots(s);
    float32x4_t out[4];
    lut(vcombine_u8(idx, vdup_n_u8(0)), out);
    w[0] = out[0];
    w[1] = out[1];
    if (Masked) {
      const int16x8_t z = vmovl_s8(vreinterpret_s8_u8(vceq_u8(idx, filler)));
      zero[0] = vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(z)));
      zero[1] = vreinterpretq_u32_s32(vmovl_s16(vget_high_s16(z)));
    }
  }
};

// x at 4 lanes' columns.
inline float32x4_t fixed_x(const float* x, const uint64_t* c) {
  float32x4_t r = vld1q_dup_f32(x + c[0]);
  r = vld1q_lane_f32(x + c[1], r, 1);
  r = vld1q_lane_f32(x + c[2], r, 2);
  return vld1q_lane_f32(x + c[3], r, 3);
}

template <bool Masked>
void fixed_matvec_groups(const FixedView& v, const float* x, float* y, uint64_t g0, uint64_t g1) {
  const FixedSlots slots(v);
  for (uint64_t g = g0; g < g1; ++g) {
    uint64_t c[kFixedLanes] = {};
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), w[2];
    uint32x4_t zero[2];
    const uint8_t* step = v.steps + v.first[g] * kFixedLanes;
    const uint8_t* slot = v.slots + v.first[g] * kFixedSlotBytes;
    for (uint64_t t = v.first[g]; t < v.first[g + 1]; ++t) {
      fixed_advance(c, step);
      float32x4_t x0 = fixed_x(x, c), x1 = fixed_x(x, c + 4);
      slots.values<Masked>(slot, w, zero);
      if (Masked) {
        x0 = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(x0), zero[0]));
        x1 = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(x1), zero[1]));
      }
      a0 = vfmaq_f32(a0, w[0], x0);
      a1 = vfmaq_f32(a1, w[1], x1);
      step += kFixedLanes;
      slot += kFixedSlotBytes;
    }
    float out[kFixedLanes];
    vst1q_f32(out, a0);
    vst1q_f32(out + 4, a1);
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
// (two vectors) at a time in 16 accumulators, two per lane.
template <bool Finite>
void fixed_matmat_groups(const FixedView& v, const float* X, uint64_t batch, float* Y,
                         uint64_t g0, uint64_t g1) {
  const FixedSlots slots(v);
  auto decode = [&](const uint8_t* s, float* w, uint32_t* zero) {
    float32x4_t wv[2];
    uint32x4_t z[2];
    slots.values<!Finite>(s, wv, z);
    vst1q_f32(w, wv[0]);
    vst1q_f32(w + 4, wv[1]);
    if (!Finite) {
      vst1q_u32(zero, z[0]);
      vst1q_u32(zero + 4, z[1]);
    }
  };
  auto multiply = [&](const float* w, const uint64_t* at, uint64_t n, float* const* y) {
    // Columns b0.. of the chunk's terms: 8 of them (Full), or nb < 8.
    auto panel = [&](uint64_t b0, auto full) {
      constexpr bool Full = decltype(full)::value;
      const unsigned nb = unsigned(std::min<uint64_t>(8, batch - b0));
      const unsigned n0 = std::min(nb, 4u), n1 = nb - n0;
      auto load = [&](const float* p, unsigned m) { return Full ? vld1q_f32(p) : V128::load(p, m); };
      float32x4_t acc[kFixedLanes][2];
      for (unsigned l = 0; l < kFixedLanes; ++l)
        for (unsigned h = 0; h < 2; ++h)
          acc[l][h] = y[l] ? load(y[l] + b0 + 4 * h, h ? n1 : n0) : vdupq_n_f32(0.0f);
      const float* xb = X + b0;
      for (uint64_t t = 0; t < n; ++t)
#pragma GCC unroll 8
        for (unsigned l = 0; l < kFixedLanes; ++l) {
          const uint64_t a = at[t * kFixedLanes + l];
          if (!Finite && a == kFixedSkip) continue;
          const float32x4_t wl = vld1q_dup_f32(w + t * kFixedLanes + l);
          acc[l][0] = vfmaq_f32(acc[l][0], wl, load(xb + a, n0));
          acc[l][1] = vfmaq_f32(acc[l][1], wl, load(xb + a + 4, n1));
        }
      for (unsigned l = 0; l < kFixedLanes; ++l)
        if (y[l]) {
          V128::store(y[l] + b0, acc[l][0], Full ? 4 : n0);
          V128::store(y[l] + b0 + 4, acc[l][1], Full ? 4 : n1);
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
}  // namespace cnn::kernels::neon
