// Attention on the simd backend: a flash-style kernel that never stores the N x L score matrix.
//
// K and V are packed once per call (K^T in panels of nr keys, V rows padded to whole vectors). Then one
// task per (head, block of 256 queries), tasks in parallel. A task walks the key blocks the modifier
// leaves visible, 128 keys at a time, each in passes of 64 queries: S = Q_blk K_blk^T (register-tiled FMA kernel, Q
// pre-scaled), the modifier on S in place, an online softmax per query row (running maximum m and sum l; the partial
// output is rescaled by e^(m_old - m_new) when the maximum grows), O += P V_blk (register-tiled), and
// finally O / l, times the output gate (attention/gates.hpp; the default none adds nothing). A pass's
// S block stays in L1, the task's Q and O blocks and one K and V block in L2. A query's result depends only on
// its own task, so it does not depend on the thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <cmath>
#include <limits>
#include <vector>

#include "dskit/attention/gates.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/scalar/attention.hpp"
#include "dskit/backend/simd/math.hpp"
#include "dskit/backend/simd/rows.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/config.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/uninitialized_buffer.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail {

template <class Arch>
struct kernel<ops::tag::attention, backend::simd<Arch>> {
    using F = xsimd::batch<float, Arch>;
    static constexpr index_t lanes = simd::lanes_v<Arch>;
    // A task: block_q queries of one head. It reads each K and V block once for all of them, in passes of
    // sub_q queries (their scores, sub_q x block_k floats = 32 KiB, stay in L1). At N = 4096, H = 8, 2
    // threads (Xeon, Emerald Rapids), tasks of 256 queries instead of 64 took 5% (d = 64) and 8% (d = 128)
    // less time: per query, a quarter of the K/V traffic from L3.
    static constexpr index_t block_q = 256; // queries per task
    static constexpr index_t sub_q = 64;    // queries per pass over a key block
    static_assert(block_q % sub_q == 0);
    static constexpr index_t block_k = 128; // keys per step
    // Rows of a register tile: 6 on 16-register ISAs (12 accumulators, 2 loads, a broadcast), 8 with
    // AVX-512's 32 registers (16 accumulators; 8 divides the 64 queries of a pass, no short last tile):
    // ~3% faster there, N = 4096, H = 8, 2 threads, Zen 4.
    static constexpr index_t mr = lanes >= 16 ? 8 : 6;
    static constexpr index_t nr = 2 * lanes; // columns of a register tile (keys in Q K^T, features in P V)
    static_assert(block_k % nr == 0);

    template <class Mod, class Gate = attention_gates::none>
    static void run(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                    index_t kv_heads, matrix_ref<float> out, const Mod& mod, float scale, const Gate& gate = {})
    {
        const index_t n = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
        // K and V are packed for all query blocks, in panels that the register tiles read contiguously:
        // K^T in panels of nr keys ([d][nr] each), V in panels of nr features ([L][nr] each; row-major V
        // rows are 256+ bytes apart, and a tile walking them missed L1 on every key). Long sequences are
        // done a few K/V heads at a time, so the packed copy stays within pack_budget_bytes (16 MiB per
        // K/V head at L = 32768, d = 64) instead of growing with all heads.
        const auto head_bytes = static_cast<std::size_t>(packed_kv::floats_per_head(len, d)) * sizeof(float);
        const index_t per_pass = std::clamp<index_t>(static_cast<index_t>(pack_budget_bytes / head_bytes), 1, kv_heads);
        packed_kv p(len, d, per_pass);

        const index_t q_blocks = (n + block_q - 1) / block_q;
        for (index_t g0 = 0; g0 < kv_heads; g0 += per_pass) {
            const index_t gn = std::min(per_pass, kv_heads - g0);
            parallel_for(
                gn, [&](index_t g) { p.pack(k, v, g0 + g, g); }, static_cast<double>(len * d) * 2.0);
            // Query heads [h0, h0 + hn) read these K/V heads. Tasks go out head by head, so that the
            // threads share one head's K and V while it is in cache (all heads' packed K/V, 32 MiB at
            // N = 4096, d = 128, do not stay in cache; head-interleaved tasks measured ~7% slower), and
            // within a head longest first (the last query blocks have the most keys under a causal mask),
            // dynamically, so that uneven tasks balance.
            const index_t h0 = g0 * group, hn = gn * group, tasks = hn * q_blocks;
            const auto task = [&](index_t t) {
                const index_t h = h0 + t / q_blocks;
                const index_t qb = q_blocks - 1 - t % q_blocks;
                run_block(q, p, g0, heads, kv_heads, out, mod, gate, scale, h, qb * block_q,
                          std::min(block_q, n - qb * block_q));
            };
#if DSKIT_HAS_OPENMP
            const double work = static_cast<double>(n) * static_cast<double>(len) * static_cast<double>(hn * d);
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && work > 1e5 && !omp_in_parallel())
            for (index_t t = 0; t < tasks; ++t) task(t);
#else
            for (index_t t = 0; t < tasks; ++t) task(t);
#endif
        }
    }

    /// Most bytes the packed K and V of one call may take (at least one K/V head is packed regardless).
    static constexpr std::size_t pack_budget_bytes = std::size_t(32) << 20;

