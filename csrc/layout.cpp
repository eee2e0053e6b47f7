#include "layout.hpp"

namespace cnn {

void Layout::linear(const float* codebook, const float* X, uint64_t batch, float* Y,
                    unsigned threads) const {
  linear_through_matmat(rows_, cols_, X, batch, Y, [&](const float* Xt, uint64_t n, float* Yt) {
    matmat(codebook, Xt, n, Yt, threads);
  });
}

std::vector<Section> CodedFormat::sections() const {
  std::vector<Section> s = layout_->sections();
  s.insert(s.begin(), as_bytes(codebook_));
  return s;
}

}  // namespace cnn
