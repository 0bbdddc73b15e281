// Decode attention on the simd backend: a few new queries against a long key/value cache, split over
// the cache (flash-decoding).
//
// Tasks are (K/V head, chunk of `decode_chunk` keys). Each task reads its chunk of K and V once for
// every query row that uses that K/V head (all new tokens times the query heads of the group, so
// grouped-query attention reads the cache once, not once per query head) and leaves a partial
// result per row: the chunk's score maximum m, its weight sum l and its weighted value sum o. The
// partials are then merged in chunk order, O = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c. The
// chunk size is fixed, never derived from the thread count, so the result is bit-identical for any
// number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dskit/attention/policy.hpp"
#include "dskit/backend/simd/math.hpp"
#include "dskit/backend/simd/rows.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::ops::tag {
struct attention_decode {};
} // namespace dskit::ops::tag

namespace dskit::detail {

/// Keys per decode task: large enough that a task's fixed costs vanish, small enough that a cache of a
/// few thousand keys still gives every thread several tasks.
inline constexpr index_t decode_chunk = 256;

template <class Arch>
struct kernel<ops::tag::attention_decode, backend::simd<Arch>> {
    template <class Mod>
    static void run(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                    index_t kv_heads, matrix_ref<float> out, const Mod& mod, float scale)
    {
        constexpr float neg_inf = -std::numeric_limits<float>::infinity();
        const index_t t_new = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
        const index_t rows = t_new * group;     // query rows per K/V head: r = hh * t_new + t
        const index_t dp = (d + L - 1) / L * L; // d padded to whole batches
        const index_t nb = dp / L;              // batches per row
        const index_t chunks = (len + decode_chunk - 1) / decode_chunk;
        const index_t tasks = kv_heads * chunks;
        if (len == 0) {
            out.setZero();
            return;
        }

        std::vector<float> part_m(static_cast<std::size_t>(tasks * rows)), part_l(part_m.size());
        std::vector<float> part_o(part_m.size() * static_cast<std::size_t>(dp));

        parallel_for(
            tasks,
            [&](index_t task) {
                const index_t g = task / chunks, c = task % chunks;
                const index_t j0 = c * decode_chunk, cn = std::min(decode_chunk, len - j0);
                thread_local std::vector<float> scratch;
                const auto need = static_cast<std::size_t>(rows * (dp + decode_chunk + dp));
                if (scratch.size() < need) scratch.resize(need);
                float* qs = scratch.data();         // [rows, dp] scaled queries
                float* s = qs + rows * dp;          // [rows, decode_chunk] scores
                float* o = s + rows * decode_chunk; // [rows, dp] value sums
                float* pm = part_m.data() + task * rows;
                float* pl = part_l.data() + task * rows;
                float* po = part_o.data() + task * rows * dp;

                // Chunks that every query of the group has masked cost nothing.
                bool any = false;
                for (index_t hh = 0; hh < group && !any; ++hh) {
                    const attention_mods::key_range kr = mod.keys(g * group + hh, 0, t_new, len);
                    any = kr.begin < j0 + cn && kr.end > j0;
                }
                if (!any) {
                    std::fill(pm, pm + rows, neg_inf);
                    std::fill(pl, pl + rows, 0.0f);
                    std::fill(po, po + rows * dp, 0.0f);
                    return;
                }

                for (index_t hh = 0; hh < group; ++hh)
                    for (index_t t = 0; t < t_new; ++t) {
                        const float* src = q.data() + t * q.outerStride() + (g * group + hh) * d;
                        float* dst = qs + (hh * t_new + t) * dp;
                        for (index_t e = 0; e < d; ++e) dst[e] = src[e] * scale;
                        std::fill(dst + d, dst + dp, 0.0f);
                    }

                // Scores, per query row: L keys at a time, each key's dot product in its own accumulator
                // (independent FMA chains), the L sums gathered into one batch by haddp.
                const float* kc = k.data() + j0 * k.outerStride() + g * d;
                const index_t ldk = k.outerStride();
                for (index_t r = 0; r < rows; ++r) {
                    const float* qr = qs + r * dp;
                    float* sr = s + r * decode_chunk;
                    index_t j = 0;
                    for (; j + L <= cn; j += L) {
                        F acc[L];
                        for (index_t t = 0; t < L; ++t) acc[t] = dot(qr, kc + (j + t) * ldk, d);
                        simd::haddp<Arch>(acc).store_unaligned(sr + j);
                    }
                    for (; j < cn; ++j) sr[j] = xsimd::hadd(dot(qr, kc + j * ldk, d));
                }
                for (index_t hh = 0; hh < group; ++hh)
                    mod.apply(g * group + hh, 0, j0, t_new, cn, s + hh * t_new * decode_chunk, decode_chunk);

                // Per row: chunk maximum, weights in place, their sum.
                for (index_t r = 0; r < rows; ++r) {
                    float* sr = s + r * decode_chunk;
                    float m = neg_inf;
                    for (index_t j = 0; j < cn; ++j) m = std::max(m, sr[j]);
                    pm[r] = m;
                    if (m == neg_inf) { // the whole chunk is masked for this row, or its scores are NaN
                        pl[r] = any_nan(sr, cn) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
                        std::fill(sr, sr + cn, 0.0f);
                        continue;
                    }
                    pl[r] = simd::exp_shifted_sum<Arch>(sr, cn, m);
                }

                // Value sums, per query row: up to 8 batches of the output row stay in registers while the
                // chunk's value rows stream past (d = 64 in one sweep, d = 128 in two).
                const float* vc = v.data() + j0 * v.outerStride() + g * d;
                for (index_t r = 0; r < rows; ++r)
                    for (index_t b0 = 0; b0 < nb; b0 += 8)
                        value_sweep(std::min<index_t>(8, nb - b0), s + r * decode_chunk, cn, vc, v.outerStride(),
                                    b0 * L, d, o + r * dp + b0 * L);
                std::copy(o, o + rows * dp, po);
            },
            static_cast<double>(decode_chunk) * static_cast<double>(rows * d) * 4.0);

        // Merge the chunks of every row in chunk order.
        parallel_for(
            kv_heads * rows,
            [&](index_t gr) {
                const index_t g = gr / rows, r = gr % rows, hh = r / t_new, t = r % t_new;
                float* dst = out.data() + t * out.outerStride() + (g * group + hh) * d;
                float mx = neg_inf;
                bool nan = false; // NaN scores (NaN in the inputs): a NaN row, as the other kernels give
                for (index_t c = 0; c < chunks; ++c) {
                    const auto idx = static_cast<std::size_t>((g * chunks + c) * rows + r);
                    mx = std::max(mx, part_m[idx]);
                    nan = nan || part_l[idx] != part_l[idx];
                }
                if (nan) {
                    std::fill(dst, dst + d, std::numeric_limits<float>::quiet_NaN());
                    return;
                }
                if (mx == neg_inf) { // every key masked: zeros, as the other kernels give
                    std::fill(dst, dst + d, 0.0f);
                    return;
                }
                thread_local std::vector<float> acc;
                acc.assign(static_cast<std::size_t>(dp), 0.0f);
                float den = 0.0f;
                for (index_t c = 0; c < chunks; ++c) {
                    const auto idx = static_cast<std::size_t>((g * chunks + c) * rows + r);
                    if (part_m[idx] == neg_inf) continue;
                    const float w = std::exp(part_m[idx] - mx);
                    den += w * part_l[idx];
                    const float* po = part_o.data() + idx * static_cast<std::size_t>(dp);
                    for (index_t e = 0; e < dp; e += L)
                        xsimd::fma(F(w), F::load_unaligned(po + e), F::load_unaligned(acc.data() + e))
                            .store_unaligned(acc.data() + e);
                }
                const float inv = 1.0f / den;
                for (index_t e = 0; e < d; ++e) dst[e] = acc[static_cast<std::size_t>(e)] * inv;
            },
            static_cast<double>(chunks * d));
    }

private:
    using F = xsimd::batch<float, Arch>;
    static constexpr index_t L = simd::lanes_v<Arch>;

