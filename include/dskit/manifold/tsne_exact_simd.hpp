// The exact t-SNE gradient on the simd backend: the O(N²) repulsion and the sparse attraction in float
// vectors (xsimd), for 1-, 2- and 3-D embeddings and any degrees of freedom.
//
// Same quantities as the scalar (double) reference in tsne_gradient.hpp. The repulsion visits each pair
// once: the points are cut into tiles of B points, and tile pair (I, J), I < J, adds every pair's terms to
// both sides (Newton's third law), into that tile pair's own slot of partial sums (a diagonal tile (I, I)
// visits its pairs j > i the same way); a point's total is then the sum of its slots in tile order. Pair
// terms and a slot's sums are float, the sums over slots double, and no sum depends on which thread
// computed what: the gradient is bit-identical for any thread count. Against the double reference it
// agrees to about 1e-5 relative (float rounding of the coordinates and of 1 / (1 + d²)), on AVX-512 to
// about 5e-5 (the repulsion's reciprocal is the 14-bit estimate, see pair_reciprocal).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/config.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/core/uninitialized_buffer.hpp"
#include "dskit/manifold/affinity.hpp"
#include "dskit/manifold/tsne_gradient_sum.hpp"

namespace dskit::detail::simd {

/// The embedding as float columns (structure of arrays), zero-padded to whole tiles, with `valid` 1 for
/// real points and 0 for padding.
template <int Dim, class Arch>
struct tsne_columns {
    static constexpr index_t lanes = static_cast<index_t>(xsimd::batch<float, Arch>::size);
    using column = std::vector<float, xsimd::aligned_allocator<float>>;
    index_t n = 0, tile = 0, n_tiles = 0, n_pad = 0;
    index_t tile_padding = 0; ///< padding points, all at the end of the last tile
    std::array<column, Dim> c;
    column valid;
    column xy; ///< 2-D only: x0 y0 x1 y1 ... (one 8-byte load per partner in the attraction)

    tsne_columns() = default;
    explicit tsne_columns(const const_matrix_ref<double>& y) { assign(y); }

