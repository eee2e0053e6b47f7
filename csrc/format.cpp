#include "format.hpp"

#include <algorithm>
#include <cmath>

#include "bitstream.hpp"
#include "scratch.hpp"

namespace cnn {

void check_codebook(const std::vector<float>& codebook) {
  if (codebook.empty() || codebook.size() > kMaxCodebook)
    throw InvalidInput("codebook size " + std::to_string(codebook.size()) +
                       " is outside 1..65536");
  for (float v : codebook)
    if (!std::isfinite(v)) throw InvalidInput("codebook holds a non-finite value");
}

Format::Format(uint64_t rows, uint64_t cols, std::vector<float> codebook) {
  check_shape(rows, cols);
  check_codebook(codebook);
  rows_ = rows;
  cols_ = cols;
  codebook_ = std::move(codebook);
}

void check_row_offsets(const std::vector<uint64_t>& offsets, uint64_t rows, size_t words) {
  if (offsets.size() != rows + 1 || offsets[0] != 0)
    throw FormatError("row offsets section does not hold rows + 1 offsets starting at 0");
  for (uint64_t i = 0; i < rows; ++i)
    if (offsets[i + 1] < offsets[i]) throw FormatError("row offsets decrease");
  if (offsets[rows] > uint64_t(words) * 64 || words != cnn::stream_words(offsets[rows]))
    throw FormatError("bit stream of " + std::to_string(words) +
                      " words does not match the row offsets' end at bit " +
                      std::to_string(offsets[rows]));
}

void Format::to_indices(uint32_t* out, uint32_t zero_index) const {
  decode_rows(0, rows_, out, zero_index);
}

void Format::to_dense(float* out) const {
  if (rows_ == 0) return;
  constexpr uint64_t kBlock = 64;  // rows decoded at a time (a group of the lane layout)
  std::vector<uint32_t> idx(std::min(rows_, kBlock) * cols_);
  std::vector<float> cb = codebook_;
  cb.push_back(0.0f);  // implicit zeros
  for (uint64_t r0 = 0; r0 < rows_; r0 += kBlock) {
    const uint64_t r1 = std::min(rows_, r0 + kBlock);
    decode_rows(r0, r1, idx.data(), uint32_t(codebook_.size()));
    for (uint64_t j = 0; j < (r1 - r0) * cols_; ++j) out[r0 * cols_ + j] = cb[idx[j]];
  }
}

void Format::linear(const float* X, uint64_t batch, float* Y, unsigned threads,
                    const float* bias) const {
  if (rows_ == 0 || batch == 0) return;
  if (batch == 1)
    matvec(X, Y, threads);
  else
    linear_batch(X, batch, Y, threads);
  if (bias)  // as torch.nn.functional.linear (or numpy's Y += bias) adds it: after the product
    for (uint64_t b = 0; b < batch; ++b)
      for (uint64_t r = 0; r < rows_; ++r) Y[b * rows_ + r] += bias[r];
}

void Format::linear_batch(const float* X, uint64_t batch, float* Y, unsigned threads) const {
  linear_through_matmat(rows_, cols_, X, batch, Y, [&](const float* Xt, uint64_t n, float* Yt) {
    matmat(Xt, n, Yt, threads);
  });
}

void linear_through_matmat(uint64_t rows, uint64_t cols, const float* X, uint64_t batch, float* Y,
                           const std::function<void(const float*, uint64_t, float*)>& matmat) {
  // Y^T = W X^T: each panel of the batch becomes the columns of one matmat.
  constexpr uint64_t kPanel = 64;
  float* Xt = scratch(ScratchSlot::LinearIn, cols * std::min(batch, kPanel));
  float* Yt = scratch(ScratchSlot::LinearOut, rows * std::min(batch, kPanel));
  for (uint64_t b0 = 0; b0 < batch; b0 += kPanel) {
    const uint64_t n = std::min(kPanel, batch - b0);
    for (uint64_t b = 0; b < n; ++b)
      for (uint64_t j = 0; j < cols; ++j) Xt[j * n + b] = X[(b0 + b) * cols + j];
    matmat(Xt, n, Yt);
    for (uint64_t i = 0; i < rows; ++i)
      for (uint64_t b = 0; b < n; ++b) Y[(b0 + b) * rows + i] = Yt[i * n + b];
  }
}

}  // namespace cnn
