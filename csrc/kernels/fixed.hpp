// HCSR's fixed-width layout (fixed_layout.hpp): the decoding schedule, one lane at a time.
// The reference every SIMD kernel follows step for step, the loader's validator (Checked)
// and the source of decode_rows and to_csr.  TU-local, like decode.hpp.
//
// Lane l of a group starts at column 0; each step adds the lane's step byte to its column
// and reads the lane's slot there.  Entries whose slot is the filler (column steps over 255
// split up, the padding of rows shorter than their group's longest, lanes with no row) are
// not stored: they add nothing to a product.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "decode.hpp"

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// Lane l's slot in a step's kFixedSlotBytes bytes.
inline uint32_t fixed_slot(const uint8_t* s, unsigned l) {
  uint32_t low;
  std::memcpy(&low, s, 4);  // little-endian, like every supported CPU
  return (low >> (4 * l) & 15) | (uint32_t(s[4]) >> l & 1) << 4;
}

// Decodes group g: entry(lane, col, slot) for every lane at every step, fillers included.
// Checked: returns false instead of reaching a column past the matrix's last.
template <bool Checked, class Entry>
bool fixed_group(const FixedView& v, uint64_t g, Entry&& entry) {
  uint64_t col[kFixedLanes] = {};
  for (uint64_t t = v.first[g]; t < v.first[g + 1]; ++t) {
    const uint8_t* step = v.steps + t * kFixedLanes;
    const uint8_t* slot = v.slots + t * kFixedSlotBytes;
    for (unsigned l = 0; l < kFixedLanes; ++l) {
      col[l] += step[l];
      if (Checked && col[l] >= v.cols) return false;
      entry(l, col[l], fixed_slot(slot, l));
    }
  }
  return true;
}

// The lanes' columns after a step (SIMD kernels keep them in general registers).
inline void fixed_advance(uint64_t* c, const uint8_t* step) {
#pragma GCC unroll 8
  for (unsigned l = 0; l < kFixedLanes; ++l) c[l] += step[l];
}

// The row of lane l of group g, or v.rows for a lane with no row.
inline uint64_t fixed_row(const FixedView& v, uint64_t g, unsigned l) {
  const uint64_t q = g * kFixedLanes + l;
  return q < v.rows ? v.order[q] : v.rows;
}

// The output rows of group g's lanes in Y (rows x batch), zeroed; null for a lane with no row.
inline void fixed_outputs(const FixedView& v, uint64_t g, float* Y, uint64_t batch,
                          float* y[kFixedLanes]) {
  for (unsigned l = 0; l < kFixedLanes; ++l) {
    const uint64_t r = fixed_row(v, g, l);
    y[l] = r < v.rows ? Y + r * batch : nullptr;
    if (y[l]) std::memset(y[l], 0, batch * sizeof(float));
  }
}

// Group g's lane sums into y at their rows (lanes with no row are dropped).
inline void fixed_store(const FixedView& v, uint64_t g, const float* acc, float* y) {
  for (unsigned l = 0; l < kFixedLanes; ++l)
    if (const uint64_t r = fixed_row(v, g, l); r < v.rows) y[r] = acc[l];
}

// Y[r, :] = W[r] X for the rows of groups [g0, g1) as the SIMD sets compute it: a group's
// steps decoded kFixedChunk at a time into the lanes' weights and the offsets of their rows
// of X (kFixedSkip for a filler where X is not finite), which multiply(w, at, n, y) then
// meets with X, keeping each row's sums in its row of Y between chunks: each row's terms in
// column order, as in matvec.  decode(slot bytes, w, zero) writes a step's 8 weights and,
// unless Finite, which lanes hold the filler (nonzero).
constexpr uint64_t kFixedChunk = 32, kFixedSkip = ~uint64_t(0);
template <bool Finite, class Decode, class Multiply>
void fixed_matmat_chunks(const FixedView& v, uint64_t batch, float* Y, uint64_t g0, uint64_t g1,
                         Decode&& decode, Multiply&& multiply) {
  alignas(64) float w[kFixedChunk * kFixedLanes];
  uint64_t at[kFixedChunk * kFixedLanes];
  for (uint64_t g = g0; g < g1; ++g) {
    float* y[kFixedLanes];
    fixed_outputs(v, g, Y, batch, y);
    uint64_t c[kFixedLanes] = {};
    for (uint64_t t0 = v.first[g]; t0 < v.first[g + 1]; t0 += kFixedChunk) {
      const uint64_t n = std::min(kFixedChunk, v.first[g + 1] - t0);
      for (uint64_t t = 0; t < n; ++t) {
        fixed_advance(c, v.steps + (t0 + t) * kFixedLanes);
        alignas(32) uint32_t zero[kFixedLanes] = {};
        decode(v.slots + (t0 + t) * kFixedSlotBytes, w + t * kFixedLanes, zero);
        for (unsigned l = 0; l < kFixedLanes; ++l)
          at[t * kFixedLanes + l] = !Finite && zero[l] ? kFixedSkip : c[l] * batch;
      }
      multiply(static_cast<const float*>(w), static_cast<const uint64_t*>(at), n, y);
    }
  }
}

// y[r] for the rows of groups [g0, g1): each row's stored entries summed in column order.
inline void fixed_matvec_scalar(const FixedView& v, const float* x, float* y, uint64_t g0,
                                uint64_t g1) {
  for (uint64_t g = g0; g < g1; ++g) {
    float acc[kFixedLanes] = {};
    fixed_group<false>(v, g, [&](unsigned l, uint64_t c, uint32_t s) {
      if (s != v.filler) acc[l] = madd(v.slot_value[s], x[c], acc[l]);
    });
    fixed_store(v, g, acc, y);
  }
}

// Y[r, :] = W[r] X for the rows of groups [g0, g1) (X: cols x batch), each row's terms in
// column order, as fixed_matvec_scalar sums them for one column.
inline void fixed_matmat_scalar(const FixedView& v, const float* X, uint64_t batch, float* Y,
                                uint64_t g0, uint64_t g1) {
  for (uint64_t g = g0; g < g1; ++g) {
    float* y[kFixedLanes];
    fixed_outputs(v, g, Y, batch, y);
    fixed_group<false>(v, g, [&](unsigned l, uint64_t c, uint32_t s) {
      if (s == v.filler) return;
      const float w = v.slot_value[s], *xc = X + c * batch;
      for (uint64_t b = 0; b < batch; ++b) y[l][b] = madd(w, xc[b], y[l][b]);
    });
  }
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
