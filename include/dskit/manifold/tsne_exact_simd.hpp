// The exact t-SNE gradient on the simd backend: the O(N²) repulsion and the sparse attraction in float
// vectors (xsimd), for 1-, 2- and 3-D embeddings and any degrees of freedom.
//
// Same quantities as the scalar (double) reference in tsne_gradient.hpp. The repulsion visits each pair
// once: the points are cut into tiles of B points, and tile pair (I, J), I < J, adds every pair's terms to
// both sides (Newton's third law), into that tile pair's own slot of partial sums; a point's total is then
// the sum of its slots in tile order. Pair terms are float, the partial sums double, and no sum depends on
// which thread computed what: the gradient is bit-identical for any thread count. Against the double
// reference it agrees to about 1e-5 relative (float rounding of the coordinates and of 1 / (1 + d²)).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
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
    std::array<column, Dim> c;
    column valid;
    column xy; ///< 2-D only: x0 y0 x1 y1 ... (one 8-byte load per partner in the attraction)

    explicit tsne_columns(const const_matrix_ref<double>& y) : n(y.rows())
    {
        // At most 32 tiles (bounded memory for the slots), at least 128 points a tile (short setup per tile).
        // The tiles then share the points evenly (padding below one vector a tile, not most of the last tile).
        const index_t want = std::max<index_t>(128, (n + 31) / 32);
        const index_t count = std::max<index_t>(1, (n + want - 1) / want);
        tile = ((n + count - 1) / count + lanes - 1) / lanes * lanes;
        n_tiles = (n + tile - 1) / tile;
        n_pad = n_tiles * tile;
        for (int d = 0; d < Dim; ++d) {
            c[static_cast<std::size_t>(d)].assign(static_cast<std::size_t>(n_pad), 0.0f);
            for (index_t i = 0; i < n; ++i)
                c[static_cast<std::size_t>(d)][static_cast<std::size_t>(i)] = static_cast<float>(y(i, d));
        }
        valid.assign(static_cast<std::size_t>(n_pad), 0.0f);
        std::fill(valid.begin(), valid.begin() + n, 1.0f);
        if constexpr (Dim == 2) {
            xy.resize(2 * static_cast<std::size_t>(n));
            for (index_t i = 0; i < n; ++i)
                for (int d = 0; d < 2; ++d)
                    xy[2 * static_cast<std::size_t>(i) + static_cast<std::size_t>(d)] = at(d, i);
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

/// 1 / x: on x86 the approximate reciprocal refined by one Newton step (about 1 ulp; 3 cheap
/// instructions instead of a division that would bound the O(N²) loop). The approximation differs
/// between CPU vendors, so results are reproducible on one machine, not across x86 vendors.
template <class Arch>
xsimd::batch<float, Arch> reciprocal(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, Arch>
#if XSIMD_WITH_AVX
                  || std::is_base_of_v<xsimd::avx, Arch>
#endif
    ) {
        const F r = xsimd::reciprocal(x);
        return r * xsimd::fnma(x, r, F(2.0f));
    }
#endif
    return F(1.0f) / x;
}

/// Pair kernel: u = 1 / (1 + d² / a) and the weight w = u^a (a: degrees of freedom).
template <class Arch, bool UnitDof>
struct tsne_simd_kernel {
    using F = xsimd::batch<float, Arch>;
    F inv_dof, dof;
    F u(const F& d2) const noexcept
    {
        if constexpr (UnitDof)
            return simd::reciprocal<Arch>(F(1.0f) + d2);
        else
            return simd::reciprocal<Arch>(xsimd::fma(d2, inv_dof, F(1.0f)));
    }
    /// Returns w and sets wu = w u.
    F weights(const F& d2, F& wu) const noexcept
    {
        const F uu = u(d2);
        if constexpr (UnitDof) {
            wu = uu * uu;
            return uu;
        } else {
            const F w = xsimd::exp(dof * xsimd::log(uu));
            wu = w * uu;
            return w;
        }
    }
};

/// Repulsion between the real rows [i0, i1) of one tile and the B points from j0 (another tile, or the same
/// one when Diagonal). Writes z, f_1 .. f_Dim per row to out_i and, unless Diagonal, the opposite
/// reactions per column to out_j (Dim + 1 doubles each). Masked: the columns include padding.
template <int Dim, class Arch, bool UnitDof, bool Masked, bool Diagonal>
void repulsion_tile(const tsne_columns<Dim, Arch>& cols, const tsne_simd_kernel<Arch, UnitDof>& kern, index_t i0,
                    index_t i1, index_t j0, double* out_i, double* out_j)
{
    using F = xsimd::batch<float, Arch>;
    constexpr index_t L = tsne_columns<Dim, Arch>::lanes;
    constexpr auto D1 = static_cast<std::size_t>(Dim + 1);
    const index_t b = cols.tile;
    // The columns' running sums, z then f_d, one vector per L columns.
    std::vector<float, xsimd::aligned_allocator<float>> acc_j(Diagonal ? 0 : D1 * static_cast<std::size_t>(b), 0.0f);
    // R rows at a time: off the diagonal two rows share each column vector's loads and its running sums'
    // load and store (the sums get the two rows' terms added first).
    const auto rows = [&]<int R>(index_t i) {
        std::array<std::array<F, Dim>, R> yi, fi;
        std::array<F, R> zi;
        for (int r = 0; r < R; ++r) {
            zi[static_cast<std::size_t>(r)] = F(0.0f);
            for (int d = 0; d < Dim; ++d) {
                yi[static_cast<std::size_t>(r)][static_cast<std::size_t>(d)] = F(cols.at(d, i + r));
                fi[static_cast<std::size_t>(r)][static_cast<std::size_t>(d)] = F(0.0f);
            }
        }
        for (index_t jb = 0; jb < b; jb += L) {
            std::array<F, Dim> yj;
            for (int d = 0; d < Dim; ++d) yj[static_cast<std::size_t>(d)] = F::load_aligned(cols.col(d, j0 + jb));
            std::array<std::array<F, Dim>, R> diff;
            std::array<F, R> w, wu;
            for (int r = 0; r < R; ++r) {
                const auto ur = static_cast<std::size_t>(r);
                F d2(0.0f);
                for (int d = 0; d < Dim; ++d) {
                    const auto ud = static_cast<std::size_t>(d);
                    diff[ur][ud] = yi[ur][ud] - yj[ud];
                    d2 = xsimd::fma(diff[ur][ud], diff[ur][ud], d2);
                }
                w[ur] = kern.weights(d2, wu[ur]);
                if constexpr (Masked) {
                    const F v = F::load_aligned(cols.valid.data() + j0 + jb);
                    w[ur] *= v;
                    wu[ur] *= v;
                }
                zi[ur] += w[ur];
                for (int d = 0; d < Dim; ++d)
                    fi[ur][static_cast<std::size_t>(d)] =
                        xsimd::fma(wu[ur], diff[ur][static_cast<std::size_t>(d)], fi[ur][static_cast<std::size_t>(d)]);
            }
            if constexpr (!Diagonal) {
                float* a = acc_j.data() + D1 * static_cast<std::size_t>(jb);
                F zsum = w[0];
                for (int r = 1; r < R; ++r) zsum += w[static_cast<std::size_t>(r)];
                (F::load_aligned(a) + zsum).store_aligned(a);
                for (int d = 0; d < Dim; ++d) {
                    const auto ud = static_cast<std::size_t>(d);
                    F fsum = wu[0] * diff[0][ud];
                    for (int r = 1; r < R; ++r)
                        fsum = xsimd::fma(wu[static_cast<std::size_t>(r)], diff[static_cast<std::size_t>(r)][ud], fsum);
                    float* ad = a + static_cast<std::size_t>(d + 1) * static_cast<std::size_t>(L);
                    (F::load_aligned(ad) - fsum).store_aligned(ad);
                }
            }
        }
        for (int r = 0; r < R; ++r) {
            const auto ur = static_cast<std::size_t>(r);
            double* o = out_i + D1 * static_cast<std::size_t>(i + r - i0);
            o[0] = lanes_sum<Arch>(zi[ur]);
            if constexpr (Diagonal) { // the point itself: w(0) in z (exactly 0 in f)
                F wself;
                o[0] -= static_cast<double>(kern.weights(F(0.0f), wself).get(0));
            }
            for (int d = 0; d < Dim; ++d) o[d + 1] = lanes_sum<Arch>(fi[ur][static_cast<std::size_t>(d)]);
        }
    };
    index_t i = i0;
    if constexpr (!Diagonal)
        for (; i + 1 < i1; i += 2) rows.template operator()<2>(i);
    for (; i < i1; ++i) rows.template operator()<1>(i);
    if constexpr (!Diagonal) {
        for (index_t jb = 0; jb < b; jb += L)
            for (index_t l = 0; l < L; ++l)
                for (std::size_t q = 0; q < D1; ++q)
                    out_j[D1 * static_cast<std::size_t>(jb + l) + q] =
                        static_cast<double>(acc_j[D1 * static_cast<std::size_t>(jb) + q * static_cast<std::size_t>(L) +
                                                  static_cast<std::size_t>(l)]);
    }
}

/// P's rows for the vector attraction: int32 columns and float values, each row zero-padded (column i,
/// value 0) to a multiple of the lane count so that every row is whole vectors. Built once per run.
template <class Arch>
struct tsne_csr32 {
    static constexpr index_t lanes = static_cast<index_t>(xsimd::batch<float, Arch>::size);
    std::vector<index_t> start;
    std::vector<std::int32_t, xsimd::aligned_allocator<std::int32_t>> cols;
    std::vector<float, xsimd::aligned_allocator<float>> vals;
    double plogp = 0.0; ///< sum p log p over P's non-zeros (the constant part of KL)

    explicit tsne_csr32(const sparse_affinities& p) : start(static_cast<std::size_t>(p.n) + 1, 0)
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
        for (double v : p.values)
            if (v > 0.0) plogp += v * std::log(v);
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
    return xsimd::batch<float, Arch>::gather(src, index);
}

/// Attraction on point i over P's row: f = sum_j p_ij u_ij (y_i - y_j), partners gathered into vectors.
template <int Dim, class Arch, bool UnitDof>
void attraction_row(const tsne_csr32<Arch>& p, const tsne_columns<Dim, Arch>& cols, index_t i,
                    const tsne_simd_kernel<Arch, UnitDof>& kern, std::array<double, Dim>& f) noexcept
{
    using F = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr index_t L = tsne_columns<Dim, Arch>::lanes;
#if XSIMD_WITH_AVX
    // 2-D on 8-lane AVX: each partner's (x, y) is one 8-byte load, four partners to a vector
    // (x0 y0 x1 y1 | x2 y2 x3 y3), which beats the gather instruction (slow on several x86 cores).
    if constexpr (Dim == 2 && std::is_base_of_v<xsimd::avx, Arch> && L == 8) {
        const __m256 yi2 = _mm256_setr_ps(cols.at(0, i), cols.at(1, i), cols.at(0, i), cols.at(1, i), cols.at(0, i),
                                          cols.at(1, i), cols.at(0, i), cols.at(1, i));
        const float* xy = cols.xy.data();
        const auto pair = [&](std::int32_t j) {
            return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(xy + 2 * static_cast<std::ptrdiff_t>(j))));
        };
        const auto two = [&](std::int32_t j0, std::int32_t j1) {
            return _mm_castpd_ps(_mm_loadh_pd(
                _mm_castps_pd(pair(j0)), reinterpret_cast<const double*>(xy + 2 * static_cast<std::ptrdiff_t>(j1))));
        };
        F acc0(0.0f), acc1(0.0f);
        const index_t end = p.start[static_cast<std::size_t>(i) + 1];
        for (index_t e = p.start[static_cast<std::size_t>(i)]; e < end; e += 4) {
            const std::int32_t* c = p.cols.data() + e;
            const F pts = _mm256_set_m128(two(c[2], c[3]), two(c[0], c[1]));
            const F diff = F(yi2) - pts;
            const F sq = diff * diff;
            const F d2 = sq + F(_mm256_permute_ps(sq, 0xB1)); // x² + y² in both slots of a pair
            const __m128 v = _mm_load_ps(p.vals.data() + e);
            const F pu = F(_mm256_set_m128(_mm_unpackhi_ps(v, v), _mm_unpacklo_ps(v, v))) * kern.u(d2);
            acc0 = xsimd::fma(pu, diff, acc0);
            std::swap(acc0, acc1); // alternate accumulators: consecutive fmas do not wait on each other
        }
        alignas(32) float buf[8];
        (acc0 + acc1).store_aligned(buf);
        f[0] = static_cast<double>((buf[0] + buf[2]) + (buf[4] + buf[6]));
        f[1] = static_cast<double>((buf[1] + buf[3]) + (buf[5] + buf[7]));
        return;
    }
