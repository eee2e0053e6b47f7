// Decoding loops shared by every kernel set.  Each kernel translation unit includes this
// after its target pragma, so the loops are compiled for its instruction set, in its set's
// namespace CNN_KERNEL_ISA (cnn::kernels::avx2, ...), so profiles and backtraces tell the
// copies apart; the format files that decode with these loops build the scalar copy.
// Everything here is also TU-local (anonymous namespace), so no copy built for one ISA can
// be linked into another.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "../bitstream.hpp"
#include "../huffman.hpp"
#include "../table_entries.hpp"
#include "views.hpp"

#ifndef CNN_KERNEL_ISA
#define CNN_KERNEL_ISA scalar
#endif

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

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
    const uint8_t* group = v.packed + (p / 128) * 16 * v.index_bits;
    unsigned f = (p % 128) / 16, t0 = p % 16;
    unsigned t1 = unsigned(std::min<uint64_t>(16, t0 + (end - p)));
    for (unsigned t = t0; t < t1; ++t) out[t - t0] = 0;
    unsigned shift = 0, left = v.index_bits;
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

// HAM's multi-symbol decoding state, copied out of the view: the stores of decoded bytes
// may alias anything, so fields read through a pointer would be reloaded after each one.
struct HamMulti {
  const uint8_t* stream;
  const uint32_t* multi;
  unsigned sh;  // 64 - table bits
  const huff::Decoder* decoder;
  explicit HamMulti(const HAMView& v)
      : stream(v.stream), multi(v.multi), sh(64 - v.multi_bits), decoder(v.decoder) {}
};

// One 57-bit window of the row at `pos`: 5 lookups of <= 11 bits, each storing its entry
// whole (up to 3 symbols, then bytes that the next store or the row's slack takes).  A
// code longer than the table has entry 0, which stores and consumes nothing, so the
// lookups after it repeat it; the last entry shows it, and it is decoded alone.  Needs
// kWindowSymbols (15) entries of room before the end of the row.
constexpr int kWindowLookups = 5;
constexpr int kWindowSymbols = kWindowLookups * HamMultiEntry::kMaxSymbols;
static_assert(kWindowLookups * huff::kTableBits <= 57, "peek64 guarantees 57 stream bits");
__attribute__((always_inline)) inline void ham_window(const HamMulti& m, uint64_t& pos,
                                                      uint8_t*& o) {
  uint64_t w = peek64(m.stream, pos);
  unsigned used = 0;
  uint32_t e = 0;
  for (int t = 0; t < kWindowLookups; ++t) {
    e = m.multi[w >> m.sh];
    std::memcpy(o, &e, 4);
    o += HamMultiEntry::count(e);
    used += HamMultiEntry::len(e);
    w <<= HamMultiEntry::len(e);
  }
  pos += used;
  if (__builtin_expect(e == 0, 0)) {
    e = m.decoder->decode(peek64(m.stream, pos));
    *o++ = uint8_t(HuffEntry::symbol(e));
    pos += HuffEntry::len(e);
  }
}

// The rest of a row from `pos`: whole windows while 15 entries of room remain, then one
// lookup at a time.  Symbols past `end` land in the row's slack.
inline void ham_finish_row(const HamMulti& m, uint64_t pos, uint8_t* o, const uint8_t* end) {
  while (end - o >= kWindowSymbols) ham_window(m, pos, o);
  while (o < end) {
    uint32_t e = m.multi[peek64(m.stream, pos) >> m.sh];
    if (e) {
      std::memcpy(o, &e, 4);
      o += HamMultiEntry::count(e);
      pos += HamMultiEntry::len(e);
    } else {
      e = m.decoder->decode(peek64(m.stream, pos));
      *o++ = uint8_t(HuffEntry::symbol(e));
      pos += HuffEntry::len(e);
    }
  }
}

// HAM: the cols indices of row i.  `out` needs 16 slack entries past the row.
template <class Idx>
inline void ham_decode_row(const HAMView& v, uint64_t i, Idx* out) {
  const huff::Decoder& d = *v.decoder;
  uint64_t pos = v.offsets[i];
  Idx* o = out;
  Idx* const end = out + v.cols;
  if (d.zero_bit()) {
    std::fill(o, end, Idx(HuffEntry::symbol(d.decode(0))));
    return;
  }
  if constexpr (sizeof(Idx) == 1) {
    if (v.multi) return ham_finish_row(HamMulti(v), pos, o, end);
  }
  for (; o < end; ++o) {
    uint32_t e = d.decode(peek64(v.stream, pos));
    *o = Idx(HuffEntry::symbol(e));
    pos += HuffEntry::len(e);
  }
}

