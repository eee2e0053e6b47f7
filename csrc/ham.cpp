#include "ham.hpp"

#include <algorithm>

#include "bitstream.hpp"
#include "entries.hpp"
#include "kernels/decode.hpp"
#include "kernels/dispatch.hpp"
#include "parallel.hpp"
#include "work.hpp"

namespace cnn {

namespace {

// Whether Auto takes the lane layout for entries of these counts per codebook index: at most
// 128 values in use, and codes capped at 7 bits costing at most 2% more than unbounded ones
// (near 128 values in use the cap forces every code to 7 bits; a matrix of one value costs
// no bits in the row layout and one per entry in the lane layout).
bool lanes_pay(const std::vector<uint64_t>& counts) {
  if (std::count_if(counts.begin(), counts.end(), [](uint64_t c) { return c > 0; }) >
      LaneLayout::kMaxValues)
    return false;
  const uint64_t rows = huff::coded_bits(counts, huff::code_lengths(counts)),
                 lanes = huff::coded_bits(counts, huff::code_lengths(counts, LaneLayout::kCodeBits, false));
  return lanes <= rows + rows / 50;
}

}  // namespace

HAM::HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, const uint32_t* indices,
         Layout layout)
    : Format(rows, cols, std::move(codebook)) {
  const uint64_t n = rows * cols;
  const uint32_t k = uint32_t(codebook_.size());
  std::vector<uint64_t> counts(k, 0);
  for (uint64_t p = 0; p < n; ++p) {
    if (indices[p] >= k) throw InvalidInput("index " + std::to_string(indices[p]) +
                                            " is not below k = " + std::to_string(k));
    counts[indices[p]]++;
  }
  for (uint32_t v = 0; v < k; ++v)
    if (codebook_[v] != 0.0f) nnz_ += counts[v];
  std::unique_ptr<LaneLayout> lanes;
  if (layout == Layout::Lanes || (layout == Layout::Auto && lanes_pay(counts)))
    lanes = build_lanes(indices);
  if (lanes && (layout == Layout::Lanes || n >= kAlwaysLanes)) {
    lanes_ = std::move(lanes);
    return;
  }
  if (layout == Layout::Lanes)
    throw InvalidInput(
        "the lane layout needs at most 128 distinct values in use and fewer than 2^31 columns");
  build_rows(indices, counts);
  if (lanes && lanes->nbytes() < nbytes() - codebook_.size() * 4) {
    lanes_ = std::move(lanes);
    drop_rows();
  }
}

std::unique_ptr<LaneLayout> HAM::build_lanes(const uint32_t* indices) const {
  std::vector<uint64_t> indptr(rows_ + 1);
  for (uint64_t i = 0; i <= rows_; ++i) indptr[i] = i * cols_;
  // Every cell stored (no cell holds k): every gap is 0.
  return LaneLayout::build(rows_, cols_, codebook_, indptr.data(),
                           DenseEntries{indices, cols_, uint32_t(codebook_.size())});
}

void HAM::drop_rows() {
  lengths_ = {};
  decoder_ = huff::Decoder();
  multi_ = {};
  offsets_ = {};
  stream_ = {};
}

// The row layout of `indices` (entries per codebook index in `counts`).
void HAM::build_rows(const uint32_t* indices, const std::vector<uint64_t>& counts) {
  lengths_ = huff::code_lengths(counts);
  decoder_ = huff::Decoder(lengths_, huff::table_bits_for(huff::coded_bits(counts, lengths_)));
  const std::vector<uint32_t> codes = huff::canonical_codes(lengths_);
  std::vector<uint8_t> len(lengths_.size());
  for (size_t v = 0; v < len.size(); ++v) len[v] = lengths_[v] == huff::kZeroBits ? 0 : lengths_[v];
  BitWriter w;
  std::vector<uint64_t> offsets(rows_ + 1);
  for (uint64_t i = 0; i < rows_; ++i) {
    offsets[i] = w.bits();
    for (uint64_t j = 0; j < cols_; ++j) {
      const uint32_t v = indices[i * cols_ + j];
      w.put(codes[v], len[v]);
    }
  }
  offsets[rows_] = w.bits();
  offsets_ = PackedInts(offsets);
  stream_ = w.finish();
  build_tables();
}