#endif
    std::array<F, Dim> yi, acc;
    for (int d = 0; d < Dim; ++d) yi[static_cast<std::size_t>(d)] = F(cols.at(d, i));
    acc.fill(F(0.0f));
    const index_t end = p.start[static_cast<std::size_t>(i) + 1];
    for (index_t e = p.start[static_cast<std::size_t>(i)]; e < end; e += L) {
        const I j = I::load_aligned(p.cols.data() + e);
        std::array<F, Dim> diff;
        F d2(0.0f);
        for (int d = 0; d < Dim; ++d) {
            const auto ud = static_cast<std::size_t>(d);
            diff[ud] = yi[ud] - gather<Arch>(cols.c[ud].data(), j);
            d2 = xsimd::fma(diff[ud], diff[ud], d2);
        }
        const F pu = F::load_aligned(p.vals.data() + e) * kern.u(d2);
        for (int d = 0; d < Dim; ++d) {
            const auto ud = static_cast<std::size_t>(d);
            acc[ud] = xsimd::fma(pu, diff[ud], acc[ud]);
        }
    }
    for (int d = 0; d < Dim; ++d) f[static_cast<std::size_t>(d)] = lanes_sum<Arch>(acc[static_cast<std::size_t>(d)]);
}

/// The exact gradient (see tsne_gradient.hpp for the formula) with float vectors. `kl` uses the double
/// coordinates for sum p log w and the vector Z. p32: P prepared once (nullptr: prepared here).
template <int Dim, class Arch, bool UnitDof>
void exact_gradient(const sparse_affinities& p, const tsne_csr32<Arch>* p32, const const_matrix_ref<double>& y,
                    matrix_ref<double> grad, double exaggeration, double dof, bool want_kl, double& z_out,
                    double& kl_out)
{
    using F = xsimd::batch<float, Arch>;
    std::unique_ptr<tsne_csr32<Arch>> own;
    const index_t n = p.n;
    const tsne_columns<Dim, Arch> cols(y);
    if (p32 == nullptr) {
        own = std::make_unique<tsne_csr32<Arch>>(p);
        p32 = own.get();
    }
    const tsne_simd_kernel<Arch, UnitDof> kern{F(static_cast<float>(1.0 / dof)), F(static_cast<float>(dof))};

    // Repulsion by tile pairs (I <= J), each into its own slot: rows of I, then (I < J) columns of J.
    const index_t t = cols.n_tiles, b = cols.tile;
    constexpr auto D1 = static_cast<std::size_t>(Dim + 1);
    std::vector<std::pair<index_t, index_t>> pairs;
    std::vector<index_t> slot(static_cast<std::size_t>(t * t), -1);
    for (index_t ti = 0; ti < t; ++ti)
        for (index_t tj = ti; tj < t; ++tj) {
            slot[static_cast<std::size_t>(ti * t + tj)] = static_cast<index_t>(pairs.size());
            pairs.emplace_back(ti, tj);
        }
    const std::size_t slot_size = D1 * static_cast<std::size_t>(b);
    std::vector<double> part_i(pairs.size() * slot_size), part_j(pairs.size() * slot_size);
    std::vector<std::array<double, Dim>> attr(static_cast<std::size_t>(n)), rep(static_cast<std::size_t>(n));
    std::vector<double> zrow(static_cast<std::size_t>(n)), plogw(static_cast<std::size_t>(n), 0.0);
    // One parallel region per gradient: the diagonal tile (I, I) also does the attraction (and KL terms)
    // of tile I's points; each point's slots are then summed serially (O(N N / B), cheap).
    parallel_for(
        static_cast<index_t>(pairs.size()),
        [&](index_t s) {
            const auto [ti, tj] = pairs[static_cast<std::size_t>(s)];
            const index_t i0 = ti * b, i1 = std::min(n, i0 + b), j0 = tj * b;
            const bool masked = j0 + b > n;
            double* oi = part_i.data() + static_cast<std::size_t>(s) * slot_size;
            double* oj = part_j.data() + static_cast<std::size_t>(s) * slot_size;
            if (ti != tj) {
                if (masked)
                    repulsion_tile<Dim, Arch, UnitDof, true, false>(cols, kern, i0, i1, j0, oi, oj);
                else
                    repulsion_tile<Dim, Arch, UnitDof, false, false>(cols, kern, i0, i1, j0, oi, oj);
                return;
            }
            if (masked)
                repulsion_tile<Dim, Arch, UnitDof, true, true>(cols, kern, i0, i1, j0, oi, oj);
            else
                repulsion_tile<Dim, Arch, UnitDof, false, true>(cols, kern, i0, i1, j0, oi, oj);
            for (index_t i = i0; i < i1; ++i) {
                const auto ui = static_cast<std::size_t>(i);
                attraction_row<Dim, Arch, UnitDof>(*p32, cols, i, kern, attr[ui]);
                if (!want_kl) continue;
                double sum = 0.0;
                for (auto e = p.indptr[ui]; e < p.indptr[ui + 1]; ++e) {
                    const index_t j = p.indices[static_cast<std::size_t>(e)];
                    double d2 = 0.0;
                    for (int d = 0; d < Dim; ++d) d2 += (y(i, d) - y(j, d)) * (y(i, d) - y(j, d));
                    // log w = -a log(1 + d² / a)
                    sum += p.values[static_cast<std::size_t>(e)] * (-dof * std::log1p(d2 / dof));
                }
                plogw[ui] = sum;
            }
        },
        12.0 * static_cast<double>(b) * static_cast<double>(b));

    for (index_t i = 0; i < n; ++i) {
        // The point's slots in tile order: (T, R) columns for T < R, then (R, T) rows for T >= R.
        const index_t ri = i / b, off = i % b;
        double z = 0.0;
        std::array<double, Dim> r{};
        for (index_t tt = 0; tt < t; ++tt) {
            const double* src =
                tt < ri
                    ? part_j.data() + static_cast<std::size_t>(slot[static_cast<std::size_t>(tt * t + ri)]) * slot_size
                    : part_i.data() + static_cast<std::size_t>(slot[static_cast<std::size_t>(ri * t + tt)]) * slot_size;
            src += D1 * static_cast<std::size_t>(off);
            z += src[0];
            for (int d = 0; d < Dim; ++d) r[static_cast<std::size_t>(d)] += src[d + 1];
        }
        zrow[static_cast<std::size_t>(i)] = z;
        rep[static_cast<std::size_t>(i)] = r;
    }
    const auto [z, total_plogw] = sum_tsne_gradient<Dim>(attr, rep, zrow, plogw, exaggeration, grad);
    z_out = z;
    if (want_kl) kl_out = p32->plogp - total_plogw + std::log(z);
}

} // namespace dskit::detail::simd
