#include "hcsr.hpp"

#include <cstring>

#include "entries.hpp"
#include "fixed_layout.hpp"
#include "hcsr_rows.hpp"
#include "lane_layout.hpp"

namespace cnn {

HCSR::HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint64_t* indptr,
           const uint64_t* col, const uint32_t* vidx, LayoutChoice layout)
    : CodedFormat(rows, cols, std::move(codebook)) {
  const uint32_t k = uint32_t(codebook_.size());
  if (indptr[0] != 0) throw InvalidInput("indptr[0] must be 0");
  for (uint64_t i = 0; i < rows; ++i)
    if (indptr[i + 1] < indptr[i]) throw InvalidInput("indptr decreases at row " + std::to_string(i));
  nnz_ = indptr[rows];
  for (uint64_t i = 0; i < rows; ++i) {
    uint64_t next = 0;  // first column the next entry may take
    for (uint64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
      if (col[e] < next || col[e] >= cols)
        throw InvalidInput("column indices of row " + std::to_string(i) +
                           " are not increasing within 0.." + std::to_string(cols - 1));
      if (vidx[e] >= k) throw InvalidInput("value index " + std::to_string(vidx[e]) +
                                           " is not below k = " + std::to_string(k));
      next = col[e] + 1;
    }
  }
  encode(indptr, CsrEntries{indptr, col, vidx}, layout);
}

HCSR::HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* idx,
           LayoutChoice layout)
    : CodedFormat(rows, cols, std::move(codebook)) {
  const uint32_t k = uint32_t(codebook_.size());
  uint32_t zero = k;  // entries of +0.0 (bits 0) are implicit
  for (uint32_t v = 0; v < k; ++v)
    if (is_plus_zero(codebook_[v])) zero = v;
  std::vector<uint64_t> indptr(rows + 1, 0);
  for (uint64_t i = 0; i < rows; ++i) {
    const uint32_t* row = idx + i * cols;
    uint64_t count = 0;
    for (uint64_t j = 0; j < cols; ++j) {
      if (row[j] >= k) throw InvalidInput("value index " + std::to_string(row[j]) +
                                          " is not below k = " + std::to_string(k));
      count += row[j] != zero;
    }
    indptr[i + 1] = indptr[i] + count;
  }
  nnz_ = indptr[rows];
  encode(indptr.data(), DenseEntries{idx, cols, zero}, layout);
}

template <class Entries>
void HCSR::encode(const uint64_t* indptr, const Entries& entries, LayoutChoice layout) {
  if (layout == LayoutChoice::Fixed) {
    layout_ = FixedLayout::build(rows_, cols_, codebook_, indptr, entries);
    if (!layout_)
      throw InvalidInput(
          "the fixed layout needs a codebook of at most 32 values with +0.0 among them (31 "
          "without), +0.0 not stored");
    return;
  }
  std::unique_ptr<LaneLayout> lanes;
  if (layout != LayoutChoice::Rows)
    lanes = LaneLayout::build(rows_, cols_, codebook_, indptr, entries, LaneLayout::Rows::Sparse);
  if (lanes && (layout == LayoutChoice::Lanes || nnz_ >= kAlwaysLanesFrom)) {
    layout_ = std::move(lanes);
    return;
  }
  if (layout == LayoutChoice::Lanes)
    throw InvalidInput(
        "the lane layout needs at most 128 distinct stored values, fewer than 2^31 columns "
        "and column gaps below 2^24");
  layout_ = std::make_unique<HcsrRows>(rows_, cols_, codebook_, indptr, entries);
  if (lanes && lanes->nbytes() < layout_->nbytes()) layout_ = std::move(lanes);
}

HCSR::HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook,
           const std::vector<uint64_t>& params, std::vector<uint8_t> lengths,
           const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream, bool convert)
    : CodedFormat(rows, cols, std::move(codebook)) {
  auto rows_layout = std::make_unique<HcsrRows>(rows, cols, uint32_t(codebook_.size()), params,
                                                std::move(lengths), offsets, std::move(stream));
  nnz_ = params[0];
  if (convert) {
    std::vector<uint64_t> indptr, col;
    std::vector<uint32_t> vidx;
    rows_layout->to_csr(indptr, col, vidx);
    layout_ = LaneLayout::build(rows, cols, codebook_, indptr.data(),
                                CsrEntries{indptr.data(), col.data(), vidx.data()},
                                LaneLayout::Rows::Sparse);
    if (layout_) return;
  }
  rows_layout->build_tables(codebook_);
  layout_ = std::move(rows_layout);
}

HCSR::HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook,
           const std::vector<uint64_t>& params, std::vector<uint8_t> gap_lengths,
           std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
           std::vector<uint64_t> group_words, std::vector<uint32_t> words)
    : CodedFormat(rows, cols, std::move(codebook)) {
  if (params.empty()) throw FormatError("lane layout parameter section is empty");
  nnz_ = params[0];
  layout_ = std::make_unique<LaneLayout>(rows, cols, codebook_, nnz_, params,
                                         std::move(gap_lengths), std::move(value_lengths), counts,
                                         std::move(group_words), std::move(words),
                                         LaneLayout::Rows::Sparse);
}

HCSR::HCSR(uint64_t rows, uint64_t cols, std::vector<float> codebook,
           const std::vector<uint64_t>& params, const std::vector<uint64_t>& order,
           const std::vector<uint64_t>& group_steps, std::vector<uint8_t> steps,
           std::vector<uint8_t> slots)
    : CodedFormat(rows, cols, std::move(codebook)) {
  if (params.empty()) throw FormatError("fixed layout parameter section is empty");
  nnz_ = params[0];
  layout_ = std::make_unique<FixedLayout>(rows, cols, codebook_, params, order, group_steps,
                                          std::move(steps), std::move(slots));
}

}  // namespace cnn
