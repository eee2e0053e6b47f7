#include "ham.hpp"

#include <algorithm>

#include "entries.hpp"
#include "ham_rows.hpp"
#include "huffman.hpp"
#include "lane_layout.hpp"

namespace cnn {

namespace {

// Whether Auto takes the lane layout for entries of these counts per codebook index: at most
// 128 values in use, and codes capped at 7 bits costing at most 2% more than unbounded ones
// (near 128 values in use the cap forces every code to 7 bits; a matrix of one value costs
// no bits in the row layout and one per entry in the lane layout).
bool lanes_pay(const std::vector<uint64_t>& counts) {
  if (std::count_if(counts.begin(), counts.end(), [](uint64_t c) { return c > 0; }) >
      LaneLayout::kMaxValues)
    return false;
  const uint64_t rows = huff::coded_bits(counts, huff::code_lengths(counts)),
                 lanes = huff::coded_bits(
                     counts, huff::code_lengths(counts, LaneLayout::kCodeBits, false));
  return lanes <= rows + rows / 50;
}

// The lane layout of a dense matrix of indices, or null where it cannot serve.
std::unique_ptr<LaneLayout> dense_lanes(uint64_t rows, uint64_t cols,
                                        const std::vector<float>& codebook,
                                        const uint32_t* indices) {
  std::vector<uint64_t> indptr(rows + 1);
  for (uint64_t i = 0; i <= rows; ++i) indptr[i] = i * cols;
  // Every cell stored (no cell holds k): every gap is 0.
  return LaneLayout::build(rows, cols, codebook, indptr.data(),
                           DenseEntries{indices, cols, uint32_t(codebook.size())},
                           LaneLayout::Rows::Dense);
}

// Entries whose value is not zero, from the entries per codebook index.
uint64_t nonzeros(const std::vector<float>& codebook, const std::vector<uint64_t>& counts) {
  uint64_t n = 0;
  for (size_t v = 0; v < codebook.size(); ++v)
    if (codebook[v] != 0.0f) n += counts[v];
  return n;
}

}  // namespace

HAM::HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* indices,
         LayoutChoice layout)
    : CodedFormat(rows, cols, std::move(codebook)) {
  if (layout == LayoutChoice::Fixed)
    throw InvalidInput("the fixed layout is HCSR's: HAM has the layouts 'lanes' and 'rows'");
  const uint64_t n = rows * cols;
  const uint32_t k = uint32_t(codebook_.size());
  std::vector<uint64_t> counts(k, 0);
  for (uint64_t p = 0; p < n; ++p) {
    if (indices[p] >= k) throw InvalidInput("index " + std::to_string(indices[p]) +
                                            " is not below k = " + std::to_string(k));
    counts[indices[p]]++;
  }
  nnz_ = nonzeros(codebook_, counts);
  std::unique_ptr<LaneLayout> lanes;
  if (layout == LayoutChoice::Lanes || (layout == LayoutChoice::Auto && lanes_pay(counts)))
    lanes = dense_lanes(rows, cols, codebook_, indices);
  if (lanes && (layout == LayoutChoice::Lanes || n >= kAlwaysLanesFrom)) {
    layout_ = std::move(lanes);
    return;
  }
  if (layout == LayoutChoice::Lanes)
    throw InvalidInput(
        "the lane layout needs at most 128 distinct values in use and fewer than 2^31 columns");
  layout_ = std::make_unique<HamRows>(rows, cols, indices, counts);
  if (lanes && lanes->nbytes() < layout_->nbytes()) layout_ = std::move(lanes);
}

HAM::HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, std::vector<uint8_t> lengths,
         const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream, bool convert)
    : CodedFormat(rows, cols, std::move(codebook)) {
  std::vector<uint64_t> counts;
  layout_ = std::make_unique<HamRows>(rows, cols, uint32_t(codebook_.size()), std::move(lengths),
                                      offsets, std::move(stream), counts);
  nnz_ = nonzeros(codebook_, counts);
  if (convert && rows * cols >= kAlwaysLanesFrom && lanes_pay(counts)) {
    std::vector<uint32_t> idx(rows * cols);
    to_indices(idx.data(), 0);
    if (auto lanes = dense_lanes(rows, cols, codebook_, idx.data())) layout_ = std::move(lanes);
  }
}

HAM::HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook,
         const std::vector<uint64_t>& params, std::vector<uint8_t> gap_lengths,
         std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
         std::vector<uint64_t> group_words, std::vector<uint32_t> words)
    : CodedFormat(rows, cols, std::move(codebook)) {
  // Dense rows: one gap bucket of no raw bits, its code of no bits (the kernels ignore it).
  if (params.empty() || params[0] != rows * cols)
    throw FormatError("HAM's lane layout must hold rows x cols entries");
  // (An empty matrix has no gap at all: its one bucket has no code.)
  const std::vector<uint8_t> no_gaps = {rows * cols != 0 ? huff::kZeroBits : uint8_t(0)};
  if (params.size() != 4 || params[3] != 0 || gap_lengths != no_gaps)
    throw FormatError("HAM's lane layout must code no gaps");
  if (std::any_of(counts.begin(), counts.end(), [&](uint64_t c) { return c != cols; }))
    throw FormatError("HAM's lane layout must code every column of every row");
  auto lanes = std::make_unique<LaneLayout>(
      rows, cols, codebook_, params[0], params, std::move(gap_lengths), std::move(value_lengths),
      counts, std::move(group_words), std::move(words), LaneLayout::Rows::Dense);
  nnz_ = nonzeros(codebook_, lanes->value_counts());
  layout_ = std::move(lanes);
}

}  // namespace cnn
