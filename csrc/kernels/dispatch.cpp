#include "dispatch.hpp"

#include <atomic>
#include <cstdlib>

#include "../common.hpp"

namespace cnn::kernels {

namespace {

bool cpu_has(const KernelSet* k) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (k == &avx512_kernels && emulated_avx512)  // SIMDe's AVX-512 on an AVX2 target
    return cpu_has(&avx2_kernels);
  if (k == &avx512_kernels)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2");
  if (k == &avx2_kernels)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2");
#endif
  return k == &scalar_kernels;
}

const KernelSet* by_name(const std::string& name) {
  for (const KernelSet* k : {&scalar_kernels, &avx2_kernels, &avx512_kernels})
    if (name == k->name) {
      if (!cpu_has(k))
        throw InvalidInput("this CPU cannot run the " + name + " kernels");
      return k;
    }
  throw InvalidInput("unknown kernel set '" + name + "': use scalar, avx2 or avx512");
}

// The best set the CPU runs.  (The AVX-512 set is checked against the scalar one on SIMDe's
// emulation in CI; the development machine's CPU has no AVX-512.)
const KernelSet* choose() {
  const char* env = std::getenv("COMPACTNN_ISA");
  if (env && *env) return by_name(env);
  if (!emulated_avx512 && cpu_has(&avx512_kernels)) return &avx512_kernels;
  return cpu_has(&avx2_kernels) ? &avx2_kernels : &scalar_kernels;
}

std::atomic<const KernelSet*> current{nullptr};

}  // namespace

bool vbmi_available() {
#if defined(__x86_64__) || defined(__i386__)
  if (emulated_avx512) return true;  // SIMDe emulates VBMI too
  __builtin_cpu_init();
  static const bool has = cpu_has(&avx512_kernels) && __builtin_cpu_supports("avx512vbmi");
  return has;
#else
  return false;
#endif
}

std::vector<const KernelSet*> supported() {
  std::vector<const KernelSet*> out;
  for (const KernelSet* k : {&scalar_kernels, &avx2_kernels, &avx512_kernels})
    if (cpu_has(k)) out.push_back(k);
  return out;
}

const KernelSet& active() {
  const KernelSet* k = current.load(std::memory_order_acquire);
  if (!k) {
    k = choose();
    current.store(k, std::memory_order_release);
  }
  return *k;
}

void set_active(const std::string& name) { current.store(by_name(name)); }

}  // namespace cnn::kernels
