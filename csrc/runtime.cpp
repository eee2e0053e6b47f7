#include "runtime.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>

#include "conv.hpp"
#include "kernels/dispatch.hpp"
#include "parallel.hpp"

namespace cnn::runtime {
namespace {

constexpr size_t kMaxDims = 8;

[[noreturn]] void bad(size_t i, const std::string& what) {
  throw InvalidInput("runtime step " + std::to_string(i) + ": " + what);
}

// The product of sizes; InvalidInput past kMaxEntries (a step's sizes come from a plan, but
// this check is what keeps a wrong one inside the arena).
uint64_t product(const uint64_t* p, size_t n) {
  uint64_t r = 1;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] && r > kMaxEntries / p[i]) throw InvalidInput("runtime: a size overflows");
    r *= p[i];
  }
  return r;
}
uint64_t product(std::initializer_list<uint64_t> sizes) {
  return product(sizes.begin(), sizes.size());
}

ConvShape conv_shape(const Step& s) {
  const auto& p = s.p;
  ConvShape c{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], 0, 0};
  check_conv(c);
  return c;
}

// Floats read at each input and written at the output; checks the weights' shapes.
struct Extent {
  std::vector<uint64_t> in;
  uint64_t out;
};

// One past the largest element a broadcast operand of `ndim` dims with `strides` reads.
uint64_t strided_extent(const uint64_t* shape, const uint64_t* strides, size_t ndim) {
  uint64_t last = 0;
  for (size_t d = 0; d < ndim; ++d)
    if (shape[d]) last += product({shape[d] - 1, strides[d]});
  if (last >= kMaxEntries) throw InvalidInput("runtime: a size overflows");
  return last + 1;
}

