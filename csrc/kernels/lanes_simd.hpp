// HCSR's lane layout decoded kLanes lanes at a time: the schedule of lanes.hpp, step for
// step, with each lane's state in a vector element.  O supplies the instructions of one
// set (avx2.cpp, avx512.cpp): O::width lanes per vector, kLanes / O::width vectors per group.
// Per entry one gather, of x[col]: each code's length is counted from compares against its
// canonical limits, its rank follows (views.hpp), and the rank looks up the bucket and the
// weight in registers (GapLut, ValueLut: rank vector -> packed bucket / weight vector).
// Where gathers are cheap against the many registers that takes (O::gather_tables: AVX2,
// 16 registers), the gap code and the weight come from the 128-entry tables instead.
#pragma once
#include "../common.hpp"
#include "lanes.hpp"

namespace cnn::kernels {
namespace {

// A code's limits and offsets in registers (only limits below 127 can be exceeded).
template <class O>
struct LaneCode {
  typename O::vi limit[7], offset;
  unsigned n = 0;
  explicit LaneCode(const HcsrLanesView::Code& c) : offset(O::load8(c.offset)) {
    for (unsigned L = 0; L < 7; ++L)
      if (c.limit[L] < 127) limit[n++] = O::set1(c.limit[L]);
  }
  // The length and rank of the codes at the top 7 bits t.
  void decode(typename O::vi t, typename O::vi& len, typename O::vi& rank) const {
    len = O::set1(0);
    for (unsigned L = 0; L < n; ++L) len = O::add_if_greater(len, t, limit[L]);
    rank = O::add(O::srlv(t, O::sub(O::set1(7), len)), O::permute8(offset, len));
  }
};

// Decodes group g, handing each step's entries to the sink: entry(h, col, weight, active)
// for vector h, then step_done(); empty_row(row) for a row without entries; at a row's end
// (lanes in order) spill() once, end_row(lane, row) and begin_row(lane) for the lane's next
// row (begin_row also starts each lane's first), then reload().
template <class O, class GapLut, class ValueLut, class Sink>
void lanes_group_simd(const HcsrLanesView& v, uint64_t g, const GapLut& gap_lut,
                      const ValueLut& value_lut, Sink& sink) {
  using I = typename O::vi;
  using F = typename O::vf;
  constexpr unsigned W = O::width, H = kLanes / W;
  const LaneCode<O> gap_code(v.gap_code), value_code(v.value_code_ranks);
  const I c31 = O::set1(31), c32 = O::set1(32), one = O::set1(1), c127 = O::set1(127);
  alignas(64) uint32_t s_left[kLanes], s_col[kLanes];
  uint64_t row[kLanes];
  const uint64_t r1 = std::min(v.rows, (g + 1) * v.group_rows);
  uint64_t next = g * v.group_rows;
  const uint32_t* p = v.words + v.group_words[g];
  I buf[H], nxt[H], pos[H], left[H], col[H];
  for (unsigned h = 0; h < H; ++h) {
    buf[h] = O::loadu(p + h * W);
    nxt[h] = O::loadu(p + kLanes + h * W);
    pos[h] = O::set1(0);
  }
  p += 2 * kLanes;
  auto take = [&](unsigned l) {
    while (next < r1 && v.counts[next] == 0) sink.empty_row(next++);
    s_left[l] = 0;
    if (next == r1) return;
    row[l] = next;
    s_left[l] = v.counts[next++];
    s_col[l] = 0;
    sink.begin_row(l);
  };
  auto reload = [&] {
    for (unsigned h = 0; h < H; ++h) {
      left[h] = O::loadu(s_left + h * W);
      col[h] = O::loadu(s_col + h * W);
    }
    sink.reload();
  };
  for (unsigned l = 0; l < kLanes; ++l) take(l);
  reload();
  for (;;) {
    typename O::mask act[H];
    bool any = false;
    for (unsigned h = 0; h < H; ++h) {
      act[h] = O::positive(left[h]);
      any |= O::any(act[h]);
    }
    if (!any) break;
    for (unsigned h = 0; h < H; ++h) {
      const I w = O::or_(O::sllv(buf[h], pos[h]), O::srlv(nxt[h], O::sub(c32, pos[h])));
      I lg, raw, gap, lv;
      F wt;
      if constexpr (O::gather_tables) {
        // The 128-entry tables, one gather each (cheaper than the arithmetic on AVX2).
        const I ge = O::gather(v.gap, O::srli(w, 25));
        lg = O::and_(ge, O::set1(7));
        raw = O::and_(O::srli(ge, 3), c31);
        const I w1 = O::sllv(w, lg);
        gap = O::add(O::srli(ge, 8), O::srlv(w1, O::sub(c32, raw)));
        const I t = O::srli(O::sllv(w1, raw), 25);
        I vr;
        value_code.decode(t, lv, vr);
        wt = O::gather_f(v.value, t);
      } else {
        I gr, vr;
        gap_code.decode(O::srli(w, 25), lg, gr);
        const I bucket = gap_lut(gr);
        raw = O::and_(bucket, c31);
        const I w1 = O::sllv(w, lg);
        gap = O::add(O::srli(bucket, 5), O::srlv(w1, O::sub(c32, raw)));
        value_code.decode(O::srli(O::sllv(w1, raw), 25), lv, vr);
        wt = value_lut(O::and_(vr, c127));
      }
      const I c = O::add(col[h], gap);
      sink.entry(h, c, wt, act[h]);
      col[h] = O::add(c, one);
      pos[h] = O::add(pos[h], O::masked(O::add(O::add(lg, raw), lv), act[h]));
      left[h] = O::dec(left[h], act[h]);
    }
    sink.step_done();
    // Refills in lane order, then rows that ended (lanes.hpp).
    for (unsigned h = 0; h < H; ++h) O::refill(buf[h], nxt[h], pos[h], p);
    unsigned ended = 0;
    for (unsigned h = 0; h < H; ++h) ended |= O::zero_in(left[h], act[h]) << (h * W);
    if (!ended) continue;
    for (unsigned h = 0; h < H; ++h) {
      O::storeu(s_left + h * W, left[h]);
      O::storeu(s_col + h * W, col[h]);
    }
    sink.spill();
    for (; ended; ended &= ended - 1) {
      const unsigned l = unsigned(__builtin_ctz(ended));
      sink.end_row(l, row[l]);
      take(l);
    }
    reload();
  }
}

// y = W x: each lane's sum in a vector element.
template <class O>
struct LaneDots {
  static constexpr unsigned W = O::width, H = kLanes / W;
  const float* x;
  float* y;
  typename O::vf acc[H];
  alignas(64) float s_acc[kLanes] = {};
  void entry(unsigned h, typename O::vi c, typename O::vf wt, typename O::mask act) {
    acc[h] = O::fmadd(wt, O::gather_x(x, c, act), acc[h]);
  }
  void step_done() {}
  void empty_row(uint64_t r) { y[r] = 0.0f; }
  void begin_row(unsigned l) { s_acc[l] = 0.0f; }
  void end_row(unsigned l, uint64_t r) { y[r] = s_acc[l]; }
  void spill() {
    for (unsigned h = 0; h < H; ++h) O::storeu_f(s_acc + h * W, acc[h]);
  }
  void reload() {
    for (unsigned h = 0; h < H; ++h) acc[h] = O::loadu_f(s_acc + h * W);
  }
};

// Y = W X with B columns: each step's entries stored as they come (step-major, lane order,
// column and weight side by side); a row, once it ends, multiplies its entries (one lane,
// consecutive steps) with X.
template <class O, class V>
struct LaneRowsOut {
  static constexpr unsigned W = O::width;
  const float* X;
  uint64_t B;
  float* Y;
  std::vector<uint32_t> entries;  // 2 * kLanes per step: column, weight bits
  uint64_t step = 0, start[kLanes] = {};
  void reset() {
    step = 0;
    if (entries.size() < 128 * kLanes) entries.resize(128 * kLanes);
  }
  void entry(unsigned h, typename O::vi c, typename O::vf wt, typename O::mask) {
    O::store_pairs(entries.data() + 2 * (step * kLanes + h * W), c, wt);
  }
  void step_done() {
    if (++step * 2 * kLanes == entries.size()) entries.resize(2 * entries.size());
  }
  void empty_row(uint64_t r) { std::fill(Y + r * B, Y + (r + 1) * B, 0.0f); }
  void begin_row(unsigned l) { start[l] = step; }
  void end_row(unsigned l, uint64_t r) {
    sparse_row_matmat<V>(B, X, Y + r * B, [&](auto&& f) {
      for (uint64_t s = start[l]; s < step; ++s) {
        const uint32_t* e = entries.data() + 2 * (s * kLanes + l);
        float w;
        std::memcpy(&w, e + 1, 4);
        f(uint64_t(e[0]), w);
      }
    });
  }
  void spill() {}
  void reload() {}
};

// f(gap_lut, value_lut) with the set's register lookups (Lut<B> of avx2.cpp / avx512.cpp):
// buckets from 8 or 32 entries, weights from the fewest entries that hold the value code's
// ranks.  Unused where the set gathers from the tables.
template <class O, class F>
void with_lane_luts(const HcsrLanesView& v, F&& f) {
  if constexpr (O::gather_tables) {
    auto unused = [](typename O::vi r) { return r; };
    return f(unused, unused);
  }
  auto with_gaps = [&](auto GBc) {
    constexpr int GB = decltype(GBc)::value;
    // Bucket entries as float bit patterns: the lookups only move bits.
    const Lut<GB> gap_bits(reinterpret_cast<const float*>(v.gap_by_rank), 32);
    auto gap_lut = [&](typename O::vi r) { return O::as_int(gap_bits(r)); };
    auto with_values = [&](auto VBc) {
      constexpr int VB = decltype(VBc)::value;
      const Lut<VB> value_lut(v.value_by_rank, 128);
      f(gap_lut, value_lut);
    };
    switch (std::max(3u, cnn::index_bits(v.value_code_ranks.ranks))) {
      case 3:
        return with_values(std::integral_constant<int, 3>());
      case 4:
        return with_values(std::integral_constant<int, 4>());
      case 5:
        return with_values(std::integral_constant<int, 5>());
      case 6:
        return with_values(std::integral_constant<int, 6>());
      default:
        return with_values(std::integral_constant<int, 7>());
    }
  };
  if (v.gap_code.ranks <= 8)
    with_gaps(std::integral_constant<int, 3>());
  else
    with_gaps(std::integral_constant<int, 5>());
}

template <class O>
void lanes_matvec(const HcsrLanesView& v, const float* x, float* y, uint64_t g0, uint64_t g1) {
  with_lane_luts<O>(v, [&](const auto& gap_lut, const auto& value_lut) {
    LaneDots<O> sink{x, y, {}};
    for (uint64_t g = g0; g < g1; ++g) lanes_group_simd<O>(v, g, gap_lut, value_lut, sink);
  });
}

template <class O, class V>
void lanes_matmat(const HcsrLanesView& v, const float* X, uint64_t B, float* Y, uint64_t g0,
                  uint64_t g1) {
  with_lane_luts<O>(v, [&](const auto& gap_lut, const auto& value_lut) {
    LaneRowsOut<O, V> sink{X, B, Y, {}, {}};
    for (uint64_t g = g0; g < g1; ++g) {
      sink.reset();
      lanes_group_simd<O>(v, g, gap_lut, value_lut, sink);
    }
  });
}

}  // namespace
}  // namespace cnn::kernels
