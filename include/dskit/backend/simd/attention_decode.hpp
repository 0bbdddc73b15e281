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
        using F = xsimd::batch<float, Arch>;
        constexpr index_t L = simd::lanes_v<Arch>;
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

                // Scores: each key row is loaded once and used by every query row of the group.
                for (index_t j = 0; j < cn; ++j) {
                    const float* kr = k.data() + (j0 + j) * k.outerStride() + g * d;
                    for (index_t r = 0; r < rows; ++r) {
                        const float* qr = qs + r * dp;
                        F acc(0.0f);
                        for (index_t b = 0; b < nb; ++b) {
                            const index_t e = b * L;
                            acc = xsimd::fma(F::load_unaligned(qr + e), simd::load_n<Arch>(kr + e, std::min(L, d - e)),
                                             acc);
                        }
                        s[r * decode_chunk + j] = xsimd::hadd(acc);
                    }
                }
                for (index_t hh = 0; hh < group; ++hh)
                    mod.apply(g * group + hh, 0, j0, t_new, cn, s + hh * t_new * decode_chunk, decode_chunk);

                // Per row: chunk maximum, weights in place, their sum.
                for (index_t r = 0; r < rows; ++r) {
                    float* sr = s + r * decode_chunk;
                    float m = neg_inf;
                    for (index_t j = 0; j < cn; ++j) m = std::max(m, sr[j]);
                    pm[r] = m;
                    if (m == neg_inf) { // the whole chunk is masked for this row
                        std::fill(sr, sr + cn, 0.0f);
                        pl[r] = 0.0f;
                        continue;
                    }
                    const F mb(m);
                    F sum(0.0f);
                    index_t j = 0;
                    for (; j + L <= cn; j += L) {
                        const F p = simd::exp(F::load_unaligned(sr + j) - mb);
                        p.store_unaligned(sr + j);
                        sum += p;
                    }
                    if (j < cn) {
                        const F p = simd::exp(simd::load_n<Arch>(sr + j, cn - j, neg_inf) - mb);
                        simd::store_n<Arch>(sr + j, p, cn - j);
                        sum += p;
                    }
                    pl[r] = xsimd::hadd(sum);
                }

                // Value sums: each value row is loaded once for every query row.
                std::fill(o, o + rows * dp, 0.0f);
                for (index_t j = 0; j < cn; ++j) {
                    const float* vr = v.data() + (j0 + j) * v.outerStride() + g * d;
                    for (index_t b = 0; b < nb; ++b) {
                        const index_t e = b * L;
                        const F vb = simd::load_n<Arch>(vr + e, std::min(L, d - e));
                        for (index_t r = 0; r < rows; ++r) {
                            float* orow = o + r * dp + e;
                            xsimd::fma(F(s[r * decode_chunk + j]), vb, F::load_unaligned(orow)).store_unaligned(orow);
                        }
                    }
                }
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
                for (index_t c = 0; c < chunks; ++c)
                    mx = std::max(mx, part_m[static_cast<std::size_t>((g * chunks + c) * rows + r)]);
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
};

} // namespace dskit::detail
