#include "fixed_layout.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "entries.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/fixed.hpp"
#include "parallel.hpp"
#include "work.hpp"

namespace cnn {

namespace {

using kernels::scalar::fixed_group;
using kernels::scalar::fixed_row;

// Fillers before an entry whose column is `step` past its lane's column.
uint64_t fillers(uint64_t step) {
  return step > FixedLayout::kMaxStep ? (step - 1) / FixedLayout::kMaxStep : 0;
}

// True if no float of p[0..n) is inf or NaN (exponent bits all set); branch-free, so the
// compiler vectorizes it.
bool all_finite(const float* p, uint64_t n) {
  uint32_t bad = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, p + i, 4);
    bad |= ((b & 0x7f800000u) + 0x00800000u) & 0x80000000u;
  }
  return !bad;
}

}  // namespace

template <class Entries>
std::unique_ptr<FixedLayout> FixedLayout::build(uint64_t rows, uint64_t cols,
                                                const std::vector<float>& codebook,
                                                const uint64_t* indptr, const Entries& entries) {
  const uint32_t k = uint32_t(codebook.size());
  if (k > kSlots) return nullptr;
  // Steps per row (entries and fillers), and the codebook values stored entries use.
  std::vector<uint64_t> row_steps(rows, 0);
  std::vector<bool> used(k, false);
  for (uint64_t i = 0; i < rows; ++i) {
    auto row = entries.row(i);
    for (uint64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
      const Entry en = row.next();
      row_steps[i] += 1 + fillers(en.gap + (e > indptr[i]));
      used[en.value] = true;
    }
  }
  uint32_t filler = k;
  for (uint32_t s = 0; s < k; ++s)
    if (is_plus_zero(codebook[s]) && !used[s]) filler = s;
  if (filler == kSlots) return nullptr;

  std::unique_ptr<FixedLayout> out(new FixedLayout(rows, cols));
  out->nnz_ = indptr[rows];
  out->filler_ = filler;
  std::vector<uint64_t> order(rows);
  std::iota(order.begin(), order.end(), uint64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](uint64_t a, uint64_t b) { return row_steps[a] > row_steps[b]; });
  std::vector<uint64_t> group_steps((rows + kLanes - 1) / kLanes);
  for (uint64_t g = 0; g < group_steps.size(); ++g) group_steps[g] = row_steps[order[g * kLanes]];
  out->order_ = PackedInts(order);
  out->finish(group_steps, codebook);

  const uint64_t total = out->first_.back();
  std::vector<uint8_t>& steps = out->steps_;
  std::vector<uint8_t>& slots = out->slots_;
  steps.assign(total * kLanes, 0);
  slots.assign(total * kSlotBytes, 0);
  auto put = [&](uint64_t t, unsigned l, uint64_t step, uint32_t slot) {
    steps[t * kLanes + l] = uint8_t(step);
    slots[t * kSlotBytes + l / 2] |= uint8_t((slot & 15) << (4 * (l & 1)));
    slots[t * kSlotBytes + 4] |= uint8_t((slot >> 4 & 1) << l);
  };
  for (uint64_t g = 0; g < group_steps.size(); ++g)
    for (unsigned l = 0; l < kLanes; ++l) {
      uint64_t t = out->first_[g];
      if (const uint64_t q = g * kLanes + l; q < rows) {
        const uint64_t r = order[q];
        auto row = entries.row(r);
        for (uint64_t e = indptr[r]; e < indptr[r + 1]; ++e) {
          const Entry en = row.next();
          uint64_t step = en.gap + (e > indptr[r]);
          for (; step > kMaxStep; step -= kMaxStep) put(t++, l, kMaxStep, filler);
          put(t++, l, step, en.value);
        }
      }
      for (; t < out->first_[g + 1]; ++t) put(t, l, 0, filler);
    }
  return out;
}

