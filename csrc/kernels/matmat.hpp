// The blocked matrix-matrix products shared by the SIMD kernel sets (TU-local, like
// decode.hpp).  V is a vector type: width, zero, load/store (masked for a partial
// vector), set1, fmadd.
//
// W's rows come from a Source, which expands them to floats kKC columns at a time:
//   source.prepare(i0, i1)            before rows [i0, i1) are asked for (HAM decodes them);
//   source.weights(i, j0, kc, out)    W[i, j0 : j0 + kc] as floats.
// matmat (Y = W X): V::tile_rows rows of W at a time (L1) times a block of X (kKC x kNC,
// kept in L2), in a register tile of tile_rows rows x tile_vectors vectors of Y.
// linear (Y = X W^T): the same tiles with the operands exchanged: a panel of W's rows is
// transposed into kKC x kLinearPanel floats, rows of X are broadcast.
// Each Y entry sums its terms in column order whatever the grouping, so threads do not
// change results, and linear(X) is matmat(X^T)^T bit for bit.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "decode.hpp"
#include "epilogue.hpp"

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// Columns of W (rows of X) per block: a tile's kKC x 16 (AVX2) or x 64 (AVX-512) slice of X,
// and all the slices of a block 64 columns wide, stay in L1 (256 -> 128: 4096^2, k=16, B=64,
// one thread, Zen 5: AVX2 23.3 -> 21.1 ms, AVX-512 linear 22.4 -> 17.9 ms).
constexpr uint64_t kKC = 128;
constexpr uint64_t kNC = 256;  // columns of X per panel: a kKC x kNC block (128 KiB) stays in L2

// One register tile: y[r][b0 .. b0 + NV vectors) (+)= sum over j < kc of w[r][j] X[j][...].
// Full: every vector whole, else the last holds `last` lanes (stored masked).  X's rows
// [0, kc) from X are one block of kc x batch floats.  No test of a width inside the loops:
// with one, GCC kept the accumulators on the stack and the tile ran at half speed.
// Row r of w starts at w + r * ldw, of y at y + r * ldy: a base and a stride rather than R
// pointers, which GCC kept on the stack and reloaded every step (AVX2, 4096^2 k=16 B=64,
// one thread, Zen 5: 37.5 -> 28.3 ms).
template <class V, int R, int NV, bool Full>
inline void mm_tile(const float* w, uint64_t ldw, uint64_t kc, const float* X, uint64_t batch,
                    uint64_t b0, unsigned last, bool accumulate, float* y, uint64_t ldy) {
  const typename V::tail tail = V::tail_of(Full ? V::width : last);
  auto load = [&](const float* p, int v, bool whole) {
    return whole || v < NV - 1 ? V::loadu(p) : V::load(p, tail);
  };
  typename V::reg acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? load(y + r * ldy + b0 + v * V::width, v, Full) : V::zero();
  const float* xr = X + b0;
  auto step = [&](uint64_t j, bool whole) {
    typename V::reg xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = load(xr + v * V::width, v, whole);
    for (int r = 0; r < R; ++r) {
      typename V::reg wv = V::set1(w[r * ldw + j]);
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(wv, xv[v], acc[r][v]);
    }
  };
  // A partial last vector is read whole (its extra lanes are never stored) while the read
  // stays inside the block's kc rows, and masked only after: a masked load in the loop made
  // GCC store every accumulator to the stack at each step (g++ 12: the 6 x 3 tile of a
  // 98-column product at half speed, the 6 x 1 tile of a 196-column one at a quarter).
  const uint64_t over = b0 + NV * V::width > batch ? b0 + NV * V::width - batch : 0;
  const uint64_t whole = Full ? kc : kc - std::min<uint64_t>(kc, (over + batch - 1) / batch);
  uint64_t j = 0;
  for (; j < whole; ++j, xr += batch) step(j, true);
  for (; j < kc; ++j, xr += batch) step(j, false);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      float* p = y + r * ldy + b0 + v * V::width;
      if (Full || v < NV - 1)
        V::store(p, acc[r][v], V::width);
      else
        V::store(p, acc[r][v], tail);
    }
}

