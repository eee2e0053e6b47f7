// The model runtime's executor: a network as a list of steps over one float32 arena.  The
// Python side (compactnn/runtime) validates the graph, infers every shape for the input's
// batch size and places each value in the arena (values whose lifetimes do not overlap
// share space); here each step reads its inputs and writes its output at those offsets, so
// a whole forward pass is one call with no allocation between steps.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "format.hpp"

namespace cnn::runtime {

enum class Op : uint32_t {
  Linear = 1,    // p: batch, in, out; matrix or weight (out x in); bias
  Conv2d,        // p: n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, out; matrix or weight; bias
  Relu,          // p: count
  Gelu,          // p: count (erf form)
  GeluTanh,      // p: count (tanh approximation)
  Sigmoid,       // p: count
  Tanh,          // p: count
  Affine,        // p: outer, channels, inner; weight: scale, bias: shift (batch norm)
  MaxPool2d,     // p: planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo
  AvgPool2d,     // p: planes, h, w, kh, kw, sh, sw, ph, pw, ho, wo, count_pad, divisor
  AdaptiveAvg,   // p: planes, h, w, ho, wo
  Softmax,       // p: outer, dim, inner
  Add,           // p: ndim, out shape, a strides, b strides (0 where broadcast)
  Mul,           //    b: a second input, or `weight` (a constant) when there is one input
  Cat,           // p: outer, then each input's inner size
  Permute,       // p: ndim, input shape, then the permutation (out dim d = in dim perm[d])
  ReduceMax,     // p: outer, n, inner (the reduced dims merged into n)
  ReduceMean,    //    the same
  Embedding,     // p: count, rows, cols; weight: rows x cols; indices read as floats
};

struct Step {
  Op op;
  std::vector<uint64_t> in;  // arena offsets (floats) of the inputs
  uint64_t out = 0;          // arena offset of the output
  std::vector<uint64_t> p;   // sizes, as listed per op
  std::shared_ptr<const Format> matrix;
  const float* weight = nullptr;  // owned by the caller (kept alive with the program)
  const float* bias = nullptr;
  bool relu = false;  // Linear, Conv2d: relu on the output (a Relu step fused into this one)
  // Conv2d: then a 2x2 max pool of stride 2 (a MaxPool2d step fused into this one): the
  // output is n x rows x ho/2 x wo/2.
  bool max_pool2 = false;
};

// Checks each step's sizes against the arena of `arena_size` floats and its weights'
// counts (InvalidInput), so that running it reads and writes inside the arena only.
void check_steps(const std::vector<Step>& steps, uint64_t arena_size,
                 const std::vector<uint64_t>& weight_sizes,
                 const std::vector<uint64_t>& bias_sizes);

void run(const std::vector<Step>& steps, float* arena, unsigned threads);

}  // namespace cnn::runtime
