// HCSR (sparse HAM in row orientation): only the stored entries, row by row.  Each entry
// is one symbol of a joint alphabet (value index v, column gap g): symbol = v << gap_bits | g,
// where the gap is the number of columns skipped since the previous entry of the row.  The
// largest g, 2^gap_bits - 1, is an escape: the gap minus that value follows as a raw field of
// esc_bits bits.  One canonical Huffman code covers the alphabet, so an entry costs one table
// lookup.  Rows are concatenated in one bit stream with a start offset per row; a row ends
// where the next begins.  Entries whose value is +0.0 are implicit.
//
// That is the row layout.  Where it can (at most 128 distinct stored values, gaps within 32
// buckets), HCSR stores the lane-interleaved layout of lane_layout.hpp instead, which SIMD
// kernels decode 16 rows at a time; files of version 1 are converted to it on load.
#pragma once
#include <memory>

#include "format.hpp"
#include "lane_layout.hpp"
#include "huffman.hpp"
#include "kernels/views.hpp"
#include "packed.hpp"

namespace cnn {

class HCSR final : public Format {
 public:
  static constexpr unsigned kMaxGapBits = 8;
  static constexpr uint32_t kMaxAlphabet = 1u << 20;
  static constexpr unsigned kMaxEscBits = 48;
  static constexpr int kFastBits = kernels::kHcsrTableBits;  // the kernels' one-lookup table

  // From CSR arrays: indptr (rows + 1), col (nnz, increasing within each row), vidx (nnz).
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint64_t* indptr,
       const uint64_t* col, const uint32_t* vidx, Layout layout = Layout::Auto);
  // From a dense row-major matrix of value indices (rows x cols, each below k); entries
  // whose value is +0.0 are left out.  Needs 8 bytes per row on top of idx and the output.
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* idx,
       Layout layout = Layout::Auto);
  // From a file's sections in the row layout; decodes every row to validate it.  `convert`:
  // switch to the lane layout where it serves (files of version 1).
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook,
       const std::vector<uint64_t>& params, std::vector<uint8_t> lengths,
       const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream, bool convert);
  // From a file's sections in the lane layout (LaneLayout::sections), validated.
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook,
       const std::vector<uint64_t>& params, std::vector<uint8_t> gap_lengths,
       std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
       std::vector<uint64_t> group_words, std::vector<uint32_t> words);

  FormatId id() const override { return FormatId::HCSR; }
  size_t nbytes() const override;
  void matvec(const float* x, float* y, unsigned threads) const override;
  void matmat(const float* X, uint64_t B, float* Y, unsigned threads) const override;
  void decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const override;
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override;
  std::vector<Section> sections() const override;
  // The lane layout, or null for the row layout (whose accessors follow).
  const LaneLayout* lanes() const { return lanes_.get(); }
  unsigned gap_bits() const { return gap_bits_; }
  unsigned esc_bits() const { return esc_bits_; }
  uint64_t stream_bits() const { return lanes_ ? lanes_->stream_bits() : offsets_.back(); }
  int max_code_length() const { return decoder_.max_len(); }
  // Entries of the kernels' decode tables, both levels (0: too few entries to build them).
  size_t table_entries() const { return meta_.size(); }

  // The stored entries as CSR arrays: row pointers, column indices, value indices.
  void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
              std::vector<uint32_t>& vidx) const;

 private:
  // Stored entries from which Auto takes the lane layout whatever the row layout weighs.
  static constexpr uint64_t kLanesAlways = 1 << 14;
  const uint8_t* stream() const { return reinterpret_cast<const uint8_t*>(stream_.data()); }
  // Chooses the layout and codes, and writes the streams of `entries` (entries.hpp).
  template <class Entries>
  void encode(const uint64_t* indptr, const Entries& entries, Layout layout);
  void validate();
  void build_tables();
  // f(col, value_index) for each stored entry of row i, in column order.
  template <class F>
  void for_each_in_row(uint64_t i, F&& f) const;
  kernels::HCSRView view() const;
  void drop_rows();  // frees the row layout's data once the lane layout took over
  std::unique_ptr<LaneLayout> lanes_;
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