// The tile is R rows x V::tile_vectors vectors of accumulators: 6 x 4 with AVX-512's 32
// registers, 6 x 2 with AVX2's 16 (12 accumulators hide the FMA latency; more would spill).
// Columns [b, b_end) of the rows' tiles.
template <class V, int R>
inline void mm_rows(const float* w, uint64_t ldw, uint64_t kc, const float* X, uint64_t batch,
                    uint64_t b, uint64_t b_end, bool accumulate, float* y, uint64_t ldy) {
  constexpr int kNV = V::tile_vectors;
  constexpr uint64_t kTile = kNV * V::width;
  uint64_t b0 = b;
  for (; b0 + kTile <= b_end; b0 += kTile)
    mm_tile<V, R, kNV, true>(w, ldw, kc, X, batch, b0, V::width, accumulate, y, ldy);
  uint64_t rest = b_end - b0;
  if (!rest) return;
  unsigned nv = unsigned((rest + V::width - 1) / V::width);
  unsigned last = unsigned(rest - (nv - 1) * V::width);
  static_assert(kNV <= 4, "the switch below covers partial tiles of up to 4 vectors");
  switch (nv) {  // 1 <= nv <= kNV
    case 1: return mm_tile<V, R, 1, false>(w, ldw, kc, X, batch, b0, last, accumulate, y, ldy);
    case 2: return mm_tile<V, R, std::min(2, kNV), false>(w, ldw, kc, X, batch, b0, last, accumulate, y, ldy);
    case 3: return mm_tile<V, R, std::min(3, kNV), false>(w, ldw, kc, X, batch, b0, last, accumulate, y, ldy);
    default: return mm_tile<V, R, kNV, false>(w, ldw, kc, X, batch, b0, last, accumulate, y, ldy);
  }
}

template <class V, int R, class Source>
inline void rows_tile(uint64_t i, int rows, uint64_t j0, uint64_t kc, const float* X,
                      uint64_t batch, uint64_t b, uint64_t b_end, float* Y, float* wbuf,
                      Source& src) {
  if (rows < R) {  // the last rows of a block: a smaller tile
    if constexpr (R > 1) rows_tile<V, R - 1>(i, rows, j0, kc, X, batch, b, b_end, Y, wbuf, src);
    return;
  }
  for (int r = 0; r < R; ++r) src.weights(i + r, j0, kc, wbuf + r * kKC);
  mm_rows<V, R>(wbuf, kKC, kc, X + j0 * batch, batch, b, b_end, j0 > 0, Y + i * batch, batch);
}

// Y[r0:r1] = W[r0:r1] X  (X: cols x batch, Y: rows x batch), rows in blocks of `row_block`,
// then `epilogue` on each finished tile.
template <class V, class Source>
inline void blocked_matmat(uint64_t cols, const float* X, uint64_t batch, float* Y, uint64_t r0,
                           uint64_t r1, uint64_t row_block, Source& src,
                           const Epilogue& epilogue = {}) {
  constexpr int kR = V::tile_rows;
  std::vector<float> wbuf(kR * kKC);
  // Blocks of equal size: 288 columns (a 3x3 convolution of 32 channels) as 3 x 96, not
  // 128 + 128 + 32, whose last block pays a pass over Y for a few terms.
  const uint64_t blocks = std::max<uint64_t>(1, (cols + kKC - 1) / kKC);
  const uint64_t kstep = (cols + blocks - 1) / blocks;  // <= kKC
  for (uint64_t i0 = r0; i0 < r1; i0 += row_block) {
    uint64_t i1 = std::min(r1, i0 + row_block);
    src.prepare(i0, i1);
    if (cols == 0) {
      std::fill(Y + i0 * batch, Y + i1 * batch, 0.0f);
      epilogue(i0, i1, Y, batch, 0, batch);
    }
    for (uint64_t b = 0; b < batch; b += kNC) {
      const uint64_t b_end = std::min(batch, b + kNC);
      for (uint64_t j0 = 0; j0 < cols; j0 += kstep) {
        const uint64_t kc = std::min(kstep, cols - j0);
        for (uint64_t i = i0; i < i1; i += kR)
          rows_tile<V, kR>(i, int(std::min<uint64_t>(kR, i1 - i)), j0, kc, X, batch, b, b_end, Y,
                           wbuf.data(), src);
      }
      if (cols) epilogue(i0, i1, Y, batch, b, b_end);
    }
  }
}

constexpr uint64_t kLinearPanel = kLinearPanelRows;  // rows of W transposed at a time

template <class V, int R>
inline void linear_tile(uint64_t b, int rows, uint64_t j0, uint64_t kc, const float* X,
                        uint64_t cols, const float* wt, uint64_t panel, float* Y,
                        uint64_t ldy) {
  if (rows < R) {
    if constexpr (R > 1) linear_tile<V, R - 1>(b, rows, j0, kc, X, cols, wt, panel, Y, ldy);
    return;
  }
  mm_rows<V, R>(X + b * cols + j0, cols, kc, wt, kLinearPanel, 0, panel, j0 > 0, Y + b * ldy,
                ldy);
}