template std::unique_ptr<FixedLayout> FixedLayout::build(uint64_t, uint64_t,
                                                         const std::vector<float>&,
                                                         const uint64_t*, const CsrEntries&);
template std::unique_ptr<FixedLayout> FixedLayout::build(uint64_t, uint64_t,
                                                         const std::vector<float>&,
                                                         const uint64_t*, const DenseEntries&);

FixedLayout::FixedLayout(uint64_t rows, uint64_t cols, const std::vector<float>& codebook,
                         const std::vector<uint64_t>& params, const std::vector<uint64_t>& order,
                         const std::vector<uint64_t>& group_steps, std::vector<uint8_t> steps,
                         std::vector<uint8_t> slots)
    : Layout(rows, cols), steps_(std::move(steps)), slots_(std::move(slots)) {
  const uint32_t k = uint32_t(codebook.size());
  if (params.size() != 3)
    throw FormatError("fixed layout parameters hold " + std::to_string(params.size()) +
                      " values, not 3");
  if (params[1] != kLanes)
    throw FormatError("fixed layout of " + std::to_string(params[1]) +
                      " lanes (this build reads 8)");
  if (k > kSlots)
    throw FormatError("fixed layout with a codebook of " + std::to_string(k) +
                      " values (at most 32)");
  if (params[2] >= kSlots || (params[2] < k && !is_plus_zero(codebook[params[2]])))
    throw FormatError("fixed layout filler slot " + std::to_string(params[2]) +
                      " is neither the codebook's +0.0 nor past the codebook");
  nnz_ = params[0];
  filler_ = uint32_t(params[2]);
  std::vector<bool> seen(rows, false);
  for (uint64_t r : order) {
    if (r >= rows || seen[r])
      throw FormatError("fixed layout row order is not a permutation of the rows");
    seen[r] = true;
  }
  uint64_t total = 0;
  for (uint64_t n : group_steps) {
    if (n > steps_.size() / kLanes - total)
      throw FormatError("fixed layout groups claim more steps than the " +
                        std::to_string(steps_.size()) + " step bytes hold");
    total += n;
  }
  if (steps_.size() != total * kLanes || slots_.size() != total * kSlotBytes)
    throw FormatError("fixed layout of " + std::to_string(total) + " steps needs " +
                      std::to_string(total * kLanes) + " step bytes and " +
                      std::to_string(total * kSlotBytes) + " slot bytes, the file has " +
                      std::to_string(steps_.size()) + " and " + std::to_string(slots_.size()));
  order_ = PackedInts(order);
  finish(group_steps, codebook);

  const kernels::FixedView v = view(true);
  uint64_t stored = 0;
  for (uint64_t g = 0; g < groups(); ++g) {
    uint64_t last[kLanes];
    bool any[kLanes] = {}, ok = true;
    ok = fixed_group<true>(v, g, [&](unsigned l, uint64_t c, uint32_t s) {
      if (s == filler_) return;
      if (s >= k || fixed_row(v, g, l) == rows || (any[l] && c <= last[l])) ok = false;
      any[l] = true;
      last[l] = c;
      ++stored;
    }) && ok;
    if (!ok)
      throw FormatError("fixed layout group " + std::to_string(g) +
                        " does not decode to increasing columns inside the matrix, with "
                        "codebook slots, in lanes that hold a row");
  }
  if (stored != nnz_)
    throw FormatError("fixed layout holds " + std::to_string(stored) +
                      " stored entries, its parameters say " + std::to_string(nnz_));
}

void FixedLayout::finish(const std::vector<uint64_t>& group_steps,
                         const std::vector<float>& codebook) {
  first_.assign(group_steps.size() + 1, 0);
  std::partial_sum(group_steps.begin(), group_steps.end(), first_.begin() + 1);
  slot_value_.assign(kSlots, 0.0f);
  std::copy(codebook.begin(), codebook.end(), slot_value_.begin());
  slot_value_[filler_] = 0.0f;
}

