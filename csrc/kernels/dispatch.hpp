// One table of kernels per instruction set, chosen at run time (simdjson-style): the
// scalar set runs everywhere, the AVX2+FMA and AVX-512 sets where the CPU has the features
// their files are compiled for, the NEON set on every aarch64 CPU.  Every kernel computes
// rows [r0, r1) of its product, so threads split rows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "views.hpp"

namespace cnn::kernels {

// CPU features a kernel file may be compiled for (its `#pragma GCC target` line), as bits.
namespace cpu {
constexpr uint32_t kAvx2 = 1u << 0, kFma = 1u << 1, kBmi = 1u << 2, kBmi2 = 1u << 3,
                   kLzcnt = 1u << 4, kPopcnt = 1u << 5, kAvx512f = 1u << 6, kAvx512bw = 1u << 7,
                   kAvx512vl = 1u << 8, kAvx512vbmi = 1u << 9;
// The features of this CPU, with the operating system's support (none off x86-64).
uint32_t features();
}  // namespace cpu

// Kernel signatures.  Matvec: y[r] = W[r] . x.  Batch: matmat, Y[r, :] = W[r] X (X: cols x
// batch row-major, Y: rows x batch), or linear, Y[:, r] = X W[r]^T (X: batch x cols
// row-major, Y: batch x rows, columns r0..r1 written).  For the lane layouts r0, r1 are
// groups of rows.
template <class View>
using MatvecFn = void(const View&, const float* x, float* y, uint64_t r0, uint64_t r1);
template <class View>
using BatchFn = void(const View&, const float* X, uint64_t batch, float* Y, uint64_t r0,
                     uint64_t r1);
// A dense row-major W (rows x cols): weights decoded once and used for many products
// (convolution over a batch of images); each row of Y then gets bias[row] (when not null)
// and relu (when asked).
using DenseMatmatFn = void(const float* W, uint64_t cols, const float* X, uint64_t batch,
                           float* Y, uint64_t r0, uint64_t r1, const float* bias, bool relu);
// For r < rows: the `width` floats at src + r * src_stride to dst + r * dst_stride
// (convolution patches: rows of a few tens of floats, where a memcpy call costs more than
// the copy).  src's rows lie in one array: a kernel may read on from a row into the next.
using CopyRowsFn = void(float* dst, uint64_t dst_stride, const float* src, uint64_t src_stride,
                        uint64_t rows, uint64_t width);
// y (planes x h/2 x w/2) = the largest of each 2x2 block of x (planes x h x w), NaN kept; a
// last odd row or column left out.  The sets' results are the same bits.
using MaxPool2Fn = void(const float* x, uint64_t planes, uint64_t h, uint64_t w, float* y);

// One slot of a KernelSet.  Each slot has a type of its own that takes its function only
// explicitly, so a set lists its kernels as ImMatvec(im_matvec), ...: a kernel in the slot of
// another does not compile, even where the two have one signature, and neither does a set
// that leaves a slot out (a slot has no default).  A set without a kernel of its own for a
// slot takes another set's: `FixedMatvec::of<avx2_kernels, &KernelSet::fixed_matvec>()`,
// read at call time (the sets are globals of other files, initialised in no known order).
template <class Tag, class Fn>
class Slot;
template <class Tag, class... A>
class Slot<Tag, void(A...)> {
 public:
  constexpr explicit Slot(void (*fn)(A...)) : fn_(fn) {}
  Slot(std::nullptr_t) = delete;
  template <class... Args>
  void operator()(Args&&... args) const {
    fn_(std::forward<Args>(args)...);
  }
  template <const auto& Set, auto Member>
  static constexpr Slot of() {
    return Slot(+[](A... a) { (Set.*Member)(a...); });
  }

