// Unsigned integers stored in the narrowest of 1, 2, 4 or 8 bytes that holds the largest:
// the row counts of the lane layout and the row bit offsets of the row layout, which at
// high sparsity would otherwise weigh as much as the entries (4-8 bytes per row).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/views.hpp"

namespace cnn {

class PackedInts {
 public:
  PackedInts() = default;
  explicit PackedInts(const std::vector<uint64_t>& values) {
    uint64_t top = 0;
    for (uint64_t v : values) top = std::max(top, v);
    width_ = top >> 32 ? 8 : top >> 16 ? 4 : top >> 8 ? 2 : 1;
    n_ = values.size();
    data_.assign(n_ * width_ + kSlack, 0);
    for (size_t i = 0; i < n_; ++i)  // little-endian, as the file is
      for (unsigned b = 0; b < width_; ++b) data_[i * width_ + b] = uint8_t(values[i] >> (8 * b));
  }
  uint64_t operator[](size_t i) const { return view()[i]; }
  uint64_t back() const { return view()[n_ - 1]; }
  kernels::Packed view() const {
    return {data_.data(), unsigned(__builtin_ctz(width_)),
            width_ == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * width_)) - 1};
  }
  size_t nbytes() const { return data_.size(); }
  // The file's section: the values, each in the same 1, 2, 4 or 8 bytes, little-endian.
  std::vector<uint8_t> bytes() const {
    return {data_.begin(), data_.begin() + ptrdiff_t(n_ * width_)};
  }

 private:
  static constexpr size_t kSlack = 7;  // so that the last value loads as 8 bytes
  std::vector<uint8_t> data_;
  size_t n_ = 0;
  unsigned width_ = 1;
};

}  // namespace cnn