    /// Takes y's coordinates; storage is reused when N is unchanged (once per gradient, ~750 times a run).
    void assign(const const_matrix_ref<double>& y)
    {
        if (y.rows() != n || c[0].empty()) {
            n = y.rows();
            // At most 32 tiles (bounded memory for the slots), at least 900 points a tile: each group of rows
            // then runs the pair loop over hundreds of columns, so its start and its final reductions cost
            // little, and few slots are summed (digits, N = 1797, 2 threads: 12% less time with 384 than with
            // 128, then 2.6% less with 900 than with 384 (12 alternating runs); a tile's columns and sums,
            // ~18 KB in 2-D, stay in L1). The tiles share the points evenly (padding below one vector a
            // tile, not most of the last tile).
            const index_t want = std::max<index_t>(900, (n + 31) / 32);
            const index_t count = std::max<index_t>(1, (n + want - 1) / want);
            tile = std::max(lanes, ((n + count - 1) / count + lanes - 1) / lanes * lanes); // N = 0: no tiles
            n_tiles = (n + tile - 1) / tile;
            n_pad = n_tiles * tile;
            tile_padding = n_pad - n;
            for (auto& col : c) col.assign(static_cast<std::size_t>(n_pad), 0.0f); // padding stays 0
            valid.assign(static_cast<std::size_t>(n_pad), 0.0f);
            std::fill(valid.begin(), valid.begin() + n, 1.0f);
            if constexpr (Dim == 2) xy.resize(2 * static_cast<std::size_t>(n));
        }
        for (index_t i = 0; i < n; ++i)
            for (int d = 0; d < Dim; ++d) {
                const auto v = static_cast<float>(y(i, d));
                c[static_cast<std::size_t>(d)][static_cast<std::size_t>(i)] = v;
                if constexpr (Dim == 2) xy[2 * static_cast<std::size_t>(i) + static_cast<std::size_t>(d)] = v;
            }
    }
    [[nodiscard]] float at(int d, index_t i) const
    {
        return c[static_cast<std::size_t>(d)][static_cast<std::size_t>(i)];
    }
    [[nodiscard]] const float* col(int d, index_t j) const { return c[static_cast<std::size_t>(d)].data() + j; }
};

/// The sum of v's lanes (a fixed tree of float adds), as a double.
template <class Arch>
double lanes_sum(const xsimd::batch<float, Arch>& v) noexcept
{
    return static_cast<double>(xsimd::hadd(v));
}

/// 0, 1, ..., L - 1 as floats (lane numbers, for masks; exact below 2^24).
template <class Arch>
const std::array<float, xsimd::batch<float, Arch>::size>& lane_ids() noexcept
{
    static constexpr auto ids = [] {
        std::array<float, xsimd::batch<float, Arch>::size> a{};
        for (std::size_t l = 0; l < a.size(); ++l) a[l] = static_cast<float>(l);
        return a;
    }();
    return ids;
}

/// 1 / x. On AMD Zen 2 and later (compiled for them: -march=znver2.. or native) the division itself: a
/// pipelined divider returns 8 floats every ~3 cycles there, cheaper in the O(N²) loop than the estimate
/// below (measured 7% on the whole gradient, Zen 3). Other x86: the approximate reciprocal refined by one
/// Newton step (about 1 ulp; 3 cheap instructions instead of a division that would bound the loop; AVX-512
/// on a Xeon (Emerald Rapids), digits: 4% less time than vdivps, median of 10 alternating runs). The
/// approximation differs between CPU vendors, so results are reproducible on one machine, not across x86
/// vendors.
template <class Arch>
xsimd::batch<float, Arch> reciprocal(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
#if XSIMD_WITH_SSE2 && !(defined(__znver2__) || defined(__znver3__) || defined(__znver4__) || defined(__znver5__))
    // Every x86 architecture (SSE, AVX and AVX-512 families) has the estimate; listing the families missed
    // AVX-512, which xsimd 8 does not derive from avx.
    const F r = xsimd::reciprocal(x);
    return r * xsimd::fnma(x, r, F(2.0f));
#else
    return F(1.0f) / x;
#endif
}

/// 1 / x to about 6e-5 relative, for the O(N²) repulsion: on AVX-512 the 14-bit estimate (vrcp14ps) alone,
/// which saves 2 of the pair loop's ~14 vector operations (digits: ~12% less time for the whole run; Z and
/// the gradient then agree with the double reference to ~5e-5 instead of ~1e-5, far below what moves an
/// embedding). Elsewhere the estimate has only 12 bits, so reciprocal() above with its Newton step.
template <class Arch>
xsimd::batch<float, Arch> pair_reciprocal(const xsimd::batch<float, Arch>& x) noexcept
{
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return _mm512_rcp14_ps(x);
#endif
    return simd::reciprocal<Arch>(x);
}

/// Pair kernel: u = 1 / (1 + d² / a) and the weight w = u^a (a: degrees of freedom). The squared distance
/// is summed onto start() (1 when a = 1: the 1 + d² add folds into the distance's fmas).
template <class Arch, bool UnitDof>
struct tsne_simd_kernel {
    using F = xsimd::batch<float, Arch>;
    F inv_dof, dof;
    static F start() noexcept { return F(UnitDof ? 1.0f : 0.0f); }
    /// s: start() + d².
    F u_of(const F& s) const noexcept
    {
        if constexpr (UnitDof)
            return simd::reciprocal<Arch>(s);
        else
            return simd::reciprocal<Arch>(xsimd::fma(s, inv_dof, F(1.0f)));
    }
    F u(const F& d2) const noexcept { return u_of(start() + d2); }
    /// Returns w and sets wu = w u; s: start() + d².
    F weights_of(const F& s, F& wu) const noexcept
    {
        if constexpr (UnitDof) {
            const F uu = simd::pair_reciprocal<Arch>(s);
            wu = uu * uu;
            return uu;
        } else {
            const F uu = u_of(s);
            const F w = xsimd::exp(dof * xsimd::log(uu));
            wu = w * uu;
            return w;
        }
    }
};

#if XSIMD_WITH_AVX512F
/// The lane sums of sixteen vectors in one: lane 4 q + r holds the sum of v[4 r + q]. Four levels, each
/// adding two vectors' halves (512 -> 256 -> 128-bit blocks, then within blocks): 45 ops for what sixteen
/// separate reductions do in ~130.
inline __m512 sum16_transposed(const __m512 (&v)[16]) noexcept
{
    __m512 a[8], c[4], e[2];
    for (int k = 0; k < 8; ++k) // lanes 0-7: v[2k]'s 256-bit halves added, 8-15: v[2k + 1]'s
        a[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
    for (int k = 0; k < 4; ++k) // 128-bit block m: v[4k + m]'s four partial sums
        c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xDD));
    for (int k = 0; k < 2; ++k) // block m: pairs of v[8k + m] and v[8k + 4 + m]
        e[k] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * k], c[2 * k + 1], 0x88),
                             _mm512_shuffle_ps(c[2 * k], c[2 * k + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xDD));
}
#endif

