#include "format.hpp"

#include <cmath>

namespace cnn {

void check_codebook(const std::vector<float>& codebook) {
  if (codebook.empty() || codebook.size() > kMaxCodebook)
    throw InvalidInput("codebook size " + std::to_string(codebook.size()) +
                       " is outside 1..65536");
  for (float v : codebook)
    if (!std::isfinite(v)) throw InvalidInput("codebook holds a non-finite value");
}

void Format::to_indices(uint32_t* out, uint32_t zero_index) const {
  for (uint64_t i = 0; i < rows_; ++i) decode_row(i, out + i * cols_, zero_index);
}

void Format::to_dense(float* out) const {
  if (rows_ == 0) return;
  std::vector<uint32_t> idx(cols_);
  std::vector<float> cb = codebook_;
  cb.push_back(0.0f);  // implicit zeros
  for (uint64_t i = 0; i < rows_; ++i) {
    decode_row(i, idx.data(), uint32_t(codebook_.size()));
    for (uint64_t j = 0; j < cols_; ++j) out[i * cols_ + j] = cb[idx[j]];
  }
}

void Format::linear(const float* X, uint64_t B, float* Y, unsigned threads) const {
  if (rows_ == 0 || B == 0) return;
  if (B == 1) return matvec(X, Y, threads);
  // Y^T = W X^T: the batch becomes the columns of one matmat.
  std::vector<float> Xt(cols_ * B), Yt(rows_ * B);
  for (uint64_t b = 0; b < B; ++b)
    for (uint64_t j = 0; j < cols_; ++j) Xt[j * B + b] = X[b * cols_ + j];
  matmat(Xt.data(), B, Yt.data(), threads);
  for (uint64_t i = 0; i < rows_; ++i)
    for (uint64_t b = 0; b < B; ++b) Y[b * rows_ + i] = Yt[i * B + b];
}

}  // namespace cnn
