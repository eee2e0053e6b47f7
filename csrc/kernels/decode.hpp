// Decoding loops shared by every kernel set.  Each kernel translation unit includes this
// after its target pragma, so the loops are compiled for its instruction set; everything
// here is TU-local (anonymous namespace) so no copy built for one ISA can be linked into
// another.
#pragma once
#include <algorithm>
#include <cstring>

#include "../bitstream.hpp"
#include "../huffman.hpp"
#include "views.hpp"

namespace cnn::kernels {
namespace {

constexpr uint16_t kSlowEntry = 0x8000;  // HCSR meta: take the general decoder

inline float madd(float a, float b, float acc) {
#ifdef CNN_KERNEL_FMA
  return __builtin_fmaf(a, b, acc);
#else
  return acc + a * b;
#endif
}

// IndexMap: indices of entries [p, p + count) (layout in index_map.hpp).
inline void im_decode_range(const IMView& v, uint64_t p, uint64_t count, uint32_t* out) {
  const uint64_t end = p + count;
  while (p < end) {
    const uint8_t* group = v.packed + (p / 128) * 16 * v.bits;
    unsigned f = (p % 128) / 16, t0 = p % 16;
    unsigned t1 = unsigned(std::min<uint64_t>(16, t0 + (end - p)));
    for (unsigned t = t0; t < t1; ++t) out[t - t0] = 0;
    unsigned shift = 0, left = v.bits;
    const uint8_t* plane = group;
    while (left) {
      unsigned w = left >= 8 ? 8 : (left & 4) ? 4 : (left & 2) ? 2 : 1;
      unsigned per = 8 / w, sh = (f % per) * w, mask = (1u << w) - 1;
      const uint8_t* lane = plane + (f / per) * 16;
      for (unsigned t = t0; t < t1; ++t) out[t - t0] |= ((lane[t] >> sh) & mask) << shift;
      plane += 16 * w;
      shift += w;
      left -= w;
    }
    out += t1 - t0;
    p += t1 - t0;
  }
}

// HAM: the cols indices of row i.  `out` needs 4 slack entries past the row.
template <class Idx>
inline void ham_decode_row(const HAMView& v, uint64_t i, Idx* out) {
  const huff::Decoder& d = *v.decoder;
  uint64_t pos = v.offsets[i];
  Idx* o = out;
  Idx* const end = out + v.cols;
  if (d.zero_bit()) {
    std::fill(o, end, Idx(d.decode(0) >> 5));
    return;
  }
  if constexpr (sizeof(Idx) == 1) {
    if (v.multi) {
      // Up to 3 symbols per lookup, 5 lookups of <= 11 bits per 57-bit window.
      const unsigned sh = 64 - v.multi_bits;
      while (o < end) {
        uint64_t w = peek64(v.stream, pos);
        unsigned used = 0;
        for (int t = 0; t < 5 && o < end; ++t) {
          uint32_t e = v.multi[w >> sh];
          unsigned n = (e >> 5) & 3, len = e & 31;
          if (__builtin_expect(n == 0, 0)) {  // a code longer than the table
            e = d.decode(peek64(v.stream, pos + used));
            *o++ = Idx(e >> 5);
            used += e & 31;
            break;
          }
          uint32_t syms = e >> 8;
          std::memcpy(o, &syms, 4);  // symbols past the row land in the slack
          o += n;
          used += len;
          w <<= len;
        }
        pos += used;
      }
      return;
    }
  }
  for (; o < end; ++o) {
    uint32_t e = d.decode(peek64(v.stream, pos));
    *o = Idx(e >> 5);
    pos += e & 31;
  }
}

// HCSR: one entry at `pos` through the general decoder (long codes and escapes).
inline void hcsr_slow(const HCSRView& v, uint64_t& pos, uint64_t& col, float& value) {
  uint32_t e = v.decoder->decode(peek64(v.stream, pos));
  pos += e & 31;
  uint32_t sym = e >> 5;
  const uint64_t esc = (uint64_t(1) << v.gap_bits) - 1;
  uint64_t g = sym & esc;
  if (g == esc && v.esc_bits) {
    g += peek64(v.stream, pos) >> (64 - v.esc_bits);
    pos += v.esc_bits;
  }
  col += g + 1;
  value = v.codebook[sym >> v.gap_bits];
}

// HCSR: advances one entry; `col` is one past the entry's column afterwards.
inline float hcsr_next(const HCSRView& v, uint64_t& pos, uint64_t& col) {
  if (v.meta) {
    uint64_t w = peek64(v.stream, pos);
    unsigned t = unsigned(w >> (64 - v.table_bits));
    uint16_t me = v.meta[t];
    if (__builtin_expect(!(me & kSlowEntry), 1)) {
      pos += me & 31;
      col += me >> 5;
      return v.value[t];
    }
  }
  float value;
  hcsr_slow(v, pos, col, value);
  return value;
}

// f(col, value) for each stored entry of row i.
template <class F>
inline void hcsr_for_each(const HCSRView& v, uint64_t i, F&& f) {
  uint64_t pos = v.offsets[i], end = v.offsets[i + 1], col = 0;
  while (pos < end) {
    float value = hcsr_next(v, pos, col);
    f(col - 1, value);
  }
}

// y[r] for rows [r0, r1): four rows decoded in lockstep hide the lookup latency; each row
// still sums its entries in order, so the result does not depend on the grouping.
inline void hcsr_matvec_rows(const HCSRView& v, const float* x, float* y, uint64_t r0,
                             uint64_t r1) {
  uint64_t i = r0;
  for (; i + 4 <= r1; i += 4) {
    uint64_t pos[4], end[4], col[4] = {0, 0, 0, 0};
    float acc[4] = {0, 0, 0, 0};
    for (int r = 0; r < 4; ++r) {
      pos[r] = v.offsets[i + r];
      end[r] = v.offsets[i + r + 1];
    }
    while (pos[0] < end[0] && pos[1] < end[1] && pos[2] < end[2] && pos[3] < end[3]) {
      for (int r = 0; r < 4; ++r) {
        float value = hcsr_next(v, pos[r], col[r]);
        acc[r] = madd(value, x[col[r] - 1], acc[r]);
      }
    }
    for (int r = 0; r < 4; ++r) {
      while (pos[r] < end[r]) {
        float value = hcsr_next(v, pos[r], col[r]);
        acc[r] = madd(value, x[col[r] - 1], acc[r]);
      }
      y[i + r] = acc[r];
    }
  }
  for (; i < r1; ++i) {
    float acc = 0;
    hcsr_for_each(v, i, [&](uint64_t c, float value) { acc = madd(value, x[c], acc); });
    y[i] = acc;
  }
}

}  // namespace
}  // namespace cnn::kernels
