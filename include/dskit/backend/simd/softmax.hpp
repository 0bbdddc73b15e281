// Row softmax on the simd backend.
//
// Per row: one pass for the maximum, one for e^(x - max) into a scratch row plus their sum, one
// that scales the scratch row into the output (non-temporal stores for large outputs). The row
// is in L1 for the second and third passes, so the memory traffic is one read and one write.
#pragma once

#include <limits>

#include "dskit/backend/simd/math.hpp"
#include "dskit/backend/simd/rows.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/config.hpp"

namespace dskit::detail {

template <class Arch>
struct kernel<ops::tag::softmax, backend::simd<Arch>> {
    static void run(const_matrix_ref<float> in, matrix_ref<float> out)
    {
        using F = xsimd::batch<float, Arch>;
        constexpr index_t L = simd::lanes_v<Arch>;
        constexpr float neg_inf = -std::numeric_limits<float>::infinity();
        const index_t n = in.cols();
        const bool stream = simd::use_stream<Arch>(out, in.data());
        parallel_for(
            in.rows(),
            [&](index_t i) {
                const float* x = in.data() + i * in.outerStride();
                float* y = out.data() + i * out.outerStride();
                // Pass 1: the row maximum, four independent accumulators.
                F m0(neg_inf), m1(neg_inf), m2(neg_inf), m3(neg_inf);
                index_t j = 0;
                for (; j + 4 * L <= n; j += 4 * L) {
                    m0 = xsimd::max(m0, F::load_unaligned(x + j));
                    m1 = xsimd::max(m1, F::load_unaligned(x + j + L));
                    m2 = xsimd::max(m2, F::load_unaligned(x + j + 2 * L));
                    m3 = xsimd::max(m3, F::load_unaligned(x + j + 3 * L));
                }
                for (; j + L <= n; j += L) m0 = xsimd::max(m0, F::load_unaligned(x + j));
                if (j < n) m1 = xsimd::max(m1, simd::load_n<Arch>(x + j, n - j, neg_inf));
                const float m = simd::reduce_max(xsimd::max(xsimd::max(m0, m1), xsimd::max(m2, m3)));
                if (m == neg_inf) {
                    // Every entry is -inf (or NaN): no weight anywhere. Zeros, unless NaN must show.
                    bool nan = false;
                    for (index_t k = 0; k < n; ++k) nan = nan || x[k] != x[k];
                    std::fill(y, y + n, nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
                    return;
                }
                // Pass 2: e = exp(x - m) into scratch, and the sum.
                float* e = simd::scratch_row(n);
                const F mb(m);
                // One batch per step: exp needs most vector registers for its constants, and unrolling
                // it spills them (measured slower). The sum: a plain running sum per chunk of 8 batches
                // (one add per batch on the loop-carried path), folded into a compensated (Kahan) total
                // after each chunk. One Kahan chain per batch made its four dependent adds, not exp or
                // memory, the bottleneck; a plain sum over the whole row loses ~1e-6 relative on rows
                // of thousands of entries. Chunked, the error stays at the float rounding of e.
                F sum(0.0f), comp(0.0f), acc(0.0f);
                const auto fold = [&] {
                    const F v = acc - comp;
                    const F t = sum + v;
                    comp = (t - sum) - v;
                    sum = t;
                    acc = F(0.0f);
                };
                // Passes 2 and 3 touch only L1, so the memory would idle while they compute: fetch the
                // next row meanwhile (pass 1 of the next row then finds it in cache).
                const float* next = i + 1 < in.rows() ? x + in.outerStride() : nullptr;
                const auto step = [&](index_t k) {
                    if (next && k % 16 == 0) DSKIT_PREFETCH(next + k);
                    const F e0 = simd::exp(F::load_unaligned(x + k) - mb);
                    e0.store_unaligned(e + k);
                    acc += e0;
                };
                j = 0;
                for (; j + 8 * L <= n; fold())
                    for (int b = 0; b < 8; ++b, j += L) step(j);
                for (; j + L <= n; j += L) step(j);
                if (j < n) {
                    const F e0 = simd::exp(simd::load_n<Arch>(x + j, n - j, neg_inf) - mb); // padding gives 0
                    simd::store_n<Arch>(e + j, e0, n - j);
                    acc += e0;
                }
                fold();
                const F inv(1.0f / xsimd::hadd(sum - comp));
                // Pass 3: scale into the output.
                simd::write_row<Arch>(y, n, stream,
                                      [&](index_t k, index_t c) { return simd::load_n<Arch>(e + k, c) * inv; });
            },
            static_cast<double>(n) * 8.0);
    }
};

} // namespace dskit::detail
