// An 8 x 8 float transpose in 256-bit registers, for the x86 sets (TU-local, like
// decode.hpp): the AVX2 and AVX-512 sets' batched linear products turn panels of W's rows
// into columns with it (matmat.hpp's blocked_linear).
#pragma once
#include <cstdint>

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

// dst[c * ldd + r] = src[r * lds + c] for r, c < 8.
inline void transpose8x8(const float* src, uint64_t lds, float* dst, uint64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // then pairs of pairs: 4 x 4 blocks within each half
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {  // the halves exchanged
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
