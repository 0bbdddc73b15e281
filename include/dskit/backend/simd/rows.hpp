// Row loops for the simd backend: partial loads and stores for row tails, non-temporal stores for
// large outputs, and the element-wise driver every activation uses.
//
// Tails are computed by the same vector code as the body, through a small padded buffer, so an
// element's result does not depend on where in its row it sits.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/backend/simd/math.hpp"
#include "dskit/config.hpp"
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
    // xsimd's AVX-512 tags derive from generic, not from avx: each family is asked for by name.
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return 64;
#endif
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
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        _mm512_stream_ps(p, v);
        return;
    }
#endif
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

/// Whether large outputs of slow element-wise functions (SiLU, GELU) are streamed too (map_rows). Not with
/// AVX-512: measured on Zen 4, where one line is one vector, SiLU took 6.3 ms with ordinary stores, 8.5 ms
/// streamed directly and 9.6 ms through a chunk (4096 x 4096, one core); exp and softmax still gain from
/// streaming there (softmax 10.2 -> 8.9 ms).
template <class Arch>
constexpr bool stream_slow_results() noexcept
{
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return false;
#endif
    return stream_alignment<Arch>() != 0;
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
void write_row(float* y, index_t n, bool stream, G&& g_in)
{
    // A local copy of the generator, whose captures should be values (DSKIT_LAMBDA_INLINE too): the store
    // intrinsics may alias anything, so with g only referenced, or capturing by reference, the compiler
    // reloaded captures and constants after every store (exp: 7.1 against 5.7 ms for 4096 x 4096 on one
    // core, Zen 4); the copy's address never escapes.
    auto g = g_in;
    constexpr index_t L = lanes_v<Arch>;
    index_t j = 0;
    if (stream && stream_alignment<Arch>() != 0) {
        // Whole 64-byte lines: every vector of a line is computed first, then the line's non-temporal
        // stores go out back to back. Spread over a slow computation (SiLU), half-written lines leave the
        // write-combining buffers early and cost a read-modify-write each (measured 40% slower than cached
        // stores); a line at a time they combine.
        constexpr index_t per_line = std::max<index_t>(1, 64 / static_cast<index_t>(sizeof(float)) / L);
        constexpr auto line = static_cast<std::uintptr_t>(64);
        const auto addr = reinterpret_cast<std::uintptr_t>(y);
        if (addr % sizeof(float) == 0) {
            const index_t head = std::min(n, static_cast<index_t>(((line - addr % line) % line) / sizeof(float)));
            for (; j + L <= head; j += L) g(j, L).store_unaligned(y + j);
            if (j < head) {
                store_n<Arch>(y + j, g(j, head - j), head - j);
                j = head;
            }
            for (; j + per_line * L <= n; j += per_line * L) {
                xsimd::batch<float, Arch> v[per_line];
                for (index_t b = 0; b < per_line; ++b) v[b] = g(j + b * L, L);
                for (index_t b = 0; b < per_line; ++b) store_stream<Arch>(y + j + b * L, v[b]);
            }
            stream_fence<Arch>();
        }
    }
    for (; j + L <= n; j += L) g(j, L).store_unaligned(y + j);
    if (j < n) store_n<Arch>(y + j, g(j, n - j), n - j);
}

/// out = f(in) element by element, rows in parallel; f maps a batch to a batch.
/// `work_per_element` (rough cycles) decides whether threads are worth starting.
///
/// Streamed (large) outputs: a cheap f (exp, work <= 4) streams each line as it is computed. A slow f
/// (SiLU, GELU) interleaved with non-temporal stores stalled on the write-combining buffers (SiLU 40%
/// slower than with cached stores), so its results go through an L1-sized chunk with ordinary stores
/// first and a tight loop streams the chunk out (measured on Zen 3: exp 11 ms direct vs 14 ms chunked,
/// SiLU 28 ms direct vs 18 ms chunked, for 4096 x 4096 on one core). Where stream_slow_results<Arch>() is
/// false, a slow f keeps ordinary stores.
template <class Arch, class F>
void map_rows(const const_matrix_ref<float>& in, matrix_ref<float>& out, F f, double work_per_element)
{
    constexpr index_t L = lanes_v<Arch>;
    constexpr index_t chunk = 1024; // floats: 4 KiB, in L1 with its input
    const bool stream = use_stream<Arch>(out, in.data()) && (work_per_element <= 4.0 || stream_slow_results<Arch>());
    const index_t cols = in.cols();
    parallel_for(
        in.rows(),
        [&](index_t i) {
            const float* x = in.data() + i * in.outerStride();
            float* y = out.data() + i * out.outerStride();
            if (!stream || work_per_element <= 4.0) {
                // Captures by value, so that write_row's copy of the generator holds them (see write_row).
                write_row<Arch>(y, cols, stream,
                                [x, f](index_t j, index_t c) DSKIT_LAMBDA_INLINE { return f(load_n<Arch>(x + j, c)); });
                return;
            }
            alignas(64) float buf[chunk];
            for (index_t j0 = 0; j0 < cols; j0 += chunk) {
                const index_t n = std::min(chunk, cols - j0);
                index_t j = 0;
                for (; j + L <= n; j += L)
                    f(xsimd::batch<float, Arch>::load_unaligned(x + j0 + j)).store_aligned(buf + j);
                if (j < n) store_n<Arch>(buf + j, f(load_n<Arch>(x + j0 + j, n - j)), n - j);
                write_row<Arch>(y + j0, n, true,
                                [src = static_cast<const float*>(buf)](index_t k, index_t c)
                                    DSKIT_LAMBDA_INLINE { return load_n<Arch>(src + k, c); });
            }
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

/// row[j] = e^(row[j] - m) in place for j in [0, n), where every row[j] <= m (or -inf, which gives 0); returns
/// the sum. The step of an online softmax (attention, decoding).
template <class Arch>
float exp_shifted_sum(float* row, index_t n, float m) noexcept
{
    using F = xsimd::batch<float, Arch>;
    constexpr index_t L = lanes_v<Arch>;
    const F mb(m);
    F sum(0.0f);
    index_t j = 0;
    for (; j + L <= n; j += L) {
        const F e = simd::exp_nonpositive(F::load_unaligned(row + j) - mb);
        e.store_unaligned(row + j);
        sum += e;
    }
    if (j < n) {
        const F e = simd::exp_nonpositive(load_n<Arch>(row + j, n - j, -std::numeric_limits<float>::infinity()) - mb);
        store_n<Arch>(row + j, e, n - j);
        sum += e;
    }
    return xsimd::hadd(sum);
}

} // namespace dskit::detail::simd
