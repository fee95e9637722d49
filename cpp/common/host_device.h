// Marks math shared between the CPU kernels and (later) CUDA kernels.
#pragma once
#if defined(__CUDACC__)
#define MN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MN_HOST_DEVICE inline
#endif

#if defined(__GNUC__)
#define MN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MN_ALWAYS_INLINE inline
#endif

// x86-64 builds compile hot loops twice, for the baseline ISA and for AVX2,
// and pick at run time (one portable wheel, full speed where AVX2 exists).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__CUDACC__)
#define MN_X86_DISPATCH 1
#define MN_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define MN_X86_DISPATCH 0
#define MN_TARGET_AVX2
#endif
