#include "ham_rows.hpp"

#include "bitstream.hpp"
#include "kernels/decode.hpp"
#include "kernels/dispatch.hpp"
#include "parallel.hpp"
#include "work.hpp"

namespace cnn {

HamRows::HamRows(uint64_t rows, uint64_t cols, const uint32_t* indices,
                 const std::vector<uint64_t>& counts)
    : Layout(rows, cols) {
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

HamRows::HamRows(uint64_t rows, uint64_t cols, uint32_t k, std::vector<uint8_t> lengths,
                 const std::vector<uint64_t>& offsets, std::vector<uint64_t> stream,
                 std::vector<uint64_t>& counts)
    : Layout(rows, cols) {
  if (lengths.size() != k)
    throw FormatError("code lengths section has " + std::to_string(lengths.size()) +
                      " entries for a codebook of " + std::to_string(k));
  lengths_ = std::move(lengths);
  check_row_offsets(offsets, rows, stream.size());
  decoder_ = huff::Decoder(lengths_, huff::table_bits_for(offsets[rows]));
  if (rows * cols != 0 && decoder_.max_len() == 0 && !decoder_.zero_bit())
    throw FormatError("code has no symbols but the matrix has entries");
  offsets_ = PackedInts(offsets);
  stream_ = std::move(stream);
  // Decode every row once: each code must be valid and each row must end on its offset.
  // A zero-bit code spends no bits, so there is nothing to check (and no work per entry).
  counts.assign(k, 0);
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
      if (pos != offsets_[i + 1])
        throw FormatError("row " + std::to_string(i) + " overruns its bits");
    }
  }
  build_tables();
}

// The multi-symbol table pays for its 8 KiB only on larger matrices.
void HamRows::build_tables() {
  constexpr int kBits = huff::kTableBits;
  static_assert(kBits < 1 << (32 - HamMultiEntry::kLenShift), "an entry holds the bits it uses");
  if (lengths_.size() > 256 || decoder_.zero_bit() || rows_ * cols_ < (uint64_t(1) << 18)) return;
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

kernels::HAMView HamRows::view(const float* codebook) const {
  const uint32_t k = uint32_t(lengths_.size());
  return {rows_,    cols_,           index_bits(k), k,
          codebook, stream(),        offsets_.view(), &decoder_,
          multi_.empty() ? nullptr : multi_.data(), huff::kTableBits};
}

void HamRows::matvec(const float* codebook, const float* x, float* y, unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  parallel_rows(rows_, threads, work::ham_rows_matvec(cols_), [&](uint64_t r0, uint64_t r1) {
    isa.ham_matvec(view(codebook), x, y, r0, r1);
  });
}

void HamRows::matmat(const float* codebook, const float* X, uint64_t batch, float* Y,
                     unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  parallel_rows(rows_, threads, work::ham_rows_batch(cols_, batch), [&](uint64_t r0, uint64_t r1) {
    isa.ham_matmat(view(codebook), X, batch, Y, r0, r1);
  });
}

void HamRows::linear(const float* codebook, const float* X, uint64_t batch, float* Y,
                     unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  // Threads own disjoint columns of Y.
  parallel_rows(
      rows_, threads, work::ham_rows_batch(cols_, batch),
      [&](uint64_t r0, uint64_t r1) { isa.ham_linear(view(codebook), X, batch, Y, r0, r1); },
      kernels::linear_rows_align(rows_));
}

size_t HamRows::nbytes() const {
  return lengths_.size() + decoder_.nbytes() + multi_.size() * 4 + offsets_.nbytes() +
         stream_.size() * 8;
}

std::vector<std::pair<std::string, uint64_t>> HamRows::details() const {
  return {{"max_code_length", uint64_t(decoder_.max_len())},
          {"table_bits", uint64_t(decoder_.table_bits())}};
}

// Every entry is stored, zeros included.
void HamRows::decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx, uint32_t) const {
  const kernels::HAMView v = view(nullptr);
  for (uint64_t i = r0; i < r1; ++i) kernels::scalar::ham_decode_row(v, i, idx + (i - r0) * cols_);
}

void HamRows::to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
                     std::vector<uint32_t>& vidx) const {
  indptr.resize(rows_ + 1);
  col.resize(rows_ * cols_);
  vidx.resize(rows_ * cols_);
  for (uint64_t i = 0; i <= rows_; ++i) indptr[i] = i * cols_;
  for (uint64_t p = 0; p < col.size(); ++p) col[p] = p % cols_;
  decode_rows(0, rows_, vidx.data(), 0);
}

std::vector<Section> HamRows::sections() const {
  return {lengths_, offsets_.bytes(), as_bytes(stream_)};  // code lengths, row offsets, stream
}

}  // namespace cnn
