// The interface every storage format shares.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common.hpp"

namespace cnn {

enum class FormatId : uint32_t { IndexMap = 1, HAM = 2, HCSR = 3 };

// One byte section of a serialized matrix (docs/FORMAT.md lists them per format).
using Section = std::vector<uint8_t>;

template <class T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) __builtin_memcpy(b.data(), v.data(), b.size());
  return b;
}

class Format {
 public:
  virtual ~Format() = default;
  virtual FormatId id() const = 0;

  uint64_t rows() const { return rows_; }
  uint64_t cols() const { return cols_; }
  uint64_t nnz() const { return nnz_; }
  const std::vector<float>& codebook() const { return codebook_; }
  // Every byte a product needs: streams, offsets, code and decode tables, codebook.
  virtual size_t nbytes() const = 0;

  // Products on `threads` threads (0: the default).  Rows are split between threads and
  // each row is computed the same way whatever the split, so results do not depend on it.
  // y = W x  (x: cols, y: rows)
  virtual void matvec(const float* x, float* y, unsigned threads) const = 0;
  // Y = W X  (X: cols x batch row-major, Y: rows x batch)
  virtual void matmat(const float* X, uint64_t batch, float* Y, unsigned threads) const = 0;
  // Y = X W^T  (X: batch x cols row-major, Y: batch x rows), torch.nn.functional.linear.
  // batch = 1 is matvec; otherwise it equals matmat(X^T)^T bit for bit (linear_batch).
  // With `bias` (rows values, or null), each row of Y gets it added after the product.
  void linear(const float* X, uint64_t batch, float* Y, unsigned threads,
              const float* bias = nullptr) const;

  // Codebook indices of row i (cols entries); implicit zeros (HCSR) get `zero_index`.
  virtual void decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const = 0;
  // Rows [r0, r1) into idx (cols entries each); a format decoding rows in groups overrides.
  virtual void decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const {
    for (uint64_t i = r0; i < r1; ++i) decode_row(i, idx + (i - r0) * cols_, zero_index);
  }
  // All entries, row-major.
  void to_indices(uint32_t* out, uint32_t zero_index) const;
  void to_dense(float* out) const;

  virtual std::vector<Section> sections() const = 0;

 protected:
  // Checks the shape and the codebook (InvalidInput) and keeps them.
  Format(uint64_t rows, uint64_t cols, std::vector<float> codebook);
  // linear for batch > 1 on a matrix with rows: through matmat (linear_through_matmat);
  // formats with a kernel of their own override.
  virtual void linear_batch(const float* X, uint64_t batch, float* Y, unsigned threads) const;
  uint64_t rows_ = 0, cols_ = 0, nnz_ = 0;
  std::vector<float> codebook_;
};

// Y = X W^T (X: batch x cols, Y: batch x rows) as matmat(Xt, n, Yt) computes Y^T = W X^T: X and Y
// transposed in panels of up to 64 batch rows.
void linear_through_matmat(uint64_t rows, uint64_t cols, const float* X, uint64_t batch, float* Y,
                           const std::function<void(const float*, uint64_t, float*)>& matmat);

// Validates a file's row bit offsets against its stream of `stream_words` 64-bit words
// (bitstream.hpp): rows + 1 non-decreasing offsets from 0, ending inside the stream.
void check_row_offsets(const std::vector<uint64_t>& offsets, uint64_t rows, size_t stream_words);

// Validates a codebook: 1..65536 finite values.
void check_codebook(const std::vector<float>& codebook);

}  // namespace cnn
