// One t-SNE gradient-descent step of all points: delta-bar-delta gains, momentum, per-point step clipping,
// then the embedding re-centred. Serial: the whole step of a digits iteration (3594 coordinates) is a few
// microseconds, where waking the thread team for it cost ~15 us.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "dskit/core/matrix.hpp"
#include "dskit/manifold/tsne_gradient_sum.hpp"

namespace dskit::detail {

/// Step of coordinates [0, m) of the flat arrays (rows of D): gains grow by 0.2 while the step keeps
/// opposing the gradient's sign, else shrink by 0.8 down to min_gain; update = momentum update - rate gain
/// grad; each point's update clipped to norm max_step_norm (when > 0); y += update. Selects, not branches:
/// the signs flip unpredictably.
template <int D>
void tsne_step_rows(const double* grad, double* update, double* gains, double* y, std::size_t begin, std::size_t end,
                    double momentum, double rate, double min_gain, double max_step_norm) noexcept
{
    for (std::size_t e = begin; e < end; ++e) {
        const double g = grad[e], grown = gains[e] + 0.2, shrunk = std::max(gains[e] * 0.8, min_gain);
        const double gain = (g > 0.0) != (update[e] > 0.0) ? grown : shrunk;
        gains[e] = gain;
        update[e] = momentum * update[e] - rate * gain * g;
    }
    if (max_step_norm > 0.0)
        for (std::size_t i = begin / D; i < end / D; ++i) { // begin and end are whole rows
            double* u = update + i * D;
            double step2 = 0.0;
            for (int c = 0; c < D; ++c) step2 += u[c] * u[c];
            if (step2 > max_step_norm * max_step_norm) {
                const double scale = max_step_norm / std::sqrt(step2);
                for (int c = 0; c < D; ++c) u[c] *= scale;
            }
        }
    for (std::size_t e = begin; e < end; ++e) y[e] += update[e];
}

#if XSIMD_WITH_SSE2
/// Lane l takes lane l ^ 1: x and y of a 2-D point trade places.
struct swap_pair_lanes {
    static constexpr std::uint64_t get(std::size_t i, std::size_t) { return static_cast<std::uint64_t>(i ^ 1u); }
};
#endif

/// tsne_step_rows for 2-D in double vectors of whole points (one pass: gains, update, clip, y), adding the
/// new coordinates to sum (x, y); returns where it stopped (a multiple of the vector width; the rest is left
/// to tsne_step_rows). Written out because GCC 12 left the clipping loop scalar and branchy, and the mean
/// summed in a separate latency-bound pass.
inline std::size_t tsne_step_rows_2d(const double* grad, double* update, double* gains, double* y, std::size_t m,
                                     double momentum, double rate, double min_gain, double max_step_norm,
                                     double (&sum)[2]) noexcept
{
#if XSIMD_WITH_SSE2
    using B = xsimd::batch<double>;
    constexpr std::size_t w = B::size;
    const B mom(momentum), r(rate), lo(min_gain), zero(0.0), one(1.0), cap(max_step_norm);
    const B cap2(max_step_norm * max_step_norm);
    const bool clip = max_step_norm > 0.0;
    const auto swap = xsimd::make_batch_constant<xsimd::batch<std::uint64_t>, swap_pair_lanes>();
    B acc(0.0);
    std::size_t e = 0;
    for (; e + w <= m; e += w) {
        const B g = B::load_unaligned(grad + e), old = B::load_unaligned(gains + e);
        B u = B::load_unaligned(update + e);
        // Signs compared as values: xsimd 8.1's != on SSE2 masks and ^ on AVX-512 masks of doubles give
        // wrong lanes.
        const auto opposite = xsimd::select(g > zero, one, zero) != xsimd::select(u > zero, one, zero);
        const B gain = xsimd::select(opposite, old + B(0.2), xsimd::max(old * B(0.8), lo));
        gain.store_unaligned(gains + e);
        u = mom * u - r * gain * g;
        if (clip) {
            const B sq = u * u;
            const B step2 = sq + xsimd::swizzle(sq, swap); // x² + y² in both lanes of a point
            const auto over = step2 > cap2;
            if (xsimd::any(over)) u = xsimd::select(over, u * (cap / xsimd::sqrt(step2)), u); // sqrt, / are slow
        }
        u.store_unaligned(update + e);
        const B yn = B::load_unaligned(y + e) + u;
        yn.store_unaligned(y + e);
        acc += yn;
    }
    alignas(64) double lanes[w];
    acc.store_aligned(lanes);
    for (std::size_t l = 0; l < w; ++l) sum[l % 2] += lanes[l]; // lanes alternate x, y
    return e;
#else
    (void)grad, (void)update, (void)gains, (void)y, (void)m, (void)momentum, (void)rate, (void)min_gain,
        (void)max_step_norm, (void)sum;
    return 0;
#endif
}

/// One gradient-descent step of all n points (D coordinates each, rows contiguous), then y re-centred
/// (its mean summed in a fixed order: the same whatever the thread count).
template <int D>
void tsne_step(const double* grad, double* update, double* gains, double* y, index_t n, double momentum, double rate,
               double min_gain, double max_step_norm) noexcept
{
    const auto m = static_cast<std::size_t>(n * D);
    double mean[D];
    if constexpr (D == 2) {
        double sum[2] = {0.0, 0.0};
        const std::size_t done =
            tsne_step_rows_2d(grad, update, gains, y, m, momentum, rate, min_gain, max_step_norm, sum);
        tsne_step_rows<D>(grad, update, gains, y, done, m, momentum, rate, min_gain, max_step_norm);
        for (std::size_t e = done; e < m; ++e) sum[e % 2] += y[e];
        for (int c = 0; c < D; ++c) mean[c] = sum[c] / static_cast<double>(n);
    } else {
        tsne_step_rows<D>(grad, update, gains, y, 0, m, momentum, rate, min_gain, max_step_norm);
        for (int c = 0; c < D; ++c)
            mean[c] = strided_sum4(y + c, static_cast<std::size_t>(n), D) / static_cast<double>(n);
    }
    for (index_t i = 0; i < n; ++i)
        for (int c = 0; c < D; ++c) y[i * D + c] -= mean[c];
}

} // namespace dskit::detail