    /// Lane-wise partial sums of q . k over d features (q is zero-padded to whole batches, k is not).
    static F dot(const float* q, const float* k, index_t d) noexcept
    {
        F a0(0.0f), a1(0.0f);
        index_t e = 0;
        for (; e + 2 * L <= d; e += 2 * L) {
            a0 = xsimd::fma(F::load_unaligned(q + e), F::load_unaligned(k + e), a0);
            a1 = xsimd::fma(F::load_unaligned(q + e + L), F::load_unaligned(k + e + L), a1);
        }
        for (; e < d; e += L)
            a0 = xsimd::fma(F::load_unaligned(q + e), simd::load_n<Arch>(k + e, std::min(L, d - e)), a0);
        return a0 + a1;
    }

    /// o[e0 + c] = sum_j p[j] v[j][e0 + c] for the `batches` batches from feature e0 (batches <= 8).
    static void value_sweep(index_t batches, const float* p, index_t cn, const float* v, index_t ldv, index_t e0,
                            index_t d, float* o)
    {
        switch (batches) {
        case 8:
            return value_sweep_n<8>(p, cn, v, ldv, e0, d, o);
        case 7:
            return value_sweep_n<7>(p, cn, v, ldv, e0, d, o);
        case 6:
            return value_sweep_n<6>(p, cn, v, ldv, e0, d, o);
        case 5:
            return value_sweep_n<5>(p, cn, v, ldv, e0, d, o);
        case 4:
            return value_sweep_n<4>(p, cn, v, ldv, e0, d, o);
        case 3:
            return value_sweep_n<3>(p, cn, v, ldv, e0, d, o);
        case 2:
            return value_sweep_n<2>(p, cn, v, ldv, e0, d, o);
        default:
            return value_sweep_n<1>(p, cn, v, ldv, e0, d, o);
        }
    }

    template <index_t B>
    static void value_sweep_n(const float* p, index_t cn, const float* v, index_t ldv, index_t e0, index_t d, float* o)
    {
        F acc[B];
        for (index_t b = 0; b < B; ++b) acc[b] = F(0.0f);
        // Only the last batch of a row may be partial (d not a multiple of the lane count).
        const index_t tail = std::min(L, d - e0 - (B - 1) * L);
        for (index_t j = 0; j < cn; ++j) {
            const F pj(p[j]);
            const float* vr = v + j * ldv + e0;
            for (index_t b = 0; b + 1 < B; ++b) acc[b] = xsimd::fma(pj, F::load_unaligned(vr + b * L), acc[b]);
            acc[B - 1] = xsimd::fma(pj, simd::load_n<Arch>(vr + (B - 1) * L, tail), acc[B - 1]);
        }
        for (index_t b = 0; b < B; ++b) acc[b].store_unaligned(o + b * L);
    }
};

} // namespace dskit::detail
