#include "dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <iterator>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "../common.hpp"

namespace cnn::kernels {

uint32_t cpu::features() {
  uint32_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the system saves the AVX and AVX-512 registers.
  const std::pair<bool, uint32_t> builtin[] = {
      {__builtin_cpu_supports("avx2"), kAvx2},
      {__builtin_cpu_supports("fma"), kFma},
      {__builtin_cpu_supports("bmi"), kBmi},
      {__builtin_cpu_supports("bmi2"), kBmi2},
      {__builtin_cpu_supports("popcnt"), kPopcnt},
      {__builtin_cpu_supports("avx512f"), kAvx512f},
      {__builtin_cpu_supports("avx512bw"), kAvx512bw},
      {__builtin_cpu_supports("avx512vl"), kAvx512vl},
      {__builtin_cpu_supports("avx512vbmi"), kAvx512vbmi}};
  for (const auto& [has, bit] : builtin)
    if (has) f |= bit;
  // LZCNT (AMD's ABM bit), which clang's __builtin_cpu_supports does not know.
  unsigned a, b, c, d;
  if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_LZCNT)) f |= kLzcnt;
#endif
  return f;
}

namespace {

// Every kernel set of this build, best last.
#if CNN_X86_KERNELS
const KernelSet* const kSets[] = {&scalar_kernels, &avx2_kernels, &avx512_kernels};
#elif CNN_NEON_KERNELS
const KernelSet* const kSets[] = {&scalar_kernels, &neon_kernels};
#else
const KernelSet* const kSets[] = {&scalar_kernels};
#endif

bool cpu_has(uint32_t features) {
  static const uint32_t present = cpu::features();
  return (present & features) == features;
}

const KernelSet* by_name(const std::string& name) {
  for (const KernelSet* set : kSets)
    if (name == set->name) {
      if (!cpu_has(set->features))
        throw InvalidInput("this CPU cannot run the " + name + " kernels");
      return set;
    }
  std::string names;
  for (const KernelSet* set : kSets) names += std::string(names.empty() ? "" : ", ") + set->name;
  throw InvalidInput("unknown kernel set '" + name + "': this " + arch + " build has " + names);
}

// The best set the CPU runs.  (The AVX-512 set is checked against the scalar one on SIMDe's
// emulation in CI, where it is never the default; the development machine's CPU has no
// AVX-512.)
const KernelSet* choose() {
  const char* env = std::getenv("COMPACTNN_ISA");
  if (env && *env) return by_name(env);
  for (auto set = std::rbegin(kSets); set != std::rend(kSets); ++set) {
#if CNN_X86_KERNELS
    if (*set == &avx512_kernels && emulated_avx512) continue;
#endif
    if (cpu_has((*set)->features)) return *set;
  }
  return &scalar_kernels;
}

std::atomic<const KernelSet*> current{nullptr};

}  // namespace

#if CNN_X86_KERNELS
bool vbmi_available() { return cpu_has(vbmi_features); }
#else
bool vbmi_available() { return false; }
#endif

std::vector<const KernelSet*> supported() {
  std::vector<const KernelSet*> out;
  for (const KernelSet* set : kSets)
    if (cpu_has(set->features)) out.push_back(set);
  return out;
}

const KernelSet& active() {
  const KernelSet* set = current.load(std::memory_order_acquire);
  if (!set) {
    set = choose();
    current.store(set, std::memory_order_release);
  }
  return *set;
}

void set_active(const std::string& name) { current.store(by_name(name)); }

}  // namespace cnn::kernels
