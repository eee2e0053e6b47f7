// Canonical, length-limited Huffman codes: code lengths from counts, the encoder's codes,
// and a table-driven decoder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "table_entries.hpp"

namespace cnn::huff {

constexpr int kMaxLen = 24;         // longest code; a 64-bit window always holds one code
constexpr int kTableBits = 11;      // 2^11 four-byte entries: 8 KiB, L1-resident
constexpr uint8_t kZeroBits = 255;  // length of the only symbol of a one-symbol code: 0 bits
static_assert(kMaxLen < HuffEntry::kSlow, "a table entry holds every code length");

// Optimal code lengths for `counts` (0 = symbol unused), none longer than `max_len`.
// A single used symbol gets kZeroBits, or length 1 when `zero_bit_ok` is false.
std::vector<uint8_t> code_lengths(const std::vector<uint64_t>& counts, int max_len = kMaxLen,
                                  bool zero_bit_ok = true);

// Canonical code of every symbol (codes ordered by length, then symbol).
std::vector<uint32_t> canonical_codes(const std::vector<uint8_t>& lengths);

// Bits that `counts` costs under `lengths`.
uint64_t coded_bits(const std::vector<uint64_t>& counts, const std::vector<uint8_t>& lengths);

// First-level table bits for a stream of `stream_bits`: kTableBits, fewer for small streams
// so the table stays within 1/32 of the stream (codes past the table take the slow path).
int table_bits_for(uint64_t stream_bits);

class Decoder {
 public:
  Decoder() = default;
  // Validates `lengths` (FormatError on lengths over kMaxLen, an over-full code, or a
  // misplaced kZeroBits) and builds the tables, the first-level one of at most
  // `max_table_bits` bits (table_bits_for).
  Decoder(const std::vector<uint8_t>& lengths, int max_table_bits);

  // Decodes the code at the top of `window` (at least kMaxLen valid bits).
  // Returns its HuffEntry (symbol and length), or HuffEntry::kInvalid if no code matches
  // (an incomplete code).
  inline uint32_t decode(uint64_t window) const {
    uint32_t e = table_[window >> (64 - table_bits_)];
    return HuffEntry::len(e) != HuffEntry::kSlow ? e : decode_long(window);
  }
  int table_bits() const { return table_bits_; }
  int max_len() const { return max_len_; }
  bool zero_bit() const { return zero_bit_; }
  // Bytes of the decoding tables (the lengths themselves are counted by the owner).
  size_t nbytes() const;

 private:
  uint32_t decode_long(uint64_t window) const;
  int table_bits_ = 1, max_len_ = 0;
  bool zero_bit_ = false;
  std::vector<uint32_t> table_;
  // Canonical decoding of codes longer than the table: per length the first code, the
  // number of codes and where its symbols start in `sorted_`.
  uint32_t first_[kMaxLen + 1] = {}, count_[kMaxLen + 1] = {}, start_[kMaxLen + 1] = {};
  std::vector<uint32_t> sorted_;
};

}  // namespace cnn::huff
