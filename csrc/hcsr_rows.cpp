#include "hcsr_rows.hpp"

#include <algorithm>
#include <cstring>

#include "bitstream.hpp"
#include "entries.hpp"
#include "kernels/dispatch.hpp"
#include "parallel.hpp"
#include "work.hpp"

namespace cnn {

namespace {

// The entries counted once for every gap split: hist[v << top | min(gap, 2^top - 1)] for the
// largest split `top` the alphabet allows, and the largest gap.
struct GapHistogram {
  unsigned top = 0;
  std::vector<uint64_t> hist;
  uint64_t max_gap = 0;
};

// One way to code the entries: the gap split, the code, and what it costs in bytes.
struct Plan {
  unsigned gap_bits = 0, esc_bits = 0;
  std::vector<uint8_t> lengths;
  huff::Decoder decoder;
  size_t bytes = 0;
};

Plan plan_for(unsigned gap_bits, uint32_t k, const GapHistogram& h, int max_len) {
  Plan p;
  p.gap_bits = gap_bits;
  const uint64_t esc = HcsrSymbol::escape(gap_bits), span = uint64_t(1) << h.top;
  std::vector<uint64_t> counts(size_t(k) << gap_bits, 0);
  uint64_t escapes = 0;
  for (uint64_t v = 0; v < k; ++v)
    for (uint64_t g = 0; g < span; ++g) {
      const uint64_t c = h.hist[HcsrSymbol::make(v, g, h.top)];
      counts[HcsrSymbol::make(v, std::min(g, esc), gap_bits)] += c;
      if (g >= esc) escapes += c;
    }
  p.esc_bits = h.max_gap >= esc ? bit_width(h.max_gap - esc) : 0;
  // Every code spends at least one bit, so a row's end is where its bits end.
  p.lengths = huff::code_lengths(counts, max_len, /*zero_bit_ok=*/false);
  uint64_t bits = huff::coded_bits(counts, p.lengths) + escapes * p.esc_bits;
  p.decoder = huff::Decoder(p.lengths, huff::table_bits_for(bits));
  p.bytes = (bits + 7) / 8 + p.lengths.size() + p.decoder.nbytes();
  return p;
}

// The histogram of `entries` for the largest gap split the alphabet of k values allows.
template <class Entries>
GapHistogram gap_histogram(uint32_t k, uint64_t rows, const uint64_t* indptr,
                           const Entries& entries) {
  GapHistogram h;
  while (h.top < HcsrRows::kMaxGapBits && (uint64_t(k) << (h.top + 1)) <= HcsrRows::kMaxAlphabet)
    ++h.top;
  h.hist.assign(size_t(k) << h.top, 0);
  const uint64_t last = HcsrSymbol::escape(h.top);
  for (uint64_t i = 0; i < rows; ++i) {
    auto row = entries.row(i);
    for (uint64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
      const Entry en = row.next();
      h.max_gap = std::max(h.max_gap, en.gap);
      h.hist[HcsrSymbol::make(en.value, std::min(en.gap, last), h.top)]++;
    }
  }
  return h;
}

// The smallest plan, unless one whose codes all fit the kernels' one-lookup table
// (length <= kFastBits) costs at most 2.5% more: then every entry but the escapes decodes
// with one lookup.
Plan best_plan(uint32_t k, const GapHistogram& h) {
  Plan best, fast;
  for (unsigned gb = 0; gb <= h.top; ++gb) {
    Plan p = plan_for(gb, k, h, huff::kMaxLen);
    if (gb == 0 || p.bytes < best.bytes) best = std::move(p);
    if ((uint64_t(k) << gb) <= (uint64_t(1) << HcsrRows::kFastBits)) {
      Plan q = plan_for(gb, k, h, HcsrRows::kFastBits);
      if (!fast.bytes || q.bytes < fast.bytes) fast = std::move(q);
    }
  }
  if (fast.bytes && fast.bytes <= best.bytes + best.bytes / 40) return fast;
  return best;
}

}  // namespace

template <class Entries>
HcsrRows::HcsrRows(uint64_t rows, uint64_t cols, const std::vector<float>& codebook,
                   const uint64_t* indptr, const Entries& entries)
    : Layout(rows, cols), nnz_(indptr[rows]) {
  Plan plan = best_plan(uint32_t(codebook.size()),
                        gap_histogram(uint32_t(codebook.size()), rows, indptr, entries));
  gap_bits_ = plan.gap_bits;
  esc_bits_ = plan.esc_bits;
  lengths_ = std::move(plan.lengths);
  decoder_ = std::move(plan.decoder);

  const std::vector<uint32_t> codes = huff::canonical_codes(lengths_);
  const uint64_t esc = HcsrSymbol::escape(gap_bits_);
  BitWriter w;
  std::vector<uint64_t> offsets(rows + 1);
  for (uint64_t i = 0; i < rows; ++i) {
    offsets[i] = w.bits();
    auto row = entries.row(i);
    for (uint64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
      const Entry en = row.next();
      const uint64_t g = std::min(en.gap, esc), sym = HcsrSymbol::make(en.value, g, gap_bits_);
      w.put(codes[sym], lengths_[sym]);
      if (g == esc) w.put(en.gap - esc, esc_bits_);
    }
  }
  offsets[rows] = w.bits();
  offsets_ = PackedInts(offsets);
  stream_ = w.finish();
  build_tables(codebook);
}

template HcsrRows::HcsrRows(uint64_t, uint64_t, const std::vector<float>&, const uint64_t*,
                            const CsrEntries&);
template HcsrRows::HcsrRows(uint64_t, uint64_t, const std::vector<float>&, const uint64_t*,
                            const DenseEntries&);

HcsrRows::HcsrRows(uint64_t rows, uint64_t cols, uint32_t k, const std::vector<uint64_t>& params,
                   std::vector<uint8_t> lengths, const std::vector<uint64_t>& offsets,
                   std::vector<uint64_t> stream)
    : Layout(rows, cols) {
  if (params.size() != 3) throw FormatError("parameter section must hold 3 values");
  nnz_ = params[0];
  if (params[1] > kMaxGapBits) throw FormatError("gap bits " + std::to_string(params[1]) + " > 8");
  if (params[2] > kMaxEscBits)
    throw FormatError("escape bits " + std::to_string(params[2]) + " > 48");
  gap_bits_ = unsigned(params[1]);
  esc_bits_ = unsigned(params[2]);
  if (lengths.size() != (size_t(k) << gap_bits_))
    throw FormatError("code lengths section has " + std::to_string(lengths.size()) +
                      " entries, expected k << gap_bits = " +
                      std::to_string(size_t(k) << gap_bits_));
  lengths_ = std::move(lengths);
  check_row_offsets(offsets, rows, stream.size());
  decoder_ = huff::Decoder(lengths_, huff::table_bits_for(offsets[rows]));
  if (decoder_.zero_bit()) throw FormatError("HCSR codes must spend at least one bit");
  offsets_ = PackedInts(offsets);
  stream_ = std::move(stream);
  validate();
}

// Decodes every row with bounds checks: valid codes, columns inside the row, each row
// ending exactly on the next row's offset, and the stated number of entries.
void HcsrRows::validate() {
  const uint8_t* s = stream();
  const uint64_t esc = HcsrSymbol::escape(gap_bits_);
  uint64_t count = 0;
  for (uint64_t i = 0; i < rows_; ++i) {
    uint64_t pos = offsets_[i], end = offsets_[i + 1], next = 0;
    while (pos < end) {
      uint32_t e = decoder_.decode(peek64(s, pos));
      if (e == HuffEntry::kInvalid) throw FormatError("invalid code in row " + std::to_string(i));
      pos += HuffEntry::len(e);
      uint64_t g = HcsrSymbol::gap_field(HuffEntry::symbol(e), gap_bits_);
      if (g == esc && esc_bits_) {
        if (pos > end) break;
        g += peek64(s, pos) >> (64 - esc_bits_);
        pos += esc_bits_;
      }
      if (g >= cols_ - next || pos > end)
        throw FormatError("row " + std::to_string(i) + " runs past its columns or bits");
      next += g + 1;
      ++count;
    }
    if (pos != end) throw FormatError("row " + std::to_string(i) + " overruns its bits");
  }
  if (count != nnz_)
    throw FormatError("stream holds " + std::to_string(count) + " entries, header says " +
                      std::to_string(nnz_));
}

template <class F>
void HcsrRows::for_each_in_row(uint64_t i, F&& f) const {
  const uint64_t esc = HcsrSymbol::escape(gap_bits_);
  uint64_t pos = offsets_[i], end = offsets_[i + 1], col = 0;
  while (pos < end) {
    const uint32_t e = decoder_.decode(peek64(stream(), pos)), sym = HuffEntry::symbol(e);
    pos += HuffEntry::len(e);
    uint64_t g = HcsrSymbol::gap_field(sym, gap_bits_);
    if (g == esc && esc_bits_) {
      g += peek64(stream(), pos) >> (64 - esc_bits_);
      pos += esc_bits_;
    }
    col += g;
    f(col++, HcsrSymbol::value(sym, gap_bits_));
  }
}

// Entries whose code fits the table decode with one lookup (escapes then read their raw
// field).  A longer code's 12-bit prefix links to a second table indexed by the next `sub`
// bits (HcsrMetaEntry::link), for sub <= kMaxSubBits and up to kMaxSubEntries second-level
// entries in all; codes beyond that take the general decoder (HcsrMetaEntry::kSlow).  The
// tables pay for their 24-36 KiB only when there are many entries.
void HcsrRows::build_tables(const std::vector<float>& codebook) {
  const int bits = kFastBits;
  if (nnz_ < (uint64_t(4) << bits)) return;
  constexpr unsigned kMaxSubBits = 8;
  static_assert(kFastBits + kMaxSubBits <= HcsrMetaEntry::kLenMask &&
                    (1u << kMaxGapBits) <= HcsrMetaEntry::kStepMask,
                "an entry holds the longest code in the tables and the largest step");
  constexpr size_t kMaxSubEntries = size_t(1) << 11;
  const uint32_t esc = HcsrSymbol::escape(gap_bits_);
  auto entry = [&](uint32_t e, uint16_t& meta, float& value) {
    const uint32_t sym = HuffEntry::symbol(e), g = HcsrSymbol::gap_field(sym, gap_bits_);
    meta = HcsrMetaEntry::make(HuffEntry::len(e), g + 1, g == esc && esc_bits_);
    value = codebook[HcsrSymbol::value(sym, gap_bits_)];
  };
  const size_t first = size_t(1) << bits;
  meta_.assign(first, HcsrMetaEntry::kSlow);
  value_.assign(first, 0.0f);
  for (uint32_t t = 0; t < first; ++t) {
    const uint64_t prefix = uint64_t(t) << (64 - bits);
    uint32_t e = decoder_.decode(prefix);
    if (e == HuffEntry::kInvalid) continue;
    if (HuffEntry::len(e) <= unsigned(bits)) {
      entry(e, meta_[t], value_[t]);
      continue;
    }
    // The fewest further bits that finish every code under this prefix.
    auto sub_code = [&](unsigned sub, uint32_t u) {
      return decoder_.decode(prefix | uint64_t(u) << (64 - bits - sub));
    };
    unsigned sub = 1;
    for (; sub <= kMaxSubBits; ++sub) {
      bool fits = true;
      for (uint32_t u = 0; u < (1u << sub) && fits; ++u) {
        uint32_t c = sub_code(sub, u);
        fits = c == HuffEntry::kInvalid || HuffEntry::len(c) <= bits + sub;
      }
      if (fits) break;
    }
    if (sub > kMaxSubBits || meta_.size() + (size_t(1) << sub) > first + kMaxSubEntries) continue;
    uint32_t start = uint32_t(meta_.size());
    meta_[t] = HcsrMetaEntry::link(sub);
    std::memcpy(&value_[t], &start, 4);
    for (uint32_t u = 0; u < (1u << sub); ++u) {
      uint32_t c = sub_code(sub, u);
      meta_.push_back(HcsrMetaEntry::kSlow);
      value_.push_back(0.0f);
      if (c != HuffEntry::kInvalid) entry(c, meta_.back(), value_.back());
    }
  }
}

kernels::HCSRView HcsrRows::view(const float* codebook) const {
  return {rows_,     cols_,     codebook,
          stream(),  offsets_.view(), &decoder_,
          gap_bits_, esc_bits_, meta_.empty() ? nullptr : meta_.data(),
          value_.data()};
}

void HcsrRows::matvec(const float* codebook, const float* x, float* y, unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  parallel_rows(rows_, threads, work::hcsr_rows_matvec(nnz_, rows_),
                [&](uint64_t r0, uint64_t r1) { isa.hcsr_matvec(view(codebook), x, y, r0, r1); });
}

void HcsrRows::matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
                      unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  parallel_rows(
      rows_, threads, work::hcsr_rows_batch(nnz_, rows_, batch),
      [&](uint64_t r0, uint64_t r1) { isa.hcsr_matmat(view(codebook), X, batch, Y, r0, r1); });
}

