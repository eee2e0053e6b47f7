#include "lane_layout.hpp"

#include <algorithm>

#include "entries.hpp"
#include "huffman.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/lanes.hpp"
#include "parallel.hpp"
#include "work.hpp"

namespace cnn {

namespace {

using kernels::kLanes;

// The buckets of parameters (m, r0), n of them or, with `last`, the fewest that hold gaps
// 0..last (at most n); false if one needs more than kMaxRaw raw bits or starts at kMaxBase
// or later, or if n buckets do not reach `last`.
bool make_buckets(unsigned m, unsigned r0, size_t n, std::vector<uint64_t>& base,
                  std::vector<unsigned>& raw, uint64_t last = ~uint64_t(0)) {
  base.clear();
  raw.clear();
  uint64_t b = 0;  // where the next bucket starts
  while (base.size() < n && (base.empty() || b <= last)) {
    const unsigned w = bit_width(b), r = std::max(r0, w > m + 1 ? w - 1 - m : 0u);
    if (r > LaneLayout::kMaxRaw || b >= LaneLayout::kMaxBase) return false;
    base.push_back(b);
    raw.push_back(r);
    b += uint64_t(1) << r;
  }
  return last == ~uint64_t(0) || b > last;
}

// Canonical codes of at most 7 bits (0 bits for a kZeroBits symbol), shorter codes first.
std::vector<uint32_t> short_codes(const std::vector<uint8_t>& lengths) {
  std::vector<uint32_t> code(lengths.size(), 0);
  uint32_t c = 0;
  unsigned prev = 1;
  for (unsigned len = 1; len <= LaneLayout::kCodeBits; ++len)
    for (size_t s = 0; s < lengths.size(); ++s)
      if (lengths[s] == len) {
        c <<= len - prev;
        prev = len;
        code[s] = c++;
      }
  return code;
}

unsigned code_len(uint8_t l) { return l == huff::kZeroBits ? 0 : l; }

// A code's lengths: 1..7 bits, or one symbol of 0 bits; no more codes than the prefixes hold.
void check_lengths(const std::vector<uint8_t>& lengths, const char* what) {
  uint64_t kraft = 0, zero = 0;
  for (uint8_t l : lengths) {
    if (l == huff::kZeroBits)
      ++zero;
    else if (l > LaneLayout::kCodeBits)
      throw FormatError(std::string(what) + " code length " + std::to_string(l) + " > 7");
    else if (l)
      kraft += 1u << (LaneLayout::kCodeBits - l);
  }
  if (kraft > (1u << LaneLayout::kCodeBits) || (zero && (zero > 1 || kraft)))
    throw FormatError(std::string(what) + " code lengths do not form a prefix code");
}

// MSB-first bits of one lane, in 32-bit words.
struct LaneBits {
  std::vector<uint32_t> words;
  uint64_t acc = 0;
  unsigned fill = 0;
  void put(uint32_t value, unsigned n) {  // n <= 32
    if (!n) return;
    acc = acc << n | value;
    fill += n;
    if (fill >= 32) {
      fill -= 32;
      words.push_back(uint32_t(acc >> fill));
    }
  }
  uint32_t word(uint64_t i) {
    if (fill) {  // the last partial word, once all bits are in
      words.push_back(uint32_t(acc << (32 - fill)));
      fill = 0;
    }
    return i < words.size() ? words[i] : 0;
  }
};

// The entries' gaps and values, counted once: gaps below `small` in a table, larger ones
// (rare) sorted.
struct EntryCounts {
  uint64_t small = 0;
  std::vector<uint64_t> below;   // below[g]: the gaps under g, for g <= small
  std::vector<uint64_t> large;   // the gaps of `small` or more, sorted
  std::vector<uint64_t> values;  // entries per codebook index
  uint64_t max_gap = 0;
  uint64_t gaps_below(uint64_t g) const {
    return below[std::min(g, small)] +
           uint64_t(std::lower_bound(large.begin(), large.end(), g) - large.begin());
  }
};

template <class Entries>
EntryCounts count_entries(uint64_t rows, uint64_t cols, uint32_t k, const uint64_t* indptr,
                          const Entries& entries) {
  EntryCounts c;
  c.small = std::min<uint64_t>(cols, 1 << 16);
  c.below.assign(c.small + 1, 0);
  c.values.assign(k, 0);
  for (uint64_t i = 0; i < rows; ++i) {
    auto row = entries.row(i);
    for (uint64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
      const Entry en = row.next();
      c.max_gap = std::max(c.max_gap, en.gap);
      if (en.gap < c.small)
        ++c.below[en.gap + 1];
      else
        c.large.push_back(en.gap);
      ++c.values[en.value];
    }
  }
  for (uint64_t g = 0; g < c.small; ++g) c.below[g + 1] += c.below[g];
  std::sort(c.large.begin(), c.large.end());
  return c;
}

// Gap buckets of parameters (m, r0) and the entries that fall into each.
struct Buckets {
  unsigned m = 0, r0 = 0;
  std::vector<uint64_t> base;
  std::vector<unsigned> raw;
  std::vector<uint64_t> counts;
};

// The bucket parameters whose code and raw bits cost least; no buckets where none hold
// every gap.
Buckets cheapest_buckets(const EntryCounts& c) {
  Buckets best, b;
  uint64_t best_bits = ~uint64_t(0);
  for (unsigned m = 0; m <= LaneLayout::kMaxM; ++m)
    for (unsigned r0 = 0; r0 <= LaneLayout::kMaxRaw; ++r0) {
      if (!make_buckets(m, r0, LaneLayout::kMaxBuckets, b.base, b.raw, c.max_gap)) continue;
      b.counts.assign(b.base.size(), 0);
      uint64_t bits = 0;
      for (size_t i = 0; i < b.base.size(); ++i) {
        const uint64_t end = b.base[i] + (uint64_t(1) << b.raw[i]);
        b.counts[i] = c.gaps_below(end) - c.gaps_below(b.base[i]);
        bits += b.counts[i] * b.raw[i];
      }
      bits += huff::coded_bits(b.counts,
                               huff::code_lengths(b.counts, LaneLayout::kCodeBits, true));
      if (bits < best_bits) {
        best_bits = bits;
        best = b;
        best.m = m;
        best.r0 = r0;
      }
    }
  return best;
}

// An entry's three fields: [gap bucket code][raw low bits of the gap][value code].  It holds
// copies of the codes and buckets: read through references to the builder's, they made the
// lane layout's build about 5% slower.
class EntryWriter {
 public:
  EntryWriter(const Buckets& buckets, const std::vector<uint8_t>& gap_lengths,
              const std::vector<uint8_t>& value_lengths, uint64_t small)
      : base_(buckets.base), raw_(buckets.raw), small_(small), small_bucket_(small) {
    for (size_t b = 0, g = 0; g < small; ++g) {
      while (b + 1 < base_.size() && base_[b + 1] <= g) ++b;
      small_bucket_[g] = uint8_t(b);
    }
    const std::vector<uint32_t> gap_code = short_codes(gap_lengths),
                                value_code = short_codes(value_lengths);
    for (size_t b = 0; b < gap_code.size(); ++b)
      gap_.push_back({gap_code[b], code_len(gap_lengths[b])});
    for (size_t v = 0; v < value_code.size(); ++v)
      value_.push_back({value_code[v], code_len(value_lengths[v])});
  }
  // Writes `en` and returns its bits.
  unsigned put(LaneBits& bits, const Entry& en) const {
    const unsigned b = bucket_of(en.gap), raw = raw_[b];
    const Code gap = gap_[b], value = value_[en.value];
    bits.put(gap.code, gap.len);
    bits.put(uint32_t(en.gap - base_[b]), raw);
    bits.put(value.code, value.len);
    return gap.len + raw + value.len;
  }

