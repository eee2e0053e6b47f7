// The lane-interleaved layout (HCSR's and HAM's, lane_layout.hpp): the decoding schedule,
// one lane at a time.  This is the reference every SIMD kernel follows step for step, the
// loader's validator (Checked) and the encoder's model of the decoder (lane_layout.cpp).
// TU-local, like decode.hpp.
//
// Each group of rows is decoded by kLanes lanes.  A lane holds two stream words (buf, nxt)
// and a bit position in buf.  One step: every active lane decodes one entry; then, in lane
// order, every lane whose position passed 32 bits moves to its next word, read from the
// group's stream; then, in lane order, every lane whose row has no entries left finishes
// it and takes the group's next row (rows with no entries finish at once).  A group's
// stream starts with each lane's first word, then each lane's second word.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "decode.hpp"

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// The shift that leaves a 32-bit word's top LaneCodeEntry::kCodeBits bits: the index of
// the code tables at the word's first bit.
constexpr unsigned kCodeShift = 32 - LaneCodeEntry::kCodeBits;

// One entry at the top of `w` (32 bits): its column gap, codebook index and bit length.
struct LaneEntry {
  uint32_t gap, index, bits;
  bool ok;
};

inline LaneEntry lane_entry(const LanesView& v, uint32_t w) {
  using E = LaneCodeEntry;
  const uint32_t ge = v.gap[w >> kCodeShift];
  const uint32_t lg = E::len(ge), raw = E::raw(ge);
  const uint32_t w1 = w << lg;
  const uint32_t gap = E::base(ge) + (raw ? w1 >> (32 - raw) : 0);
  const uint32_t ve = v.value_code[(raw ? w1 << raw : w1) >> kCodeShift];
  return {gap, E::payload(ve), lg + raw + E::len(ve), ge != E::kBad && ve != E::kBad};
}

// Decodes group g: entry(lane, row, col, index) for each entry, finish(lane, row) when a
// row ends (lane == kLanes for a row without entries).  Checked: returns false instead of
// reading outside the group's words or the row's columns, or decoding a prefix no code
// starts with, and unless the group's words are used up exactly.
template <bool Checked, class Entry, class Finish>
bool lanes_group(const LanesView& v, uint64_t g, Entry&& entry, Finish&& finish) {
  const uint64_t r1 = std::min(v.rows, (g + 1) * v.group_rows);
  uint64_t next = g * v.group_rows;
  const uint32_t* p = v.words + v.group_words[g];
  const uint32_t* const end = v.words + v.group_words[g + 1];
  if (Checked && end - p < 2 * kLanes) return false;
  uint32_t buf[kLanes], nxt[kLanes], pos[kLanes], left[kLanes];
  uint64_t row[kLanes], col[kLanes];
  for (unsigned l = 0; l < kLanes; ++l) {
    buf[l] = p[l];
    nxt[l] = p[kLanes + l];
    pos[l] = 0;
  }
  p += 2 * kLanes;
  auto take = [&](unsigned l) {
    while (next < r1 && v.counts[next] == 0) finish(kLanes, next++);
    left[l] = 0;
    if (next == r1) return;
    row[l] = next;
    left[l] = v.counts[next++];
    col[l] = 0;
  };
  for (unsigned l = 0; l < kLanes; ++l) take(l);
  for (;;) {
    bool any = false;
    for (unsigned l = 0; l < kLanes; ++l) {
      if (!left[l]) continue;
      any = true;
      const uint32_t w = pos[l] ? buf[l] << pos[l] | nxt[l] >> (32 - pos[l]) : buf[l];
      const LaneEntry e = lane_entry(v, w);
      const uint64_t c = col[l] + e.gap;
      if (Checked && (!e.ok || c >= v.cols)) return false;
      entry(l, row[l], c, e.index);
      col[l] = c + 1;
      pos[l] += e.bits;
    }
    if (!any) break;
    for (unsigned l = 0; l < kLanes; ++l) {
      if (!left[l] || pos[l] < 32) continue;
      if (Checked && p == end) return false;
      buf[l] = nxt[l];
      nxt[l] = *p++;
      pos[l] -= 32;
    }
    for (unsigned l = 0; l < kLanes; ++l)
      if (left[l] && --left[l] == 0) {
        finish(l, row[l]);
        take(l);
      }
  }
  return !Checked || p == end;
}

// y[r] for the rows of groups [g0, g1): each row summed in column order.
inline void lanes_matvec_scalar(const LanesView& v, const float* x, float* y, uint64_t g0,
                                uint64_t g1) {
  float acc[kLanes + 1] = {};
  for (uint64_t g = g0; g < g1; ++g)
    lanes_group<false>(
        v, g,
        [&](unsigned l, uint64_t, uint64_t c, uint32_t i) {
          acc[l] = madd(v.codebook[i], x[c], acc[l]);
        },
        [&](unsigned l, uint64_t r) {
          y[r] = acc[l];
          acc[l] = 0;
        });
}

// Y[r, :] = W[r] X for the rows of groups [g0, g1) (X: cols x batch), each row's terms in
// column order: a row is one lane's, from its first entry to its last.
inline void lanes_matmat_scalar(const LanesView& v, const float* X, uint64_t batch, float* Y,
                                uint64_t g0, uint64_t g1) {
  const uint64_t r0 = g0 * v.group_rows, r1 = std::min(v.rows, g1 * v.group_rows);
  std::fill(Y + r0 * batch, Y + r1 * batch, 0.0f);
  for (uint64_t g = g0; g < g1; ++g)
    lanes_group<false>(
        v, g,
        [&](unsigned, uint64_t r, uint64_t c, uint32_t i) {
          const float w = v.codebook[i], *xc = X + c * batch;
          float* y = Y + r * batch;
          for (uint64_t b = 0; b < batch; ++b) y[b] += w * xc[b];
        },
        [](unsigned, uint64_t) {});
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
