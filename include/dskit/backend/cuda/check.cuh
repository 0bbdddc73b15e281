// Error checking for the CUDA runtime.
//
//   DSKIT_CUDA_CHECK(cudaMalloc(&p, n));   // throws dskit::cuda_error on failure
//   my_kernel<<<grid, block>>>(...);
//   DSKIT_CUDA_CHECK_LAUNCH(my_kernel);     // reports a bad launch configuration at the launch site
//
// The message names the call, where it was made and CUDA's own words, e.g.
//   "cudaMalloc(&p, n) failed at foo.cu:12: cudaErrorMemoryAllocation: out of memory"
//
// `dskit::cuda::device_count()` and `has_device()` answer 0 / false on a machine without a GPU or
// driver instead of throwing, so programs (and tests) can choose another path there.
//
// This header needs only the CUDA runtime API: it also compiles with g++/clang++ given CUDA's include path.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "dskit/core/error.hpp"

namespace dskit::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line)
{
    // A failed call also sets the runtime's "last error"; clear it so a later launch check does not report
    // this failure a second time. Sticky errors (a crashed kernel) survive this and keep failing, as they should.
    (void)cudaGetLastError();
    std::string m;
    m.append(call).append(" failed at ").append(file).append(":").append(std::to_string(line)).append(": ");
    m.append(cudaGetErrorName(status)).append(": ").append(cudaGetErrorString(status));
    throw cuda_error(m);
}

inline void check(cudaError_t status, const char* call, const char* file, int line)
{
    if (status != cudaSuccess) throw_cuda_error(status, call, file, line);
}

} // namespace dskit::cuda::detail

/// Evaluates a CUDA runtime call once; throws dskit::cuda_error naming the call if it did not return cudaSuccess.
#define DSKIT_CUDA_CHECK(call) ::dskit::cuda::detail::check((call), #call, __FILE__, __LINE__)

/// Checks the launch just made (bad grid, too much shared memory, no kernel image for this GPU).
/// Launches are asynchronous: errors while the kernel runs surface at the next synchronising call.
#define DSKIT_CUDA_CHECK_LAUNCH(kernel_name)                                                                           \
    ::dskit::cuda::detail::check(cudaGetLastError(), "launch of " #kernel_name, __FILE__, __LINE__)

namespace dskit::cuda {

/// Number of CUDA devices; 0 (not an exception) when the machine has no GPU or no usable driver.
/// Any other failure throws cuda_error.
inline int device_count()
{
    int n = 0;
    const cudaError_t status = cudaGetDeviceCount(&n);
    if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver) {
        (void)cudaGetLastError();
        return 0;
    }
    detail::check(status, "cudaGetDeviceCount(&n)", __FILE__, __LINE__);
    return n;
}

/// True when at least one CUDA device can be used.
inline bool has_device()
{
    return device_count() > 0;
}

} // namespace dskit::cuda