HAM::HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook, std::vector<uint8_t> lengths,
         const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream, bool convert)
    : Format(rows, cols, std::move(codebook)) {
  if (lengths.size() != codebook_.size())
    throw FormatError("code lengths section has " + std::to_string(lengths.size()) +
                      " entries for a codebook of " + std::to_string(codebook_.size()));
  lengths_ = std::move(lengths);
  check_row_offsets(offsets, rows, stream.size());
  decoder_ = huff::Decoder(lengths_, huff::table_bits_for(offsets[rows]));
  if (rows * cols && decoder_.max_len() == 0 && !decoder_.zero_bit())
    throw FormatError("code has no symbols but the matrix has entries");
  offsets_ = PackedInts(offsets);
  stream_ = std::move(stream);
  // Decode every row once: each code must be valid and each row must end on its offset.
  // A zero-bit code spends no bits, so there is nothing to check (and no work per entry).
  std::vector<uint64_t> counts(codebook_.size(), 0);
  if (decoder_.zero_bit()) {
    if (offsets_[rows] != 0) throw FormatError("a zero-bit code leaves bits in the stream");
    counts[HuffEntry::symbol(decoder_.decode(0))] = rows * cols;
  } else {
    for (uint64_t i = 0; i < rows; ++i) {
      uint64_t pos = offsets_[i];
      for (uint64_t j = 0; j < cols; ++j) {
        if (pos >= offsets_[i + 1]) throw FormatError("row " + std::to_string(i) + " ends early");
        uint32_t e = decoder_.decode(peek64(this->stream(), pos));
        if (e == HuffEntry::kInvalid)
          throw FormatError("invalid code in row " + std::to_string(i));
        counts[HuffEntry::symbol(e)]++;
        pos += HuffEntry::len(e);
      }
      if (pos != offsets_[i + 1]) throw FormatError("row " + std::to_string(i) + " overruns its bits");
    }
  }
  for (size_t v = 0; v < codebook_.size(); ++v)
    if (codebook_[v] != 0.0f) nnz_ += counts[v];
  build_tables();
  if (convert && rows * cols >= kAlwaysLanes && lanes_pay(counts)) {
    std::vector<uint32_t> idx(rows * cols);
    to_indices(idx.data(), 0);
    if ((lanes_ = build_lanes(idx.data()))) drop_rows();
  }
}

HAM::HAM(uint64_t rows, uint64_t cols, std::vector<float> codebook,
         const std::vector<uint64_t>& params, std::vector<uint8_t> gap_lengths,
         std::vector<uint8_t> value_lengths, const std::vector<uint64_t>& counts,
         std::vector<uint64_t> group_words, std::vector<uint32_t> words)
    : Format(rows, cols, std::move(codebook)) {
  // Dense rows: one gap bucket of no raw bits, its code of no bits (the kernels ignore it).
  if (params.empty() || params[0] != rows * cols)
    throw FormatError("HAM's lane layout must hold rows x cols entries");
  // (An empty matrix has no gap at all: its one bucket has no code.)
  const std::vector<uint8_t> no_gaps = {rows * cols ? huff::kZeroBits : uint8_t(0)};
  if (params.size() != 4 || params[3] != 0 || gap_lengths != no_gaps)
    throw FormatError("HAM's lane layout must code no gaps");
  if (std::any_of(counts.begin(), counts.end(), [&](uint64_t c) { return c != cols; }))
    throw FormatError("HAM's lane layout must code every column of every row");
  lanes_ = std::make_unique<LaneLayout>(rows, cols, codebook_, params[0], params,
                                        std::move(gap_lengths), std::move(value_lengths),
                                        counts, std::move(group_words), std::move(words));
  for (size_t v = 0; v < codebook_.size(); ++v)
    if (codebook_[v] != 0.0f) nnz_ += lanes_->value_counts()[v];
}

