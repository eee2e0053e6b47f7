// The lane layout decoded kLanes lanes at a time: the schedule of lanes.hpp, step for
// step, with each lane's state in a vector element.  O supplies the instructions of one
// set (avx2.cpp, avx512.cpp): O::width lanes per vector, kLanes / O::width vectors per group.
// Per entry one gather, of x[col] (NEON: four loads): each code's length is counted from compares against its
// canonical limits, its rank follows (views.hpp), and the rank looks up the bucket and the
// weight in registers (GapLut, ValueLut: rank vector -> packed bucket / weight vector).
// Where gathers are cheap against the many registers that takes (O::gather_tables: AVX2,
// 16 registers), the gap code and the weight come from the 128-entry tables instead.
#pragma once
#include "../common.hpp"
#include "../scratch.hpp"
#include "lanes.hpp"

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// The largest prefix of the code tables, and so the largest rank.
constexpr int32_t kLastPrefix = int32_t(LaneCodeEntry::kTableSize) - 1;

// A code's limits and offsets in registers: only limits in 0..126 decide anything (every
// prefix exceeds -1, none exceeds 127), so the lengths with no codes up to them (limit -1)
// are counted once, in `base`.
template <class O>
struct LaneCode {
  static constexpr unsigned kCodeBits = LaneCodeEntry::kCodeBits;
  typename O::vi limit[kCodeBits], base;
  typename O::table8 offset;
  unsigned n = 0;
  explicit LaneCode(const LanesView::Code& c) : offset(O::load8(c.offset)) {
    int32_t b = 0;
    for (unsigned L = 0; L < kCodeBits; ++L)
      if (c.limit[L] < 0)
        ++b;
      else if (c.limit[L] < kLastPrefix)
        limit[n++] = O::set1(c.limit[L]);
    base = O::set1(b);
  }
  // The length and rank of the codes at the top 7 bits t.
  void decode(typename O::vi t, typename O::vi& len, typename O::vi& rank) const {
    len = base;
    for (unsigned L = 0; L < n; ++L) len = O::add_if_greater(len, t, limit[L]);
    rank = O::add(O::srlv(t, O::sub(O::set1(kCodeBits), len)), O::permute8(offset, len));
  }
};

