// The entry points that the SIMD kernel sets share word for word (TU-local, like
// decode.hpp), and the set's table of them.  Included at the end of avx2.cpp, avx512.cpp and
// neon.cpp, after each defines Vec (its vector type for matmat.hpp), Lut<Bits>,
// im_matvec_b<Bits>, im_expand<Bits> and dot_bytes<Bits> (Bits: the index width).
#pragma once

namespace cnn::kernels::CNN_KERNEL_ISA {
namespace {

template <int Bits>
struct IndexRows {
  const IMView& v;
  const Lut<Bits> lut;
  IndexRows(const IMView& view) : v(view), lut(view.codebook, view.k) {}
  void prepare(uint64_t, uint64_t) {}
  void weights(uint64_t i, uint64_t j0, uint64_t kc, float* out) const {
    im_expand<Bits>(v, lut, i * v.cols + j0, kc, out);
  }
};

template <int Bits>
void im_matmat_b(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                 uint64_t r1) {
  IndexRows<Bits> src(v);
  blocked_matmat<Vec>(v.cols, X, batch, Y, r0, r1, 4 * Vec::tile_rows, src);
}

template <int Bits>
void im_linear_b(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
                 uint64_t r1) {
  IndexRows<Bits> src(v);
  blocked_linear<Vec>(v.cols, X, batch, Y, v.rows, r0, r1, src);
}

void im_matvec(const IMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  if (!for_bits(v.index_bits,
                [&](auto bits) { im_matvec_b<decltype(bits)::value>(v, x, y, r0, r1); }))
    scalar_kernels.im_matvec(v, x, y, r0, r1);
}

void im_matmat(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
               uint64_t r1) {
  if (!for_bits(v.index_bits,
                [&](auto bits) { im_matmat_b<decltype(bits)::value>(v, X, batch, Y, r0, r1); }))
    im_matmat_wide<Vec>(v, X, batch, Y, r0, r1);
}

void im_linear(const IMView& v, const float* X, uint64_t batch, float* Y, uint64_t r0,
               uint64_t r1) {
  if (!for_bits(v.index_bits,
                [&](auto bits) { im_linear_b<decltype(bits)::value>(v, X, batch, Y, r0, r1); }))
    im_linear_wide<Vec>(v, X, batch, Y, r0, r1);
}

// HAM with k <= 256: rows decoded to byte indices, then looked up a vector at a time.
void ham_matvec(const HAMView& v, const float* x, float* y, uint64_t r0, uint64_t r1) {
  bool done = for_bits(v.index_bits, [&](auto bits) {
    constexpr int Bits = decltype(bits)::value;
    const Lut<Bits> lut(v.codebook, v.k);
    ham_matvec_bytes(v, r0, r1, y,
                     [&](const uint8_t* idx) { return dot_bytes<Bits>(lut, idx, x, v.cols); });
  });
  if (!done) scalar_kernels.ham_matvec(v, x, y, r0, r1);
}

// A row in whole vectors.  Where the rows are written back to back, a row's last vector may
// run on into the next row, which is written after it (masked stores are slow on AMD: with a
// masked tail for every 14-float row, that one store took 6% of a convolution); the last
// row ends with a masked vector.
void copy_rows(float* dst, uint64_t dst_stride, const float* src, uint64_t src_stride,
               uint64_t rows, uint64_t width) {
  const uint64_t whole = (width + Vec::width - 1) / Vec::width * Vec::width;
  const bool overrun = dst_stride == width && whole <= std::min(src_stride, dst_stride) + width;
  for (uint64_t r = 0; r < rows; ++r, dst += dst_stride, src += src_stride) {
    uint64_t c = 0;
    for (; c + Vec::width <= width; c += Vec::width)
      Vec::store(dst + c, Vec::loadu(src + c), Vec::width);
    if (c == width) continue;
    if (overrun && r + 1 < rows)
      Vec::store(dst + c, Vec::loadu(src + c), Vec::width);
    else
      Vec::store(dst + c, Vec::load(src + c, unsigned(width - c)), unsigned(width - c));
  }
}

// The set's table: every slot from this file's kernels, the lane layouts' through LaneOps,
// and the fixed layout's as given (a set may take another's).
template <class LaneOps>
constexpr KernelSet kernel_set(const char* name, uint32_t features, FixedMatvec fixed_matvec,
                               FixedMatmat fixed_matmat) {
  return {name,
          features,
          ImMatvec(im_matvec),
          ImMatmat(im_matmat),
          ImLinear(im_linear),
          HamMatvec(ham_matvec),
          HamMatmat(ham_matmat_rows<Vec>),
          HamLinear(ham_linear_rows<Vec>),
          HcsrMatvec(hcsr_matvec_rows),
          HcsrMatmat(hcsr_matmat_rows<Vec>),
          LanesMatvec(lanes_matvec<LaneOps>),
          LanesMatmat(lanes_matmat<LaneOps, Vec>),
          DenseLanesMatvec(dense_lanes_matvec<LaneOps>),
          DenseLanesMatmat(dense_lanes_matmat<LaneOps, Vec>),
          fixed_matvec,
          fixed_matmat,
          DenseMatmat(dense_matmat_rows<Vec>),
          CopyRows(copy_rows),
          MaxPool2(max_pool2)};
}

}  // namespace
}  // namespace cnn::kernels::CNN_KERNEL_ISA