 private:
  void (*fn_)(A...);
};

using ImMatvec = Slot<struct ImMatvecTag, MatvecFn<IMView>>;
using ImMatmat = Slot<struct ImMatmatTag, BatchFn<IMView>>;
using ImLinear = Slot<struct ImLinearTag, BatchFn<IMView>>;
using HamMatvec = Slot<struct HamMatvecTag, MatvecFn<HAMView>>;
using HamMatmat = Slot<struct HamMatmatTag, BatchFn<HAMView>>;
using HamLinear = Slot<struct HamLinearTag, BatchFn<HAMView>>;
using HcsrMatvec = Slot<struct HcsrMatvecTag, MatvecFn<HCSRView>>;
using HcsrMatmat = Slot<struct HcsrMatmatTag, BatchFn<HCSRView>>;
using LanesMatvec = Slot<struct LanesMatvecTag, MatvecFn<LanesView>>;
using LanesMatmat = Slot<struct LanesMatmatTag, BatchFn<LanesView>>;
using DenseLanesMatvec = Slot<struct DenseLanesMatvecTag, MatvecFn<LanesView>>;
using DenseLanesMatmat = Slot<struct DenseLanesMatmatTag, BatchFn<LanesView>>;
using FixedMatvec = Slot<struct FixedMatvecTag, MatvecFn<FixedView>>;
using FixedMatmat = Slot<struct FixedMatmatTag, BatchFn<FixedView>>;
using DenseMatmat = Slot<struct DenseMatmatTag, DenseMatmatFn>;
using CopyRows = Slot<struct CopyRowsTag, CopyRowsFn>;
using MaxPool2 = Slot<struct MaxPool2Tag, MaxPool2Fn>;
static_assert(!std::is_convertible_v<BatchFn<IMView>*, ImMatmat>, "slots are filled by name");
static_assert(!std::is_convertible_v<ImMatmat, ImLinear>, "slots of one signature differ");
static_assert(!std::is_default_constructible_v<ImMatvec>, "no set leaves a slot out");

struct KernelSet {
  const char* name;
  uint32_t features;  // cpu:: features its file is compiled for, all needed to run it
  // IndexMap.
  ImMatvec im_matvec;
  ImMatmat im_matmat;
  ImLinear im_linear;
  // HAM's row layout.
  HamMatvec ham_matvec;
  HamMatmat ham_matmat;
  HamLinear ham_linear;
  // HCSR's row layout.
  HcsrMatvec hcsr_matvec;
  HcsrMatmat hcsr_matmat;
  // The lane layout (HCSR's stored entries), the rows of groups [g0, g1).
  LanesMatvec lanes_matvec;
  LanesMatmat lanes_matmat;
  // The lane layout with dense rows (HAM's): every lane of a block at the same column (the
  // scalar set runs the general lane kernels above on it).
  DenseLanesMatvec dense_lanes_matvec;
  DenseLanesMatmat dense_lanes_matmat;
  // HCSR's fixed-width layout, the rows of groups [g0, g1).
  FixedMatvec fixed_matvec;
  FixedMatmat fixed_matmat;
  // Convolution: its decoded weights, its patches.
  DenseMatmat dense_matmat;
  CopyRows copy_rows;
  // Pooling: a 2x2 max pool of stride 2.
  MaxPool2 max_pool2;
};

// The architecture this build is for, and its kernel sets besides the scalar one: avx2.cpp,
// avx512.cpp and avx512_vbmi.cpp compile to nothing off x86, neon.cpp off aarch64.
#if defined(__x86_64__) || defined(__i386__)
#define CNN_X86_KERNELS 1
#else
#define CNN_X86_KERNELS 0
#endif
#if defined(__aarch64__)
#define CNN_NEON_KERNELS 1
#else
#define CNN_NEON_KERNELS 0
#endif
#if defined(__x86_64__)
inline constexpr const char* arch = "x86_64";
#elif defined(__i386__)
inline constexpr const char* arch = "x86";
#elif defined(__aarch64__)
inline constexpr const char* arch = "aarch64";
#elif defined(__arm__)
inline constexpr const char* arch = "arm";
#else
inline constexpr const char* arch = "other";
#endif

// Rows of W a batched linear product (Y = X W^T) transposes and multiplies at a time
// (matmat.hpp): each range of rows given to a thread reads all of X once per panel.
constexpr uint64_t kLinearPanelRows = 64;

// The rows to align the threads' ranges of such a product to (parallel_rows): whole panels
// where there are enough for two threads, else whole cache lines of Y (16 floats).  A range
// narrower than a panel runs one-vector tiles and reads X again: in 16-row ranges an Index Map
// 128 x 3136 at batch 64 took 0.34 ms on one thread but still 0.28 on two (0.225 in panels).
constexpr uint64_t linear_rows_align(uint64_t rows) {
  return rows >= 2 * kLinearPanelRows ? kLinearPanelRows : 16;
}

extern const KernelSet scalar_kernels;
#if CNN_X86_KERNELS
extern const KernelSet avx2_kernels;
extern const KernelSet avx512_kernels;
#endif
#if CNN_NEON_KERNELS
extern const KernelSet neon_kernels;  // every aarch64 CPU has NEON
#endif

// True in a test build whose AVX-512 set runs on SIMDe's emulation (COMPACTNN_EMULATE_AVX512).
#ifdef CNN_EMULATE_AVX512
inline constexpr bool emulated_avx512 = true;
#else
inline constexpr bool emulated_avx512 = false;
#endif

// AVX-512 VBMI (byte permutes across a register), used by the AVX-512 set where present:
// IndexMap matvec for 64 < k <= 256 and n_cols % 64 == 0 (avx512_vbmi.cpp, compiled for
// vbmi_features).
bool vbmi_available();  // (false where there are no x86 kernels)
#if CNN_X86_KERNELS
extern const uint32_t vbmi_features;
void im_matvec_vbmi(const IMView&, const float* x, float* y, uint64_t r0, uint64_t r1);
#endif

// Kernel sets this CPU can run, best last.
std::vector<const KernelSet*> supported();
// The set in use: COMPACTNN_ISA if set (InvalidInput if unknown or unsupported), else the
// best one the CPU runs (dispatch.cpp).  Chosen once, on first use.
const KernelSet& active();
// Switch the set in use (tests compare every supported set against the scalar one).
void set_active(const std::string& name);

}  // namespace cnn::kernels