/// R rows from i against the columns [jb0, B) of the tile at j0 (one vector of L at a time): the row sums
/// 2 sum w, then sum w u (y_i - y_j) per dimension, to out[0], out[B], ... (blocks of B floats), and the
/// same force terms added to the columns' running sums acc (Dim blocks of B floats; a column's force is
/// minus its sum, applied where the slots are summed). Masked:
/// columns include padding (valid 0). Diagonal: the rows' own tile, pairs j > i only (the first vector
/// is masked lane by lane).
template <int Dim, class Arch, bool UnitDof, bool Masked, bool Diagonal, int R>
void repulsion_rows(const tsne_columns<Dim, Arch>& cols, const tsne_simd_kernel<Arch, UnitDof>& kern, index_t i,
                    index_t j0, index_t jb0, float* acc, float* out) noexcept
{
    using F = xsimd::batch<float, Arch>;
    constexpr index_t L = tsne_columns<Dim, Arch>::lanes;
    const index_t b = cols.tile;
    F yi[R][Dim], fi[R][Dim], zi[R];
    for (int r = 0; r < R; ++r) {
        zi[r] = F(0.0f);
        for (int d = 0; d < Dim; ++d) {
            yi[r][d] = F(cols.at(d, i + r));
            fi[r][d] = F(0.0f);
        }
    }
    const float* col[Dim];
    for (int d = 0; d < Dim; ++d) col[d] = cols.col(d, j0);
    for (index_t jb = jb0; jb < b; jb += L) {
        // The columns' running sums are loaded first and each row's term added straight onto them (one fma
        // a row and dimension; summing the rows, then adding, took one op more a dimension). They hold
        // +sum w u (y_i - y_j) rather than the columns' force -sum: as an fnma, GCC 12 computed -w u once
        // for both dimensions, one op more again.
        F yj[Dim], g[Dim];
        float* ad[Dim];
        for (int d = 0; d < Dim; ++d) {
            yj[d] = F::load_aligned(col[d] + jb);
            ad[d] = acc + static_cast<std::size_t>(d) * static_cast<std::size_t>(b) + static_cast<std::size_t>(jb);
            g[d] = F::load_aligned(ad[d]);
        }
        for (int r = 0; r < R; ++r) {
            F diff[Dim];
            F s = kern.start();
            for (int d = 0; d < Dim; ++d) {
                diff[d] = yi[r][d] - yj[d];
                s = xsimd::fma(diff[d], diff[d], s);
            }
            F wu;
            F w = kern.weights_of(s, wu);
            if constexpr (Masked) {
                if (jb + L > b - cols.tile_padding) { // only the vectors that hold padding
                    const F v = F::load_aligned(cols.valid.data() + j0 + jb);
                    w *= v;
                    wu *= v;
                }
            }
            if constexpr (Diagonal) {
                if (jb == jb0) { // lanes j <= i + r: the point itself and pairs the earlier rows visit
                    const auto keep =
                        F::load_unaligned(lane_ids<Arch>().data()) > F(static_cast<float>(i + r - j0 - jb));
                    w = xsimd::select(keep, w, F(0.0f));
                    wu = xsimd::select(keep, wu, F(0.0f));
                }
            }
            zi[r] += w;
            for (int d = 0; d < Dim; ++d) {
                fi[r][d] = xsimd::fma(wu, diff[d], fi[r][d]);
                g[d] = xsimd::fma(wu, diff[d], g[d]);
            }
        }
        for (int d = 0; d < Dim; ++d) g[d].store_aligned(ad[d]);
    }
    const auto sb = static_cast<std::size_t>(b);
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch> && L == 16 && R * (Dim + 1) > 4) {
        // All R (Dim + 1) sums at once (a transposing tree, ~3 ops a vector instead of ~8 for each hadd:
        // 5% of the loop's time went to them on digits, whose diagonal tiles average 29 steps a row group).
        // Vector 4 r + q holds quantity q (z, f_1, ...) of row r; absent ones are zero.
        __m512 v[16];
        for (int k = 0; k < 16; ++k) v[k] = _mm512_setzero_ps();
        for (int r = 0; r < R; ++r) {
            v[4 * r] = zi[r] + zi[r]; // each pair stands for i with j and j with i in Z
            for (int d = 0; d < Dim; ++d) v[4 * r + d + 1] = fi[r][d];
        }
        const __m512 sums = sum16_transposed(v); // lane 4 q + r: the sum of v[4 r + q]
        const __m128 quarter[4] = {_mm512_castps512_ps128(sums), _mm512_extractf32x4_ps(sums, 1),
                                   _mm512_extractf32x4_ps(sums, 2), _mm512_extractf32x4_ps(sums, 3)};
        for (int q = 0; q <= Dim; ++q) { // rows r .. r + R of quantity q are adjacent in out
            float* dst = out + static_cast<std::size_t>(q) * sb;
            if constexpr (R == 4)
                _mm_storeu_ps(dst, quarter[q]);
            else
                _mm_storel_pi(reinterpret_cast<__m64*>(dst), quarter[q]);
        }
        return;
    }
#endif
    for (int r = 0; r < R; ++r) {
        float* o = out + static_cast<std::size_t>(r);
        o[0] = 2.0f * xsimd::hadd(zi[r]); // each pair stands for i with j and j with i in Z
        for (int d = 0; d < Dim; ++d) o[static_cast<std::size_t>(d + 1) * sb] = xsimd::hadd(fi[r][d]);
    }
}

