// The AVX-512 intrinsics that avx512.cpp uses and SIMDe 0.7 lacks, for the emulated test
// build only (COMPACTNN_EMULATE_AVX512).  Written lane by lane with the instructions'
// semantics: masked-off lanes are neither read nor written, so a masked load that reaches
// past the end of an array is checked as the hardware would run it.
#pragma once
#include <cstdint>
#include <cstring>

#define __mmask16 simde__mmask16
#define __mmask64 simde__mmask64

static inline simde__m512 _mm512_maskz_loadu_ps(simde__mmask16 m, const void* p) {
  alignas(64) float v[16] = {};
  for (int i = 0; i < 16; ++i)
    if (m >> i & 1) v[i] = static_cast<const float*>(p)[i];
  return simde_mm512_load_ps(v);
}

static inline void _mm512_mask_storeu_ps(void* p, simde__mmask16 m, simde__m512 a) {
  alignas(64) float v[16];
  simde_mm512_store_ps(v, a);
  for (int i = 0; i < 16; ++i)
    if (m >> i & 1) static_cast<float*>(p)[i] = v[i];
}

static inline simde__m512i _mm512_cvtepu8_epi32(simde__m128i a) {
  alignas(16) uint8_t b[16];
  simde_mm_store_si128(reinterpret_cast<simde__m128i*>(b), a);
  alignas(64) int32_t v[16];
  for (int i = 0; i < 16; ++i) v[i] = b[i];
  return simde_mm512_load_si512(v);
}

// Halves added pairwise, as GCC's own _mm512_reduce_add_ps does.
static inline float _mm512_reduce_add_ps(simde__m512 a) {
  alignas(64) float v[16];
  simde_mm512_store_ps(v, a);
  for (int n = 8; n >= 1; n /= 2)
    for (int i = 0; i < n; ++i) v[i] = v[i] + v[i + n];
  return v[0];
}

// Masked-off lanes keep src and read nothing (the x gather of lanes whose rows ended).
static inline simde__m512 _mm512_mask_i32gather_ps(simde__m512 src, simde__mmask16 m, simde__m512i idx,
                                                   const void* base, int scale) {
  alignas(64) float v[16];
  alignas(64) int32_t i32[16];
  simde_mm512_store_ps(v, src);
  simde_mm512_store_si512(i32, idx);
  for (int i = 0; i < 16; ++i)
    if (m >> i & 1) std::memcpy(&v[i], static_cast<const char*>(base) + int64_t(i32[i]) * scale, 4);
  return simde_mm512_load_ps(v);
}

// The set lanes take consecutive words from p, in lane order; only those words are read.
static inline simde__m512i _mm512_mask_expandloadu_epi32(simde__m512i src, simde__mmask16 m, const void* p) {
  alignas(64) int32_t v[16];
  simde_mm512_store_si512(v, src);
  const int32_t* q = static_cast<const int32_t*>(p);
  for (int i = 0; i < 16; ++i)
    if (m >> i & 1) std::memcpy(&v[i], q++, 4);
  return simde_mm512_load_si512(v);
}
