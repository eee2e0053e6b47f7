// libFuzzer harness for the file loader, the C++ side of compactnn.frombytes: any input
// must load, or be refused with FormatError (or InvalidInput); never crash, hang, read out
// of bounds or allocate far beyond its size.  A matrix that loads is used as a caller would:
// products with every kernel set, dense output, and a round trip through its bytes.
// Built and run by tools/fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "container.hpp"
#include "kernels/dispatch.hpp"

namespace {

void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

void use(const cnn::Format& m) {
  const uint64_t rows = m.rows(), cols = m.cols();
  // Products cost time in proportion to the declared shape, which a small file may make
  // large; the loader alone must stay fast on any shape, so only small matrices go further.
  if (rows > (1u << 16) || cols > (1u << 16) || rows * cols > (1u << 16)) return;
  std::vector<float> x(cols, 1.0f), X(cols * 3, 0.5f), y(rows), Y(rows * 3), dense(rows * cols);
  for (const auto* isa : cnn::kernels::supported()) {
    cnn::kernels::set_active(isa->name);
    m.matvec(x.data(), y.data(), 1);
    m.matmat(X.data(), 3, Y.data(), 2);
    m.linear(X.data(), 3, Y.data(), 1);
  }
  m.to_dense(dense.data());
  std::vector<uint8_t> bytes = cnn::serialize(m);
  auto again = cnn::deserialize(bytes.data(), bytes.size());
  if (cnn::serialize(*again) != bytes) fail("a loaded matrix does not survive a round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<cnn::Format> m;
  try {
    m = cnn::deserialize(data, size);
  } catch (const cnn::FormatError&) {
    return 0;
  } catch (const cnn::InvalidInput&) {
    return 0;
  }
  use(*m);
  return 0;
}