/// Repulsion between the real rows [i0, i1) of one tile and the B points from j0: another tile, or the
/// same one when Diagonal (then each pair inside it once). Writes the rows' sums to out_i and the columns'
/// reactions, sign flipped (the reaction is minus the sum kept), to out_j (aligned for vectors), each as
/// Dim + 1 blocks of B floats: z, f_1, ... (a slot's sums are float sums, so float slots lose nothing).
/// z counts every pair twice (i with j and j with i) and sits on the rows (0 in out_j), since only its
/// total matters. Masked: the columns include padding.
template <int Dim, class Arch, bool UnitDof, bool Masked, bool Diagonal>
void repulsion_tile(const tsne_columns<Dim, Arch>& cols, const tsne_simd_kernel<Arch, UnitDof>& kern, index_t i0,
                    index_t i1, index_t j0, float* out_i, float* out_j)
{
    constexpr index_t L = tsne_columns<Dim, Arch>::lanes;
    const auto sb = static_cast<std::size_t>(cols.tile);
    // The columns' sums build up in place: z (0, see above), then f_d.
    std::fill(out_j, out_j + static_cast<std::size_t>(Dim + 1) * sb, 0.0f);
    float* acc_j = out_j + sb;
    // R rows at a time share each column vector's loads and its running sums' load and store (4 in 1-
    // and 2-D, 2 in 3-D, where 4 rows' coordinates and sums would not stay in registers). R divides L, and
    // i - i0 stays a multiple of R, so the R rows lie in one vector: the diagonal mask covers them all.
    constexpr int R = Dim <= 2 ? 4 : 2;
    static_assert(L % R == 0);
    index_t i = i0;
    const auto first = [&](index_t row) { return Diagonal ? (row - i0) / L * L : 0; };
    for (; i + R <= i1; i += R)
        repulsion_rows<Dim, Arch, UnitDof, Masked, Diagonal, R>(cols, kern, i, j0, first(i), acc_j,
                                                                out_i + static_cast<std::size_t>(i - i0));
    for (; i < i1; ++i)
        repulsion_rows<Dim, Arch, UnitDof, Masked, Diagonal, 1>(cols, kern, i, j0, first(i), acc_j,
                                                                out_i + static_cast<std::size_t>(i - i0));
}

/// P's rows for the vector attraction: int32 columns and float values, each row zero-padded (column i,
/// value 0) to a multiple of the lane count so that every row is whole vectors. Built once per run.
template <class Arch>
struct tsne_csr32 {
    static constexpr index_t lanes = static_cast<index_t>(xsimd::batch<float, Arch>::size);
    std::vector<index_t> start;
    std::vector<std::int32_t, xsimd::aligned_allocator<std::int32_t>> cols;
    std::vector<float, xsimd::aligned_allocator<float>> vals;
    double plogp = 0.0; ///< sum p log p over P's non-zeros (the constant part of KL; 0 unless with_plogp)

    /// with_plogp: also sum p log p (one log per non-zero; a gradient without KL and without a plan skips it).
    explicit tsne_csr32(const sparse_affinities& p, bool with_plogp = true)
        : start(static_cast<std::size_t>(p.n) + 1, 0)
    {
        for (index_t i = 0; i < p.n; ++i) {
            const auto ui = static_cast<std::size_t>(i);
            const index_t len = p.indptr[ui + 1] - p.indptr[ui];
            start[ui + 1] = start[ui] + (len + lanes - 1) / lanes * lanes;
        }
        cols.resize(static_cast<std::size_t>(start.back()));
        vals.assign(static_cast<std::size_t>(start.back()), 0.0f);
        for (index_t i = 0; i < p.n; ++i) {
            const auto ui = static_cast<std::size_t>(i);
            auto at = static_cast<std::size_t>(start[ui]);
            for (auto e = p.indptr[ui]; e < p.indptr[ui + 1]; ++e, ++at) {
                cols[at] = static_cast<std::int32_t>(p.indices[static_cast<std::size_t>(e)]);
                vals[at] = static_cast<float>(p.values[static_cast<std::size_t>(e)]);
            }
            for (; at < static_cast<std::size_t>(start[ui + 1]); ++at) cols[at] = static_cast<std::int32_t>(i);
        }
        if (with_plogp) { // in double vectors: ~200 000 scalar logs were 1.5 ms of a digits run's set-up
            using D = xsimd::batch<double, Arch>;
            constexpr std::size_t w = D::size;
            const std::size_t m = p.values.size();
            D acc(0.0);
            std::size_t e = 0;
            for (; e + w <= m; e += w) {
                const D v = D::load_unaligned(p.values.data() + e);
                acc += xsimd::select(v > D(0.0), v * xsimd::log(v), D(0.0)); // 0 log 0 = 0
            }
            plogp = xsimd::hadd(acc);
            for (; e < m; ++e)
                if (p.values[e] > 0.0) plogp += p.values[e] * std::log(p.values[e]);
        }
    }
};