Extent extent(size_t i, const Step& s, uint64_t weight_size, uint64_t bias_size) {
  const auto& p = s.p;
  auto need = [&](size_t n) {
    if (p.size() != n) bad(i, "expects " + std::to_string(n) + " sizes");
  };
  auto inputs = [&](size_t n) {
    if (s.in.size() != n) bad(i, "expects " + std::to_string(n) + " inputs");
  };
  auto weights = [&](uint64_t rows, uint64_t cols) {
    if (s.matrix) {
      if (s.matrix->rows() != rows || s.matrix->cols() != cols) bad(i, "matrix shape mismatch");
    } else if (!s.weight || weight_size != product({rows, cols})) {
      bad(i, "weight shape mismatch");
    }
    if (s.bias && bias_size != rows) bad(i, "bias shape mismatch");
  };
  switch (s.op) {
    case Op::Linear: {
      need(3), inputs(1);
      weights(p[2], p[1]);
      return {{product(p.data(), 2)}, product({p[0], p[2]})};
    }
    case Op::Conv2d: {
      need(13), inputs(1);
      const ConvShape c = conv_shape(s);
      weights(p[12], c.patch());
      if (s.max_pool2 && (c.ho < 2 || c.wo < 2)) bad(i, "an output too small to pool");
      const uint64_t pool = s.max_pool2 ? 2 : 1;
      return {{product(p.data(), 4)}, product({c.n, p[12], c.ho / pool, c.wo / pool})};
    }
    case Op::Relu:
    case Op::Gelu:
    case Op::GeluTanh:
    case Op::Sigmoid:
    case Op::Tanh:
      need(1), inputs(1);
      return {{p[0]}, p[0]};
    case Op::Affine: {
      need(3), inputs(1);
      if (!s.weight || !s.bias || weight_size != p[1] || bias_size != p[1])
        bad(i, "scale and shift must have one value per channel");
      const uint64_t n = product(p.data(), 3);
      return {{n}, n};
    }
    case Op::MaxPool2d:
    case Op::AvgPool2d: {
      need(13), inputs(1);
      const size_t ho = s.op == Op::MaxPool2d ? 11 : 9;  // after the dilation (max) or not
      for (size_t k = 3; k < 7; ++k)
        if (p[k] == 0) bad(i, "pooling kernel and stride must be positive");
      if (s.op == Op::MaxPool2d && (p[9] == 0 || p[10] == 0)) bad(i, "dilation must be positive");
      return {{product(p.data(), 3)},
              product({p[0], p[ho], p[ho + 1]})};
    }
    case Op::AdaptiveAvg:
      need(5), inputs(1);
      if (p[1] == 0 || p[2] == 0 || p[3] == 0 || p[4] == 0) bad(i, "empty adaptive pooling");
      return {{product(p.data(), 3)},
              product({p[0], p[3], p[4]})};
    case Op::Softmax: {
      need(3), inputs(1);
      const uint64_t n = product(p.data(), 3);
      return {{n}, n};
    }
    case Op::Add:
    case Op::Mul: {
      if (p.empty() || p[0] == 0 || p[0] > kMaxDims || p.size() != 1 + 3 * p[0])
        bad(i, "malformed broadcast");
      const size_t nd = p[0];
      const uint64_t *shape = p.data() + 1, *sa = shape + nd, *sb = sa + nd;
      const uint64_t a = strided_extent(shape, sa, nd), b = strided_extent(shape, sb, nd);
      if (s.in.size() == 1) {
        if (!s.weight || weight_size < b) bad(i, "the constant operand is too small");
        return {{a}, product(shape, nd)};
      }
      inputs(2);
      return {{a, b}, product(shape, nd)};
    }
    case Op::Permute: {
      if (p.empty() || p[0] == 0 || p[0] > kMaxDims || p.size() != 1 + 2 * p[0])
        bad(i, "malformed permutation");
      inputs(1);
      const size_t nd = p[0];
      uint64_t seen = 0;
      for (size_t d = 0; d < nd; ++d) {
        if (p[1 + nd + d] >= nd || (seen >> p[1 + nd + d] & 1)) bad(i, "not a permutation");
        seen |= uint64_t(1) << p[1 + nd + d];
      }
      const uint64_t n = product(p.data() + 1, nd);
      return {{n}, n};
    }
    case Op::ReduceMax:
    case Op::ReduceMean: {
      need(3), inputs(1);
      if (p[1] == 0) bad(i, "reducing an empty dimension");
      return {{product(p.data(), 3)}, product({p[0], p[2]})};
    }
    case Op::Embedding: {
      need(3), inputs(1);
      if (!s.weight || weight_size != product({p[1], p[2]})) bad(i, "weight shape mismatch");
      return {{p[0]}, product({p[0], p[2]})};
    }
    case Op::Cat: {
      if (p.size() != s.in.size() + 1 || s.in.empty()) bad(i, "malformed concatenation");
      Extent e{{}, 0};
      uint64_t inner = 0;
      for (size_t k = 0; k < s.in.size(); ++k) {
        e.in.push_back(product({p[0], p[k + 1]}));
        inner += p[k + 1];
      }
      e.out = product({p[0], inner});
      return e;
    }
  }
  bad(i, "unknown operation " + std::to_string(uint32_t(s.op)));
}

template <class F>
void unary(const float* x, float* y, uint64_t n, F f) {
  for (uint64_t j = 0; j < n; ++j) y[j] = f(x[j]);
}

void linear_dense(const float* W, uint64_t rows, uint64_t cols, const float* X, uint64_t batch,
                  float* Y, unsigned threads) {
  const kernels::KernelSet& isa = kernels::active();
  auto matmat = [&](const float* Xt, uint64_t n, float* Yt) {
    parallel_rows(rows, threads, double(cols) * (n / 4 + 1), [&](uint64_t r0, uint64_t r1) {
      isa.dense_matmat(W, cols, Xt, n, Yt, r0, r1, nullptr, false);
    });
  };
  if (batch == 1)
    matmat(X, 1, Y);  // x is its own transpose
  else
    linear_through_matmat(rows, cols, X, batch, Y, matmat);
}

// max that propagates NaN, as torch's pooling does
inline float max_nan(float a, float b) { return (b > a || b != b) ? b : a; }

// The taps [t0, t1) of a window starting at `start` (stride between taps `d`) that fall
// inside [0, size).
inline void clip(int64_t start, int64_t k, int64_t d, int64_t size, int64_t& t0, int64_t& t1) {
  t0 = start >= 0 ? 0 : (-start + d - 1) / d;
  t1 = start >= size ? 0 : std::min(k, (size - start + d - 1) / d);
  t1 = std::max(t0, t1);
}

