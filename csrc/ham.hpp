// HAM (Huffman Address Map): the codebook index of every entry, zero included, coded with
// one canonical length-limited Huffman code, in one of two layouts: rows one after another
// (ham_rows.hpp), or, where it serves (at most 128 distinct values in use), the
// lane-interleaved layout of lane_layout.hpp with dense rows and no gap code: 16 rows
// decode side by side, all at the same column, so a SIMD step multiplies 16 weights by one
// x[t].
#pragma once
#include "layout.hpp"

namespace cnn {

class HAM final : public CodedFormat {
 public:
  // Entries from which Auto takes the lane layout where it pays whatever the row layout
  // would weigh (below, the smaller: the lane layout's 2 KiB of decode tables weigh on small
  // matrices of few bits per entry).
  static constexpr uint64_t kAlwaysLanesFrom = uint64_t(1) << 18;
  HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* indices,
      LayoutChoice layout = LayoutChoice::Auto);
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
};

}  // namespace cnn
