// Decoding loops shared by every kernel set.  Each kernel translation unit includes this
// after its target pragma, so the loops are compiled for its instruction set; everything
// here is TU-local (anonymous namespace) so no copy built for one ISA can be linked into
// another.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "../bitstream.hpp"
#include "../huffman.hpp"
#include "views.hpp"

namespace cnn::kernels {
namespace {

constexpr uint16_t kSlowEntry = 0x8000;    // HCSR meta: take the general decoder
constexpr uint16_t kEscapeEntry = 0x4000;  // HCSR meta: a raw gap field follows the code

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

// HAM with the multi-symbol table: one 57-bit window of the row at `pos`, up to 5 lookups
// of <= 11 bits, each giving up to 3 symbols; symbols past `end` land in the row's slack.
__attribute__((always_inline)) inline void ham_window(const HAMView& v, uint64_t& pos,
                                                      uint8_t*& o, const uint8_t* end) {
  uint64_t w = peek64(v.stream, pos);
  unsigned used = 0;
  const unsigned sh = 64 - v.multi_bits;
  for (int t = 0; t < 5; ++t) {
    uint32_t e = v.multi[w >> sh];
    unsigned n = (e >> 5) & 3, len = e & 31;
    if (__builtin_expect(n == 0, 0)) {  // a code longer than the table
      e = v.decoder->decode(peek64(v.stream, pos + used));
      *o++ = uint8_t(e >> 5);
      used += e & 31;
      break;
    }
    uint32_t syms = e >> 8;
    std::memcpy(o, &syms, 4);
    o += n;
    used += len;
    w <<= len;
    if (o >= end) break;
  }
  pos += used;
}

// HAM: the cols indices of row i.  `out` needs 16 slack entries past the row.
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
      while (o < end) ham_window(v, pos, o, end);
      return;
    }
  }
  for (; o < end; ++o) {
    uint32_t e = d.decode(peek64(v.stream, pos));
    *o = Idx(e >> 5);
    pos += e & 31;
  }
}

// HAM with the multi-symbol table: rows [i, i + 4) into out[r] (cols + 16 entries each),
// decoded in lockstep so the four lookup chains overlap.  Same results as ham_decode_row.
inline void ham_decode_rows4(const HAMView& v, uint64_t i, uint8_t* const out[4]) {
  auto window = [&](uint64_t& pos, uint8_t*& o, uint8_t* end) { ham_window(v, pos, o, end); };
  uint64_t p0 = v.offsets[i], p1 = v.offsets[i + 1], p2 = v.offsets[i + 2], p3 = v.offsets[i + 3];
  uint8_t *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
  uint8_t *e0 = o0 + v.cols, *e1 = o1 + v.cols, *e2 = o2 + v.cols, *e3 = o3 + v.cols;
  while (o0 < e0 && o1 < e1 && o2 < e2 && o3 < e3) {
    window(p0, o0, e0);
    window(p1, o1, e1);
    window(p2, o2, e2);
    window(p3, o3, e3);
  }
  while (o0 < e0) window(p0, o0, e0);
  while (o1 < e1) window(p1, o1, e1);
  while (o2 < e2) window(p2, o2, e2);
  while (o3 < e3) window(p3, o3, e3);
}

// HAM matvec rows with byte indices (k <= 256): decode (four rows at a time when the
// multi-symbol table exists), then dot(idx, x) for each row.
template <class Dot>
inline void ham_matvec_bytes(const HAMView& v, uint64_t r0, uint64_t r1, float* y, Dot&& dot) {
  const uint64_t stride = v.cols + 16;
  std::vector<uint8_t> buf(4 * stride);
  uint8_t* const rows[4] = {buf.data(), buf.data() + stride, buf.data() + 2 * stride,
                            buf.data() + 3 * stride};
  uint64_t i = r0;
  if (v.multi && !v.decoder->zero_bit())
    for (; i + 4 <= r1; i += 4) {
      ham_decode_rows4(v, i, rows);
      for (int r = 0; r < 4; ++r) y[i + r] = dot(rows[r]);
    }
  for (; i < r1; ++i) {
    ham_decode_row(v, i, rows[0]);
    y[i] = dot(rows[0]);
  }
}