// Planes [p0, p1) of a pooling step: windows clipped to the input once per output row and
// column, so the inner loops test nothing; 2x2 windows of stride 2 (the common case) by
// max_pool2 (conv.hpp).
void pool_planes(const Step& s, const float* x, float* y, uint64_t p0, uint64_t p1) {
  const auto& p = s.p;
  const bool is_max = s.op == Op::MaxPool2d;
  const int64_t h = int64_t(p[1]), w = int64_t(p[2]), kh = int64_t(p[3]), kw = int64_t(p[4]);
  const int64_t sh = int64_t(p[5]), sw = int64_t(p[6]), ph = int64_t(p[7]), pw = int64_t(p[8]);
  const int64_t dh = is_max ? int64_t(p[9]) : 1, dw = is_max ? int64_t(p[10]) : 1;
  const int64_t ho = int64_t(is_max ? p[11] : p[9]), wo = int64_t(is_max ? p[12] : p[10]);
  if (is_max && kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 &&
      dw == 1 && ho == h / 2 && wo == w / 2)
    return max_pool2(x + p0 * h * w, p1 - p0, uint64_t(h), uint64_t(w), y + p0 * ho * wo);
  std::vector<int64_t> j0(wo), j1(wo);
  for (int64_t ox = 0; ox < wo; ++ox) clip(ox * sw - pw, kw, dw, w, j0[ox], j1[ox]);
  for (uint64_t plane = p0; plane < p1; ++plane) {
    const float* in = x + plane * h * w;
    float* out = y + plane * ho * wo;
    for (int64_t oy = 0; oy < ho; ++oy, out += wo) {
      const int64_t y0 = oy * sh - ph;
      int64_t i0, i1;
      clip(y0, kh, dh, h, i0, i1);
      for (int64_t ox = 0; ox < wo; ++ox) {
        const int64_t x0 = ox * sw - pw;
        if (is_max) {  // padding is -inf: only taps inside the input count
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t i = i0; i < i1; ++i) {
            const float* row = in + (y0 + i * dh) * w;
            for (int64_t j = j0[ox]; j < j1[ox]; ++j) m = max_nan(m, row[x0 + j * dw]);
          }
          out[ox] = m;
          continue;
        }
        // torch's avg_pool2d: the window clipped to the padded input counts padding
        // (count_include_pad) or not; divisor_override replaces the count.
        const int64_t padded = (std::min(y0 + kh, h + ph) - y0) * (std::min(x0 + kw, w + pw) - x0);
        float sum = 0;
        for (int64_t i = i0; i < i1; ++i) {
          const float* row = in + (y0 + i) * w;
          for (int64_t j = j0[ox]; j < j1[ox]; ++j) sum += row[x0 + j];
        }
        const int64_t count = p[12] ? int64_t(p[12]) : p[11] ? padded
                                                                : (i1 - i0) * (j1[ox] - j0[ox]);
        out[ox] = sum / float(count);
      }
    }
  }
}

void pool(const Step& s, const float* x, float* y, unsigned threads) {
  const uint64_t in = s.p[1] * s.p[2];
  parallel_rows(s.p[0], threads, double(in) * 2, [&](uint64_t p0, uint64_t p1) {
    pool_planes(s, x, y, p0, p1);
  }, 1);
}

void adaptive_avg(const Step& s, const float* x, float* y) {
  const auto& p = s.p;
  const uint64_t h = p[1], w = p[2], ho = p[3], wo = p[4];
  for (uint64_t plane = 0; plane < p[0]; ++plane, x += h * w)
    for (uint64_t oy = 0; oy < ho; ++oy) {
      const uint64_t y0 = oy * h / ho, y1 = ((oy + 1) * h + ho - 1) / ho;
      for (uint64_t ox = 0; ox < wo; ++ox, ++y) {
        const uint64_t x0 = ox * w / wo, x1 = ((ox + 1) * w + wo - 1) / wo;
        float sum = 0;
        for (uint64_t iy = y0; iy < y1; ++iy)
          for (uint64_t ix = x0; ix < x1; ++ix) sum += x[iy * w + ix];
        *y = sum / float((y1 - y0) * (x1 - x0));
      }
    }
}

