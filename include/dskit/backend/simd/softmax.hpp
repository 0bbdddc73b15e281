// Row softmax on the simd backend.
//
// Per row: one pass for the maximum (and whether the whole row is in the range of exp's fast path),
// one for e^(x - max) into a scratch row plus their sum, one that scales the scratch row into the
// output. The row is in L1 for the second and third passes, so the memory traffic is one read and
// one write.
//
// Large outputs are written with non-temporal stores, and then the third pass of a row runs inside
// the second pass of the next one: its whole cache lines go out a few at a time between chunks of
// exp work instead of in one burst that would stall on the write-combining buffers while the exp
// units idle. The next row is prefetched during the second pass, so reads overlap the work as well.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "dskit/backend/simd/math.hpp"
#include "dskit/backend/simd/rows.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/config.hpp"

namespace dskit::detail {

template <class Arch>
struct kernel<ops::tag::softmax, backend::simd<Arch>> {
    using F = xsimd::batch<float, Arch>;
    static constexpr index_t L = simd::lanes_v<Arch>;
    static constexpr float inf = std::numeric_limits<float>::infinity();
    static constexpr float neg_inf = -inf;
    static constexpr index_t chunk = 8 * L;                                   // pass 2's unit
    static constexpr index_t line = 64 / static_cast<index_t>(sizeof(float)); // floats per line
    static constexpr index_t per_line = std::max<index_t>(1, line / L);       // batches per line

    struct row_scan {
        float max;
        bool in_range; // every x - max in (-86, 0]: exp's fast path holds for the whole row
    };

    // Pass 1: the row maximum and minimum, and whether the row is all finite (x - x is 0 for finite x,
    // NaN for inf and NaN); two independent sets of accumulators.
    static row_scan scan(const float* x, index_t n) noexcept
    {
        F mx0(neg_inf), mx1(neg_inf), mn0(inf), mn1(inf), bad0(0.0f), bad1(0.0f);
        index_t j = 0;
        for (; j + 2 * L <= n; j += 2 * L) {
            const F a = F::load_unaligned(x + j), b = F::load_unaligned(x + j + L);
            mx0 = xsimd::max(mx0, a);
            mx1 = xsimd::max(mx1, b);
            mn0 = xsimd::min(mn0, a);
            mn1 = xsimd::min(mn1, b);
            bad0 += a - a;
            bad1 += b - b;
        }
        for (; j < n; j += L) {
            const index_t c = std::min(L, n - j);
            mx0 = xsimd::max(mx0, simd::load_n<Arch>(x + j, c, neg_inf));
            mn0 = xsimd::min(mn0, simd::load_n<Arch>(x + j, c, inf));
            const F a = simd::load_n<Arch>(x + j, c, 0.0f);
            bad0 += a - a;
        }
        const float m = simd::reduce_max(xsimd::max(mx0, mx1));
        const bool finite = xsimd::hadd(bad0 + bad1) == 0.0f;
        return {m, finite && m - simd::reduce_min(xsimd::min(mn0, mn1)) < 86.0f};
    }

