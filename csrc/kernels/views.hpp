// What a kernel sees of each format: plain pointers and sizes, no ownership.
#pragma once
#include <cstdint>
#include <cstring>

#include "../table_entries.hpp"

namespace cnn {
namespace huff {
class Decoder;
}

namespace kernels {

// Integers of 1, 2, 4 or 8 bytes each (packed.hpp), followed by 7 readable bytes: any one
// loads as 8 bytes and a mask, with no branch on the width.
struct Packed {
  const uint8_t* data;
  unsigned shift;  // log2 of the width in bytes
  uint64_t mask;
  uint64_t operator[](uint64_t i) const {
    uint64_t v;
    std::memcpy(&v, data + (i << shift), 8);  // little-endian, like every supported CPU
    return v & mask;
  }
};

struct IMView {
  uint64_t rows, cols;
  unsigned index_bits;  // ceil(log2 k) (0..16); packed layout in index_map.hpp
  uint32_t k;
  const float* codebook;
  const uint8_t* packed;
  // Where row `row`'s indices start (for rows past the end, the last row's), for prefetching:
  // the multi-row kernels ask for the next block of rows as they pass each column, at
  // row_bytes(row) + c * index_bits / 8, within a group of the right place.  A row of a
  // wide matrix is a page of its own, where the hardware prefetchers stop (8192^2, k = 16,
  // one thread, AVX2: 4.5 -> 3.5 ms on Zen 5).
  const uint8_t* row_bytes(uint64_t row) const {
    return packed + ((row < rows ? row : rows - 1) * cols >> 7) * 16 * index_bits;
  }
};

// The next block of R rows, from row `next`, asked for column by column (IMView::row_bytes).
template <int Bits, int R>
struct RowsAhead {
  const uint8_t* at[R];
  RowsAhead(const IMView& v, uint64_t next) {
    for (int r = 0; r < R; ++r) at[r] = v.row_bytes(next + r);
  }
  void operator()(int r, uint64_t c) const { __builtin_prefetch(at[r] + (c * Bits >> 3)); }
};

struct HAMView {
  uint64_t rows, cols;
  unsigned index_bits;  // ceil(log2 k): selects the SIMD lookup
  uint32_t k;
  const float* codebook;
  const uint8_t* stream;
  Packed offsets;  // rows + 1 bit offsets
  const huff::Decoder* decoder;
  // Up to 3 symbols per lookup (k <= 256; null for small matrices): HamMultiEntry.
  const uint32_t* multi;
  int multi_bits;
};

constexpr int kHcsrTableBits = 12;  // bits of HCSR's one-lookup table

struct HCSRView {
  uint64_t rows, cols;
  const float* codebook;
  const uint8_t* stream;
  Packed offsets;  // rows + 1 bit offsets
  const huff::Decoder* decoder;
  unsigned gap_bits, esc_bits;
  // One lookup per entry, indexed by the next kHcsrTableBits of the stream: meta, an
  // HcsrMetaEntry (length and column step, or a link to a second table at the uint32 in
  // value's bits), and value, the entry's weight.
  const uint16_t* meta;
  const float* value;
};

// The lane-interleaved layout of HCSR and HAM (lane_layout.hpp): rows in groups of
// group_rows, each group decoded by kLanes lanes that take its rows in turn from one word
// stream.
constexpr unsigned kLanes = 16;

struct LanesView {
  uint64_t rows, cols;
  uint64_t group_rows;          // a multiple of kLanes
  Packed counts;                // entries of each row
  const uint64_t* group_words;  // groups + 1 word offsets of the groups' streams
  const uint32_t* words;        // the streams, then kLanes zero words of padding
  // LaneCodeEntry tables indexed by the next 7 bits: gap codes (payload: the bucket) and
  // value codes (payload: the codebook index).
  const uint32_t* gap;
  const uint32_t* value_code;
  const float* value;  // the codebook value of each value-code prefix
  const float* codebook;
  // The same codes decoded by arithmetic (SIMD kernels): a code's length is the number of
  // limits its 7-bit prefix t exceeds (limit[L] + 1: the first prefix of a code longer than
  // L bits); its rank among the codes, ordered by length then symbol, is
  // (t >> (7 - length)) + offset[length].
  struct Code {
    int32_t limit[LaneCodeEntry::kCodeBits], offset[LaneCodeEntry::kCodeBits + 1];
    uint32_t ranks;  // symbols with a code
  } gap_code, value_code_ranks;
  const uint32_t* gap_by_rank;  // the LaneBucket of each gap code rank (32 entries)
  const float* value_by_rank;   // codebook value per value code rank (128 entries)
};

// HCSR's fixed-width layout (fixed_layout.hpp): rows in groups of kFixedLanes, one lane
// each, every step of a group one entry per lane: a column step byte per lane (the plane
// `steps`), then the lanes' 5-bit slots (the plane `slots`: lane l's low 4 bits in nibble l
// of 4 bytes, its bit 4 in bit l of a fifth byte).
constexpr unsigned kFixedLanes = 8, kFixedSlotBytes = 5, kFixedSlots = 32;

struct FixedView {
  uint64_t rows, cols;
  Packed order;               // the row of each lane (lane l of group g: order[8g + l])
  const uint64_t* first;      // groups + 1: each group's first step, counted from 0
  const uint8_t* steps;       // kFixedLanes bytes per step
  const uint8_t* slots;       // kFixedSlotBytes bytes per step
  const float* slot_value;    // kFixedSlots values; filler slot: 0
  uint32_t filler;            // the slot of entries that are not stored: gap fillers, padding
  bool finite;                // x (X) holds no inf or NaN: fillers need no mask (kernels)
};

}  // namespace kernels
}  // namespace cnn