// Columns [r0, r1) of Y = X W^T  (X: batch x cols, Y: batch x ldy), W's rows in panels of
// kLinearPanel, each transposed kKC columns at a time: no copy of X is made.
template <class V, class Source>
inline void blocked_linear(uint64_t cols, const float* X, uint64_t batch, float* Y, uint64_t ldy,
                           uint64_t r0, uint64_t r1, Source& src) {
  constexpr int kR = V::tile_rows;
  std::vector<float> wt(kKC * kLinearPanel), rows(8 * kKC);
  for (uint64_t p0 = r0; p0 < r1; p0 += kLinearPanel) {
    const uint64_t panel = std::min(r1, p0 + kLinearPanel) - p0;
    src.prepare(p0, p0 + panel);
    if (cols == 0)
      for (uint64_t b = 0; b < batch; ++b)
        std::fill(Y + b * ldy + p0, Y + b * ldy + p0 + panel, 0.0f);
    for (uint64_t j0 = 0; j0 < cols; j0 += kKC) {
      const uint64_t kc = std::min(kKC, cols - j0);
      // Eight rows at a time, transposed in 8 x 8 blocks (V::transpose8; element by element,
      // an Index Map 128 x 3136 at batch 64 took 0.345 ms on one thread, now 0.29).
      for (uint64_t i = 0; i < panel; i += 8) {
        const uint64_t n = std::min<uint64_t>(8, panel - i);
        for (uint64_t r = 0; r < n; ++r) src.weights(p0 + i + r, j0, kc, rows.data() + r * kKC);
        uint64_t j = 0;
        if (n == 8)
          for (; j + 8 <= kc; j += 8)
            V::transpose8(rows.data() + j, kKC, wt.data() + j * kLinearPanel + i, kLinearPanel);
        for (; j < kc; ++j)
          for (uint64_t r = 0; r < n; ++r) wt[j * kLinearPanel + i + r] = rows[r * kKC + j];
      }
      for (uint64_t b = 0; b < batch; b += kR)
        linear_tile<V, kR>(b, int(std::min<uint64_t>(kR, batch - b)), j0, kc, X, cols, wt.data(),
                           panel, Y + p0, ldy);
    }
  }
}

// Sources of W's rows (see the top of this file).
struct DenseRows {
  const float* W;
  uint64_t cols;
  void prepare(uint64_t, uint64_t) {}
  void weights(uint64_t i, uint64_t j0, uint64_t kc, float* out) const {
    std::copy(W + i * cols + j0, W + i * cols + j0 + kc, out);
  }
};

// HAM: rows decode only from their start, so a block of rows is decoded to indices first;
// byte indices (k <= 256) four rows in lockstep through the multi-symbol table.
template <class Idx>
struct HamRows {
  const HAMView& v;
  uint64_t stride, first = 0;
  std::vector<Idx> idx;
  HamRows(const HAMView& view, uint64_t rows)
      : v(view), stride(view.cols + 16), idx(rows * (view.cols + 16)) {}
  Idx* row(uint64_t i) { return idx.data() + (i - first) * stride; }
  void prepare(uint64_t i0, uint64_t i1) {
    first = i0;
    uint64_t i = i0;
    if constexpr (sizeof(Idx) == 1)
      if (v.multi && !v.decoder->zero_bit())
        for (; i + 4 <= i1; i += 4) {
          uint8_t* const rows[4] = {row(i), row(i + 1), row(i + 2), row(i + 3)};
          ham_decode_rows4(v, i, rows);
        }
    for (; i < i1; ++i) ham_decode_row(v, i, row(i));
  }
  void weights(uint64_t i, uint64_t j0, uint64_t kc, float* out) {
    const Idx* r = row(i) + j0;
    for (uint64_t j = 0; j < kc; ++j) out[j] = v.codebook[r[j]];
  }
};

// IndexMap with wider indices (k > 256): expanded through the scalar decoder.
struct WideIndexRows {
  const IMView& v;
  std::vector<uint32_t> idx = std::vector<uint32_t>(kKC);
  void prepare(uint64_t, uint64_t) {}
  void weights(uint64_t i, uint64_t j0, uint64_t kc, float* out) {
    im_decode_range(v, i * v.cols + j0, kc, idx.data());
    for (uint64_t j = 0; j < kc; ++j) out[j] = v.codebook[idx[j]];
  }
};

template <class V>
void dense_matmat_rows(const float* W, uint64_t cols, const float* X, uint64_t batch, float* Y,
                       uint64_t r0, uint64_t r1, const float* bias, bool relu) {
  DenseRows src{W, cols};
  blocked_matmat<V>(cols, X, batch, Y, r0, r1, 4 * V::tile_rows, src, Epilogue{bias, relu});
}

