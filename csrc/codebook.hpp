// The distinct values of a float32 matrix and each entry's index among them: the first
// step of storing a dense matrix in any format.
#pragma once
#include <cstdint>
#include <vector>

namespace cnn {

// Distinct bit patterns of bits[0..n) (float32 values, so -0.0 and +0.0 differ), sorted by
// value (-0.0 before +0.0), and idx[i] = the index of bits[i] among them.  Throws
// InvalidInput past kMaxCodebook distinct values.  Memory: idx and a 2 MiB hash table,
// so a matrix becomes its index matrix without sorting a copy of it.
std::vector<float> distinct_values(const uint32_t* bits, uint64_t n, uint32_t* idx);

}  // namespace cnn
