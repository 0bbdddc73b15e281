// Row softmax on the GPU: out[r, :] = exp(in[r, :] - max) / sum(exp(in[r, :] - max)).
//
//   dskit::cuda::softmax_rows(d_in, d_out, rows, cols, ld_in, ld_out, stream);  // device pointers, async
//   dskit::ops::softmax_rows<dskit::backend::cuda>(x, y);                       // host matrices (copies)
//
// A row whose entries are all -inf gives zeros (as the CPU backends do); a NaN or +inf in a row makes the
// row NaN (as PyTorch does). In-place use (in == out, ld_in == ld_out) is allowed.
//
// Two kernels, both subtracting the row maximum before exponentiating:
//   cols <= 1024: one warp per row; the row lives in registers, so it is read from memory once.
//   longer rows:  one block per row; each thread keeps a running (max, sum) pair ("online softmax"), the
//                 pairs are merged with warp shuffles, and a second pass writes the output. Rows whose start
//                 addresses are 16-byte aligned are read and written with float4 accesses.
// This header must be compiled by nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "dskit/backend/cuda/softmax.cuh holds CUDA kernels: include it only in files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include "dskit/backend/cuda/check.cuh"
#include "dskit/backend/cuda/device_buffer.cuh"
#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit::cuda {

namespace detail {

inline constexpr int warp_size = 32;
// Longest row handled by one warp (32 values per lane in registers).
inline constexpr int softmax_warp_max_cols = 1024;
inline constexpr int softmax_warp_block = 256; // 8 rows per block
inline constexpr int softmax_block_threads = 256;

// exp(x - m) as exp2: x - m is exact near the maximum (where the large outputs are), and
// exp2f compiles to the hardware ex2 instruction with a 2-ulp bound.
__device__ __forceinline__ float exp_shifted(float x, float m)
{
    constexpr float log2e = 1.4426950408889634f;
    // -inf entries contribute 0 even when the maximum is -inf too (where x - m would be NaN).
    return x == -INFINITY ? 0.0f : exp2f((x - m) * log2e);
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int offset = warp_size / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int offset = warp_size / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// 1 / sum, with an all -inf row (sum 0) mapped to zeros rather than 0 * inf = NaN.
__device__ __forceinline__ float inverse_sum(float s)
{
    return s == 0.0f ? 0.0f : 1.0f / s;
}

/// Running softmax statistics: the maximum seen and the sum of exp(x - max) over what was seen.
struct online_stats {
    float max;
    float sum;
};

__device__ __forceinline__ void accumulate(online_stats& st, float x)
{
    if (x > st.max) { // rare after the first few values: rescale the sum to the new maximum
        st.sum *= exp_shifted(st.max, x);
        st.max = x;
    }
    st.sum += exp_shifted(x, st.max);
}

__device__ __forceinline__ online_stats merge(online_stats a, online_stats b)
{
    const float m = fmaxf(a.max, b.max);
    return {m, a.sum * exp_shifted(a.max, m) + b.sum * exp_shifted(b.max, m)};
}

__device__ __forceinline__ online_stats warp_merge(online_stats st)
{
#pragma unroll
    for (int offset = warp_size / 2; offset > 0; offset /= 2) {
        const online_stats other{__shfl_xor_sync(0xffffffffu, st.max, offset),
                                 __shfl_xor_sync(0xffffffffu, st.sum, offset)};
        st = merge(st, other);
    }
    return st;
}

/// One warp per row, cols <= 32 * PerLane. Lane l holds columns l, l + 32, ... (coalesced accesses).
template <int PerLane>
__global__ void __launch_bounds__(softmax_warp_block)
    softmax_warp_kernel(const float* in, float* out, int rows, int cols, int ld_in, int ld_out)
{
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const long long row =
        (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / warp_size; // uniform within a warp
    if (row >= rows) return;
    const float* x = in + row * ld_in;
    float* y = out + row * ld_out;

    float v[PerLane];
    float m = -INFINITY;
#pragma unroll
    for (int i = 0; i < PerLane; ++i) {
        const int c = lane + i * warp_size;
        v[i] = c < cols ? x[c] : -INFINITY;
        m = fmaxf(m, v[i]);
    }
    m = warp_max(m);

    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < PerLane; ++i) {
        v[i] = exp_shifted(v[i], m);
        s += v[i];
    }
    const float inv = inverse_sum(warp_sum(s));

#pragma unroll
    for (int i = 0; i < PerLane; ++i) {
        const int c = lane + i * warp_size;
        if (c < cols) y[c] = v[i] * inv;
    }
}

/// One block of Threads threads per row, any row length. Vec4: every row start is 16-byte aligned.
template <int Threads, bool Vec4>
__global__ void __launch_bounds__(Threads)
    softmax_block_kernel(const float* in, float* out, int cols, int ld_in, int ld_out)
{
    static_assert(Threads % warp_size == 0 && Threads <= 1024);
    constexpr int warps = Threads / warp_size;
    __shared__ online_stats partial[warps];

    const int tid = static_cast<int>(threadIdx.x);
    const long long row = blockIdx.x;
    const float* x = in + row * ld_in;
    float* y = out + row * ld_out;
    // With Vec4, the first cols4 * 4 columns go through float4 accesses and the rest one by one.
    const int cols4 = Vec4 ? cols / 4 : 0;
    const int tail_begin = cols4 * 4;

    online_stats st{-INFINITY, 0.0f};
    if constexpr (Vec4) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        for (int i = tid; i < cols4; i += Threads) {
            const float4 q = x4[i];
            accumulate(st, q.x);
            accumulate(st, q.y);
            accumulate(st, q.z);
            accumulate(st, q.w);
        }
    }
    for (int c = tail_begin + tid; c < cols; c += Threads) accumulate(st, x[c]);

    st = warp_merge(st);
    const int warp = tid / warp_size;
    if (tid % warp_size == 0) partial[warp] = st;
    __syncthreads();
    // Every warp merges the per-warp partials itself: no second barrier and broadcast needed.
    st = tid % warp_size < warps ? partial[tid % warp_size] : online_stats{-INFINITY, 0.0f};
    st = warp_merge(st);
    const float m = st.max;
    const float inv = inverse_sum(st.sum);

    if constexpr (Vec4) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        float4* y4 = reinterpret_cast<float4*>(y);
        for (int i = tid; i < cols4; i += Threads) {
            const float4 q = x4[i];
            y4[i] = make_float4(exp_shifted(q.x, m) * inv, exp_shifted(q.y, m) * inv, exp_shifted(q.z, m) * inv,
                                exp_shifted(q.w, m) * inv);
        }
    }
    for (int c = tail_begin + tid; c < cols; c += Threads) y[c] = exp_shifted(x[c], m) * inv;
}