/// src[index] for every lane: the AVX2 gather instruction where there is one (xsimd 8 falls back to one
/// load per lane for architectures derived from avx2), xsimd's gather elsewhere.
template <class Arch>
xsimd::batch<float, Arch> gather(const float* src, const xsimd::batch<std::int32_t, Arch>& index) noexcept
{
#if XSIMD_WITH_AVX2
    if constexpr (std::is_base_of_v<xsimd::avx2, Arch> && xsimd::batch<float, Arch>::size == 8)
        return _mm256_i32gather_ps(src, index, sizeof(float));
#endif
#if XSIMD_WITH_AVX512F
    // AVX-512: sixteen scalar loads. Both xsimd 8's gather (lane inserts through a call) and the gather
    // instruction are slower on Zen 4: 29 cycles for an x and a y vector this way, 42 by two vgatherdps
    // (micro-benchmark, 112 partners per row).
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        alignas(64) std::int32_t j[16];
        index.store_aligned(j);
        return _mm512_set_ps(src[j[15]], src[j[14]], src[j[13]], src[j[12]], src[j[11]], src[j[10]], src[j[9]],
                             src[j[8]], src[j[7]], src[j[6]], src[j[5]], src[j[4]], src[j[3]], src[j[2]], src[j[1]],
                             src[j[0]]);
    }
#endif
    return xsimd::batch<float, Arch>::gather(src, index);
}

/// Whether pair_partners below serves Arch: 8-lane AVX and 16-lane AVX-512.
template <class Arch>
constexpr bool has_pair_partners() noexcept
{
    [[maybe_unused]] constexpr std::size_t lanes = xsimd::batch<float, Arch>::size; // unused without AVX
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return lanes == 16;
#endif
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, Arch>) return lanes == 8;
#endif
    return false;
}

#if XSIMD_WITH_AVX
/// x_j0 y_j0 x_j1 y_j1 from the interleaved coordinates.
inline __m128 two_partners(const float* xy, std::int32_t j0, std::int32_t j1) noexcept
{
    const auto* p0 = reinterpret_cast<const double*>(xy + 2 * static_cast<std::ptrdiff_t>(j0));
    const auto* p1 = reinterpret_cast<const double*>(xy + 2 * static_cast<std::ptrdiff_t>(j1));
    return _mm_castpd_ps(_mm_loadh_pd(_mm_load_sd(p0), p1));
}