// HAM with the multi-symbol table: rows [i, i + 4) into out[r] (cols + 16 entries each),
// decoded in lockstep so the four lookup chains overlap.  Same results as ham_decode_row.
inline void ham_decode_rows4(const HAMView& v, uint64_t i, uint8_t* const out[4]) {
  const HamMulti m(v);
  uint64_t p0 = v.offsets[i], p1 = v.offsets[i + 1], p2 = v.offsets[i + 2], p3 = v.offsets[i + 3];
  uint8_t *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
  uint8_t *const e0 = o0 + v.cols, *const e1 = o1 + v.cols, *const e2 = o2 + v.cols,
                 *const e3 = o3 + v.cols;
  // Unchecked windows while every row has 15 entries of room; then each row finishes.
  while (e0 - o0 >= kWindowSymbols && e1 - o1 >= kWindowSymbols && e2 - o2 >= kWindowSymbols &&
         e3 - o3 >= kWindowSymbols) {
    ham_window(m, p0, o0);
    ham_window(m, p1, o1);
    ham_window(m, p2, o2);
    ham_window(m, p3, o3);
  }
  ham_finish_row(m, p0, o0, e0);
  ham_finish_row(m, p1, o1, e1);
  ham_finish_row(m, p2, o2, e2);
  ham_finish_row(m, p3, o3, e3);
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

// HCSR: an entry decoded by the general decoder; returned by value so that the callers'
// positions never have their address taken (they stay in registers).
struct HcsrEntry {
  uint64_t pos, col;  // after the entry; col is one past its column
  float value;
};

__attribute__((noinline)) HcsrEntry hcsr_slow(const HCSRView& v, uint64_t pos, uint64_t col) {
  uint32_t e = v.decoder->decode(peek64(v.stream, pos));
  pos += HuffEntry::len(e);
  uint32_t sym = HuffEntry::symbol(e);
  uint64_t g = HcsrSymbol::gap_field(sym, v.gap_bits);
  if (g == HcsrSymbol::escape(v.gap_bits) && v.esc_bits) {
    g += peek64(v.stream, pos) >> (64 - v.esc_bits);
    pos += v.esc_bits;
  }
  return {pos, col + g + 1, v.codebook[HcsrSymbol::value(sym, v.gap_bits)]};
}

// HCSR: the entry of a long code whose prefix entry `me` links to a second table indexed
// by the `sub` bits after the prefix (HcsrMetaEntry::link); sets `t` to its index.
inline unsigned hcsr_second(const HCSRView& v, uint64_t window, unsigned me, unsigned& t) {
  uint32_t start;
  std::memcpy(&start, &v.value[t], 4);
  t = start + unsigned((window << kHcsrTableBits) >> (64 - HcsrMetaEntry::sub_bits(me)));
  return v.meta[t];
}

// HCSR with tables: the weight of the entry at `pos`, advancing `pos` and `col` (to one
// past its column).  One lookup in the common case; long codes, escapes and codes beyond
// the tables branch off.
__attribute__((always_inline)) inline float hcsr_entry(const HCSRView& v, uint64_t& pos,
                                                       uint64_t& col) {
  const uint64_t w = peek64(v.stream, pos);
  unsigned t = unsigned(w >> (64 - kHcsrTableBits));
  unsigned me = v.meta[t];
  if (__builtin_expect(HcsrMetaEntry::is_link(me), 0)) me = hcsr_second(v, w, me, t);
  if (__builtin_expect(HcsrMetaEntry::special(me), 0)) {
    if (HcsrMetaEntry::slow(me)) {
      const HcsrEntry e = hcsr_slow(v, pos, col);
      pos = e.pos;
      col = e.col;
      return e.value;
    }
    // An escape: a raw gap field follows the code.
    pos += HcsrMetaEntry::len(me);
    col += (peek64(v.stream, pos) >> (64 - v.esc_bits)) + HcsrMetaEntry::escape_step(me);
    pos += v.esc_bits;
    return v.value[t];
  }
  pos += HcsrMetaEntry::len(me);
  col += HcsrMetaEntry::step(me);
  return v.value[t];
}

// f(col, value) for each stored entry of row i.  The table test is hoisted out of the
// loop so each loop keeps its state in registers.
template <class F>
inline void hcsr_for_each(const HCSRView& v, uint64_t i, F&& f) {
  uint64_t pos = v.offsets[i], col = 0;
  const uint64_t end = v.offsets[i + 1];
  if (v.meta) {
    while (pos < end) {
      const float value = hcsr_entry(v, pos, col);
      f(col - 1, value);
    }
    return;
  }
  while (pos < end) {
    const HcsrEntry e = hcsr_slow(v, pos, col);
    pos = e.pos;
    col = e.col;
    f(col - 1, e.value);
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
    // Per row: its bit position, the column one past its last entry, its sum (the row
    // ends stay in memory: four rows' state then fits the registers).
    auto step = [&](uint64_t& pos, uint64_t& col, float& acc) __attribute__((always_inline)) {
      const float w = hcsr_entry(v, pos, col);
      acc = madd(w, x[col - 1], acc);
    };
    for (; i + 4 <= r1; i += 4) {
      const uint64_t end[4] = {v.offsets[i + 1], v.offsets[i + 2], v.offsets[i + 3],
                               v.offsets[i + 4]};
      uint64_t p0 = v.offsets[i], p1 = end[0], p2 = end[1], p3 = end[2];
      uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      while (p0 < end[0] && p1 < end[1] && p2 < end[2] && p3 < end[3]) {
        step(p0, c0, a0);
        step(p1, c1, a1);
        step(p2, c2, a2);
        step(p3, c3, a3);
      }
      while (p0 < end[0]) step(p0, c0, a0);
      while (p1 < end[1]) step(p1, c1, a1);
      while (p2 < end[2]) step(p2, c2, a2);
      while (p3 < end[3]) step(p3, c3, a3);
      y[i] = a0;
      y[i + 1] = a1;
      y[i + 2] = a2;
      y[i + 3] = a3;
    }
    for (; i < r1; ++i) {
      uint64_t p = v.offsets[i], col = 0;
      const uint64_t end = v.offsets[i + 1];
      float acc = 0;
      while (p < end) step(p, col, acc);
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
}  // namespace cnn::kernels::CNN_KERNEL_ISA