 private:
  struct Code {
    uint32_t code;
    unsigned len;
  };
  // A table for small gaps, a search for the others.
  unsigned bucket_of(uint64_t g) const {
    return g < small_ ? small_bucket_[g]
                      : unsigned(std::upper_bound(base_.begin(), base_.end(), g) -
                                 base_.begin() - 1);
  }
  std::vector<uint64_t> base_;
  std::vector<unsigned> raw_;
  uint64_t small_;
  std::vector<uint8_t> small_bucket_;
  std::vector<Code> gap_, value_;
};

// Rows [r0, r1) as one group's words: the lanes' bits, then their words in the order the
// decoder reads them (kernels/lanes.hpp, replayed here on the entry counts and lengths).
template <class Entries>
void write_group(uint64_t r0, uint64_t r1, const uint64_t* indptr, const Entries& entries,
                 const EntryWriter& writer, std::vector<uint32_t>& words) {
  uint64_t next = r0;
  LaneBits bits[kLanes];
  std::vector<typename Entries::Row> row(kLanes, entries.row(next));
  uint64_t left[kLanes], word[kLanes];
  unsigned pos[kLanes];
  std::vector<std::pair<unsigned, uint64_t>> reads;
  auto take = [&](unsigned l) {
    while (next < r1 && indptr[next + 1] == indptr[next]) ++next;
    left[l] = next < r1 ? indptr[next + 1] - indptr[next] : 0;
    if (next < r1) row[l] = entries.row(next++);
  };
  for (unsigned l = 0; l < kLanes; ++l) {
    pos[l] = 0;
    word[l] = 2;
    take(l);
  }
  for (bool any = true; any;) {
    any = false;
    for (unsigned l = 0; l < kLanes; ++l) {
      if (!left[l]) continue;
      any = true;
      pos[l] += writer.put(bits[l], row[l].next());
    }
    for (unsigned l = 0; l < kLanes; ++l)
      if (left[l] && pos[l] >= 32) {
        reads.emplace_back(l, word[l]++);
        pos[l] -= 32;
      }
    for (unsigned l = 0; l < kLanes; ++l)
      if (left[l] && --left[l] == 0) take(l);
  }
  for (uint64_t w = 0; w < 2; ++w)
    for (unsigned l = 0; l < kLanes; ++l) words.push_back(bits[l].word(w));
  for (auto [l, w] : reads) words.push_back(bits[l].word(w));
}

}  // namespace

template <class Entries>
std::unique_ptr<LaneLayout> LaneLayout::build(uint64_t rows, uint64_t cols,
                                              const std::vector<float>& codebook,
                                              const uint64_t* indptr, const Entries& entries,
                                              Rows kind) {
  if (cols > kMaxCols) return nullptr;
  for (uint64_t i = 0; i < rows; ++i)
    if (indptr[i + 1] - indptr[i] >= (uint64_t(1) << 31)) return nullptr;
  EntryCounts counts = count_entries(rows, cols, uint32_t(codebook.size()), indptr, entries);
  if (size_t(std::count_if(counts.values.begin(), counts.values.end(),
                           [](uint64_t c) { return c > 0; })) > kMaxValues)
    return nullptr;
  const Buckets buckets = cheapest_buckets(counts);
  if (buckets.base.empty()) return nullptr;

  auto lanes = std::unique_ptr<LaneLayout>(new LaneLayout(rows, cols, kind));
  lanes->m_ = buckets.m;
  lanes->r0_ = buckets.r0;
  lanes->nnz_ = indptr[rows];
  lanes->gap_lengths_ = huff::code_lengths(buckets.counts, kCodeBits, true);
  // Every entry spends at least one bit, so a stream's size bounds its entries.
  bool free_gap = false;
  for (size_t b = 0; b < buckets.base.size(); ++b)
    free_gap |= lanes->gap_lengths_[b] == huff::kZeroBits && buckets.raw[b] == 0;
  lanes->value_lengths_ = huff::code_lengths(counts.values, kCodeBits, !free_gap);
  lanes->value_counts_ = std::move(counts.values);
  std::vector<uint64_t> row_counts(rows);
  for (uint64_t i = 0; i < rows; ++i) row_counts[i] = indptr[i + 1] - indptr[i];
  lanes->counts_ = PackedInts(row_counts);

  const EntryWriter writer(buckets, lanes->gap_lengths_, lanes->value_lengths_, counts.small);
  const uint64_t groups = (rows + kGroupRows - 1) / kGroupRows;
  lanes->group_words_.assign(1, 0);
  for (uint64_t g = 0; g < groups; ++g) {
    write_group(g * kGroupRows, std::min(rows, (g + 1) * kGroupRows), indptr, entries, writer,
                lanes->words_);
    lanes->group_words_.push_back(lanes->words_.size());
  }
  lanes->words_.resize(lanes->words_.size() + kLanes, 0);
  lanes->build_tables(codebook);
  return lanes;
}

template std::unique_ptr<LaneLayout> LaneLayout::build(uint64_t, uint64_t,
                                                       const std::vector<float>&,
                                                       const uint64_t*, const CsrEntries&, Rows);
template std::unique_ptr<LaneLayout> LaneLayout::build(uint64_t, uint64_t,
                                                       const std::vector<float>&,
                                                       const uint64_t*, const DenseEntries&,
                                                       Rows);

LaneLayout::LaneLayout(uint64_t rows, uint64_t cols, const std::vector<float>& codebook,
                       uint64_t nnz, const std::vector<uint64_t>& params,
                       std::vector<uint8_t> gap_lengths,
                       std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
                       std::vector<uint64_t> group_words, std::vector<uint32_t> words,
                       Rows kind)
    : Layout(rows, cols), kind_(kind), nnz_(nnz) {
  if (cols > kMaxCols) throw FormatError("lane layout needs fewer than 2^31 columns");
  if (params.size() != 4) throw FormatError("lane layout parameter section must hold 4 values");
  if (params[1] != kGroupRows) throw FormatError("lane layout group rows must be 64");
  if (params[2] > kMaxM || params[3] > kMaxRaw)
    throw FormatError("lane layout bucket parameters are out of range");
  m_ = unsigned(params[2]);
  r0_ = unsigned(params[3]);
  if (gap_lengths.empty() || gap_lengths.size() > kMaxBuckets)
    throw FormatError("lane layout has " + std::to_string(gap_lengths.size()) +
                      " gap buckets, not 1..32");
  std::vector<uint64_t> base;
  std::vector<unsigned> raw;
  if (!make_buckets(m_, r0_, gap_lengths.size(), base, raw))
    throw FormatError("lane layout gap buckets need more than 18 raw bits");
  if (value_lengths.size() != codebook.size())
    throw FormatError("lane layout value code lengths do not match the codebook");
  check_lengths(gap_lengths, "gap");
  check_lengths(value_lengths, "value");
  bool free_gap = false;
  for (size_t b = 0; b < gap_lengths.size(); ++b)
    free_gap |= gap_lengths[b] == huff::kZeroBits && raw[b] == 0;
  if (free_gap && std::count(value_lengths.begin(), value_lengths.end(), huff::kZeroBits))
    throw FormatError("lane layout entries would take no bits");
  gap_lengths_ = std::move(gap_lengths);
  value_lengths_ = std::move(value_lengths);

  if (counts.size() != rows)
    throw FormatError("lane layout row counts section does not hold rows counts");
  uint64_t total = 0;
  for (uint64_t c : counts) {
    if (c > cols) throw FormatError("a row count exceeds the columns");
    total += c;
  }
  if (total != nnz)
    throw FormatError("row counts add up to " + std::to_string(total) + ", header says " +
                      std::to_string(nnz));
  const uint64_t groups = (rows + kGroupRows - 1) / kGroupRows;
  if (group_words.size() != groups + 1 || group_words[0] != 0 ||
      group_words[groups] != words.size())
    throw FormatError("lane layout group offsets do not cover the words section");
  for (uint64_t g = 0; g < groups; ++g)
    if (group_words[g + 1] < group_words[g])
      throw FormatError("lane layout group offsets decrease");
  if (nnz / 32 > words.size()) throw FormatError("lane layout words are too few for the entries");
  counts_ = PackedInts(counts);
  group_words_ = std::move(group_words);
  words_ = std::move(words);
  words_.resize(words_.size() + kLanes, 0);
  build_tables(codebook);
  const kernels::LanesView v = view(codebook.data());
  value_counts_.assign(codebook.size(), 0);
  auto count = [&](unsigned, uint64_t, uint64_t, uint32_t i) { ++value_counts_[i]; };
  auto done = [](unsigned, uint64_t) {};
  for (uint64_t g = 0; g < groups; ++g)
    if (!kernels::scalar::lanes_group<true>(v, g, count, done))
      throw FormatError("lane layout group " + std::to_string(g) + " does not decode to its rows");
}

void LaneLayout::build_tables(const std::vector<float>& codebook) {
  std::vector<uint64_t> base;
  std::vector<unsigned> raw;
  make_buckets(m_, r0_, gap_lengths_.size(), base, raw);
  auto fill = [](const std::vector<uint8_t>& lengths, std::vector<uint32_t>& table, auto&& entry) {
    table.assign(LaneCodeEntry::kTableSize, LaneCodeEntry::kBad);
    const std::vector<uint32_t> code = short_codes(lengths);
    for (size_t s = 0; s < lengths.size(); ++s) {
      if (!lengths[s]) continue;
      const unsigned len = code_len(lengths[s]), shift = kCodeBits - len;
      for (uint32_t t = code[s] << shift; t < (code[s] + 1) << shift; ++t) table[t] = entry(s, len);
    }
  };
  auto bucket = [&](size_t b) { return LaneBucket::make(uint32_t(base[b]), raw[b]); };
  fill(gap_lengths_, gap_table_,
       [&](size_t b, unsigned len) { return LaneCodeEntry::make(len, bucket(b)); });
  fill(value_lengths_, value_code_,
       [](size_t s, unsigned len) { return LaneCodeEntry::make(len, uint32_t(s)); });
  value_.assign(LaneCodeEntry::kTableSize, 0.0f);
  for (uint32_t t = 0; t < LaneCodeEntry::kTableSize; ++t)
    if (value_code_[t] != LaneCodeEntry::kBad)
      value_[t] = codebook[LaneCodeEntry::payload(value_code_[t])];
  // The arithmetic form: symbols in rank order, the limits and offsets per length.
  auto ranks = [](const std::vector<uint8_t>& lengths, kernels::LanesView::Code& c) {
    std::vector<uint32_t> order;
    uint32_t covered = 0, first = 0;  // prefixes of shorter codes; first code of this length
    for (unsigned L = 0; L <= kCodeBits; ++L) {
      if (L) first <<= 1;
      c.offset[L] = int32_t(order.size()) - int32_t(first);
      for (size_t s = 0; s < lengths.size(); ++s)
        if (lengths[s] && code_len(lengths[s]) == L) {
          order.push_back(uint32_t(s));
          covered += 1u << (kCodeBits - L);
          ++first;
        }
      if (L < kCodeBits) c.limit[L] = int32_t(covered) - 1;
    }
    c.ranks = uint32_t(order.size());
    return order;
  };
  gap_by_rank_.assign(kMaxBuckets, 0);
  const std::vector<uint32_t> gaps = ranks(gap_lengths_, gap_code_);
  for (size_t r = 0; r < gaps.size(); ++r) gap_by_rank_[r] = bucket(gaps[r]);
  value_by_rank_.assign(kMaxValues, 0.0f);
  const std::vector<uint32_t> values = ranks(value_lengths_, value_code_ranks_);
  for (size_t r = 0; r < values.size(); ++r) value_by_rank_[r] = codebook[values[r]];
}

kernels::LanesView LaneLayout::view(const float* codebook) const {
  return {rows_,
          cols_,
          group_rows_,
          counts_.view(),
          group_words_.data(),
          words_.data(),
          gap_table_.data(),
          value_code_.data(),
          value_.data(),
          codebook,
          gap_code_,
          value_code_ranks_,
          gap_by_rank_.data(),
          value_by_rank_.data()};
}

void LaneLayout::matvec(const float* codebook, const float* x, float* y,
                        unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  const kernels::LanesView v = view(codebook);
  auto run = [&](double per_group, const auto& kernel) {
    parallel_rows(
        groups(), threads, per_group, [&](uint64_t g0, uint64_t g1) { kernel(v, x, y, g0, g1); },
        1);
  };
  if (kind_ == Rows::Dense)
    run(work::dense_lanes_matvec(cols_, group_rows_), isa.dense_lanes_matvec);
  else
    run(work::lanes_matvec(nnz_, groups()), isa.lanes_matvec);
}

void LaneLayout::matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
                        unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  const kernels::LanesView v = view(codebook);
  auto run = [&](double per_group, const auto& kernel) {
    parallel_rows(
        groups(), threads, per_group,
        [&](uint64_t g0, uint64_t g1) { kernel(v, X, batch, Y, g0, g1); }, 1);
  };
  if (kind_ == Rows::Dense)
    run(work::dense_lanes_batch(cols_, group_rows_, batch), isa.dense_lanes_matmat);
  else
    run(work::lanes_batch(nnz_, groups(), batch), isa.lanes_matmat);
}

