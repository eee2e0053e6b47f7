// HCSR's row layout: each stored entry is one symbol of a joint alphabet (value index v,
// column gap g), HcsrSymbol: symbol = v << gap_bits | g, where the gap is the number of
// columns skipped since the previous entry of the row.  The largest g, 2^gap_bits - 1, is
// an escape: the gap minus that value follows as a raw field of esc_bits bits.  One
// canonical Huffman code covers the alphabet, so an entry costs one table lookup.  Rows are
// concatenated in one bit stream with a start offset per row; a row ends where the next
// begins.
#pragma once
#include <vector>

#include "huffman.hpp"
#include "kernels/views.hpp"
#include "layout.hpp"
#include "packed.hpp"

namespace cnn {

class HcsrRows final : public Layout {
 public:
  static constexpr unsigned kMaxGapBits = 8;
  static constexpr uint32_t kMaxAlphabet = 1u << 20;
  static constexpr unsigned kMaxEscBits = 48;
  static constexpr int kFastBits = kernels::kHcsrTableBits;  // the kernels' one-lookup table

  // Codes `entries` (entries.hpp; row i holds indptr[i + 1] - indptr[i] of them, checked
  // as HCSR's constructors check them) in the plan that costs the fewest bytes, and builds
  // the decode tables.  Instantiated for CsrEntries and DenseEntries.
  template <class Entries>
  HcsrRows(uint64_t rows, uint64_t cols, const std::vector<float>& codebook,
           const uint64_t* indptr, const Entries& entries);
  // From a file's sections after the codebook (params: nnz, gap_bits, esc_bits) for a
  // codebook of k values; decodes every row to validate it.  Without the decode tables:
  // build_tables() adds them.
  HcsrRows(uint64_t rows, uint64_t cols, uint32_t k, const std::vector<uint64_t>& params,
           std::vector<uint8_t> lengths, const std::vector<uint64_t>& offsets,
           std::vector<uint64_t> stream);
  // The kernels' one-lookup tables, built when there are enough entries to pay for them.
  void build_tables(const std::vector<float>& codebook);

  const char* name() const override { return "rows"; }
  size_t nbytes() const override;
  uint64_t stream_bits() const override { return offsets_.back(); }
  std::vector<std::pair<std::string, uint64_t>> details() const override;
  void matvec(const float* codebook, const float* x, float* y, unsigned threads) const override;
  void matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
              unsigned threads) const override;
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override;
  void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
              std::vector<uint32_t>& vidx) const override;
  // params (nnz, gap_bits, esc_bits), code lengths, row offsets, stream.
  std::vector<Section> sections() const override;

 private:
  const uint8_t* stream() const { return reinterpret_cast<const uint8_t*>(stream_.data()); }
  void validate();
  // f(col, value_index) for each stored entry of row i, in column order.
  template <class F>
  void for_each_in_row(uint64_t i, F&& f) const;
  kernels::HCSRView view(const float* codebook) const;
  uint64_t nnz_ = 0;
  unsigned gap_bits_ = 0, esc_bits_ = 0;
  std::vector<uint8_t> lengths_;  // code length per joint symbol (0: unused)
  huff::Decoder decoder_;
  // One-lookup decode tables (kernels/views.hpp), built when the matrix is large enough.
  std::vector<uint16_t> meta_;
  std::vector<float> value_;
  PackedInts offsets_;
  std::vector<uint64_t> stream_;
};

}  // namespace cnn