// Decodes group g, handing each step's entries to the sink: entry(h, col, weight, active)
// for vector h, then step_done(); empty_row(row) for a row without entries; at a row's end
// (lanes in order) spill() once, end_row(lane, row) and begin_row(lane) for the lane's next
// row (begin_row also starts each lane's first), then reload().
template <class O, class GapLut, class ValueLut, class Sink>
void lanes_group_simd(const LanesView& v, uint64_t g, const GapLut& gap_lut,
                      const ValueLut& value_lut, Sink& sink) {
  using I = typename O::vi;
  using F = typename O::vf;
  constexpr unsigned W = O::width, H = kLanes / W;
  const LaneCode<O> gap_code(v.gap_code), value_code(v.value_code_ranks);
  using E = LaneCodeEntry;
  const I raw_mask = O::set1(LaneBucket::kRawMask), c32 = O::set1(32), one = O::set1(1),
          last_rank = O::set1(kLastPrefix);
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
        const I ge = O::gather(v.gap, O::srli(w, kCodeShift));
        lg = O::and_(ge, O::set1(E::kLenMask));
        raw = O::and_(O::srli(ge, E::kRawShift), raw_mask);
        const I w1 = O::sllv(w, lg);
        gap = O::add(O::srli(ge, E::kBaseShift), O::srlv(w1, O::sub(c32, raw)));
        const I t = O::srli(O::sllv(w1, raw), kCodeShift);
        I vr;
        value_code.decode(t, lv, vr);
        wt = O::gather_f(v.value, t);
      } else {
        I gr, vr;
        gap_code.decode(O::srli(w, kCodeShift), lg, gr);
        const I bucket = gap_lut(gr);
        raw = O::and_(bucket, raw_mask);
        const I w1 = O::sllv(w, lg);
        gap = O::add(O::srli(bucket, LaneBucket::kRawBits), O::srlv(w1, O::sub(c32, raw)));
        value_code.decode(O::srli(O::sllv(w1, raw), kCodeShift), lv, vr);
        wt = value_lut(O::and_(vr, last_rank));
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

// The entries buffer of LaneRowsOut, kept by each thread between calls: grown from empty
// on every call, it faulted in fresh pages each time (the ccexam CNN's 128x3136 layer at
// batch 64: ~480 page faults and 1.7 ms a call instead of 0.66; one thread, Zen 5).
inline std::vector<uint32_t>& lane_entries() {
  thread_local std::vector<uint32_t> entries;
  return entries;
}

// Y = W X with batch columns: each step's entries stored as they come (step-major, lane order,
// column and weight side by side); a row, once it ends, multiplies its entries (one lane,
// consecutive steps) with X.
template <class O, class V>
struct LaneRowsOut {
  static constexpr unsigned W = O::width;
  const float* X;
  uint64_t batch;
  float* Y;
  std::vector<uint32_t>& entries = lane_entries();  // 2 * kLanes per step: column, weight bits
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
  void empty_row(uint64_t r) { std::fill(Y + r * batch, Y + (r + 1) * batch, 0.0f); }
  void begin_row(unsigned l) { start[l] = step; }
  void end_row(unsigned l, uint64_t r) {
    sparse_row_matmat<V>(batch, X, Y + r * batch, [&](auto&& f) {
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

// f(lut) with a register lookup of `table` (ranks entries): Lut<Bits> of avx2.cpp / avx512.cpp
// from the fewest entries that hold them.
template <class F>
void with_rank_lut(const float* table, uint32_t ranks, F&& f) {
  auto with = [&](auto bits) {
    const Lut<decltype(bits)::value> lut(table, LaneCodeEntry::kTableSize);
    f(lut);
  };
  switch (std::max(3u, cnn::index_bits(ranks))) {
    case 3:
      return with(std::integral_constant<int, 3>());
    case 4:
      return with(std::integral_constant<int, 4>());
    case 5:
      return with(std::integral_constant<int, 5>());
    case 6:
      return with(std::integral_constant<int, 6>());
    default:
      return with(std::integral_constant<int, 7>());
  }
}

// f(gap_lut, value_lut) with the set's register lookups: buckets from 8 or 32 entries,
// weights from the fewest entries that hold the value code's ranks.  Unused where the set
// gathers from the tables.
template <class O, class F>
void with_lane_luts(const LanesView& v, F&& f) {
  if constexpr (O::gather_tables) {
    auto unused = [](typename O::vi r) { return r; };
    return f(unused, unused);
  }
  auto with_gaps = [&](auto bits) {
    // Bucket entries as float bit patterns: the lookups only move bits.
    const Lut<decltype(bits)::value> buckets(reinterpret_cast<const float*>(v.gap_by_rank), 32);
    auto gap_lut = [&](typename O::vi r) { return O::as_int(buckets(r)); };
    with_rank_lut(v.value_by_rank, v.value_code_ranks.ranks,
                  [&](const auto& value_lut) { f(gap_lut, value_lut); });
  };
  if (v.gap_code.ranks <= 8)
    with_gaps(std::integral_constant<int, 3>());
  else
    with_gaps(std::integral_constant<int, 5>());
}

template <class O>
void lanes_matvec(const LanesView& v, const float* x, float* y, uint64_t g0, uint64_t g1) {
  with_lane_luts<O>(v, [&](const auto& gap_lut, const auto& value_lut) {
    LaneDots<O> sink{x, y, {}};
    for (uint64_t g = g0; g < g1; ++g) lanes_group_simd<O>(v, g, gap_lut, value_lut, sink);
  });
}

template <class O, class V>
void lanes_matmat(const LanesView& v, const float* X, uint64_t batch, float* Y, uint64_t g0,
                  uint64_t g1) {
  with_lane_luts<O>(v, [&](const auto& gap_lut, const auto& value_lut) {
    LaneRowsOut<O, V> sink{X, batch, Y};
    for (uint64_t g = g0; g < g1; ++g) {
      sink.reset();
      lanes_group_simd<O>(v, g, gap_lut, value_lut, sink);
    }
  });
}

// The lane layout with dense rows, HAM's (every row holds all its columns and no gap code
// is spent): a block of kLanes rows decodes side by side with every lane at the same
// column, so a step needs one x[t] for all lanes, no gather.  G groups of as many rows decode in
// lockstep, since one group's step is a chain of dependent latencies (decode, refill) that
// alone would leave the core idle.  The sink gets begin(q, row, n) for a block of n rows of
// group q (lane l holds row + l), step(t, v, weights) for vector v = q * H + h of each
// step, end(q, row, n).
template <class O, unsigned G, class ValueLut, class Sink>
void dense_lanes_groups_simd(const LanesView& v, uint64_t g, const ValueLut& value_lut,
                           Sink& sink) {
  using I = typename O::vi;
  constexpr unsigned W = O::width, H = kLanes / W, N = G * H;
  alignas(64) static constexpr uint32_t kLane[kLanes] = {0, 1, 2,  3,  4,  5,  6,  7,
                                                         8, 9, 10, 11, 12, 13, 14, 15};
  const LaneCode<O> value_code(v.value_code_ranks);
  const I c32 = O::set1(32), last_rank = O::set1(kLastPrefix);
  const uint64_t rows = std::min(v.rows - g * v.group_rows, v.group_rows);  // each group's
  const uint32_t* p[G];
  I buf[N], nxt[N], pos[N];
  for (unsigned q = 0; q < G; ++q) {
    p[q] = v.words + v.group_words[g + q];
    for (unsigned h = 0; h < H; ++h) {
      buf[q * H + h] = O::loadu(p[q] + h * W);
      nxt[q * H + h] = O::loadu(p[q] + kLanes + h * W);
      pos[q * H + h] = O::set1(0);
    }
    p[q] += 2 * kLanes;
  }
  for (uint64_t r = 0; r < rows; r += kLanes) {
    const unsigned n = unsigned(std::min<uint64_t>(kLanes, rows - r));
    typename O::mask live[H];  // lanes with a row: only they spend bits
    for (unsigned h = 0; h < H; ++h)
      live[h] = O::positive(O::sub(O::set1(int32_t(n)), O::loadu(kLane + h * W)));
    for (unsigned q = 0; q < G; ++q) sink.begin(q, (g + q) * v.group_rows + r, n);
    for (uint64_t t = 0; t < v.cols; ++t) {
      for (unsigned i = 0; i < N; ++i) {
        const I w = O::or_(O::sllv(buf[i], pos[i]), O::srlv(nxt[i], O::sub(c32, pos[i])));
        const I top = O::srli(w, kCodeShift);
        I len, rank;
        value_code.decode(top, len, rank);
        sink.step(t, i, value_lut(O::and_(rank, last_rank)));
        pos[i] = O::add(pos[i], O::masked(len, live[i % H]));
      }
      for (unsigned i = 0; i < N; ++i) O::refill(buf[i], nxt[i], pos[i], p[i / H]);
    }
    for (unsigned q = 0; q < G; ++q) sink.end(q, (g + q) * v.group_rows + r, n);
  }
}

// y = W x on dense lanes: each lane's sum in a vector element.
template <class O, unsigned G>
struct DenseLaneDots {
  static constexpr unsigned W = O::width, H = kLanes / W;
  const float* x;
  float* y;
  typename O::vf acc[G * H], xt;
  void begin(unsigned q, uint64_t, unsigned) {
    for (unsigned h = 0; h < H; ++h) acc[q * H + h] = O::set1_f(0.0f);
  }
  void step(uint64_t t, unsigned i, typename O::vf wt) {
    if (i == 0) xt = O::set1_f(x[t]);
    acc[i] = O::fmadd(wt, xt, acc[i]);
  }
  void end(unsigned q, uint64_t r, unsigned n) {
    alignas(64) float out[kLanes];
    for (unsigned h = 0; h < H; ++h) O::storeu_f(out + h * W, acc[q * H + h]);
    std::copy(out, out + n, y + r);
  }
};

// Y = W X on dense lanes, one group at a time: a block's weights stored step-major
// (column t of the block's rows at w[t * kLanes]), then multiplied as a dense block
// (matmat.hpp), which takes them back row by row as its Source.
template <class O, class V>
struct DenseLaneBlock {
  static constexpr unsigned W = O::width;
  uint64_t cols;
  const float* X;
  uint64_t batch;
  float* Y;
  float* w = scratch(ScratchSlot::LaneBlock, cols * kLanes);  // every step writes its column
  uint64_t first = 0;
  void begin(unsigned, uint64_t r, unsigned) { first = r; }
  void step(uint64_t t, unsigned h, typename O::vf wt) {
    O::storeu_f(w + t * kLanes + h * W, wt);
  }
  void end(unsigned, uint64_t r, unsigned n) {
    blocked_matmat<V>(cols, X, batch, Y, r, r + n, 4 * V::tile_rows, *this);
  }
  void prepare(uint64_t, uint64_t) {}
  void weights(uint64_t i, uint64_t j0, uint64_t kc, float* out) const {
    const float* c = w + j0 * kLanes + (i - first);
    for (uint64_t j = 0; j < kc; ++j) out[j] = c[j * kLanes];
  }
};

// Groups in flight: 4 vectors of lanes (AVX2: 2 groups, AVX-512: 4).
template <class O>
void dense_lanes_matvec(const LanesView& v, const float* x, float* y, uint64_t g0, uint64_t g1) {
  constexpr unsigned G = 4 * O::width / kLanes;
  with_rank_lut(v.value_by_rank, v.value_code_ranks.ranks, [&](const auto& value_lut) {
    DenseLaneDots<O, G> many{x, y, {}, {}};
    DenseLaneDots<O, 1> one{x, y, {}, {}};
    uint64_t g = g0;
    // Groups of equal rows in lockstep (only the matrix's last group may be short).
    for (; g + G <= g1 && (g + G) * v.group_rows <= v.rows; g += G)
      dense_lanes_groups_simd<O, G>(v, g, value_lut, many);
    for (; g < g1; ++g) dense_lanes_groups_simd<O, 1>(v, g, value_lut, one);
  });
}

template <class O, class V>
void dense_lanes_matmat(const LanesView& v, const float* X, uint64_t batch, float* Y, uint64_t g0,
                      uint64_t g1) {
  with_rank_lut(v.value_by_rank, v.value_code_ranks.ranks, [&](const auto& value_lut) {
    DenseLaneBlock<O, V> sink{v.cols, X, batch, Y};
    for (uint64_t g = g0; g < g1; ++g) dense_lanes_groups_simd<O, 1>(v, g, value_lut, sink);
  });
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
