// How much work each product does per row (per lane group, per image), in parallel_rows'
// units of about 0.25 ns of one core: the estimates that decide how many threads a product
// takes (parallel.hpp), so that small products stay on the calling thread.  `batch` is the
// number of columns of X (matmat, linear); each weight, once decoded, meets all of them.
#pragma once
#include <algorithm>
#include <cstdint>

namespace cnn::work {

// IndexMap: a weight decodes in about one unit from a 16-entry codebook, four from larger.
inline double index_map_matvec(uint64_t cols, unsigned index_bits) {
  return double(cols) * (index_bits <= 4 ? 1 : 4);
}
inline double index_map_batch(uint64_t cols, uint64_t batch) {
  return double(cols) * (batch / 4 + 1);
}

// HAM's row layout: a Huffman code takes about 8 units to decode.
inline double ham_rows_matvec(uint64_t cols) { return double(cols) * 8; }
inline double ham_rows_batch(uint64_t cols, uint64_t batch) {
  return double(cols) * (batch / 4 + 8);
}

// The lane layout with dense rows (HAM's), per group of group_rows rows: 4 units a weight,
// 64 a group.
inline double dense_lanes_matvec(uint64_t cols, uint64_t group_rows) {
  return double(cols) * group_rows * 4 + 64;
}
inline double dense_lanes_batch(uint64_t cols, uint64_t group_rows, uint64_t batch) {
  return double(cols) * group_rows * (batch / 4 + 8) + 64;
}

// HCSR's row layout: 20 units a stored entry (a lookup, a gather of x), 16 a row.
inline double hcsr_rows_matvec(uint64_t nnz, uint64_t rows) {
  return double(nnz) / std::max<uint64_t>(rows, 1) * 20 + 16;
}
inline double hcsr_rows_batch(uint64_t nnz, uint64_t rows, uint64_t batch) {
  return double(nnz) / std::max<uint64_t>(rows, 1) * (batch / 2 + 20) + 16;
}

// The lane layout (HCSR's stored entries), per group: 16 units a stored entry, 64 a group.
inline double lanes_matvec(uint64_t nnz, uint64_t groups) {
  return double(nnz) / groups * 16 + 64;
}
inline double lanes_batch(uint64_t nnz, uint64_t groups, uint64_t batch) {
  return double(nnz) / groups * (batch / 2 + 20) + 64;
}

// HCSR's fixed-width layout, per group: 2 units a step of one lane (a read of x, a multiply-
// add), a quarter unit per column of X once decoded, 32 a group.
inline double fixed_matvec(uint64_t steps, uint64_t groups) {
  return double(steps) / std::max<uint64_t>(groups, 1) * 16 + 32;
}
inline double fixed_batch(uint64_t steps, uint64_t groups, uint64_t batch) {
  return double(steps) / std::max<uint64_t>(groups, 1) * (2 * batch + 16) + 32;
}

// A convolution, per image: its product (a quarter unit a multiply-add) and its patches.
inline double conv_image(uint64_t rows, uint64_t patch, uint64_t pixels) {
  return double(rows) * patch * pixels / 4 + double(patch) * pixels;
}

}  // namespace cnn::work
