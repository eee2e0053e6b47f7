// HCSR (sparse HAM in row orientation): only the stored entries, row by row, each coded as
// its column gap and value index; entries whose value is +0.0 are implicit.  In one of two
// layouts: rows one after another in one bit stream (hcsr_rows.hpp), or, where it can (at
// most 128 distinct stored values, gaps within 32 buckets), the lane-interleaved layout of
// lane_layout.hpp, which SIMD kernels decode 16 rows at a time; files of version 1 are
// converted to it on load.  A third layout trades size for speed: fixed_layout.hpp's 13 bits
// per entry, on request.
#pragma once
#include "layout.hpp"

namespace cnn {

class HCSR final : public CodedFormat {
 public:
  // Stored entries from which Auto takes the lane layout whatever the row layout weighs.
  static constexpr uint64_t kAlwaysLanesFrom = 1 << 14;

  // From CSR arrays: indptr (rows + 1), col (nnz, increasing within each row), vidx (nnz).
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint64_t* indptr,
       const uint64_t* col, const uint32_t* vidx, LayoutChoice layout = LayoutChoice::Auto);
  // From a dense row-major matrix of value indices (rows x cols, each below k); entries
  // whose value is +0.0 are left out.  Needs 8 bytes per row on top of idx and the output.
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* idx,
       LayoutChoice layout = LayoutChoice::Auto);
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

  // From a file's sections in the fixed-width layout (FixedLayout::sections), validated.
  HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook,
       const std::vector<uint64_t>& params, const std::vector<uint64_t>& order,
       const std::vector<uint64_t>& group_steps, std::vector<uint8_t> steps,
       std::vector<uint8_t> slots);

  FormatId id() const override { return FormatId::HCSR; }
  // The layout's bytes, and 8 for the count of stored entries.
  size_t nbytes() const override { return 8 + CodedFormat::nbytes(); }

  // The stored entries as CSR arrays: row pointers, column indices, value indices.
  void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
              std::vector<uint32_t>& vidx) const {
    layout_->to_csr(indptr, col, vidx);
  }

 private:
  // Chooses the layout and writes the streams of `entries` (entries.hpp).
  template <class Entries>
  void encode(const uint64_t* indptr, const Entries& entries, LayoutChoice layout);
};

}  // namespace cnn
