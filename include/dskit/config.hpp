// Compile-time configuration: host/device annotations, OpenMP detection.
#pragma once

// One header serves g++/clang++ and nvcc: annotations vanish outside nvcc.
#if defined(__CUDACC__)
#define DSKIT_HOST_DEVICE __host__ __device__
#define DSKIT_DEVICE __device__
#else
#define DSKIT_HOST_DEVICE
#define DSKIT_DEVICE
#endif

#if defined(_OPENMP)
#define DSKIT_HAS_OPENMP 1
#else
#define DSKIT_HAS_OPENMP 0
#endif

#if defined(__CUDACC__) || defined(DSKIT_WITH_CUDA)
#define DSKIT_HAS_CUDA 1
#else
#define DSKIT_HAS_CUDA 0
#endif

// A hint to fetch the cache line at p for reading; nothing where the compiler has no builtin.
#if defined(__GNUC__) || defined(__clang__)
#define DSKIT_PREFETCH(p) __builtin_prefetch(p)
#else
#define DSKIT_PREFETCH(p) ((void)(p))
#endif