void LaneLayout::decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx,
                             uint32_t zero_index) const {
  std::fill(idx, idx + (r1 - r0) * cols_, zero_index);
  const kernels::LanesView v = view(nullptr);
  for (uint64_t g = r0 / group_rows_; g * group_rows_ < r1; ++g)
    kernels::scalar::lanes_group<false>(
        v, g,
        [&](unsigned, uint64_t r, uint64_t c, uint32_t index) {
          if (r >= r0 && r < r1) idx[(r - r0) * cols_ + c] = index;
        },
        [](unsigned, uint64_t) {});
}

void LaneLayout::to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
                        std::vector<uint32_t>& vidx) const {
  const kernels::LanesView v = view(nullptr);
  indptr.assign(rows_ + 1, 0);
  for (uint64_t i = 0; i < rows_; ++i) indptr[i + 1] = indptr[i] + v.counts[i];
  col.resize(nnz_);
  vidx.resize(nnz_);
  std::vector<uint64_t> fill(indptr.begin(), indptr.end() - 1);
  for (uint64_t g = 0; g < groups(); ++g)
    kernels::scalar::lanes_group<false>(
        v, g,
        [&](unsigned, uint64_t r, uint64_t c, uint32_t index) {
          col[fill[r]] = c;
          vidx[fill[r]++] = index;
        },
        [](unsigned, uint64_t) {});
}

std::vector<std::pair<std::string, uint64_t>> LaneLayout::details() const {
  if (kind_ == Rows::Dense) return {{"groups", groups()}};
  return {{"gap_buckets", gap_lengths_.size()}, {"groups", groups()}};
}

size_t LaneLayout::nbytes() const {
  return 4 * 8 + gap_lengths_.size() + value_lengths_.size() + counts_.nbytes() +
         group_words_.size() * 8 + words_.size() * 4 +
         (gap_table_.size() + value_code_.size()) * 4 + value_.size() * 4 +
         gap_by_rank_.size() * 4 + value_by_rank_.size() * 4 + 2 * sizeof(gap_code_);
}

std::vector<Section> LaneLayout::sections() const {
  std::vector<uint64_t> params = {nnz_, group_rows_, m_, r0_};
  std::vector<uint32_t> words(words_.begin(), words_.end() - kLanes);
  return {as_bytes(params), gap_lengths_,           value_lengths_,
          counts_.bytes(),  as_bytes(group_words_), as_bytes(words)};
}

}  // namespace cnn