size_t HcsrRows::nbytes() const {
  // gap_bits and esc_bits (the format counts nnz), then the code, tables, offsets, stream
  return 2 * 8 + lengths_.size() + decoder_.nbytes() + meta_.size() * 2 + value_.size() * 4 +
         offsets_.nbytes() + stream_.size() * 8;
}

std::vector<std::pair<std::string, uint64_t>> HcsrRows::details() const {
  return {{"gap_bits", gap_bits_},
          {"escape_bits", esc_bits_},
          {"max_code_length", uint64_t(decoder_.max_len())},
          {"table_entries", meta_.size()}};
}

void HcsrRows::decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const {
  for (uint64_t i = r0; i < r1; ++i) {
    uint32_t* row = idx + (i - r0) * cols_;
    std::fill(row, row + cols_, zero_index);
    for_each_in_row(i, [&](uint64_t c, uint32_t v) { row[c] = v; });
  }
}

void HcsrRows::to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
                      std::vector<uint32_t>& vidx) const {
  indptr.assign(1, 0);
  col.clear();
  vidx.clear();
  col.reserve(nnz_);
  vidx.reserve(nnz_);
  for (uint64_t i = 0; i < rows_; ++i) {
    for_each_in_row(i, [&](uint64_t c, uint32_t v) {
      col.push_back(c);
      vidx.push_back(v);
    });
    indptr.push_back(col.size());
  }
}

std::vector<Section> HcsrRows::sections() const {
  const std::vector<uint64_t> params = {nnz_, gap_bits_, esc_bits_};
  return {as_bytes(params), lengths_, offsets_.bytes(), as_bytes(stream_)};
}

}  // namespace cnn
