// AVX2 + FMA kernels: 8-wide products; codebook lookups through a scalar table (gathers
// are slow on the CPUs that lack AVX-512), decoding compiled with BMI2.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#pragma GCC target("avx2,fma,bmi,bmi2,lzcnt,popcnt")
#define CNN_KERNEL_FMA 1
#include "decode.hpp"
#include "dispatch.hpp"
#include "matmat.hpp"

namespace cnn::kernels {
namespace {

struct V256 {
  using reg = __m256;
  static constexpr unsigned width = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static __m256i mask(unsigned n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg load(const float* p, unsigned n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(n));
  }
  static void store(float* p, reg v, unsigned n) {
    if (n == 8)
      _mm256_storeu_ps(p, v);
    else
      _mm256_maskstore_ps(p, mask(n), v);
  }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
};

// sum_j cb[idx[j]] x[j] with four 8-wide accumulators.
template <class Idx>
float dot_lookup(const Idx* idx, const float* cb, const float* x, uint64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  alignas(32) float w[32];
  uint64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    for (int t = 0; t < 32; ++t) w[t] = cb[idx[j + t]];
    for (int q = 0; q < 4; ++q)
      acc[q] = _mm256_fmadd_ps(_mm256_load_ps(w + 8 * q), _mm256_loadu_ps(x + j + 8 * q), acc[q]);
  }
  for (; j < n; j += 8) {
    unsigned m = unsigned(std::min<uint64_t>(8, n - j));
    for (unsigned t = 0; t < m; ++t) w[t] = cb[idx[j + t]];
    acc[0] = _mm256_fmadd_ps(V256::load(w, m), V256::load(x + j, m), acc[0]);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

void im_matvec(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  std::vector<uint32_t> idx(v.cols);
  for (uint64_t i = r0; i < r1; ++i) {
    im_decode_range(v, i * v.cols, v.cols, idx.data());
    y[i] = dot_lookup(idx.data(), v.codebook, x, v.cols);
  }
}

void im_matmat(const IMView& v, const float* X, uint64_t B, float* Y, uint64_t r0, uint64_t r1) {
  std::vector<uint32_t> idx(kKC);
  blocked_matmat<V256>(
      v.cols, X, B, Y, r0, r1, 4, [](uint64_t, uint64_t) {},
      [&](uint64_t i, uint64_t j0, uint64_t kc, float* out) {
        im_decode_range(v, i * v.cols + j0, kc, idx.data());
        for (uint64_t j = 0; j < kc; ++j) out[j] = v.codebook[idx[j]];
      });
}

void ham_matvec(const HAMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  if (v.k <= 256) {
    std::vector<uint8_t> idx(v.cols + 16);
    for (uint64_t i = r0; i < r1; ++i) {
      ham_decode_row(v, i, idx.data());
      y[i] = dot_lookup(idx.data(), v.codebook, x, v.cols);
    }
  } else {
    std::vector<uint16_t> idx(v.cols + 16);
    for (uint64_t i = r0; i < r1; ++i) {
      ham_decode_row(v, i, idx.data());
      y[i] = dot_lookup(idx.data(), v.codebook, x, v.cols);
    }
  }
}

void ham_matmat(const HAMView& v, const float* X, uint64_t B, float* Y, uint64_t r0, uint64_t r1) {
  constexpr uint64_t kRows = 16;
  std::vector<uint16_t> idx(kRows * (v.cols + 4));
  uint64_t first = 0;
  blocked_matmat<V256>(
      v.cols, X, B, Y, r0, r1, kRows,
      [&](uint64_t i0, uint64_t i1) {
        first = i0;
        for (uint64_t i = i0; i < i1; ++i) ham_decode_row(v, i, idx.data() + (i - i0) * (v.cols + 4));
      },
      [&](uint64_t i, uint64_t j0, uint64_t kc, float* out) {
        const uint16_t* row = idx.data() + (i - first) * (v.cols + 4) + j0;
        for (uint64_t j = 0; j < kc; ++j) out[j] = v.codebook[row[j]];
      });
}

void hcsr_matmat(const HCSRView& v, const float* X, uint64_t B, float* Y, uint64_t r0, uint64_t r1) {
  for (uint64_t i = r0; i < r1; ++i)
    sparse_row_matmat<V256>(B, X, Y + i * B, [&](auto&& f) { hcsr_for_each(v, i, f); });
}

}  // namespace

const KernelSet avx2_kernels = {"avx2",    im_matvec,  ham_matvec, hcsr_matvec_rows,
                                im_matmat, ham_matmat, hcsr_matmat};

}  // namespace cnn::kernels
