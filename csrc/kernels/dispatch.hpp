// One table of kernels per instruction set, chosen at run time (simdjson-style): the
// scalar set runs everywhere, the AVX2+FMA and AVX-512 sets where the CPU has them.
// Every kernel computes rows [r0, r1) of its product, so threads split rows.
#pragma once
#include <string>
#include <vector>

#include "views.hpp"

namespace cnn::kernels {

struct KernelSet {
  const char* name;
  // y[r] = W[r] . x
  void (*im_matvec)(const IMView&, const float* x, float* y, uint64_t r0, uint64_t r1);
  void (*ham_matvec)(const HAMView&, const float* x, float* y, uint64_t r0, uint64_t r1);
  void (*hcsr_matvec)(const HCSRView&, const float* x, float* y, uint64_t r0, uint64_t r1);
  // Y[r, :] = W[r] X  with X: cols x B row-major, Y: rows x B
  void (*im_matmat)(const IMView&, const float* X, uint64_t B, float* Y, uint64_t r0, uint64_t r1);
  void (*ham_matmat)(const HAMView&, const float* X, uint64_t B, float* Y, uint64_t r0, uint64_t r1);
  void (*hcsr_matmat)(const HCSRView&, const float* X, uint64_t B, float* Y, uint64_t r0,
                      uint64_t r1);
  // Y[r, :] = W[r] X for a dense row-major W (rows x cols): weights decoded once and used
  // for many products (convolution over a batch of images).
  void (*dense_matmat)(const float* W, uint64_t cols, const float* X, uint64_t B, float* Y,
                       uint64_t r0, uint64_t r1);
  // Y[:, r] = X W[r]^T  with X: B x cols row-major, Y: B x rows (columns r0..r1 written)
  void (*im_linear)(const IMView&, const float* X, uint64_t B, float* Y, uint64_t r0, uint64_t r1);
  void (*ham_linear)(const HAMView&, const float* X, uint64_t B, float* Y, uint64_t r0,
                     uint64_t r1);
  // The lane layout (HCSR's stored entries): the rows of groups [g0, g1), as hcsr_matvec /
  // hcsr_matmat.
  void (*hcsr_lanes_matvec)(const LanesView&, const float* x, float* y, uint64_t g0,
                            uint64_t g1);
  void (*hcsr_lanes_matmat)(const LanesView&, const float* X, uint64_t B, float* Y,
                            uint64_t g0, uint64_t g1);
  // The lane layout with dense rows (HAM's): the same products, every lane of a block at
  // the same column (the scalar set runs the general lane kernels above on it).
  void (*ham_lanes_matvec)(const LanesView&, const float* x, float* y, uint64_t g0,
                           uint64_t g1);
  void (*ham_lanes_matmat)(const LanesView&, const float* X, uint64_t B, float* Y,
                           uint64_t g0, uint64_t g1);
};

extern const KernelSet scalar_kernels;
extern const KernelSet avx2_kernels;
extern const KernelSet avx512_kernels;

// True in a test build whose AVX-512 set runs on SIMDe's emulation (COMPACTNN_EMULATE_AVX512).
#ifdef CNN_EMULATE_AVX512
inline constexpr bool emulated_avx512 = true;
#else
inline constexpr bool emulated_avx512 = false;
#endif

// AVX-512 VBMI (byte permutes across a register), used by the AVX-512 set where present:
// IndexMap matvec for 64 < k <= 256 and n_cols % 64 == 0 (avx512_vbmi.cpp).
bool vbmi_available();
void im_matvec_vbmi(const IMView&, const float* x, float* y, uint64_t r0, uint64_t r1);

// Kernel sets this CPU can run, best last.
std::vector<const KernelSet*> supported();
// The set in use: COMPACTNN_ISA if set (InvalidInput if unknown or unsupported), else the
// best one the CPU runs (dispatch.cpp).  Chosen once, on first use.
const KernelSet& active();
// Switch the set in use (tests compare every supported set against the scalar one).
void set_active(const std::string& name);

}  // namespace cnn::kernels
