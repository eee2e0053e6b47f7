// What a kernel sees of each format: plain pointers and sizes, no ownership.
#pragma once
#include <cstdint>

namespace cnn {
namespace huff {
class Decoder;
}

namespace kernels {

struct IMView {
  uint64_t rows, cols;
  unsigned bits;  // index bits b = ceil(log2 k) (0..16); packed layout in index_map.hpp
  uint32_t k;
  const float* codebook;
  const uint8_t* packed;
};

struct HAMView {
  uint64_t rows, cols;
  unsigned index_bits;  // ceil(log2 k): selects the SIMD lookup
  uint32_t k;
  const float* codebook;
  const uint8_t* stream;
  const uint64_t* offsets;
  const huff::Decoder* decoder;
  // Up to 3 symbols per lookup (k <= 256; null for small matrices): entry = symbols in
  // bytes 0-2 | symbol count << 24 | total length << 27; 0 for a code longer than the table.
  const uint32_t* multi;
  int multi_bits;
};

constexpr int kHcsrTableBits = 12;  // bits of HCSR's one-lookup table

struct HCSRView {
  uint64_t rows, cols;
  const float* codebook;
  const uint8_t* stream;
  const uint64_t* offsets;
  const huff::Decoder* decoder;
  unsigned gap_bits, esc_bits;
  // One lookup per entry: meta = length | column step (gap + 1) << 5 | kEscapeEntry (a raw
  // gap field follows); value = the entry's weight; both indexed by the next table_bits of
  // the stream.  meta = kSlowEntry | sub (sub > 0) links a longer code's prefix to a second
  // table at the uint32 in value's bits, indexed by the next sub bits; kSlowEntry alone:
  // use the general decoder.
  const uint16_t* meta;
  const float* value;
};

}  // namespace kernels
}  // namespace cnn
