// MSB-first bit streams.  A stream is a byte sequence in bit order, held in 64-bit words
// whose memory bytes are that sequence, followed by one zero padding word: a reader may
// then load 8 bytes at the byte holding any bit position up to the end of the stream.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace cnn {

inline uint64_t load_be64(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return __builtin_bswap64(w);
}

// The 64 bits starting at bit `pos`, left-aligned; at least 57 of them are stream bits.
inline uint64_t peek64(const uint8_t* stream, uint64_t pos) {
  return load_be64(stream + (pos >> 3)) << (pos & 7);
}

class BitWriter {
 public:
  // Appends the low `nbits` (<= 57) bits of `value`, most significant first; higher bits
  // of `value` are ignored (masked off, so they cannot land in earlier fields).
  void put(uint64_t value, unsigned nbits) {
    if (nbits == 0) return;
    value &= (uint64_t(1) << nbits) - 1;
    bits_ += nbits;
    if (fill_ + nbits < 64) {
      acc_ |= value << (64 - fill_ - nbits);
      fill_ += nbits;
      return;
    }
    unsigned spill = fill_ + nbits - 64;  // bits that do not fit the current word
    acc_ |= value >> spill;
    flush();
    fill_ = spill;
    acc_ = spill ? value << (64 - spill) : 0;
  }
  uint64_t bits() const { return bits_; }
  // The finished stream: data words plus the zero padding word.
  std::vector<uint64_t> finish() {
    if (fill_) flush();
    words_.push_back(0);
    return std::move(words_);
  }

 private:
  void flush() {
    words_.push_back(__builtin_bswap64(acc_));
    acc_ = 0;
    fill_ = 0;
  }
  std::vector<uint64_t> words_;
  uint64_t acc_ = 0, bits_ = 0;
  unsigned fill_ = 0;
};

// Words a stream of `bits` bits occupies, padding word included.
inline uint64_t stream_words(uint64_t bits) { return (bits + 63) / 64 + 1; }

}  // namespace cnn
