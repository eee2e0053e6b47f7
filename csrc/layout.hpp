// How HAM and HCSR lay out their coded entries, behind one interface.  Each has a row
// layout (rows one after another in one bit stream: ham_rows.hpp, hcsr_rows.hpp) and the
// lane layout they share (lane_layout.hpp), and holds exactly one of them: a CodedFormat
// forwards its products, decoding and file sections to its Layout.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "format.hpp"

namespace cnn {

// The layout a constructor is asked for.  Auto: lanes where they serve; on small matrices,
// whose decode tables and per-group words weigh more, the smaller of the two (each format's
// threshold).  Fixed: HCSR's fixed-width layout (fixed_layout.hpp), never chosen by Auto.
enum class LayoutChoice { Auto, Rows, Lanes, Fixed };

class Layout {
 public:
  virtual ~Layout() = default;
  virtual const char* name() const = 0;  // "rows", "lanes" or "fixed"
  // Bytes a product needs besides the codebook: streams, offsets, code and decode tables.
  virtual size_t nbytes() const = 0;
  virtual uint64_t stream_bits() const = 0;
  // Layout details for inspection (Python's info()), in a fixed order.
  virtual std::vector<std::pair<std::string, uint64_t>> details() const = 0;

  // The products of format.hpp, with the format's codebook.
  virtual void matvec(const float* codebook, const float* x, float* y, unsigned threads) const = 0;
  virtual void matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
                      unsigned threads) const = 0;
  // Y = X W^T for batch > 1 (Format::linear_batch); this one goes through matmat.
  virtual void linear(const float* codebook, const float* X, uint64_t batch, float* Y,
                      unsigned threads) const;
  // Codebook indices of rows [r0, r1) (cols each); cells with no stored entry get zero_index.
  virtual void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx,
                           uint32_t zero_index) const = 0;
  // The stored entries as CSR arrays: row pointers, column indices, value indices.
  virtual void to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
                      std::vector<uint32_t>& vidx) const = 0;
  // The file's sections after the codebook (docs/FORMAT.md).
  virtual std::vector<Section> sections() const = 0;

 protected:
  Layout(uint64_t rows, uint64_t cols) : rows_(rows), cols_(cols) {}
  uint64_t rows_, cols_;
};

// HAM and HCSR: a codebook and entries coded in one Layout, which does the work.
class CodedFormat : public Format {
 public:
  const Layout& layout() const { return *layout_; }
  size_t nbytes() const override { return codebook_.size() * 4 + layout_->nbytes(); }
  void matvec(const float* x, float* y, unsigned threads) const override {
    layout_->matvec(codebook_.data(), x, y, threads);
  }
  void matmat(const float* X, uint64_t batch, float* Y, unsigned threads) const override {
    layout_->matmat(codebook_.data(), X, batch, Y, threads);
  }
  void decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const override {
    layout_->decode_rows(i, i + 1, idx, zero_index);
  }
  void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const override {
    layout_->decode_rows(r0, r1, idx, zero_index);
  }
  std::vector<Section> sections() const override;  // the codebook, then the layout's

 protected:
  using Format::Format;
  void linear_batch(const float* X, uint64_t batch, float* Y, unsigned threads) const override {
    layout_->linear(codebook_.data(), X, batch, Y, threads);
  }
  std::unique_ptr<Layout> layout_;
};

}  // namespace cnn
