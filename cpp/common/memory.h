// Memory hints shared by kernels that fill large, freshly allocated outputs.
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace mn {

// Asks Linux for transparent huge pages on the 2 MiB-aligned interior of a
// large buffer (like torch's THP_MEM_ALLOC_ENABLE). Fresh outputs of tens of
// MB otherwise spend much of a kernel's time in 4 KiB page faults. A hint:
// contents are untouched and failure is harmless.
inline void advise_huge_pages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  if (bytes < 4 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace mn
