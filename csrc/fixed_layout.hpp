// HCSR's fixed-width layout, built for speed rather than size: each stored entry is a
// column step byte and a 5-bit value slot (13 bits), no variable-length code, so a SIMD
// kernel decodes 8 rows per vector with a few shifts and register-held table lookups and
// spends its time on reading x.  Rows are sorted by length (longest first) and taken 8 at a
// time into groups; every step of a group holds one entry of each of its 8 rows
// (kernels/fixed.hpp has the schedule).  Entries that are not stored fill the gaps: the
// filler slot, whose value is 0, pads rows shorter than their group's longest and splits
// column steps over 255 (one filler per 255 columns skipped).
//
// Slots are codebook indices; the filler is the codebook's +0.0 where no stored entry uses
// it, else slot k: so the layout holds codebooks of up to 32 values with +0.0 among them, or
// 31 without.  Per row a position in the order (packed.hpp), per group a step count.
#pragma once
#include <memory>
#include <vector>

#include "kernels/views.hpp"
#include "layout.hpp"
#include "packed.hpp"

namespace cnn {

class FixedLayout final : public Layout {
 public:
  static constexpr unsigned kLanes = kernels::kFixedLanes, kSlotBytes = kernels::kFixedSlotBytes;
  static constexpr uint32_t kSlots = kernels::kFixedSlots;
  static constexpr uint64_t kMaxStep = 255;

  // The layout of `entries` (entries.hpp; row i holds indptr[i + 1] - indptr[i] of them,
  // checked as HCSR's constructors check them), or null where the codebook has too many
  // values (above).  Instantiated for CsrEntries and DenseEntries.
  template <class Entries>
  static std::unique_ptr<FixedLayout> build(uint64_t rows, uint64_t cols,
                                            const std::vector<float>& codebook,
                                            const uint64_t* indptr, const Entries& entries);
  // From a file's sections after the codebook (params: stored entries, lanes, filler slot);
  // FormatError unless the order is a permutation of the rows and every group decodes to
  // columns inside the matrix, increasing within each row, nnz entries in all.
  FixedLayout(uint64_t rows, uint64_t cols, const std::vector<float>& codebook,
              const std::vector<uint64_t>& params, const std::vector<uint64_t>& order,
              const std::vector<uint64_t>& group_steps, std::vector<uint8_t> steps,
              std::vector<uint8_t> slots);

  const char* name() const override { return "fixed"; }
  size_t nbytes() const override;
  uint64_t stream_bits() const override { return (steps_.size() + slots_.size()) * 8; }
  std::vector<std::pair<std::string, uint64_t>> details() const override;
  void matvec(const float* codebook, const float* x, float* y, unsigned threads) const override;
  void matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
              unsigned threads) const override;
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override;
  void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
              std::vector<uint32_t>& vidx) const override;
  // params, row order, steps per group, step bytes, slot bytes.
  std::vector<Section> sections() const override;

  uint64_t groups() const { return first_.size() - 1; }

 private:
  FixedLayout(uint64_t rows, uint64_t cols) : Layout(rows, cols) {}
  // first_ and slot_value_ from the group step counts and the codebook.
  void finish(const std::vector<uint64_t>& group_steps, const std::vector<float>& codebook);
  // Steps of each group (the file's section; in memory, first_ holds them summed).
  std::vector<uint64_t> group_steps() const;
  kernels::FixedView view(bool finite) const;
  uint64_t nnz_ = 0;
  uint32_t filler_ = 0;
  PackedInts order_;
  std::vector<uint64_t> first_;
  std::vector<uint8_t> steps_, slots_;
  std::vector<float> slot_value_;
};

}  // namespace cnn
