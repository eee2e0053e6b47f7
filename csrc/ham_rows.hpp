// HAM's row layout: every entry's codebook index, zero included, coded with one canonical
// length-limited Huffman code; rows concatenated in one MSB-first bit stream (bitstream.hpp),
// offsets_[i] the bit where row i starts and offsets_[rows] the end, so rows decode
// independently.
#pragma once
#include <vector>

#include "huffman.hpp"
#include "kernels/views.hpp"
#include "layout.hpp"
#include "packed.hpp"

namespace cnn {

class HamRows final : public Layout {
 public:
  // Codes `indices` (rows x cols, each below k = counts.size()); counts[v]: the entries of
  // index v.
  HamRows(uint64_t rows, uint64_t cols, const uint32_t* indices,
          const std::vector<uint64_t>& counts);
  // From a file's sections for a codebook of k values; decodes every row to validate it and
  // sets counts[v] to the entries of index v.
  HamRows(uint64_t rows, uint64_t cols, uint32_t k, std::vector<uint8_t> lengths,
          const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream,
          std::vector<uint64_t>& counts);

  const char* name() const override { return "rows"; }
  size_t nbytes() const override;
  uint64_t stream_bits() const override { return offsets_.back(); }
  std::vector<std::pair<std::string, uint64_t>> details() const override;
  void matvec(const float* codebook, const float* x, float* y, unsigned threads) const override;
  void matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
              unsigned threads) const override;
  void linear(const float* codebook, const float* X, uint64_t batch, float* Y,
              unsigned threads) const override;
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override;
  void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
              std::vector<uint32_t>& vidx) const override;
  std::vector<Section> sections() const override;

 private:
  const uint8_t* stream() const { return reinterpret_cast<const uint8_t*>(stream_.data()); }
  void build_tables();
  kernels::HAMView view(const float* codebook) const;
  std::vector<uint8_t> lengths_;  // code length per codebook index (0: unused)
  huff::Decoder decoder_;
  std::vector<uint32_t> multi_;  // multi-symbol decode table (HamMultiEntry)
  PackedInts offsets_;
  std::vector<uint64_t> stream_;
};

}  // namespace cnn
