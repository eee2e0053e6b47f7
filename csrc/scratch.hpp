// Temporary floats that outlive a call.  Products and convolutions take their buffers here
// instead of allocating them each time: malloc serves a few hundred KiB from fresh pages
// (mmap, or the heap's top after a trim), and the first touch of each 4 KiB page is a page
// fault.  A 128x3136 linear layer at batch 64 faulted ~470 times a call and took 1.9 ms
// instead of 0.7 (one thread, KVM guest, Zen 5).
// Each thread keeps, per slot, the largest buffer it was asked for, until it exits; the
// contents are undefined.  One slot per call site, so that nested calls never share one.
#pragma once
#include <cstddef>

namespace cnn {

enum class ScratchSlot : unsigned {
  LinearIn,      // linear through matmat: a panel of X transposed
  LinearOut,     //   and of Y
  ConvWeights,   // a convolution's matrix decoded to floats
  ConvPatches,   // one image's patches (im2col)
  ConvPadded,    //   from this zero-padded copy of the image
  ConvBand,      // one band of a single image's output, before it goes to its columns
  ConvOut,       // an image's output before its pooling
  LaneBlock,     // a group of dense lanes expanded to floats
  kCount
};

float* scratch(ScratchSlot slot, size_t n);

}  // namespace cnn
