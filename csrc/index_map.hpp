// IndexMap (IM): a codebook of k float32 values and a b = ceil(log2 k)-bit index per entry.
//
// Index layout, chosen for SIMD decoding: the row-major entries are cut into groups of 128
// (the last one zero-padded).  A group holds b bits per entry split into planes of 8, 4, 2
// and 1 bits (b = 5: a 4-bit plane of index bits 0-3, then a 1-bit plane of bit 4).  A plane
// of width w is 16*w bytes; entry j of the group sits in byte lane t = j % 16 of 16-byte row
// (j / 16) / (8 / w), at bit (j / 16) % (8 / w) * w.  So one 16-byte load, a shift and a mask
// give 16 consecutive entries of one plane (for w = 4: bytes 0-15 hold entries 0-15 in their
// low nibbles and 16-31 in their high nibbles).
#pragma once
#include "format.hpp"
#include "kernels/views.hpp"

namespace cnn {

class IndexMap final : public Format {
 public:
  static constexpr unsigned kGroup = 128;

  IndexMap(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* indices);
  // From a file's sections; validates every index.
  IndexMap(uint64_t rows, uint64_t cols, std::vector<float> codebook, std::vector<uint8_t> packed);

  FormatId id() const override { return FormatId::IndexMap; }
  size_t nbytes() const override { return codebook_.size() * 4 + packed_.size(); }
  void matvec(const float* x, float* y, unsigned threads) const override;
  void matmat(const float* X, uint64_t batch, float* Y, unsigned threads) const override;
  void decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const override;
  std::vector<Section> sections() const override;
  unsigned index_bits() const { return index_bits_; }

  static size_t packed_size(uint64_t rows, uint64_t cols, unsigned bits);

 private:
  void linear_batch(const float* X, uint64_t batch, float* Y, unsigned threads) const override;
  kernels::IMView view() const;
  unsigned index_bits_ = 0;
  std::vector<uint8_t> packed_;
};

}  // namespace cnn