    // A row whose maximum is -inf: every entry is -inf (or NaN). No weight anywhere: zeros, unless NaN
    // must show.
    static void write_masked(const float* x, float* y, index_t n) noexcept
    {
        bool nan = false;
        for (index_t k = 0; k < n; ++k) nan = nan || x[k] != x[k];
        std::fill(y, y + n, nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
    }

    // Pass 2: e = exp(x - max) and 1 / their sum; after_chunk() runs after every `chunk` entries.
    // One batch per step: exp needs most vector registers for its constants, and unrolling it spills
    // them (measured slower). The sum: a plain running sum per chunk (one add per batch on the
    // loop-carried path), folded into a compensated (Kahan) total after each chunk. One Kahan chain per
    // batch made its four dependent adds, not exp or memory, the bottleneck; a plain sum over the whole
    // row loses ~1e-6 relative on rows of thousands of entries. Chunked, the error stays at the float
    // rounding of e.
    template <class Hook>
    static float exp_sum(const float* x, float* e, index_t n, row_scan s, const float* next, Hook&& after_chunk)
    {
        const F mb(s.max);
        F sum(0.0f), comp(0.0f), acc(0.0f);
        const auto fold = [&] {
            const F v = acc - comp;
            const F t = sum + v;
            comp = (t - sum) - v;
            sum = t;
            acc = F(0.0f);
        };
        index_t j = 0;
        const auto body = [&](auto exp_fn) {
            const auto step = [&](index_t k) {
                // Passes 2 and 3 touch only L1, so the memory would idle: fetch the next row meanwhile.
                if (next && k % line == 0) DSKIT_PREFETCH(next + k);
                const F e0 = exp_fn(F::load_unaligned(x + k) - mb);
                e0.store_unaligned(e + k);
                acc += e0;
            };
            for (; j + chunk <= n; after_chunk()) {
                for (index_t b = 0; b < chunk / L; ++b, j += L) step(j);
                fold();
            }
            for (; j + L <= n; j += L) step(j);
        };
        if (s.in_range)
            body([](const F& v) { return simd::exp_in_range<Arch>(v); });
        else
            body([](const F& v) { return simd::exp<Arch>(v); });
        if (j < n) {
            const F e0 = simd::exp(simd::load_n<Arch>(x + j, n - j, neg_inf) - mb); // padding gives 0
            simd::store_n<Arch>(e + j, e0, n - j);
            acc += e0;
        }
        fold();
        return 1.0f / xsimd::hadd(sum - comp);
    }

    // y[from, to) = e * inv with ordinary stores.
    static void scale_plain(float* y, const float* e, F inv, index_t from, index_t to) noexcept
    {
        index_t k = from;
        for (; k + L <= to; k += L) (F::load_unaligned(e + k) * inv).store_unaligned(y + k);
        if (k < to) simd::store_n<Arch>(y + k, simd::load_n<Arch>(e + k, to - k) * inv, to - k);
    }

    // Pass 3 of one row, a few whole lines at a time: y = e * inv, the 64-byte-aligned body with
    // non-temporal stores, the partial lines at both ends with ordinary ones.
    struct line_writer {
        float* y = nullptr;
        const float* e = nullptr;
        F inv;
        index_t pos = 0, body_end = 0, n = 0;

        void start(float* y_, const float* e_, float inv_, index_t n_) noexcept
        {
            y = y_;
            e = e_;
            inv = F(inv_);
            n = n_;
            const auto addr = reinterpret_cast<std::uintptr_t>(y);
            const index_t head = addr % sizeof(float) != 0
                                     ? n
                                     : std::min(n, static_cast<index_t>(((64 - addr % 64) % 64) / sizeof(float)));
            scale_plain(y, e, inv, 0, head);
            pos = head;
            body_end = head + (n - head) / line * line;
        }
        void advance(index_t lines) noexcept
        {
            if (!y) return;
            // Locals, not members: the non-temporal store intrinsics may alias anything, so members were
            // reloaded after every store.
            float* const out = y;
            const float* const src = e;
            const F scale = inv;
            index_t at = pos;
            const index_t end = body_end;
            for (index_t l = 0; l < lines && at < end; ++l, at += line) {
                F v[per_line];
                for (index_t b = 0; b < per_line; ++b) v[b] = F::load_unaligned(src + at + b * L) * scale;
                for (index_t b = 0; b < per_line; ++b) simd::store_stream<Arch>(out + at + b * L, v[b]);
            }
            pos = at;
        }
        void finish() noexcept
        {
            if (!y) return;
            advance(n);
            scale_plain(y, e, inv, body_end, n);
            y = nullptr;
        }
    };

    static void run(const_matrix_ref<float> in, matrix_ref<float> out)
    {
        const index_t n = in.cols(), rows = in.rows();
        const auto row_in = [&](index_t i) { return in.data() + i * in.outerStride(); };
        const auto row_out = [&](index_t i) { return out.data() + i * out.outerStride(); };
        if (!simd::use_stream<Arch>(out, in.data())) {
            parallel_for(
                rows,
                [&](index_t i) {
                    const float* x = row_in(i);
                    float* y = row_out(i);
                    const row_scan s = scan(x, n);
                    if (s.max == neg_inf) return write_masked(x, y, n);
                    float* e = simd::scratch_row(n);
                    const F inv(exp_sum(x, e, n, s, i + 1 < rows ? row_in(i + 1) : nullptr, [] {}));
                    simd::write_row<Arch>(y, n, false, [e, inv](index_t k, index_t c) DSKIT_LAMBDA_INLINE {
                        return simd::load_n<Arch>(e + k, c) * inv;
                    });
                },
                static_cast<double>(n) * 8.0);
            return;
        }
        // Streamed: blocks of rows per task, the pipeline restarting once per block. A row's result does
        // not depend on the blocking (or on the thread count).
        constexpr index_t block = 16;
        const index_t e_stride = (n + line - 1) / line * line;
        parallel_for((rows + block - 1) / block,
                     [&](index_t b) {
                         const index_t r0 = b * block, r1 = std::min(rows, r0 + block);
                         float* scratch = simd::scratch_row(2 * e_stride);
                         int buf = 0;
                         line_writer pending;
                         for (index_t i = r0; i < r1; ++i) {
                             const float* x = row_in(i);
                             float* y = row_out(i);
                             const row_scan s = scan(x, n);
                             if (s.max == neg_inf) {
                                 write_masked(x, y, n);
                                 continue;
                             }
                             float* e = scratch + buf * e_stride; // the other buffer may hold the pending row
                             const float inv = exp_sum(x, e, n, s, i + 1 < rows ? row_in(i + 1) : nullptr,
                                                       [&] { pending.advance(chunk / line); });
                             pending.finish();
                             pending.start(y, e, inv, n);
                             buf ^= 1;
                         }
                         pending.finish();
                         simd::stream_fence<Arch>();
                     },
                     static_cast<double>(n) * 8.0 * block);
    }
};

} // namespace dskit::detail