/// The x and the y vector of partners c[0 .. L) of a 2-D embedding: one 8-byte load of (x, y) per partner,
/// then shuffles into x and y. Faster than the gather instruction (slow on several x86 cores: on Zen 4 21
/// cycles per sixteen partners this way against 46 with two vgatherdpd, micro-benchmark with 112 partners a
/// row) and than pairs of partners in one vector (each lane pair computing the same distance).
template <class Arch>
void pair_partners(const float* xy, const std::int32_t* c, xsimd::batch<float, Arch>& x,
                   xsimd::batch<float, Arch>& y) noexcept
{
    static_assert(has_pair_partners<Arch>());
    if constexpr (xsimd::batch<float, Arch>::size == 8) {
        // Partners 0 1 4 5 and 2 3 6 7 as (x, y) pairs, then split into x and y in partner order.
        const __m256 a = _mm256_set_m128(two_partners(xy, c[4], c[5]), two_partners(xy, c[0], c[1]));
        const __m256 b = _mm256_set_m128(two_partners(xy, c[6], c[7]), two_partners(xy, c[2], c[3]));
        x = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        y = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    }
#if XSIMD_WITH_AVX512F
    else {
        const auto eight = [&](const std::int32_t* q) { // partners q[0 .. 8) as (x, y) pairs, in order
            const __m256 lo = _mm256_set_m128(two_partners(xy, q[2], q[3]), two_partners(xy, q[0], q[1]));
            const __m256 hi = _mm256_set_m128(two_partners(xy, q[6], q[7]), two_partners(xy, q[4], q[5]));
            return _mm512_castpd_ps(
                _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
        };
        const __m512 a = eight(c), b = eight(c + 8);
        x = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
        y = _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
    }
#endif
}
#endif

#if XSIMD_WITH_AVX
/// Row i's attraction in 2-D as lane sums: x, y (sum p u (y_i - y_j) per axis) and, WithLog, log (sum p log
/// u; else 0). Partners by pair_partners. Forced inline: as a call (returning three vectors through memory)
/// the gradient took 1-3% longer.
template <class Arch>
struct attraction_sums {
    xsimd::batch<float, Arch> x, y, log;
};
template <class Arch, bool UnitDof, bool WithLog>
DSKIT_FORCE_INLINE attraction_sums<Arch> attraction_vectors_2d(const tsne_csr32<Arch>& p,
                                                               const tsne_columns<2, Arch>& cols, index_t i,
                                                               const tsne_simd_kernel<Arch, UnitDof>& kern) noexcept
{
    using F = xsimd::batch<float, Arch>;
    constexpr index_t L = tsne_columns<2, Arch>::lanes;
    const F xi(cols.at(0, i)), yi(cols.at(1, i));
    F ax(0.0f), ay(0.0f), al(0.0f);
    const index_t end = p.start[static_cast<std::size_t>(i) + 1];
    for (index_t e = p.start[static_cast<std::size_t>(i)]; e < end; e += L) {
        F xj, yj;
        pair_partners<Arch>(cols.xy.data(), p.cols.data() + e, xj, yj);
        const F dx = xi - xj, dy = yi - yj;
        const F pv = F::load_aligned(p.vals.data() + e);
        const F u = kern.u_of(xsimd::fma(dy, dy, xsimd::fma(dx, dx, kern.start())));
        const F pu = pv * u;
        ax = xsimd::fma(pu, dx, ax);
        ay = xsimd::fma(pu, dy, ay);
        if constexpr (WithLog) al = xsimd::fma(pv, xsimd::log(u), al);
    }
    return {ax, ay, al};
}
#endif

/// Attraction on point i over P's row: f = sum_j p_ij u_ij (y_i - y_j), partners gathered into vectors.
/// WithLog: also returns sum_j p_ij log u_ij (KL's data term; float logs, ~1e-7 relative), else 0.
template <int Dim, class Arch, bool UnitDof, bool WithLog>
double attraction_row(const tsne_csr32<Arch>& p, const tsne_columns<Dim, Arch>& cols, index_t i,
                      const tsne_simd_kernel<Arch, UnitDof>& kern, std::array<double, Dim>& f) noexcept
{
    using F = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr index_t L = tsne_columns<Dim, Arch>::lanes;
#if XSIMD_WITH_AVX
    if constexpr (Dim == 2 && has_pair_partners<Arch>()) {
        const auto sums = attraction_vectors_2d<Arch, UnitDof, WithLog>(p, cols, i, kern);
        f[0] = lanes_sum<Arch>(sums.x);
        f[1] = lanes_sum<Arch>(sums.y);
        return lanes_sum<Arch>(sums.log);
    }
#endif
    std::array<F, Dim> yi, acc;
    for (int d = 0; d < Dim; ++d) yi[static_cast<std::size_t>(d)] = F(cols.at(d, i));
    acc.fill(F(0.0f));
    F al(0.0f);
    const index_t end = p.start[static_cast<std::size_t>(i) + 1];
    for (index_t e = p.start[static_cast<std::size_t>(i)]; e < end; e += L) {
        const I j = I::load_aligned(p.cols.data() + e);
        std::array<F, Dim> diff;
        F s = kern.start();
        for (int d = 0; d < Dim; ++d) {
            const auto ud = static_cast<std::size_t>(d);
            diff[ud] = yi[ud] - gather<Arch>(cols.c[ud].data(), j);
            s = xsimd::fma(diff[ud], diff[ud], s);
        }
        const F pv = F::load_aligned(p.vals.data() + e);
        const F u = kern.u_of(s);
        const F pu = pv * u;
        for (int d = 0; d < Dim; ++d) {
            const auto ud = static_cast<std::size_t>(d);
            acc[ud] = xsimd::fma(pu, diff[ud], acc[ud]);
        }
        if constexpr (WithLog) al = xsimd::fma(pv, xsimd::log(u), al);
    }
    for (int d = 0; d < Dim; ++d) f[static_cast<std::size_t>(d)] = lanes_sum<Arch>(acc[static_cast<std::size_t>(d)]);
    return lanes_sum<Arch>(al);
}

/// The attraction (attraction_row without the log term) of rows [i0, i1) into f. 2-D on AVX-512: eight
/// rows at a time, their sixteen sums reduced together by sum16_transposed (a row has ~7 vectors of
/// partners on digits, and its two separate reductions were ~8% of its time).
template <int Dim, class Arch, bool UnitDof>
void attraction_rows(const tsne_csr32<Arch>& p, const tsne_columns<Dim, Arch>& cols, index_t i0, index_t i1,
                     const tsne_simd_kernel<Arch, UnitDof>& kern, std::array<double, Dim>* f) noexcept
{
    index_t i = i0;
#if XSIMD_WITH_AVX512F
    if constexpr (Dim == 2 && std::is_base_of_v<xsimd::avx512f, Arch> && has_pair_partners<Arch>()) {
        for (; i + 8 <= i1; i += 8) {
            __m512 v[16]; // row t's x sum in v[4 (t / 2) + 2 (t % 2)], its y sum next to it
            for (int t = 0; t < 8; ++t) {
                const auto sums = attraction_vectors_2d<Arch, UnitDof, false>(p, cols, i + t, kern);
                v[4 * (t / 2) + 2 * (t % 2)] = sums.x;
                v[4 * (t / 2) + 2 * (t % 2) + 1] = sums.y;
            }
            alignas(64) float sums[16]; // lane 4 q + r: v[4 r + q]
            _mm512_store_ps(sums, sum16_transposed(v));
            for (int t = 0; t < 8; ++t)
                for (int d = 0; d < 2; ++d)
                    f[i - i0 + t][static_cast<std::size_t>(d)] =
                        static_cast<double>(sums[4 * (2 * (t % 2) + d) + t / 2]);
        }
    }
#endif
    for (; i < i1; ++i) attraction_row<Dim, Arch, UnitDof, false>(p, cols, i, kern, f[i - i0]);
}

/// What one exact gradient needs besides P, kept from call to call (an optimisation makes ~750 calls with
/// the same N): the float columns, the tile pairs' work list and slots, the per-point sums.
template <int Dim, class Arch>
struct exact_workspace {
    tsne_columns<Dim, Arch> cols;
    index_t layout_n = -1; ///< the N the layout below is for
    std::vector<std::pair<index_t, index_t>> pairs;
    std::vector<index_t> slot, order;
    uninitialized_buffer<float> part_i, part_j;
    std::vector<double> tile_sums; ///< one slot of doubles per tile, where its slots are summed
    std::vector<std::array<double, Dim>> attr, rep;
    std::vector<double> zrow, plogw;

    /// Takes y and (re)builds the layout when N changed.
    void prepare(const const_matrix_ref<double>& y)
    {
        cols.assign(y);
        const auto un = static_cast<std::size_t>(cols.n);
        if (attr.size() != un) {
            attr.resize(un);
            rep.resize(un);
            zrow.resize(un);
            plogw.resize(un);
        }
        if (cols.n == layout_n) return;
        layout_n = cols.n;
        const index_t t = cols.n_tiles;
        // Repulsion by tile pairs (I <= J), each into its own slot: rows of I, then (I < J) columns of J.
        pairs.clear();
        slot.assign(static_cast<std::size_t>(t * t), -1);
        for (index_t ti = 0; ti < t; ++ti)
            for (index_t tj = ti; tj < t; ++tj) {
                slot[static_cast<std::size_t>(ti * t + tj)] = static_cast<index_t>(pairs.size());
                pairs.emplace_back(ti, tj);
            }
        // The work list, largest items first, taken by threads as they finish: the off-diagonal tiles, the
        // diagonal ones (half the pairs); the attraction's chunks of rows follow. Tile order made the
        // threads' shares uneven (15 tiles for digits: one thread waited ~15% of each gradient).
        order.clear();
        for (index_t s = 0; s < static_cast<index_t>(pairs.size()); ++s)
            if (pairs[static_cast<std::size_t>(s)].first != pairs[static_cast<std::size_t>(s)].second)
                order.push_back(s);
        for (index_t k = 0; k < t; ++k) order.push_back(slot[static_cast<std::size_t>(k * t + k)]);
        // Every slot entry read is written first (no zero fill).
        const std::size_t count = pairs.size() * slot_size();
        part_i = uninitialized_buffer<float>(count);
        part_j = uninitialized_buffer<float>(count);
        tile_sums.resize(static_cast<std::size_t>(t) * slot_size());
    }
    /// Floats in one slot: z and the Dim force sums, B points each.
    [[nodiscard]] std::size_t slot_size() const noexcept
    {
        return static_cast<std::size_t>(Dim + 1) * static_cast<std::size_t>(cols.tile);
    }
};

/// The exact gradient (see tsne_gradient.hpp for the formula) with float vectors. `kl`: sum p log w from
/// the float distances of the attraction (log w = dof log u) and the vector Z. p32: P prepared once
/// (nullptr: prepared here).
template <int Dim, class Arch, bool UnitDof>
void exact_gradient(const sparse_affinities& p, const tsne_csr32<Arch>* p32, exact_workspace<Dim, Arch>& ws,
                    const const_matrix_ref<double>& y, matrix_ref<double> grad, double exaggeration, double dof,
                    bool want_kl, double& z_out, double& kl_out)
{
    using F = xsimd::batch<float, Arch>;
    std::unique_ptr<tsne_csr32<Arch>> own;
    const index_t n = p.n;
    ws.prepare(y);
    const tsne_columns<Dim, Arch>& cols = ws.cols;
    if (p32 == nullptr) {
        own = std::make_unique<tsne_csr32<Arch>>(p, want_kl);
        p32 = own.get();
    }
    const tsne_simd_kernel<Arch, UnitDof> kern{F(static_cast<float>(1.0 / dof)), F(static_cast<float>(dof))};

    const index_t t = cols.n_tiles, b = cols.tile;
    constexpr auto D1 = static_cast<std::size_t>(Dim + 1);
    const auto& pairs = ws.pairs;
    const auto& slot = ws.slot;
    const auto& order = ws.order;
    constexpr index_t attraction_chunk = 64;
    const index_t n_chunks = (n + attraction_chunk - 1) / attraction_chunk;
    const std::size_t slot_size = ws.slot_size();
    float* const part_i = ws.part_i.get();
    float* const part_j = ws.part_j.get();
    auto& attr = ws.attr;
    auto& rep = ws.rep;
    auto& zrow = ws.zrow;
    auto& plogw = ws.plogw; // written for every point when want_kl, else unused
    // Each point's slots in tile order, in double: (T, R) columns for T < R, (R, R) rows then columns, then
    // (R, T) rows for T > R (walked slot by slot; each point's sum in that order, whichever thread runs it).
    // Run by the thread that finishes the last of tile R's T tile pairs, inside the same team (a second
    // parallel loop for it cost ~10 us a gradient, digits).
    const auto at = [&](index_t ta, index_t tb) {
        return static_cast<std::size_t>(slot[static_cast<std::size_t>(ta * t + tb)]) * slot_size;
    };
    const auto reduce_tile = [&](index_t ri) {
        const index_t i0 = ri * b, count = std::min(n, i0 + b) - i0;
        double* sums = ws.tile_sums.data() + static_cast<std::size_t>(ri) * slot_size; // z, then f_1, ... (blocks of B)
        std::fill(sums, sums + slot_size, 0.0);
        const auto sb = static_cast<std::size_t>(b), sc = static_cast<std::size_t>(count);
        // Real points only (padding rows of part_i are unwritten); column slots hold their forces negated.
        const auto add = [&](const float* src, bool column) {
            for (std::size_t k = 0; k < sc; ++k) sums[k] += static_cast<double>(src[k]);
            for (std::size_t q = 1; q < D1; ++q)
                for (std::size_t k = 0; k < sc; ++k)
                    sums[q * sb + k] +=
                        column ? -static_cast<double>(src[q * sb + k]) : static_cast<double>(src[q * sb + k]);
        };
        for (index_t tt = 0; tt < t; ++tt) {
            if (tt < ri) add(part_j + at(tt, ri), true);
            if (tt == ri) {
                add(part_i + at(ri, ri), false);
                add(part_j + at(ri, ri), true);
            }
            if (tt > ri) add(part_i + at(ri, tt), false);
        }
        for (index_t k = 0; k < count; ++k) {
            const auto ui = static_cast<std::size_t>(i0 + k), uk = static_cast<std::size_t>(k);
            zrow[ui] = sums[uk];
            for (int d = 0; d < Dim; ++d)
                rep[ui][static_cast<std::size_t>(d)] = sums[static_cast<std::size_t>(d + 1) * sb + uk];
        }
    };
    // Tile pairs still to finish per tile (T each); acq_rel: the last one sees every other's slot writes.
    const auto pending = std::make_unique<std::atomic<index_t>[]>(static_cast<std::size_t>(t));
    for (index_t k = 0; k < t; ++k) pending[static_cast<std::size_t>(k)].store(t, std::memory_order_relaxed);
    const auto done = [&](index_t tile) {
        if (pending[static_cast<std::size_t>(tile)].fetch_sub(1, std::memory_order_acq_rel) == 1) reduce_tile(tile);
    };
    // One parallel region per gradient.
    parallel_for_dynamic(
        static_cast<index_t>(order.size()) + n_chunks,
        [&](index_t k) {
            if (k >= static_cast<index_t>(order.size())) { // attraction (and KL terms) of a chunk of rows
                const index_t r0 = (k - static_cast<index_t>(order.size())) * attraction_chunk;
                const index_t r1 = std::min(n, r0 + attraction_chunk);
                if (!want_kl) {
                    attraction_rows<Dim, Arch, UnitDof>(*p32, cols, r0, r1, kern, attr.data() + r0);
                    return;
                }
                for (index_t i = r0; i < r1; ++i) {
                    const auto ui = static_cast<std::size_t>(i);
                    plogw[ui] = dof * attraction_row<Dim, Arch, UnitDof, true>(*p32, cols, i, kern, attr[ui]);
                }
                return;
            }
            const index_t s = order[static_cast<std::size_t>(k)];
            const auto [ti, tj] = pairs[static_cast<std::size_t>(s)];
            const index_t i0 = ti * b, i1 = std::min(n, i0 + b), j0 = tj * b;
            const bool masked = j0 + b > n;
            float* oi = part_i + static_cast<std::size_t>(s) * slot_size;
            float* oj = part_j + static_cast<std::size_t>(s) * slot_size;
            if (ti != tj) {
                if (masked)
                    repulsion_tile<Dim, Arch, UnitDof, true, false>(cols, kern, i0, i1, j0, oi, oj);
                else
                    repulsion_tile<Dim, Arch, UnitDof, false, false>(cols, kern, i0, i1, j0, oi, oj);
            } else if (masked) {
                repulsion_tile<Dim, Arch, UnitDof, true, true>(cols, kern, i0, i1, j0, oi, oj);
            } else {
                repulsion_tile<Dim, Arch, UnitDof, false, true>(cols, kern, i0, i1, j0, oi, oj);
            }
            done(ti);
            if (tj != ti) done(tj);
        },
        12.0 * static_cast<double>(b) * static_cast<double>(b));

    const auto [z, total_plogw] = sum_tsne_gradient<Dim>(attr, rep, zrow, plogw, exaggeration, grad);
    z_out = z;
    if (want_kl) kl_out = p32->plogp - total_plogw + std::log(z);
}

} // namespace dskit::detail::simd
