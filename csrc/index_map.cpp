#include "index_map.hpp"

#include <algorithm>

namespace cnn {

namespace {

std::vector<IndexPlane> planes_for(unsigned bits) {
  std::vector<IndexPlane> planes;
  unsigned shift = 0, left = bits;
  size_t offset = 0;
  auto add = [&](unsigned w) {
    planes.push_back({w, shift, offset});
    shift += w;
    offset += 16 * w;
    left -= w;
  };
  while (left >= 8) add(8);
  for (unsigned w : {4u, 2u, 1u})
    if (left & w) add(w);
  return planes;
}

}  // namespace

size_t IndexMap::packed_size(uint64_t rows, uint64_t cols, unsigned bits) {
  return size_t((rows * cols + kGroup - 1) / kGroup) * 16 * bits;
}

void IndexMap::init(uint64_t rows, uint64_t cols, std::vector<float> codebook) {
  check_shape(rows, cols);
  check_codebook(codebook);
  rows_ = rows;
  cols_ = cols;
  codebook_ = std::move(codebook);
  bits_ = index_bits(uint32_t(codebook_.size()));
  planes_ = planes_for(bits_);
}

IndexMap::IndexMap(uint64_t rows, uint64_t cols, std::vector<float> codebook,
                   const uint32_t* indices) {
  init(rows, cols, std::move(codebook));
  packed_.assign(packed_size(rows, cols, bits_), 0);
  const uint32_t k = uint32_t(codebook_.size());
  for (uint64_t p = 0; p < rows * cols; ++p) {
    uint32_t v = indices[p];
    if (v >= k) throw InvalidInput("index " + std::to_string(v) + " at flat position " +
                                   std::to_string(p) + " is not below k = " + std::to_string(k));
    nnz_ += codebook_[v] != 0.0f;
    uint8_t* group = packed_.data() + (p / kGroup) * 16 * bits_;
    unsigned f = (p % kGroup) / 16, t = p % 16;
    for (const IndexPlane& pl : planes_) {
      unsigned per = 8 / pl.width;
      group[pl.offset + (f / per) * 16 + t] |=
          uint8_t(((v >> pl.shift) & ((1u << pl.width) - 1)) << ((f % per) * pl.width));
    }
  }
}

IndexMap::IndexMap(uint64_t rows, uint64_t cols, std::vector<float> codebook,
                   std::vector<uint8_t> packed) {
  init(rows, cols, std::move(codebook));
  if (packed.size() != packed_size(rows, cols, bits_))
    throw FormatError("index section holds " + std::to_string(packed.size()) +
                      " bytes, expected " + std::to_string(packed_size(rows, cols, bits_)));
  packed_ = std::move(packed);
  // Every index must be below k (b bits can hold up to 2^b - 1); checked in chunks so the
  // scratch stays small whatever the shape.
  const uint32_t k = uint32_t(codebook_.size());
  std::vector<uint32_t> idx(4096);
  for (uint64_t p = 0, n = bits_ ? rows * cols : 0; p < n; p += idx.size()) {
    uint64_t count = std::min<uint64_t>(idx.size(), n - p);
    decode_range(p, count, idx.data());
    for (uint64_t t = 0; t < count; ++t) {
      if (idx[t] >= k) throw FormatError("index " + std::to_string(idx[t]) + " at flat position " +
                                         std::to_string(p + t) + " is not below k = " +
                                         std::to_string(k));
      nnz_ += codebook_[idx[t]] != 0.0f;
    }
  }
  if (!bits_ && codebook_[0] != 0.0f) nnz_ = rows * cols;
}

void IndexMap::decode_range(uint64_t p, uint64_t count, uint32_t* out) const {
  const uint64_t end = p + count;
  while (p < end) {
    const uint8_t* group = packed_.data() + (p / kGroup) * 16 * bits_;
    unsigned f = (p % kGroup) / 16, t0 = p % 16;
    unsigned t1 = unsigned(std::min<uint64_t>(16, t0 + (end - p)));
    for (unsigned t = t0; t < t1; ++t) out[t - t0] = 0;
    for (const IndexPlane& pl : planes_) {
      unsigned per = 8 / pl.width, sh = (f % per) * pl.width, mask = (1u << pl.width) - 1;
      const uint8_t* lane = group + pl.offset + (f / per) * 16;
      for (unsigned t = t0; t < t1; ++t) out[t - t0] |= ((lane[t] >> sh) & mask) << pl.shift;
    }
    out += t1 - t0;
    p += t1 - t0;
  }
}

void IndexMap::decode_row(uint64_t i, uint32_t* idx, uint32_t) const {
  decode_range(i * cols_, cols_, idx);
}

std::vector<Section> IndexMap::sections() const {
  return {{"codebook", as_bytes(codebook_)}, {"indices", packed_}};
}

}  // namespace cnn
