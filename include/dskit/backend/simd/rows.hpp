// Row loops for the simd backend: partial loads and stores for row tails, non-temporal stores for
// large outputs, and the element-wise driver every activation uses.
//
// Tails are computed by the same vector code as the body, through a small padded buffer, so an
// element's result does not depend on where in its row it sits.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail::simd {

template <class Arch>
inline constexpr index_t lanes_v = static_cast<index_t>(xsimd::batch<float, Arch>::size);

/// Loads `count` (<= lanes) floats from p; the remaining lanes hold `pad`.
template <class Arch>
xsimd::batch<float, Arch> load_n(const float* p, index_t count, float pad = 0.0f) noexcept
{
    using F = xsimd::batch<float, Arch>;
    if (count == lanes_v<Arch>) return F::load_unaligned(p);
    alignas(64) float buf[F::size];
    for (index_t i = 0; i < lanes_v<Arch>; ++i) buf[i] = i < count ? p[i] : pad;
    return F::load_aligned(buf);
}

/// Stores the first `count` (<= lanes) lanes of v to p.
template <class Arch>
void store_n(float* p, const xsimd::batch<float, Arch>& v, index_t count) noexcept
{
    if (count == lanes_v<Arch>) {
        v.store_unaligned(p);
        return;
    }
    alignas(64) float buf[xsimd::batch<float, Arch>::size];
    v.store_aligned(buf);
    std::copy(buf, buf + count, p);
}

/// Alignment (bytes) that non-temporal stores need on this architecture; 0 if there are none.
template <class Arch>
constexpr std::size_t stream_alignment() noexcept
{
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, Arch>) return 32;
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) return 16;
#endif
    return 0;
}

/// Non-temporal store of v to p (aligned to stream_alignment<Arch>()). Writing a large output this
/// way skips reading every destination line into the cache first, a third of the memory traffic
/// of an element-wise kernel.
template <class Arch>
void store_stream(float* p, const xsimd::batch<float, Arch>& v) noexcept
{
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
        _mm256_stream_ps(p, v);
        return;
    }
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) {
        _mm_stream_ps(p, v);
        return;
    }
#endif
    v.store_unaligned(p);
}

/// Makes the non-temporal stores of this thread visible before it moves on.
template <class Arch>
void stream_fence() noexcept
{
#if XSIMD_WITH_SSE2
    if constexpr (stream_alignment<Arch>() != 0) _mm_sfence();
#endif
}

/// Outputs at least this large go around the cache: they would evict the inputs of the next
/// operation anyway, and the stores save the read-for-ownership traffic.
inline constexpr std::size_t stream_threshold_bytes = std::size_t(8) << 20;

/// Whether an output of this size, written from `in` (nullptr: no input), should be streamed.
/// In-place calls never stream (the lines are in cache from the read).
template <class Arch>
bool use_stream(const matrix_ref<float>& out, const float* in) noexcept
{
    const auto bytes = static_cast<std::size_t>(out.rows()) * static_cast<std::size_t>(out.cols()) * sizeof(float);
    return stream_alignment<Arch>() != 0 && bytes >= stream_threshold_bytes && out.data() != in;
}

/// Writes y[0, n) from g(j, count), which returns the batch for positions [j, j + count)
/// (count < lanes only at the row's head or tail). With `stream`, the aligned body of the row is
/// written with non-temporal stores.
template <class Arch, class G>
void write_row(float* y, index_t n, bool stream, G&& g)
{
    constexpr index_t L = lanes_v<Arch>;
    index_t j = 0;
    if (stream && stream_alignment<Arch>() != 0) {
        constexpr auto align = static_cast<std::uintptr_t>(stream_alignment<Arch>());
        const auto addr = reinterpret_cast<std::uintptr_t>(y);
        const index_t head = std::min(n, static_cast<index_t>(((align - addr % align) % align) / sizeof(float)));
        if (addr % sizeof(float) == 0) {
            if (head > 0) store_n<Arch>(y, g(index_t(0), head), head);
            j = head;
            for (; j + L <= n; j += L) store_stream<Arch>(y + j, g(j, L));
            stream_fence<Arch>();
        }
    }
    for (; j + L <= n; j += L) g(j, L).store_unaligned(y + j);
    if (j < n) store_n<Arch>(y + j, g(j, n - j), n - j);
}

/// out = f(in) element by element, rows in parallel; f maps a batch to a batch.
/// `work_per_element` (rough cycles) decides whether threads are worth starting.
template <class Arch, class F>
void map_rows(const const_matrix_ref<float>& in, matrix_ref<float>& out, F f, double work_per_element)
{
    const bool stream = use_stream<Arch>(out, in.data());
    const index_t cols = in.cols();
    parallel_for(
        in.rows(),
        [&](index_t i) {
            const float* x = in.data() + i * in.outerStride();
            float* y = out.data() + i * out.outerStride();
            write_row<Arch>(y, cols, stream, [&](index_t j, index_t c) { return f(load_n<Arch>(x + j, c)); });
        },
        static_cast<double>(cols) * work_per_element);
}

/// A per-thread scratch row of at least n floats (reused across calls).
inline float* scratch_row(index_t n)
{
    thread_local std::vector<float> buf;
    if (buf.size() < static_cast<std::size_t>(n)) buf.resize(static_cast<std::size_t>(n));
    return buf.data();
}

} // namespace dskit::detail::simd
