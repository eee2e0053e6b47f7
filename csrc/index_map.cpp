#include "index_map.hpp"

#include <algorithm>

#include "kernels/decode.hpp"
#include "kernels/dispatch.hpp"
#include "parallel.hpp"
#include "work.hpp"

namespace cnn {

size_t IndexMap::packed_size(uint64_t rows, uint64_t cols, unsigned bits) {
  return size_t((rows * cols + kGroup - 1) / kGroup) * 16 * bits;
}

IndexMap::IndexMap(uint64_t rows, uint64_t cols, std::vector<float> codebook,
                   const uint32_t* indices)
    : Format(rows, cols, std::move(codebook)),
      index_bits_(cnn::index_bits(uint32_t(codebook_.size()))) {
  packed_.assign(packed_size(rows, cols, index_bits_), 0);
  const uint32_t k = uint32_t(codebook_.size());
  for (uint64_t p = 0; p < rows * cols; ++p) {
    uint32_t v = indices[p];
    if (v >= k) throw InvalidInput("index " + std::to_string(v) + " at flat position " +
                                   std::to_string(p) + " is not below k = " + std::to_string(k));
    nnz_ += codebook_[v] != 0.0f;
    uint8_t* plane = packed_.data() + (p / kGroup) * 16 * index_bits_;
    unsigned f = (p % kGroup) / 16, t = p % 16, shift = 0;
    for (unsigned left = index_bits_; left;) {  // planes of 8, then 4, 2, 1 bits
      unsigned w = left >= 8 ? 8 : (left & 4) ? 4 : (left & 2) ? 2 : 1, per = 8 / w;
      plane[(f / per) * 16 + t] |= uint8_t(((v >> shift) & ((1u << w) - 1)) << (f % per * w));
      plane += 16 * w;
      shift += w;
      left -= w;
    }
  }
}

IndexMap::IndexMap(uint64_t rows, uint64_t cols, std::vector<float> codebook,
                   std::vector<uint8_t> packed)
    : Format(rows, cols, std::move(codebook)),
      index_bits_(cnn::index_bits(uint32_t(codebook_.size()))) {
  if (packed.size() != packed_size(rows, cols, index_bits_))
    throw FormatError("index section holds " + std::to_string(packed.size()) +
                      " bytes, expected " +
                      std::to_string(packed_size(rows, cols, index_bits_)));
  packed_ = std::move(packed);
  // Every index must be below k (b bits can hold up to 2^b - 1); checked in chunks so the
  // scratch stays small whatever the shape.
  const uint32_t k = uint32_t(codebook_.size());
  std::vector<uint32_t> idx(4096);
  for (uint64_t p = 0, n = index_bits_ ? rows * cols : 0; p < n; p += idx.size()) {
    uint64_t count = std::min<uint64_t>(idx.size(), n - p);
    kernels::scalar::im_decode_range(view(), p, count, idx.data());
    for (uint64_t t = 0; t < count; ++t) {
      if (idx[t] >= k) throw FormatError("index " + std::to_string(idx[t]) + " at flat position " +
                                         std::to_string(p + t) + " is not below k = " +
                                         std::to_string(k));
      nnz_ += codebook_[idx[t]] != 0.0f;
    }
  }
  if (!index_bits_ && codebook_[0] != 0.0f) nnz_ = rows * cols;
}

kernels::IMView IndexMap::view() const {
  return {rows_,           cols_,           index_bits_, uint32_t(codebook_.size()),
          codebook_.data(), packed_.data()};
}

void IndexMap::matvec(const float* x, float* y, unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  parallel_rows(rows_, threads, work::index_map_matvec(cols_, index_bits_),
                [&](uint64_t r0, uint64_t r1) { isa.im_matvec(view(), x, y, r0, r1); });
}

void IndexMap::matmat(const float* X, uint64_t batch, float* Y, unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  parallel_rows(rows_, threads, work::index_map_batch(cols_, batch),
                [&](uint64_t r0, uint64_t r1) { isa.im_matmat(view(), X, batch, Y, r0, r1); });
}

void IndexMap::linear_batch(const float* X, uint64_t batch, float* Y, unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  // Threads own disjoint columns of Y.
  parallel_rows(
      rows_, threads, work::index_map_batch(cols_, batch),
      [&](uint64_t r0, uint64_t r1) { isa.im_linear(view(), X, batch, Y, r0, r1); },
      kernels::linear_rows_align(rows_));
}

void IndexMap::decode_row(uint64_t i, uint32_t* idx, uint32_t) const {
  kernels::scalar::im_decode_range(view(), i * cols_, cols_, idx);
}

std::vector<Section> IndexMap::sections() const {
  return {as_bytes(codebook_), packed_};  // codebook, packed indices
}

}  // namespace cnn