private:
    struct packed_kv {
        index_t len, d, dp, lp;
        uninitialized_buffer<float> kt, vp; // pack writes every entry

        static index_t floats_per_head(index_t len_, index_t d_)
        {
            const index_t lp_ = (len_ + nr - 1) / nr * nr;
            return lp_ * d_ + lp_ * ((d_ + nr - 1) / nr * nr);
        }

        packed_kv(index_t len_, index_t d_, index_t kv_heads)
            : len(len_), d(d_), dp((d_ + nr - 1) / nr * nr), lp((len_ + nr - 1) / nr * nr),
              kt(static_cast<std::size_t>(kv_heads * lp * d_)), vp(static_cast<std::size_t>(kv_heads * lp * dp))
        {
        }
        float* k_head(index_t g) { return kt.get() + g * lp * d; }
        float* v_head(index_t g) { return vp.get() + g * lp * dp; }
        const float* k_head(index_t g) const { return kt.get() + g * lp * d; }
        const float* v_head(index_t g) const { return vp.get() + g * lp * dp; }

        /// Packs K/V head g of k and v into slot `slot`. Raw row pointers: element access through the
        /// views, with the padding test per element, made this ~5% of a whole N = 4096 forward.
        void pack(const const_matrix_ref<float>& k, const const_matrix_ref<float>& v, index_t g, index_t slot)
        {
            float* kh = k_head(slot);
            for (index_t j0 = 0; j0 < lp; j0 += nr) {
                float* panel = kh + j0 * d;
                for (index_t c = 0; c < nr; ++c) {
                    const index_t j = j0 + c;
                    if (j < len) {
                        const float* src = k.data() + j * k.outerStride() + g * d;
                        for (index_t x = 0; x < d; ++x) panel[x * nr + c] = src[x];
                    } else {
                        for (index_t x = 0; x < d; ++x) panel[x * nr + c] = 0.0f;
                    }
                }
            }
            float* vh = v_head(slot);
            for (index_t x0 = 0; x0 < dp; x0 += nr) {
                const index_t w = std::clamp<index_t>(d - x0, 0, nr); // real features in this panel
                for (index_t j = 0; j < lp; ++j) {
                    float* dst = vh + x0 * lp + j * nr;
                    if (j < len) {
                        const float* src = v.data() + j * v.outerStride() + g * d + x0;
                        std::copy(src, src + w, dst);
                        std::fill(dst + w, dst + nr, 0.0f);
                    } else {
                        std::fill(dst, dst + nr, 0.0f);
                    }
                }
            }
        }
    };

    struct scratch {
        std::vector<float> q, s, o, m, l;
    };

    /// s[r][0, nr) = sum_x q[r][x] kt[x][0, nr) for MR rows: one register tile of S = Q K^T.
    template <index_t MR>
    static void tile_qk(const float* q, index_t ldq, const float* panel, index_t d, float* s, index_t lds) noexcept
    {
        F acc[MR][2];
#pragma GCC unroll 8
        for (index_t r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = F(0.0f);
        for (index_t x = 0; x < d; ++x) {
            const F b0 = F::load_unaligned(panel + x * nr), b1 = F::load_unaligned(panel + x * nr + lanes);
#pragma GCC unroll 8
            for (index_t r = 0; r < MR; ++r) {
                const F a(q[r * ldq + x]);
                acc[r][0] = xsimd::fma(a, b0, acc[r][0]);
                acc[r][1] = xsimd::fma(a, b1, acc[r][1]);
            }
        }
#pragma GCC unroll 8
        for (index_t r = 0; r < MR; ++r) {
            acc[r][0].store_aligned(s + r * lds);
            acc[r][1].store_aligned(s + r * lds + lanes);
        }
    }

    /// o[r][0, NV lanes) += sum_j p[r][j] v[j][0, NV lanes) for MR rows: one register tile of O += P V.
    template <index_t MR, index_t NV>
    static void tile_pv(const float* p, index_t ldp, const float* v, index_t ldv, index_t cols, float* o,
                        index_t ldo) noexcept
    {
        F acc[MR][NV];
#pragma GCC unroll 8
        for (index_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (index_t c = 0; c < NV; ++c) acc[r][c] = F::load_aligned(o + r * ldo + c * lanes);
        for (index_t j = 0; j < cols; ++j) {
            F b[NV];
#pragma GCC unroll 4
            for (index_t c = 0; c < NV; ++c) b[c] = F::load_unaligned(v + j * ldv + c * lanes);
#pragma GCC unroll 8
            for (index_t r = 0; r < MR; ++r) {
                const F a(p[r * ldp + j]);
#pragma GCC unroll 4
                for (index_t c = 0; c < NV; ++c) acc[r][c] = xsimd::fma(a, b[c], acc[r][c]);
            }
        }
#pragma GCC unroll 8
        for (index_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (index_t c = 0; c < NV; ++c) acc[r][c].store_aligned(o + r * ldo + c * lanes);
    }

    /// Calls f(std::integral_constant<index_t, M>{}) with M = min(n, Max), for 1 <= n: the tile size as a
    /// compile-time constant, full tiles and the remainder alike.
    template <index_t Max, class Fn>
    static void with_count(index_t n, Fn&& f)
    {
        const index_t m = std::min(n, Max);
        [&]<index_t... I>(std::integer_sequence<index_t, I...>)
        {
            (void)((m == I + 1 && (f(std::integral_constant<index_t, I + 1>{}), true)) || ...);
        }
        (std::make_integer_sequence<index_t, Max>{});
    }

    /// One pass: the queries qs[0, rows) (scaled, row stride d) against the keys [j0, j0 + cols), keys
    /// before `begin` masked: S = Q K^T into s, the modifier, the online softmax update of m, l and the
    /// rows' O (stride dp), O += P V.
    template <class Mod>
    static void pass(const float* qs, const float* kh, const float* vh, const packed_kv& p, const Mod& mod, index_t h,
                     index_t i0, index_t rows, index_t j0, index_t cols, index_t begin, float* s, float* o, float* m,
                     float* l)
    {
        constexpr float neg_inf = -std::numeric_limits<float>::infinity();
        const index_t d = p.d, dp = p.dp;
        const index_t panels = (cols + nr - 1) / nr;
        // Panel-major: one K panel ([d][nr], a few KB) stays in L1 while every row tile of Q passes it.
        for (index_t c = 0; c < panels; ++c)
            for (index_t r0 = 0; r0 < rows; r0 += mr)
                with_count<mr>(rows - r0, [&](auto m_rows) {
                    tile_qk<m_rows()>(qs + r0 * d, d, kh + (j0 + c * nr) * d, d, s + r0 * block_k + c * nr, block_k);
                });
        if (j0 < begin)
            for (index_t r = 0; r < rows; ++r)
                std::fill(s + r * block_k, s + r * block_k + std::min(cols, begin - j0), neg_inf);
        mod.apply(h, i0, j0, rows, cols, s, block_k);

        // Online softmax, one row at a time: s becomes P = e^(s - m_new).
        for (index_t r = 0; r < rows; ++r) {
            float* row = s + r * block_k;
            F mx(neg_inf);
            index_t c = 0;
            for (; c + lanes <= cols; c += lanes) mx = xsimd::max(mx, F::load_aligned(row + c));
            if (c < cols) mx = xsimd::max(mx, simd::load_n<Arch>(row + c, cols - c, neg_inf));
            const float m_old = m[r];
            const float m_new = std::max(m_old, simd::reduce_max(mx));
            if (m_new == neg_inf) {
                // Nothing visible yet for this query: no weight, and nothing to rescale; unless the
                // scores are NaN (NaN in the inputs): then l becomes NaN, and so does the output row.
                if (any_nan(row, cols)) l[r] = std::numeric_limits<float>::quiet_NaN();
                std::fill(row, row + cols, 0.0f);
                continue;
            }
            const float sum = simd::exp_shifted_sum<Arch>(row, cols, m_new);
            // 0 for the first visible block, 1 (no exp, no rescale) while the maximum stays put.
            const float alpha = m_old == m_new ? 1.0f : std::exp(m_old - m_new);
            l[r] = l[r] * alpha + sum;
            m[r] = m_new;
            if (alpha != 1.0f) {
                const F ab(alpha);
                for (index_t x = 0; x < dp; x += lanes)
                    (F::load_aligned(o + r * dp + x) * ab).store_aligned(o + r * dp + x);
            }
        }

        // Panel-major over O: one V panel ([cols][nr], contiguous) stays in L1 for every row tile.
        for (index_t x = 0; x < dp; x += nr)
            for (index_t r0 = 0; r0 < rows; r0 += mr)
                with_count<mr>(rows - r0, [&](auto m_rows) {
                    tile_pv<m_rows(), 2>(s + r0 * block_k, block_k, vh + x * p.lp + j0 * nr, nr, cols, o + r0 * dp + x,
                                         dp);
                });
    }

    template <class Mod, class Gate>
    static void run_block(const const_matrix_ref<float>& q, const packed_kv& p, index_t g0, index_t heads,
                          index_t kv_heads, matrix_ref<float>& out, const Mod& mod, const Gate& gate, float scale,
                          index_t h, index_t i0, index_t rows)
    {
        constexpr float neg_inf = -std::numeric_limits<float>::infinity();
        const index_t d = p.d, dp = p.dp, len = p.len, g = h / (heads / kv_heads);
        const float* kh = p.k_head(g - g0); // p holds K/V heads from g0 on
        const float* vh = p.v_head(g - g0);

        // Aligned scratch: rows padded to whole vectors (the tiles use aligned loads and stores).
        thread_local scratch buf;
        buf.q.resize(static_cast<std::size_t>(block_q * d));
        buf.s.resize(static_cast<std::size_t>(sub_q * block_k + 16));
        buf.o.assign(static_cast<std::size_t>(block_q * dp + 16), 0.0f);
        buf.m.assign(static_cast<std::size_t>(block_q), neg_inf);
        buf.l.assign(static_cast<std::size_t>(block_q), 0.0f);
        float* s = align(buf.s.data());
        float* o = align(buf.o.data());

        // Q block, scaled once here instead of every score.
        float* qs = buf.q.data();
        for (index_t r = 0; r < rows; ++r) {
            const float* src = q.data() + (i0 + r) * q.outerStride() + h * d;
            for (index_t x = 0; x < d; ++x) qs[r * d + x] = src[x] * scale;
        }

        // Key blocks on the grid of the task's visible range; each pass (sub-block of queries) computes only
        // the blocks its own range reaches (a causal mask: the later passes see more keys).
        const attention_mods::key_range keys = mod.keys(h, i0, i0 + rows, len);
        std::array<attention_mods::key_range, block_q / sub_q> pass_keys;
        for (index_t sb = 0; sb < rows; sb += sub_q)
            pass_keys[static_cast<std::size_t>(sb / sub_q)] =
                mod.keys(h, i0 + sb, std::min(i0 + sb + sub_q, i0 + rows), len);
        for (index_t j0 = keys.begin / nr * nr; j0 < keys.end; j0 += block_k) {
            for (index_t sb = 0; sb < rows; sb += sub_q) {
                const index_t srows = std::min(sub_q, rows - sb);
                const attention_mods::key_range sk = pass_keys[static_cast<std::size_t>(sb / sub_q)];
                if (j0 >= sk.end || j0 + block_k <= sk.begin) continue;
                pass(qs + sb * d, kh, vh, p, mod, h, i0 + sb, srows, j0, std::min(block_k, sk.end - j0), sk.begin, s,
                     o + sb * dp, buf.m.data() + sb, buf.l.data() + sb);
            }
        }

        for (index_t r = 0; r < rows; ++r) {
            const float l = buf.l[static_cast<std::size_t>(r)];
            // l == 0: every key masked for this query; its row is zeros. l NaN: NaN in the inputs.
            float inv = l > 0.0f ? 1.0f / l : (l == 0.0f ? 0.0f : std::numeric_limits<float>::quiet_NaN());
            // The gate rides on the normalisation: a per-row factor folds into inv, a per-element one is one
            // more multiply in this loop; attention_gates::none adds nothing.
            if constexpr (Gate::has_row_factor) inv *= gate.row(h, i0 + r);
            float* dst = out.data() + (i0 + r) * out.outerStride() + h * d;
            if constexpr (Gate::has_element_factors) {
                const float* gx = gate.elements(h, i0 + r, d);
                for (index_t x = 0; x < d; ++x) dst[x] = o[r * dp + x] * inv * gx[x];
            } else {
                for (index_t x = 0; x < d; ++x) dst[x] = o[r * dp + x] * inv;
            }
        }
    }

    static float* align(float* p) noexcept
    {
        constexpr std::uintptr_t a = 64;
        return reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(p) + a - 1) & ~(a - 1));
    }
};

} // namespace dskit::detail