void softmax(const Step& s, const float* x, float* y) {
  const uint64_t outer = s.p[0], n = s.p[1], inner = s.p[2];
  for (uint64_t o = 0; o < outer; ++o)
    for (uint64_t i = 0; i < inner; ++i) {
      const float* a = x + o * n * inner + i;
      float* b = y + o * n * inner + i;
      float m = -std::numeric_limits<float>::infinity();
      for (uint64_t k = 0; k < n; ++k) m = std::max(m, a[k * inner]);
      float sum = 0;
      for (uint64_t k = 0; k < n; ++k) sum += b[k * inner] = std::exp(a[k * inner] - m);
      for (uint64_t k = 0; k < n; ++k) b[k * inner] /= sum;
    }
}

template <class F>
void broadcast(const Step& s, const float* a, const float* b, float* y, F f) {
  const size_t nd = s.p[0];
  const uint64_t *shape = s.p.data() + 1, *sa = shape + nd, *sb = sa + nd;
  const uint64_t n = product(shape, nd);
  uint64_t idx[kMaxDims] = {};
  uint64_t ia = 0, ib = 0;
  for (uint64_t k = 0; k < n; ++k) {
    y[k] = f(a[ia], b[ib]);
    for (size_t d = nd; d-- > 0;) {  // the next index, last dimension fastest
      ia += sa[d], ib += sb[d];
      if (++idx[d] < shape[d]) break;
      ia -= sa[d] * shape[d], ib -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

void cat(const Step& s, float* arena, float* y) {
  const uint64_t outer = s.p[0];
  for (uint64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < s.in.size(); ++k) {
      const uint64_t inner = s.p[k + 1];
      const float* src = arena + s.in[k] + o * inner;
      std::copy(src, src + inner, y);
      y += inner;
    }
}

void permute(const Step& s, const float* x, float* y) {
  const size_t nd = s.p[0];
  const uint64_t *shape = s.p.data() + 1, *perm = shape + nd;
  uint64_t in_stride[kMaxDims], out_shape[kMaxDims], stride[kMaxDims];
  for (size_t d = nd, acc = 1; d-- > 0;) in_stride[d] = acc, acc *= shape[d];
  for (size_t d = 0; d < nd; ++d) out_shape[d] = shape[perm[d]], stride[d] = in_stride[perm[d]];
  const uint64_t n = product(out_shape, nd);
  uint64_t idx[kMaxDims] = {}, at = 0;
  for (uint64_t k = 0; k < n; ++k) {
    y[k] = x[at];
    for (size_t d = nd; d-- > 0;) {
      at += stride[d];
      if (++idx[d] < out_shape[d]) break;
      at -= stride[d] * out_shape[d];
      idx[d] = 0;
    }
  }
}

void reduce(const Step& s, const float* x, float* y) {
  const uint64_t outer = s.p[0], n = s.p[1], inner = s.p[2];
  for (uint64_t o = 0; o < outer; ++o, x += n * inner, y += inner) {
    std::copy(x, x + inner, y);
    for (uint64_t k = 1; k < n; ++k)
      for (uint64_t i = 0; i < inner; ++i)
        y[i] = s.op == Op::ReduceMax ? max_nan(y[i], x[k * inner + i]) : y[i] + x[k * inner + i];
    if (s.op == Op::ReduceMean)
      for (uint64_t i = 0; i < inner; ++i) y[i] /= float(n);
  }
}

void embedding(const Step& s, const float* x, float* y) {
  const uint64_t count = s.p[0], rows = s.p[1], cols = s.p[2];
  for (uint64_t k = 0; k < count; ++k, y += cols) {
    const float v = x[k];
    if (!(v >= 0.0f && v < float(rows)) || v != std::floor(v)) {
      std::ostringstream msg;
      msg << "embedding index " << v << " is not a row of the " << rows << "-row table";
      throw InvalidInput(msg.str());
    }
    const float* row = s.weight + uint64_t(v) * cols;
    std::copy(row, row + cols, y);
  }
}

}  // namespace

void check_steps(const std::vector<Step>& steps, uint64_t arena_size,
                 const std::vector<uint64_t>& weight_sizes,
                 const std::vector<uint64_t>& bias_sizes) {
  if (weight_sizes.size() != steps.size() || bias_sizes.size() != steps.size())
    throw InvalidInput("runtime: one weight and bias size per step");
  auto inside = [&](size_t i, uint64_t offset, uint64_t n) {
    if (offset > arena_size || n > arena_size - offset) bad(i, "reaches past the arena");
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const Extent e = extent(i, steps[i], weight_sizes[i], bias_sizes[i]);
    if (steps[i].relu && steps[i].op != Op::Linear && steps[i].op != Op::Conv2d)
      bad(i, "only a linear or convolution step takes a fused relu");
    if (steps[i].max_pool2 && steps[i].op != Op::Conv2d)
      bad(i, "only a convolution step takes a fused pooling");
    for (size_t k = 0; k < e.in.size(); ++k) inside(i, steps[i].in[k], e.in[k]);
    inside(i, steps[i].out, e.out);
  }
}

void run(const std::vector<Step>& steps, float* arena, unsigned threads) {
  const BackToBack steps_back_to_back;
  for (const Step& s : steps) {
    const float* x = arena + (s.in.empty() ? 0 : s.in[0]);
    float* y = arena + s.out;
    const auto& p = s.p;
    switch (s.op) {
      case Op::Linear:
        if (s.matrix)
          s.matrix->linear(x, p[0], y, threads, s.bias);
        else {
          linear_dense(s.weight, p[2], p[1], x, p[0], y, threads);
          if (s.bias)
            for (uint64_t b = 0; b < p[0]; ++b)
              for (uint64_t r = 0; r < p[2]; ++r) y[b * p[2] + r] += s.bias[r];
        }
        if (s.relu) relu(y, y, p[0] * p[2]);
        break;
      case Op::Conv2d: {
        const ConvShape c = conv_shape(s);
        const ConvThen then{s.relu, s.max_pool2};
        if (s.matrix)
          conv2d(*s.matrix, x, c, s.bias, y, threads, then);
        else
          conv2d_dense(s.weight, p[12], x, c, s.bias, y, threads, then);
        break;
      }
      case Op::Relu:
        relu(x, y, p[0]);
        break;
      case Op::Gelu:
        unary(x, y, p[0], [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678f)); });
        break;
      case Op::GeluTanh:
        unary(x, y, p[0], [](float v) {
          constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
          return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
        });
        break;
      case Op::Sigmoid:
        unary(x, y, p[0], [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
        break;
      case Op::Tanh:
        unary(x, y, p[0], [](float v) { return std::tanh(v); });
        break;
      case Op::Affine:
        for (uint64_t o = 0; o < p[0]; ++o)
          for (uint64_t c = 0; c < p[1]; ++c) {
            const float a = s.weight[c], b = s.bias[c];
            const uint64_t base = (o * p[1] + c) * p[2];
            for (uint64_t j = 0; j < p[2]; ++j) y[base + j] = x[base + j] * a + b;
          }
        break;
      case Op::MaxPool2d:
      case Op::AvgPool2d:
        pool(s, x, y, threads);
        break;
      case Op::AdaptiveAvg:
        adaptive_avg(s, x, y);
        break;
      case Op::Softmax:
        softmax(s, x, y);
        break;
      case Op::Add:
      case Op::Mul: {
        const float* b = s.in.size() == 2 ? arena + s.in[1] : s.weight;
        if (s.op == Op::Add)
          broadcast(s, x, b, y, [](float u, float v) { return u + v; });
        else
          broadcast(s, x, b, y, [](float u, float v) { return u * v; });
        break;
      }
      case Op::Cat:
        cat(s, arena, y);
        break;
      case Op::Permute:
        permute(s, x, y);
        break;
      case Op::ReduceMax:
      case Op::ReduceMean:
        reduce(s, x, y);
        break;
      case Op::Embedding:
        embedding(s, x, y);
        break;
    }
  }
}

}  // namespace cnn::runtime
