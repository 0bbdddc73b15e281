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

// For the small vector functions of hot loops (exp, sigmoid, ...): GCC stops inlining them once a
// translation unit holds many kernel instantiations, and an out-of-line call per vector passes the batch
// through memory (dskit_bench's exp: 8.0 ms with a call per vector, 6 ms inlined, 4096 x 4096, one core).
// DSKIT_LAMBDA_INLINE goes after a lambda's parameter list, for the per-vector generators of write_row.
#if defined(__GNUC__) || defined(__clang__)
#define DSKIT_FORCE_INLINE inline __attribute__((always_inline))
#define DSKIT_LAMBDA_INLINE __attribute__((always_inline))
#else
#define DSKIT_FORCE_INLINE inline
#define DSKIT_LAMBDA_INLINE
#endif

// A hint to fetch the cache line at p for reading; nothing where the compiler has no builtin.
#if defined(__GNUC__) || defined(__clang__)
#define DSKIT_PREFETCH(p) __builtin_prefetch(p)
#else
#define DSKIT_PREFETCH(p) ((void)(p))
#endif
