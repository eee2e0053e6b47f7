// HAM (Huffman Address Map): the codebook index of every entry, zero included, coded with
// one canonical length-limited Huffman code.  Rows are concatenated in one MSB-first bit
// stream (bitstream.hpp); offsets_[i] is the bit where row i starts, offsets_[rows] the end,
// so rows decode independently.
#pragma once
#include "format.hpp"
#include "huffman.hpp"
#include "kernels/views.hpp"

namespace cnn {

class HAM final : public Format {
 public:
  HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* indices);
  // From a file's sections; decodes every row to validate it.
  HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, std::vector<uint8_t> lengths,
      std::vector<uint64_t> offsets, std::vector<uint64_t> stream);

  FormatId id() const override { return FormatId::HAM; }
  size_t nbytes() const override;
  void matvec(const float* x, float* y, unsigned threads) const override;
  void matmat(const float* X, uint64_t B, float* Y, unsigned threads) const override;
  void linear(const float* X, uint64_t B, float* Y, unsigned threads) const override;
  void decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const override;
  std::vector<Section> sections() const override;
  uint64_t stream_bits() const { return offsets_.back(); }
  int max_code_length() const { return decoder_.max_len(); }

 private:
  const uint8_t* stream() const { return reinterpret_cast<const uint8_t*>(stream_.data()); }
  void build_tables();
  kernels::HAMView view() const;
  std::vector<uint8_t> lengths_;  // code length per codebook index (0: unused)
  huff::Decoder decoder_;
  std::vector<uint32_t> multi_;  // multi-symbol decode table (kernels/views.hpp)
  std::vector<uint64_t> offsets_, stream_;
};

}  // namespace cnn