// HCSR: one entry at `pos` through the general decoder (long codes and escapes).
__attribute__((noinline)) void hcsr_slow(const HCSRView& v, uint64_t& pos, uint64_t& col, float& value) {
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

// HCSR: the entry of a code longer than the table, whose prefix entry `me` (kSlowEntry |
// sub, sub > 0) links to a second table indexed by the `sub` bits after the prefix; sets
// `t` to its index (views.hpp).
inline unsigned hcsr_second(const HCSRView& v, uint64_t window, unsigned me, unsigned& t) {
  uint32_t start;
  std::memcpy(&start, &v.value[t], 4);
  t = start + unsigned((window << v.table_bits) >> (64 - (me & 31)));
  return v.meta[t];
}

// HCSR: advances one entry; `col` is one past the entry's column afterwards.
inline float hcsr_next(const HCSRView& v, uint64_t& pos, uint64_t& col) {
  if (v.meta) {
    uint64_t w = peek64(v.stream, pos);
    unsigned t = unsigned(w >> (64 - v.table_bits));
    unsigned me = v.meta[t];
    if (me > kSlowEntry && me < (kSlowEntry | 32)) me = hcsr_second(v, w, me, t);  // a long code
    if (__builtin_expect(!(me & kSlowEntry), 1)) {
      pos += me & 31;
      if (me & kEscapeEntry) {
        col += peek64(v.stream, pos) >> (64 - v.esc_bits);
        pos += v.esc_bits;
      }
      col += (me >> 5) & 511;
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

// y[r] for rows [r0, r1).  Four rows decoded in lockstep hide the lookup latency; each row
// still sums its entries in order, so the result does not depend on the grouping.  Hot
// state lives in locals (the compiler cannot keep struct fields in registers across the
// stores).
inline void hcsr_matvec_rows(const HCSRView& v, const float* x, float* y, uint64_t r0,
                             uint64_t r1) {
  uint64_t i = r0;
  if (v.meta) {
    const uint8_t* const s = v.stream;
    const uint16_t* const meta = v.meta;
    const float* const value = v.value;
    const unsigned sh = 64 - v.table_bits, esc_bits = v.esc_bits, esc_sh = 64 - esc_bits;
    // Per row: its bit position, a pointer one past its last entry's x, its sum (the
    // row ends stay in memory: four rows' state then fits the registers).
    auto step = [&](uint64_t& pos, const float*& xp, float& acc) __attribute__((always_inline)) {
      unsigned t = unsigned(peek64(s, pos) >> sh);
      unsigned me = meta[t];
      if (__builtin_expect(me > kSlowEntry && me < (kSlowEntry | 32), 0))  // a long code
        me = hcsr_second(v, peek64(s, pos), me, t);
      float w;
      if (__builtin_expect(me < kEscapeEntry, 1)) {  // the common case: one lookup
        pos += me & 31;
        xp += me >> 5;
        w = value[t];
      } else if (me & kSlowEntry) {
        uint64_t col = uint64_t(xp - x);
        hcsr_slow(v, pos, col, w);
        xp = x + col;
      } else {  // an escape: its raw gap field follows the code
        pos += me & 31;
        xp += (peek64(s, pos) >> esc_sh) + ((me >> 5) & 511);
        pos += esc_bits;
        w = value[t];
      }
      acc = madd(w, xp[-1], acc);
    };
    for (; i + 4 <= r1; i += 4) {
      const uint64_t* off = v.offsets + i;
      uint64_t p0 = off[0], p1 = off[1], p2 = off[2], p3 = off[3];
      const float *x0 = x, *x1 = x, *x2 = x, *x3 = x;
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      while (p0 < off[1] && p1 < off[2] && p2 < off[3] && p3 < off[4]) {
        step(p0, x0, a0);
        step(p1, x1, a1);
        step(p2, x2, a2);
        step(p3, x3, a3);
      }
      while (p0 < off[1]) step(p0, x0, a0);
      while (p1 < off[2]) step(p1, x1, a1);
      while (p2 < off[3]) step(p2, x2, a2);
      while (p3 < off[4]) step(p3, x3, a3);
      y[i] = a0;
      y[i + 1] = a1;
      y[i + 2] = a2;
      y[i + 3] = a3;
    }
    for (; i < r1; ++i) {
      uint64_t p = v.offsets[i];
      const float* xp = x;
      float acc = 0;
      while (p < v.offsets[i + 1]) step(p, xp, acc);
      y[i] = acc;
    }
    return;
  }
  for (; i < r1; ++i) {
    float acc = 0;
    hcsr_for_each(v, i, [&](uint64_t c, float value) { acc = madd(value, x[c], acc); });
    y[i] = acc;
  }
}

}  // namespace
}  // namespace cnn::kernels
