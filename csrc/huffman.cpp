#include "huffman.hpp"

#include <algorithm>
#include <numeric>

#include "common.hpp"

namespace cnn::huff {

namespace {

// Lengths of an unrestricted Huffman code for `syms` sorted by ascending count
// (two-queue construction: merged nodes are created in non-decreasing weight order).
std::vector<uint32_t> huffman_depths(const std::vector<uint64_t>& w) {
  size_t n = w.size();
  std::vector<uint64_t> weight(2 * n - 1);
  std::vector<uint32_t> parent(2 * n - 1, 0);
  std::copy(w.begin(), w.end(), weight.begin());
  size_t leaf = 0, node = n;
  auto take = [&](size_t next) {
    if (leaf < n && (node >= next || weight[leaf] <= weight[node])) return leaf++;
    return node++;
  };
  for (size_t next = n; next < 2 * n - 1; ++next) {
    size_t a = take(next), b = take(next);
    weight[next] = weight[a] + weight[b];
    parent[a] = parent[b] = uint32_t(next);
  }
  std::vector<uint32_t> depth(2 * n - 1, 0);
  for (size_t i = 2 * n - 2; i-- > 0;) depth[i] = depth[parent[i]] + 1;
  depth.resize(n);
  return depth;
}

}  // namespace

std::vector<uint8_t> code_lengths(const std::vector<uint64_t>& counts, int max_len,
                                  bool zero_bit_ok) {
  std::vector<uint8_t> lengths(counts.size(), 0);
  std::vector<uint32_t> syms;
  for (size_t s = 0; s < counts.size(); ++s)
    if (counts[s]) syms.push_back(uint32_t(s));
  if (syms.empty()) return lengths;
  if (syms.size() == 1) {
    lengths[syms[0]] = zero_bit_ok ? kZeroBits : 1;
    return lengths;
  }
  if (syms.size() > (size_t(1) << max_len)) throw InvalidInput("alphabet too large for code");
  std::stable_sort(syms.begin(), syms.end(),
                   [&](uint32_t a, uint32_t b) { return counts[a] < counts[b]; });
  std::vector<uint64_t> w(syms.size());
  for (size_t i = 0; i < syms.size(); ++i) w[i] = counts[syms[i]];
  std::vector<uint32_t> depth = huffman_depths(w);

  // Limit the length: clamp, then repay the Kraft-sum excess by lengthening the deepest
  // codes that are still short enough (each step frees one unit of 2^-max_len).
  std::vector<uint64_t> num(max_len + 1, 0);
  for (uint32_t d : depth) num[std::min<uint32_t>(d, max_len)]++;
  uint64_t kraft = 0;
  for (int l = 1; l <= max_len; ++l) kraft += num[l] << (max_len - l);
  for (; kraft > (uint64_t(1) << max_len); --kraft) {
    num[max_len]--;
    for (int l = max_len - 1; l > 0; --l)
      if (num[l]) {
        num[l]--;
        num[l + 1] += 2;
        break;
      }
  }
  // Most frequent symbols (end of `syms`) take the shortest lengths.
  size_t i = syms.size();
  for (int l = 1; l <= max_len; ++l)
    for (uint64_t c = 0; c < num[l]; ++c) lengths[syms[--i]] = uint8_t(l);
  return lengths;
}

std::vector<uint32_t> canonical_codes(const std::vector<uint8_t>& lengths) {
  std::vector<uint32_t> codes(lengths.size(), 0);
  uint32_t count[kMaxLen + 2] = {}, next[kMaxLen + 2] = {};
  for (uint8_t l : lengths)
    if (l && l != kZeroBits) count[l]++;
  for (int l = 1; l <= kMaxLen; ++l) next[l + 1] = (next[l] + count[l]) << 1;
  for (size_t s = 0; s < lengths.size(); ++s) {
    uint8_t l = lengths[s];
    if (l && l != kZeroBits) codes[s] = next[l]++;
  }
  return codes;
}

uint64_t coded_bits(const std::vector<uint64_t>& counts, const std::vector<uint8_t>& lengths) {
  uint64_t bits = 0;
  for (size_t s = 0; s < counts.size(); ++s)
    if (lengths[s] != kZeroBits) bits += counts[s] * lengths[s];
  return bits;
}

int table_bits_for(uint64_t stream_bits) {
  int bits = kTableBits;
  while (bits > 5 && (uint64_t(4) << bits) * 32 * 8 > stream_bits) --bits;
  return bits;
}

Decoder::Decoder(const std::vector<uint8_t>& lengths, int max_table_bits) {
  if (lengths.size() > (size_t(1) << 26)) throw FormatError("code alphabet too large");
  size_t used = 0, zero_bit_sym = 0;
  uint64_t kraft = 0;
  for (size_t s = 0; s < lengths.size(); ++s) {
    uint8_t l = lengths[s];
    if (!l) continue;
    ++used;
    if (l == kZeroBits) {
      zero_bit_ = true;
      zero_bit_sym = s;
      continue;
    }
    if (l > kMaxLen) throw FormatError("code length " + std::to_string(l) + " exceeds " +
                                       std::to_string(kMaxLen));
    count_[l]++;
    max_len_ = std::max<int>(max_len_, l);
    kraft += uint64_t(1) << (kMaxLen - l);
  }
  if (zero_bit_ && used != 1) throw FormatError("a zero-bit code must be the only code");
  if (kraft > (uint64_t(1) << kMaxLen)) throw FormatError("code lengths over-subscribe the code");

  table_bits_ = std::max(1, std::min({kTableBits, max_table_bits, max_len_}));
  table_.assign(size_t(1) << table_bits_, HuffEntry::kSlow);
  if (zero_bit_) {
    std::fill(table_.begin(), table_.end(), HuffEntry::make(uint32_t(zero_bit_sym), 0));
    return;
  }
  std::vector<uint32_t> codes = canonical_codes(lengths);
  for (size_t s = 0; s < lengths.size(); ++s) {
    int l = lengths[s];
    if (!l || l > table_bits_) continue;
    size_t lo = size_t(codes[s]) << (table_bits_ - l), hi = size_t(codes[s] + 1) << (table_bits_ - l);
    std::fill(table_.begin() + lo, table_.begin() + hi, HuffEntry::make(uint32_t(s), uint32_t(l)));
  }
  if (max_len_ <= table_bits_) return;
  uint32_t code = 0, start = 0;
  for (int l = 1; l <= kMaxLen; ++l) {
    first_[l] = code;
    start_[l] = start;
    code = (code + count_[l]) << 1;
    start += count_[l];
  }
  sorted_.resize(start);
  std::vector<uint32_t> fill(start_, start_ + kMaxLen + 1);
  for (size_t s = 0; s < lengths.size(); ++s) {
    int l = lengths[s];
    if (l) sorted_[fill[l]++] = uint32_t(s);
  }
}

uint32_t Decoder::decode_long(uint64_t window) const {
  for (int l = table_bits_ + 1; l <= max_len_; ++l) {
    uint32_t c = uint32_t(window >> (64 - l)) - first_[l];
    if (c < count_[l]) return HuffEntry::make(sorted_[start_[l] + c], uint32_t(l));
  }
  return HuffEntry::kInvalid;
}

size_t Decoder::nbytes() const {
  size_t n = table_.size() * sizeof(uint32_t);
  if (!sorted_.empty()) n += sizeof(first_) + sizeof(count_) + sizeof(start_) + sorted_.size() * 4;
  return n;
}

}  // namespace cnn::huff