template <int PerLane>
void launch_softmax_warp(const float* in, float* out, int rows, int cols, int ld_in, int ld_out, cudaStream_t stream)
{
    constexpr int rows_per_block = softmax_warp_block / warp_size;
    const auto grid = static_cast<unsigned>((static_cast<long long>(rows) + rows_per_block - 1) / rows_per_block);
    softmax_warp_kernel<PerLane><<<grid, softmax_warp_block, 0, stream>>>(in, out, rows, cols, ld_in, ld_out);
    DSKIT_CUDA_CHECK_LAUNCH(softmax_warp_kernel);
}

inline void require_softmax_args(int rows, int cols, int ld_in, int ld_out)
{
    using dskit::detail::describe;
    if (rows < 0 || cols < 0)
        throw shape_error(
            describe("cuda::softmax_rows", "non-negative rows and cols", dskit::detail::shape_string({rows, cols})));
    if (ld_in < cols || ld_out < cols)
        throw shape_error(describe("cuda::softmax_rows", "ld_in and ld_out >= cols (" + std::to_string(cols) + ")",
                                   "ld_in " + std::to_string(ld_in) + ", ld_out " + std::to_string(ld_out)));
}

} // namespace detail

/// Softmax of each of `rows` rows of `cols` floats, device pointers; row r of `in` starts at in + r * ld_in.
/// Asynchronous on `stream`; launch errors throw cuda_error, bad sizes throw shape_error.
inline void softmax_rows(const float* in, float* out, int rows, int cols, int ld_in, int ld_out,
                         cudaStream_t stream = nullptr)
{
    detail::require_softmax_args(rows, cols, ld_in, ld_out);
    if (rows == 0 || cols == 0) return;

    if (cols <= detail::softmax_warp_max_cols) {
        // Smallest register array that holds the row: fewer idle lanes and registers for short rows.
        if (cols <= 32)
            detail::launch_softmax_warp<1>(in, out, rows, cols, ld_in, ld_out, stream);
        else if (cols <= 64)
            detail::launch_softmax_warp<2>(in, out, rows, cols, ld_in, ld_out, stream);
        else if (cols <= 128)
            detail::launch_softmax_warp<4>(in, out, rows, cols, ld_in, ld_out, stream);
        else if (cols <= 256)
            detail::launch_softmax_warp<8>(in, out, rows, cols, ld_in, ld_out, stream);
        else if (cols <= 512)
            detail::launch_softmax_warp<16>(in, out, rows, cols, ld_in, ld_out, stream);
        else
            detail::launch_softmax_warp<32>(in, out, rows, cols, ld_in, ld_out, stream);
        return;
    }

    constexpr int threads = detail::softmax_block_threads;
    const auto aligned16 = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
    const bool vec4 = aligned16(in) && aligned16(out) && ld_in % 4 == 0 && ld_out % 4 == 0;
    const unsigned grid = static_cast<unsigned>(rows);
    if (vec4) {
        detail::softmax_block_kernel<threads, true><<<grid, threads, 0, stream>>>(in, out, cols, ld_in, ld_out);
        DSKIT_CUDA_CHECK_LAUNCH(softmax_block_kernel);
    } else {
        detail::softmax_block_kernel<threads, false><<<grid, threads, 0, stream>>>(in, out, cols, ld_in, ld_out);
        DSKIT_CUDA_CHECK_LAUNCH(softmax_block_kernel);
    }
}

} // namespace dskit::cuda

namespace dskit::detail {

/// ops::softmax_rows<backend::cuda> on host matrices: upload, softmax in place on the device, download.
/// Meant for checking and for callers without a GPU pipeline; code that keeps data on the GPU should call
/// dskit::cuda::softmax_rows on device pointers and skip the two copies.
template <>
struct kernel<ops::tag::softmax, backend::cuda> {
    static void run(const_matrix_ref<float> in, matrix_ref<float> out)
    {
        require_same_shape("ops::softmax_rows", in, out);
        if (in.rows() > INT_MAX || in.cols() > INT_MAX)
            throw_shape("ops::softmax_rows", "at most " + std::to_string(INT_MAX) + " rows and columns on CUDA",
                        shape_of(in));
        if (in.size() == 0) return;
        const int rows = static_cast<int>(in.rows());
        const int cols = static_cast<int>(in.cols());
        cuda::device_matrix<float> d(in);
        cuda::softmax_rows(d.data(), d.data(), rows, cols, cols, cols);
        d.download(out);
    }
};

} // namespace dskit::detail
