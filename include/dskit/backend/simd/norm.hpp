// RMSNorm and LayerNorm on the simd backend. Statistics are accumulated in float over
// 4 x lanes independent partial sums (more accurate than one running sum, and faster).
#pragma once

#include <cmath>
#include <span>

#include "dskit/backend/simd/rows.hpp"
#include "dskit/backend/tags.hpp"

namespace dskit::detail {

namespace simd {
/// Sum over the row of f(x) for a batch function f (padding lanes must map to 0).
template <class Arch, class Fn>
float row_sum(const float* x, index_t n, Fn f) noexcept
{
    using F = xsimd::batch<float, Arch>;
    constexpr index_t L = lanes_v<Arch>;
    F s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    index_t j = 0;
    for (; j + 4 * L <= n; j += 4 * L) {
        s0 += f(F::load_unaligned(x + j));
        s1 += f(F::load_unaligned(x + j + L));
        s2 += f(F::load_unaligned(x + j + 2 * L));
        s3 += f(F::load_unaligned(x + j + 3 * L));
    }
    for (; j + L <= n; j += L) s0 += f(F::load_unaligned(x + j));
    if (j < n) s1 += f(load_n<Arch>(x + j, n - j)); // padding lanes are 0 and f(0) = 0
    return xsimd::hadd((s0 + s1) + (s2 + s3));
}
} // namespace simd

template <class Arch>
struct kernel<ops::tag::rms_norm, backend::simd<Arch>> {
    static void run(const_matrix_ref<float> in, std::span<const float> weight, float eps, matrix_ref<float> out)
    {
        using F = xsimd::batch<float, Arch>;
        const index_t n = in.cols();
        const bool stream = simd::use_stream<Arch>(out, in.data());
        const float* w = weight.empty() ? nullptr : weight.data();
        parallel_for(
            in.rows(),
            [&](index_t i) {
                const float* x = in.data() + i * in.outerStride();
                float* y = out.data() + i * out.outerStride();
                const float ss = simd::row_sum<Arch>(x, n, [](const F& v) { return v * v; });
                const F r(1.0f / std::sqrt(ss / static_cast<float>(n) + eps));
                if (w)
                    simd::write_row<Arch>(y, n, stream, [=](index_t j, index_t c) DSKIT_LAMBDA_INLINE {
                        return (simd::load_n<Arch>(x + j, c) * r) * simd::load_n<Arch>(w + j, c);
                    });
                else
                    simd::write_row<Arch>(y, n, stream, [=](index_t j, index_t c) DSKIT_LAMBDA_INLINE {
                        return simd::load_n<Arch>(x + j, c) * r;
                    });
            },
            static_cast<double>(n) * 3.0);
    }
};

template <class Arch>
struct kernel<ops::tag::layer_norm, backend::simd<Arch>> {
    static void run(const_matrix_ref<float> in, std::span<const float> weight, std::span<const float> bias, float eps,
                    matrix_ref<float> out)
    {
        using F = xsimd::batch<float, Arch>;
        const index_t n = in.cols();
        const bool stream = simd::use_stream<Arch>(out, in.data());
        const float* w = weight.empty() ? nullptr : weight.data();
        const float* b = bias.empty() ? nullptr : bias.data();
        parallel_for(
            in.rows(),
            [&](index_t i) {
                const float* x = in.data() + i * in.outerStride();
                float* y = out.data() + i * out.outerStride();
                // Two passes (mean, then squared deviations): no cancellation for rows with a large mean.
                const float mean = simd::row_sum<Arch>(x, n, [](const F& v) { return v; }) / static_cast<float>(n);
                const F mb(mean);
                constexpr index_t L = simd::lanes_v<Arch>;
                float var_sum = 0.0f;
                {
                    F s0(0.0f), s1(0.0f);
                    index_t j = 0;
                    for (; j + 2 * L <= n; j += 2 * L) {
                        const F d0 = F::load_unaligned(x + j) - mb, d1 = F::load_unaligned(x + j + L) - mb;
                        s0 = xsimd::fma(d0, d0, s0);
                        s1 = xsimd::fma(d1, d1, s1);
                    }
                    for (; j + L <= n; j += L) {
                        const F d0 = F::load_unaligned(x + j) - mb;
                        s0 = xsimd::fma(d0, d0, s0);
                    }
                    if (j < n) {
                        const F d = simd::load_n<Arch>(x + j, n - j, mean) - mb; // padding with the mean adds 0
                        s1 = xsimd::fma(d, d, s1);
                    }
                    var_sum = xsimd::hadd(s0 + s1);
                }
                const F r(1.0f / std::sqrt(var_sum / static_cast<float>(n) + eps));
                simd::write_row<Arch>(y, n, stream, [=](index_t j, index_t c) DSKIT_LAMBDA_INLINE {
                    F v = (simd::load_n<Arch>(x + j, c) - mb) * r;
                    if (w) v = v * simd::load_n<Arch>(w + j, c);
                    if (b) v = v + simd::load_n<Arch>(b + j, c);
                    return v;
                });
            },
            static_cast<double>(n) * 4.0);
    }
};

} // namespace dskit::detail