kernels::FixedView FixedLayout::view(bool finite) const {
  return {rows_,         cols_,         order_.view(),      first_.data(), steps_.data(),
          slots_.data(), slot_value_.data(), filler_, finite};
}

void FixedLayout::matvec(const float*, const float* x, float* y, unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  const kernels::FixedView v = view(all_finite(x, cols_));
  parallel_rows(
      groups(), threads, work::fixed_matvec(first_.back(), groups()),
      [&](uint64_t g0, uint64_t g1) { isa.fixed_matvec(v, x, y, g0, g1); }, 1);
}

void FixedLayout::matmat(const float*, const float* X, uint64_t batch, float* Y,
                         unsigned threads) const {
  const kernels::KernelSet& isa = kernels::active();
  const kernels::FixedView v = view(all_finite(X, cols_ * batch));
  parallel_rows(
      groups(), threads, work::fixed_batch(first_.back(), groups(), batch),
      [&](uint64_t g0, uint64_t g1) { isa.fixed_matmat(v, X, batch, Y, g0, g1); }, 1);
}

void FixedLayout::decode_rows(uint64_t r0, uint64_t r1, uint32_t* idx,
                              uint32_t zero_index) const {
  std::fill(idx, idx + (r1 - r0) * cols_, zero_index);
  const kernels::FixedView v = view(true);
  std::vector<bool> wanted(groups(), false);
  for (uint64_t q = 0; q < rows_; ++q)
    if (order_[q] >= r0 && order_[q] < r1) wanted[q / kLanes] = true;
  for (uint64_t g = 0; g < groups(); ++g)
    if (wanted[g])
      fixed_group<false>(v, g, [&](unsigned l, uint64_t c, uint32_t s) {
        const uint64_t r = fixed_row(v, g, l);
        if (s != filler_ && r >= r0 && r < r1) idx[(r - r0) * cols_ + c] = s;
      });
}

void FixedLayout::to_csr(std::vector<uint64_t>& indptr, std::vector<uint64_t>& col,
                         std::vector<uint32_t>& vidx) const {
  const kernels::FixedView v = view(true);
  indptr.assign(rows_ + 1, 0);
  for (uint64_t g = 0; g < groups(); ++g)
    fixed_group<false>(v, g, [&](unsigned l, uint64_t, uint32_t s) {
      if (s != filler_) ++indptr[fixed_row(v, g, l) + 1];
    });
  std::partial_sum(indptr.begin(), indptr.end(), indptr.begin());
  col.resize(nnz_);
  vidx.resize(nnz_);
  std::vector<uint64_t> fill(indptr.begin(), indptr.end() - 1);
  for (uint64_t g = 0; g < groups(); ++g)
    fixed_group<false>(v, g, [&](unsigned l, uint64_t c, uint32_t s) {
      if (s == filler_) return;
      const uint64_t r = fixed_row(v, g, l);
      col[fill[r]] = c;
      vidx[fill[r]++] = s;
    });
}

std::vector<std::pair<std::string, uint64_t>> FixedLayout::details() const {
  return {{"groups", groups()}, {"steps", first_.back()}, {"fillers", first_.back() * kLanes - nnz_}};
}

size_t FixedLayout::nbytes() const {
  return 3 * 8 + order_.nbytes() + first_.size() * 8 + steps_.size() + slots_.size() +
         slot_value_.size() * 4;
}

std::vector<uint64_t> FixedLayout::group_steps() const {
  std::vector<uint64_t> n(groups());
  for (uint64_t g = 0; g < groups(); ++g) n[g] = first_[g + 1] - first_[g];
  return n;
}

std::vector<Section> FixedLayout::sections() const {
  const std::vector<uint64_t> params = {nnz_, kLanes, filler_};
  return {as_bytes(params), order_.bytes(), PackedInts(group_steps()).bytes(), steps_, slots_};
}

}  // namespace cnn