// Y[i, :] = sum over row i's entries of value * X[col, :], with the row's accumulators in
// registers: up to 8 vectors of columns at a time (64 columns on AVX2 and AVX-512, 32 on
// NEON), so rows of up to that many columns decode once.
template <class V, class ForEach>
inline void sparse_row_matmat(uint64_t batch, const float* X, float* y, ForEach&& for_each) {
  constexpr int kMax = std::min(8, int(64 / V::width));
  constexpr uint64_t kTile = kMax * V::width;
  for (uint64_t b0 = 0; b0 < batch; b0 += kTile) {
    uint64_t rest = std::min(kTile, batch - b0);
    unsigned nv = unsigned((rest + V::width - 1) / V::width);
    unsigned last = unsigned(rest - (nv - 1) * V::width);
    auto body = [&](auto NVc) {
      constexpr int NV = decltype(NVc)::value;
      typename V::reg acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = V::zero();
      for_each([&](uint64_t c, float value) {
        typename V::reg wv = V::set1(value);
        const float* xr = X + c * batch + b0;
        for (int v = 0; v < NV; ++v)
          acc[v] = V::fmadd(wv, V::load(xr + v * V::width, v == NV - 1 ? last : V::width), acc[v]);
      });
      for (int v = 0; v < NV; ++v)
        V::store(y + b0 + v * V::width, acc[v], v == NV - 1 ? last : V::width);
    };
    switch (nv) {
      case 1: body(std::integral_constant<int, 1>()); break;
      case 2: body(std::integral_constant<int, std::min(2, kMax)>()); break;
      case 3: body(std::integral_constant<int, std::min(3, kMax)>()); break;
      case 4: body(std::integral_constant<int, std::min(4, kMax)>()); break;
      case 5: body(std::integral_constant<int, std::min(5, kMax)>()); break;
      case 6: body(std::integral_constant<int, std::min(6, kMax)>()); break;
      case 7: body(std::integral_constant<int, std::min(7, kMax)>()); break;
      default: body(std::integral_constant<int, kMax>()); break;
    }
  }
}

// Calls f(std::integral_constant<int, Bits>()) for index widths Bits = 0..8 (the SIMD
// lookups); returns false for wider indices.
template <class F>
bool for_bits(unsigned bits, F&& f) {
  switch (bits) {
    case 0: f(std::integral_constant<int, 0>()); return true;
    case 1: f(std::integral_constant<int, 1>()); return true;
    case 2: f(std::integral_constant<int, 2>()); return true;
    case 3: f(std::integral_constant<int, 3>()); return true;
    case 4: f(std::integral_constant<int, 4>()); return true;
    case 5: f(std::integral_constant<int, 5>()); return true;
    case 6: f(std::integral_constant<int, 6>()); return true;
    case 7: f(std::integral_constant<int, 7>()); return true;
    case 8: f(std::integral_constant<int, 8>()); return true;
  }
  return false;
}

template <class V>
void ham_matmat_rows(const HAMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                     uint64_t r1) {
  auto run = [&](auto src) {
    blocked_matmat<V>(v.cols, X, batch, Y, r0, r1, 4 * V::tile_rows, src);
  };
  if (v.k <= 256)
    run(HamRows<uint8_t>(v, 4 * V::tile_rows));
  else
    run(HamRows<uint16_t>(v, 4 * V::tile_rows));
}

template <class V>
void ham_linear_rows(const HAMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                     uint64_t r1) {
  auto run = [&](auto src) { blocked_linear<V>(v.cols, X, batch, Y, v.rows, r0, r1, src); };
  if (v.k <= 256)
    run(HamRows<uint8_t>(v, kLinearPanel));
  else
    run(HamRows<uint16_t>(v, kLinearPanel));
}

template <class V>
void hcsr_matmat_rows(const HCSRView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                      uint64_t r1) {
  for (uint64_t i = r0; i < r1; ++i)
    sparse_row_matmat<V>(batch, X, Y + i * batch, [&](auto&& f) { hcsr_for_each(v, i, f); });
}

template <class V>
void im_matmat_wide(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                    uint64_t r1) {
  WideIndexRows src{v};
  blocked_matmat<V>(v.cols, X, batch, Y, r0, r1, 4 * V::tile_rows, src);
}

template <class V>
void im_linear_wide(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                    uint64_t r1) {
  WideIndexRows src{v};
  blocked_linear<V>(v.cols, X, batch, Y, v.rows, r0, r1, src);
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