// The multi-symbol table pays for its 8 KiB only on larger matrices.
void HAM::build_tables() {
  constexpr int kBits = huff::kTableBits;
  static_assert(kBits < 1 << (32 - HamMultiEntry::kLenShift), "an entry holds the bits it uses");
  if (codebook_.size() > 256 || decoder_.zero_bit() || rows_ * cols_ < (uint64_t(1) << 18)) return;
  multi_.assign(size_t(1) << kBits, 0);
  for (uint32_t t = 0; t < multi_.size(); ++t) {
    uint64_t window = uint64_t(t) << (64 - kBits);
    uint32_t used = 0, n = 0, syms = 0;
    while (n < HamMultiEntry::kMaxSymbols) {
      const uint32_t e = decoder_.decode(window), len = HuffEntry::len(e);
      if (e == HuffEntry::kInvalid || len == HuffEntry::kSlow || used + len > kBits) break;
      syms |= HamMultiEntry::symbol(n++, HuffEntry::symbol(e));
      used += len;
      window <<= len;
    }
    multi_[t] = n ? HamMultiEntry::make(syms, n, used) : 0;
  }
}

kernels::HAMView HAM::view() const {
  return {rows_, cols_, index_bits(uint32_t(codebook_.size())), uint32_t(codebook_.size()),
          codebook_.data(), stream(), offsets_.view(), &decoder_,
          multi_.empty() ? nullptr : multi_.data(), huff::kTableBits};
}

void HAM::matvec(const float* x, float* y, unsigned threads) const {
  const auto& k = kernels::active();
  if (lanes_) {
    const kernels::LanesView v = lanes_->view(codebook_.data());
    return parallel_rows(
        lanes_->groups(), threads, work::ham_lanes_matvec(cols_, v.group_rows),
        [&](uint64_t g0, uint64_t g1) { k.ham_lanes_matvec(v, x, y, g0, g1); }, 1);
  }
  parallel_rows(rows_, threads, work::ham_rows_matvec(cols_), [&](uint64_t r0, uint64_t r1) {
    k.ham_matvec(view(), x, y, r0, r1);
  });
}

void HAM::matmat(const float* X, uint64_t B, float* Y, unsigned threads) const {
  const auto& k = kernels::active();
  if (lanes_) {
    const kernels::LanesView v = lanes_->view(codebook_.data());
    return parallel_rows(
        lanes_->groups(), threads, work::ham_lanes_batch(cols_, v.group_rows, B),
        [&](uint64_t g0, uint64_t g1) { k.ham_lanes_matmat(v, X, B, Y, g0, g1); }, 1);
  }
  parallel_rows(rows_, threads, work::ham_rows_batch(cols_, B), [&](uint64_t r0, uint64_t r1) {
    k.ham_matmat(view(), X, B, Y, r0, r1);
  });
}

void HAM::linear(const float* X, uint64_t B, float* Y, unsigned threads) const {
  if (lanes_) return Format::linear(X, B, Y, threads);
  if (rows_ == 0 || B == 0) return;
  if (B == 1) return matvec(X, Y, threads);
  const auto& k = kernels::active();
  // Threads own disjoint columns of Y: whole cache lines of them (16 floats).
  parallel_rows(
      rows_, threads, work::ham_rows_batch(cols_, B),
      [&](uint64_t r0, uint64_t r1) { k.ham_linear(view(), X, B, Y, r0, r1); }, 16);
}

size_t HAM::nbytes() const {
  if (lanes_) return codebook_.size() * 4 + lanes_->nbytes();
  return codebook_.size() * 4 + lengths_.size() + decoder_.nbytes() + multi_.size() * 4 +
         offsets_.nbytes() + stream_.size() * 8;
}

void HAM::decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t zero_index) const {
  if (lanes_) return lanes_->decode_rows(r0, r1, idx);
  Format::decode_rows(r0, r1, idx, zero_index);
}

void HAM::decode_row(uint64_t i, uint32_t* idx, uint32_t zero_index) const {
  if (lanes_) return decode_rows(i, i + 1, idx, zero_index);
  kernels::ham_decode_row(view(), i, idx);
}

std::vector<Section> HAM::sections() const {
  // codebook, then the lane layout's sections or code lengths, row offsets, stream
  std::vector<Section> s = lanes_ ? lanes_->sections(rows_ * cols_)
                                  : std::vector<Section>{lengths_, offsets_.bytes(),
                                                         as_bytes(stream_)};
  s.insert(s.begin(), as_bytes(codebook_));
  return s;
}

}  // namespace cnn
