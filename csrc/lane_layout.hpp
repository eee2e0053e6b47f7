// The lane-interleaved layout, built for SIMD decoding (kernels/lanes.hpp has the schedule),
// of both entry-coding formats: HCSR's stored entries, and HAM's dense rows (every entry
// stored, one gap bucket of zero bits, so 16 lanes always sit at the same column).  Each
// stored entry is [gap bucket code][raw low bits of the gap][value code]: gaps (columns
// skipped since the row's previous entry) fall into at most 32 buckets, each a
// base and a count of raw bits as in Deflate, so there are no escapes; both codes are
// canonical Huffman codes of at most 7 bits, so each decodes with one 128-entry lookup, and
// an entry never exceeds 32 bits.  Rows are decoded in groups of group_rows by 16 lanes
// that take the group's rows in turn; each group's words are stored in the order the lanes
// ask for them.  Per row an entry count (packed.hpp: 1-4 bytes) replaces the bit offset.
//
// Buckets follow from two parameters: bucket i starts at base_i (base_0 = 0) and holds
// 2^raw_i gaps, raw_i = max(r0, bit_width(base_i) - 1 - m): exact small gaps, then 2^m
// buckets per power of two.  The encoder picks the (m, r0) that costs the fewest bits.
#pragma once
#include <memory>
#include <vector>

#include "kernels/views.hpp"
#include "layout.hpp"
#include "packed.hpp"
#include "table_entries.hpp"

namespace cnn {

class LaneLayout final : public Layout {
 public:
  static constexpr uint64_t kGroupRows = 64;
  static constexpr unsigned kCodeBits = LaneCodeEntry::kCodeBits;
  static constexpr unsigned kMaxRaw = 18, kMaxBuckets = 32, kMaxM = 4;
  static constexpr uint32_t kMaxValues = 1u << kCodeBits;  // distinct stored values
  static constexpr uint64_t kMaxBase = uint64_t(1) << 24;
  static constexpr uint64_t kMaxCols = (uint64_t(1) << 31) - 1;  // columns are gather indices
  static_assert(kMaxRaw <= LaneBucket::kRawMask &&
                    kMaxBase << LaneCodeEntry::kBaseShift <= uint64_t(1) << 32,
                "a gap code entry holds every bucket");

  // Which rows the layout holds, and so which kernels multiply it: HCSR's stored entries,
  // or HAM's dense rows (every column of every row, no gap code), whose lanes always sit at
  // the same column.
  enum class Rows { Sparse, Dense };

  // The layout of `entries` (entries.hpp; row i holds indptr[i + 1] - indptr[i] of them,
  // checked as HCSR's constructors check them), or null where it cannot serve: more than
  // 128 distinct stored values, a gap past 32 buckets, a row of 2^31 entries or more, 2^31
  // columns or more.  Instantiated for CsrEntries and DenseEntries.
  template <class Entries>
  static std::unique_ptr<LaneLayout> build(uint64_t rows, uint64_t cols,
                                           const std::vector<float>& codebook,
                                           const uint64_t* indptr, const Entries& entries,
                                           Rows kind);
  // From a file's sections after the codebook (nnz: the stored entries, params[0]);
  // FormatError unless every group decodes exactly.
  LaneLayout(uint64_t rows, uint64_t cols, const std::vector<float>& codebook, uint64_t nnz,
             const std::vector<uint64_t>& params, std::vector<uint8_t> gap_lengths,
             std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
             std::vector<uint64_t> group_words, std::vector<uint32_t> words, Rows kind);

  const char* name() const override { return "lanes"; }
  size_t nbytes() const override;
  uint64_t stream_bits() const override { return uint64_t(words_.size() - kernels::kLanes) * 32; }
  std::vector<std::pair<std::string, uint64_t>> details() const override;
  void matvec(const float* codebook, const float* x, float* y, unsigned threads) const override;
  void matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
              unsigned threads) const override;
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override;
  void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
              std::vector<uint32_t>& vidx) const override;
  // params, gap code lengths, value code lengths, row counts, group word offsets, words.
  std::vector<Section> sections() const override;

  uint64_t groups() const { return group_words_.size() - 1; }
  // Entries per codebook index.
  const std::vector<uint64_t>& value_counts() const { return value_counts_; }

 private:
  LaneLayout(uint64_t rows, uint64_t cols, Rows kind) : Layout(rows, cols), kind_(kind) {}
  void build_tables(const std::vector<float>& codebook);
  kernels::LanesView view(const float* codebook) const;
  Rows kind_;
  uint64_t nnz_ = 0, group_rows_ = kGroupRows;
  unsigned m_ = 0, r0_ = 0;
  std::vector<uint8_t> gap_lengths_, value_lengths_;  // 0 unused, 1..7, 255: the only code, 0 bits
  PackedInts counts_;
  std::vector<uint32_t> words_;
  std::vector<uint64_t> value_counts_;
  std::vector<uint64_t> group_words_;
  std::vector<uint32_t> gap_table_, value_code_, gap_by_rank_;
  std::vector<float> value_, value_by_rank_;
  kernels::LanesView::Code gap_code_ = {}, value_code_ranks_ = {};
};

}  // namespace cnn
