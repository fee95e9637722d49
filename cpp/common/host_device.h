// Marks math shared between the CPU kernels and (later) CUDA kernels.
#pragma once
#if defined(__CUDACC__)
#define MN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MN_HOST_DEVICE inline
#endif
