// HAM (Huffman Address Map): the codebook index of every entry, zero included, coded with
// one canonical length-limited Huffman code.  In the row layout, rows are concatenated in
// one MSB-first bit stream (bitstream.hpp); offsets_[i] is the bit where row i starts,
// offsets_[rows] the end, so rows decode independently.  Where it serves (at most 128
// distinct values in use), HAM stores the lane-interleaved layout of lane_layout.hpp
// instead, with dense rows and no gap code: 16 rows decode side by side, all at the same
// column, so a SIMD step multiplies 16 weights by one x[t].
#pragma once
#include <memory>

#include "format.hpp"
#include "lane_layout.hpp"
#include "huffman.hpp"
#include "kernels/views.hpp"
#include "packed.hpp"

namespace cnn {

class HAM final : public Format {
 public:
  // Entries from which Auto takes the lane layout where it pays whatever the row layout
  // would weigh (below, the smaller: the lane layout's 2 KiB of decode tables weigh on small
  // matrices of few bits per entry).
  static constexpr uint64_t kAlwaysLanes = uint64_t(1) << 18;
  HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* indices,
      Layout layout = Layout::Auto);
  // From a file's sections in the row layout; decodes every row to validate it.  `convert`:
  // switch to the lane layout where Auto would take it (files before version 3).
  HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, std::vector<uint8_t> lengths,
      const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream, bool convert);
  // From a file's sections in the lane layout (LaneLayout::sections), validated: every row
  // must hold all its columns, with no gap code.
  HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook,
      const std::vector<uint64_t>& params, std::vector<uint8_t> gap_lengths,
      std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
      std::vector<uint64_t> group_words, std::vector<uint32_t> words);

  FormatId id() const override { return FormatId::HAM; }
  size_t nbytes() const override;
  void matvec(const float* x, float* y, unsigned threads) const override;
  void matmat(const float* X, uint64_t B, float* Y, unsigned threads) const override;
  void linear(const float* X, uint64_t B, float* Y, unsigned threads) const override;
  void decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const override;
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override;
  std::vector<Section> sections() const override;
  // The lane layout, or null for the row layout (whose accessors follow).
  const LaneLayout* lanes() const { return lanes_.get(); }
  uint64_t stream_bits() const { return lanes_ ? lanes_->stream_bits() : offsets_.back(); }
  int max_code_length() const { return decoder_.max_len(); }

 private:
  const uint8_t* stream() const { return reinterpret_cast<const uint8_t*>(stream_.data()); }
  std::unique_ptr<LaneLayout> build_lanes(const uint32_t* indices) const;
  void build_rows(const uint32_t* indices, const std::vector<uint64_t>& counts);
  void drop_rows();  // frees the row layout once the lane layout took over
  void build_tables();
  kernels::HAMView view() const;
  std::vector<uint8_t> lengths_;  // code length per codebook index (0: unused)
  huff::Decoder decoder_;
  std::vector<uint32_t> multi_;  // multi-symbol decode table (kernels/views.hpp)
  PackedInts offsets_;
  std::vector<uint64_t> stream_;
  std::unique_ptr<LaneLayout> lanes_;
};

}  // namespace cnn
