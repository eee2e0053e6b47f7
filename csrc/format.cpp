#include "format.hpp"

#include <cmath>
#include <cstring>

namespace cnn {

void check_codebook(const std::vector<float>& codebook) {
  if (codebook.empty() || codebook.size() > kMaxCodebook)
    throw InvalidInput("codebook size " + std::to_string(codebook.size()) +
                       " is outside 1..65536");
  for (float v : codebook)
    if (!std::isfinite(v)) throw InvalidInput("codebook holds a non-finite value");
}

// Eight independent partial sums: fewer dependent adds and the same order on every call.
float dot(const float* a, const float* b, uint64_t n) {
  float acc[8] = {};
  uint64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int t = 0; t < 8; ++t) acc[t] += a[j + t] * b[j + t];
  for (; j < n; ++j) acc[j & 7] += a[j] * b[j];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void Format::to_indices(uint32_t* out, uint32_t zero_index) const {
  for (uint64_t i = 0; i < rows_; ++i) decode_row(i, out + i * cols_, zero_index);
}

void Format::to_dense(float* out) const {
  std::vector<uint32_t> idx(cols_);
  std::vector<float> cb = codebook_;
  cb.push_back(0.0f);  // implicit zeros
  for (uint64_t i = 0; i < rows_; ++i) {
    decode_row(i, idx.data(), uint32_t(codebook_.size()));
    for (uint64_t j = 0; j < cols_; ++j) out[i * cols_ + j] = cb[idx[j]];
  }
}

void DenseRowFormat::decode_row_values(uint64_t i, uint32_t* idx, float* w) const {
  decode_row(i, idx, 0);
  const float* cb = codebook_.data();
  for (uint64_t j = 0; j < cols_; ++j) w[j] = cb[idx[j]];
}

void DenseRowFormat::matvec(const float* x, float* y) const {
  std::vector<uint32_t> idx(cols_);
  std::vector<float> w(cols_);
  for (uint64_t i = 0; i < rows_; ++i) {
    decode_row_values(i, idx.data(), w.data());
    y[i] = dot(w.data(), x, cols_);
  }
}

void DenseRowFormat::matmat(const float* X, uint64_t B, float* Y) const {
  std::vector<uint32_t> idx(cols_);
  std::vector<float> w(cols_);
  for (uint64_t i = 0; i < rows_; ++i) {
    decode_row_values(i, idx.data(), w.data());
    float* y = Y + i * B;
    std::memset(y, 0, B * sizeof(float));
    for (uint64_t j = 0; j < cols_; ++j) {
      const float wj = w[j], *xj = X + j * B;
      for (uint64_t b = 0; b < B; ++b) y[b] += wj * xj[b];
    }
  }
}

void DenseRowFormat::linear(const float* X, uint64_t B, float* Y) const {
  std::vector<uint32_t> idx(cols_);
  std::vector<float> w(cols_);
  for (uint64_t i = 0; i < rows_; ++i) {
    decode_row_values(i, idx.data(), w.data());
    for (uint64_t b = 0; b < B; ++b) Y[b * rows_ + i] = dot(w.data(), X + b * cols_, cols_);
  }
}

}  // namespace cnn
