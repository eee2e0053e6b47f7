#include "codebook.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common.hpp"

namespace cnn {

std::vector<float> distinct_values(const uint32_t* bits, uint64_t n, uint32_t* idx) {
  // Open addressing at load <= 1/4 (2^18 slots for 2^16 keys); id + 1 per slot, 0 = empty.
  constexpr unsigned kSlotBits = 18;
  constexpr uint32_t kMask = (1u << kSlotBits) - 1;
  std::vector<uint32_t> key(size_t(1) << kSlotBits), id(size_t(1) << kSlotBits, 0);
  std::vector<uint32_t> seen;  // distinct patterns in order of first appearance
  uint32_t last_bits = 0, last_id = UINT32_MAX;  // runs of one value (pruned zeros) skip the hash
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t b = bits[i];
    if (b == last_bits && last_id != UINT32_MAX) {
      idx[i] = last_id;
      continue;
    }
    uint32_t s = (b * 0x9E3779B1u) >> (32 - kSlotBits);
    while (id[s] && key[s] != b) s = (s + 1) & kMask;
    if (!id[s]) {
      if (seen.size() == kMaxCodebook)
        throw InvalidInput("the matrix has more than " + std::to_string(kMaxCodebook) +
                           " distinct values; at most " + std::to_string(kMaxCodebook) +
                           " are supported: quantize it first (weight sharing, e.g. compactnn.cws)");
      key[s] = b;
      id[s] = uint32_t(seen.size()) + 1;
      seen.push_back(b);
    }
    idx[i] = last_id = id[s] - 1;
    last_bits = b;
  }
  // IEEE totalOrder as an unsigned key (-0.0 just below +0.0): a strict order on any bits,
  // NaNs included, so no input makes the sort misbehave.
  auto order_key = [](uint32_t b) { return b >> 31 ? ~b : b | 0x80000000u; };
  std::vector<uint32_t> order(seen.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return order_key(seen[a]) < order_key(seen[b]); });
  std::vector<uint32_t> rank(seen.size());
  std::vector<float> codebook(seen.size());
  for (uint32_t r = 0; r < order.size(); ++r) {
    rank[order[r]] = r;
    std::memcpy(&codebook[r], &seen[order[r]], 4);
  }
  for (uint64_t i = 0; i < n; ++i) idx[i] = rank[idx[i]];
  return codebook;
}

}  // namespace cnn
