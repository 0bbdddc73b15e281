// The t-SNE gradient by FFT-accelerated interpolation (FIt-SNE: Linderman, Rachh, Hoskins, Steinerberger and
// Kluger, Nature Methods 2019) for 1- and 2-dimensional embeddings: O(N + M^d log M) per evaluation.
//
// Same quantity, units and conventions as tsne_gradient.hpp (the exact KL gradient with its factor 4, the
// kernel w = u^a with u = (1 + d²/a)^-1, a = dof; the attractive term and the KL estimate come from the same
// pass over P's non-zeros). Only the repulsive sums differ: for every point i they need
//
//   sum_j K2(y_i, y_j) (1, y_j)     K2 = u^(a+1):  force  sum_j w u (y_i - y_j) = y_i sum K2 - sum K2 y_j
//   sum_j K1(y_i, y_j)              K1 = u^a = w:  Z_i    (less the self term, see fft_grid::self_term)
//
// The embedding's bounding box is cut into n_b equal intervals per axis, each with p equispaced Lagrange nodes
// at (k + 1/2) / p of its width (M = p n_b nodes per axis). Every point spreads its charges onto the nodes of
// its own interval with its Lagrange weights, the node-to-node kernel sums (a Toeplitz product) are circular
// convolutions on the zero-padded 2M (x 2M) grid done by FFT (batch_fft.hpp), and every point reads its
// potentials back with the same weights. The four real channels go through two complex grids; since the
// kernels are real and even, the pair that needs two different kernels is split in Fourier space.
//
// Grid size, openTSNE's rule and defaults: n_b = max(min_intervals, span / ints_in_interval) (span: the longest
// side of the bounding box), rounded up to a 2^a 3^b size for the FFT and capped at max_intervals;
// p = 3 nodes per interval. openTSNE's TSNE uses min_num_intervals = 50 for 1-D and 2-D alike (its low-level
// functions default to 10). Memory: O(N) for the points plus eight real grids of (2M)^d values (2-D with
// n_b = 108: M = 324, 27 MB; at the cap of 1000 intervals, 2.3 GB), kept in a tsne_fft_workspace for reuse.
//
// Determinism: charges are spread in parallel over rows of intervals, each grid node written by one thread
// with its points in index order; FFT rows are independent and transposes only move data; the per-point sums
// go through tsne_gradient.hpp's fixed-order reduction. Results are bit-identical whatever the thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/manifold/affinity.hpp"
#include "dskit/manifold/batch_fft.hpp"
#include "dskit/manifold/tsne_gradient.hpp"

namespace dskit {

/// Interpolation grid of the FFT gradient (defaults: openTSNE's TSNE).
struct tsne_fft_options {
    int points_per_interval = 3;   ///< Lagrange nodes per interval and axis, 1 to 16 (openTSNE n_interpolation_points)
    int min_intervals = 50;        ///< fewest intervals per axis (openTSNE min_num_intervals)
    double ints_in_interval = 1.0; ///< widest interval in embedding units (openTSNE ints_in_interval)
    int max_intervals = 1000;      ///< most intervals per axis (openTSNE's cap); bounds the grid's memory
};

/// Buffers of tsne_gradient_fft, kept between calls so that repeated evaluations do not reallocate.
/// Not shared between concurrent calls.
struct tsne_fft_workspace {
    std::vector<double> a_re, a_im, b_re, b_im; ///< the four charge channels as two complex grids (split)
    std::vector<double> k_re, k_im;             ///< the kernel grid, then the second product
    std::vector<double> spec1, spec2;           ///< spectra of K1 and K2 (real: the kernels are even)
    std::vector<double> table1, table2;         ///< K1 and K2 by node offset
    std::vector<index_t> key, order, row_start; ///< points sorted by row of intervals
    detail::batch_fft_plan plan;                ///< for the padded grid's side
};

namespace detail {

/// Smallest 2^a 3^b >= n: lengths batch_fft_plan transforms with radix-4, -2 and -3 stages only.
inline index_t fft_friendly_size(index_t n)
{
    for (index_t m = std::max<index_t>(n, 1);; ++m) {
        index_t r = m;
        for (index_t f : {2, 3})
            while (r % f == 0) r /= f;
        if (r == 1) return m;
    }
}

/// Sequences per batched transform: rows of the grid go through the FFT this many at a time. Small blocks keep
/// a transform's working set in L1; 2 measured fastest here (2-D pair of transforms at side 576: 8 -> 4 -> 2
/// sequences took about 14, 11-12 and 9-10 ms).
inline constexpr index_t fft_block = 2;

/// One thread's block buffer and FFT scratch (split complex, fft_block sequences).
inline std::vector<double>& fft_scratch(index_t n)
{
    thread_local std::vector<double> s;
    s.resize(static_cast<std::size_t>(4 * n * fft_block));
    return s;
}

inline double fft_work(index_t n)
{
    return 5.0 * static_cast<double>(n) * std::log2(static_cast<double>(std::max<index_t>(n, 2)));
}

/// A square or single-row grid of complex values with split real and imaginary parts.
struct split_grid {
    double* re;
    double* im;
};

/// In-place transforms of rows [0, rows) of row-major split-complex grids with plan.size() columns, all
/// in one parallel region (each region ends in a barrier, which costs on a busy machine).
inline void fft_rows(std::initializer_list<split_grid> grids, index_t rows, const batch_fft_plan& plan, bool inverse)
{
    const index_t nc = plan.size(), blocks = (rows + fft_block - 1) / fft_block;
    const split_grid* gs = grids.begin();
    parallel_for(
        blocks * static_cast<index_t>(grids.size()),
        [&](index_t job) {
            const split_grid& g = gs[job / blocks];
            std::vector<double>& s = fft_scratch(nc);
            double *br = s.data(), *bi = br + nc * fft_block, *wr = bi + nc * fft_block, *wi = wr + nc * fft_block;
            const index_t r0 = (job % blocks) * fft_block, w = std::min(fft_block, rows - r0);
            for (index_t b = 0; b < w; ++b)
                for (index_t c = 0; c < nc; ++c) {
                    br[c * w + b] = g.re[(r0 + b) * nc + c];
                    bi[c * w + b] = g.im[(r0 + b) * nc + c];
                }
            plan.run(br, bi, w, inverse, wr, wi);
            for (index_t b = 0; b < w; ++b)
                for (index_t c = 0; c < nc; ++c) {
                    g.re[(r0 + b) * nc + c] = br[c * w + b];
                    g.im[(r0 + b) * nc + c] = bi[c * w + b];
                }
        },
        fft_block * fft_work(nc));
}

/// In-place transposes of one or two square n x n grids, tile by tile so that both sides stay in cache.
inline void transpose_square(std::initializer_list<split_grid> grids, index_t n)
{
    constexpr index_t tile = 32;
    const index_t tiles = (n + tile - 1) / tile;
    std::array<double*, 4> arrays{}; // at most two grids per call
    std::size_t count = 0;
    for (const split_grid& g : grids)
        for (double* a : {g.re, g.im})
            if (count < arrays.size()) arrays[count++] = a;
    parallel_for(
        tiles * static_cast<index_t>(count),
        [&](index_t job) {
            double* a = arrays[static_cast<std::size_t>(job / tiles)];
            const index_t ti = job % tiles, r0 = ti * tile, r1 = std::min(n, r0 + tile);
            for (index_t tj = ti; tj < tiles; ++tj) {
                const index_t c0 = tj * tile, c1 = std::min(n, c0 + tile);
                for (index_t r = r0; r < r1; ++r)
                    for (index_t c = (ti == tj ? r + 1 : c0); c < c1; ++c) std::swap(a[r * n + c], a[c * n + r]);
            }
        },
        static_cast<double>(n) * tile);
}

/// 2-D transforms of square grids with non-zero rows [0, rows_in): rows, transpose, rows. The spectra come
/// out transposed (frequency (kr, kc) at [kc][kr]).
inline void fft_2d_forward(std::initializer_list<split_grid> grids, index_t rows_in, const batch_fft_plan& plan)
{
    fft_rows(grids, rows_in, plan, false);
    transpose_square(grids, plan.size());
    fft_rows(grids, plan.size(), plan, false);
}

/// Inverse of fft_2d_forward (unscaled) for transposed spectra; rows [0, rows_out) of the results are exact.
inline void fft_2d_inverse(std::initializer_list<split_grid> grids, index_t rows_out, const batch_fft_plan& plan)
{
    fft_rows(grids, plan.size(), plan, true);
    transpose_square(grids, plan.size());
    fft_rows(grids, rows_out, plan, true);
}

/// The interpolation grid of one evaluation: Dim axes of n_b intervals of one width, p nodes each.
template <int Dim>
struct fft_grid {
    static constexpr int max_points = 16;
    int p = 3;
    index_t nb = 0, m = 0, nr = 0, nc = 0; ///< intervals and nodes per axis; padded grid rows x columns
    point<Dim> lo{};
    double width = 1.0, inv_width = 1.0;
    std::array<double, max_points> node{}, inv_den{}; ///< node positions in [0, 1]; 1 / prod_{m != k}(t_k - t_m)

    fft_grid(const std::vector<point<Dim>>& pts, const tsne_fft_options& o) : p(o.points_per_interval)
    {
        point<Dim> hi{};
        lo = hi = pts.front();
        bool finite = true;
        for (const auto& q : pts)
            for (int c = 0; c < Dim; ++c) {
                finite = finite && std::isfinite(q[c]);
                lo[c] = std::min(lo[c], q[c]);
                hi[c] = std::max(hi[c], q[c]);
            }
        if (!finite) throw value_error(describe("tsne_gradient_fft", "finite embedding coordinates", "NaN or Inf"));
        double span = 0.0;
        for (int c = 0; c < Dim; ++c) span = std::max(span, hi[c] - lo[c]);
        if (!(span > 0.0)) span = 1.0; // all points coincide: any grid covers them
        const double want = std::min(std::ceil(span / o.ints_in_interval), static_cast<double>(o.max_intervals));
        nb = std::min(fft_friendly_size(std::max(static_cast<index_t>(o.min_intervals), static_cast<index_t>(want))),
                      static_cast<index_t>(o.max_intervals));
        width = span / static_cast<double>(nb);
        inv_width = 1.0 / width;
        m = p * nb;
        nc = 2 * m;
        nr = Dim == 2 ? 2 * m : 1;
        for (int k = 0; k < p; ++k) node[k] = (k + 0.5) / p;
        for (int k = 0; k < p; ++k) {
            double den = 1.0;
            for (int j = 0; j < p; ++j)
                if (j != k) den *= node[k] - node[j];
            inv_den[k] = 1.0 / den;
        }
    }

    /// Interval of y along each axis and the Lagrange weights of its p nodes.
    void locate(const point<Dim>& y, std::array<index_t, Dim>& box,
                std::array<std::array<double, max_points>, Dim>& w) const
    {
        for (int c = 0; c < Dim; ++c) {
            const double s = (y[c] - lo[c]) * inv_width;
            // Points on the upper edge (and rounding just past it) belong to the last interval.
            const index_t b = std::clamp<index_t>(static_cast<index_t>(s), 0, nb - 1);
            box[c] = b;
            const double t = s - static_cast<double>(b);
            for (int k = 0; k < p; ++k) {
                double v = inv_den[k];
                for (int j = 0; j < p; ++j)
                    if (j != k) v *= t - node[j];
                w[c][k] = v;
            }
        }
    }

    /// sum_{a, b} L_a L_b K1(node_a - node_b): the point's interaction with itself through the interpolation.
    /// Taken off Z_i instead of the exact w(0) = 1, so that layouts with Z not much larger than N (points many
    /// units apart) keep an accurate Z. k1: K1 by node offset (row-major, tc per row).
    [[nodiscard]] double self_term(const std::array<std::array<double, max_points>, Dim>& w, const double* k1,
                                   index_t tc) const
    {
        std::array<double, max_points> r{}; // r[d] = sum_{kx, kx'} w_kx w_kx' K1(d, |kx - kx'|)
        for (int d = 0; d < (Dim == 2 ? p : 1); ++d)
            for (int a = 0; a < p; ++a)
                for (int b = 0; b < p; ++b) r[d] += w[0][a] * w[0][b] * k1[d * tc + std::abs(a - b)];
        if constexpr (Dim == 1) {
            return r[0];
        } else {
            double s = 0.0;
            for (int a = 0; a < p; ++a)
                for (int b = 0; b < p; ++b) s += w[1][a] * w[1][b] * r[std::abs(a - b)];
            return s;
        }
    }

    /// Grid offset of the first node of box (row-major: axis 1 along rows, axis 0 along columns).
    [[nodiscard]] index_t base(const std::array<index_t, Dim>& box) const
    {
        if constexpr (Dim == 2)
            return box[1] * p * nc + box[0] * p;
        else
            return box[0] * p;
    }
};

/// Spectra of the two kernels on the padded grid, scaled by 1 / (grid size) for the unscaled inverse: K2 + i K1
/// in one complex transform; both are real and even, so their spectra are real: spec2 = Re, spec1 = Im.
template <int Dim>
void fft_kernel_spectra(const fft_grid<Dim>& gr, double dof, tsne_fft_workspace& ws)
{
    const index_t m = gr.m, nr = gr.nr, nc = gr.nc;
    const double h = gr.width / gr.p; // node spacing
    const tsne_kernel kern{dof};
    // Values by offset (dr, dc) in [0, m]^Dim: the padded grid repeats them mirrored.
    const index_t tr = Dim == 2 ? m + 1 : 1, tc = m + 1;
    ws.table1.resize(static_cast<std::size_t>(tr * tc));
    ws.table2.resize(static_cast<std::size_t>(tr * tc));
    parallel_for(
        tr,
        [&](index_t dr) {
            for (index_t dc = 0; dc < tc; ++dc) {
                const double dx = h * static_cast<double>(dc), dy = h * static_cast<double>(dr);
                const double u = kern.u(dx * dx + dy * dy), w = kern.w(u);
                ws.table1[static_cast<std::size_t>(dr * tc + dc)] = w;
                ws.table2[static_cast<std::size_t>(dr * tc + dc)] = w * u;
            }
        },
        dof == 1.0 ? 5.0 * static_cast<double>(tc) : 60.0 * static_cast<double>(tc));
    // The grid is even along both axes, and so is every partial transform: rows r and nr - r (then columns c
    // and nc - c) are equal, so only rows and columns [0, m] are transformed. The kernel is radial, so its
    // spectrum is symmetric and the transposed layout of fft_2d_forward needs no care.
    const auto size = static_cast<std::size_t>(nr * nc);
    ws.k_re.resize(size);
    ws.k_im.resize(size);
    double *kr = ws.k_re.data(), *ki = ws.k_im.data();
    parallel_for(
        tr,
        [&](index_t r) {
            for (index_t c = 0; c < nc; ++c) {
                const auto at = static_cast<std::size_t>(r * tc + (c <= m ? c : nc - c));
                kr[r * nc + c] = ws.table2[at];
                ki[r * nc + c] = ws.table1[at];
            }
        },
        static_cast<double>(nc));
    fft_rows({{kr, ki}}, tr, ws.plan, false);
    if (nr > 1) { // rows m + 1.. mirror rows 1..; after the transpose the same holds for the (former) columns
        for (index_t r = m + 1; r < nr; ++r) {
            std::copy_n(kr + (nr - r) * nc, nc, kr + r * nc);
            std::copy_n(ki + (nr - r) * nc, nc, ki + r * nc);
        }
        transpose_square({{kr, ki}}, nr);
        fft_rows({{kr, ki}}, tr, ws.plan, false);
    }
    ws.spec1.resize(size);
    ws.spec2.resize(size);
    const double scale = 1.0 / static_cast<double>(nr * nc);
    parallel_for(
        nr,
        [&](index_t r) {
            for (index_t c = 0; c < nc; ++c) {
                const index_t from = (nr > 1 && r > m ? nr - r : r) * nc + (c <= m ? c : nc - c);
                ws.spec2[static_cast<std::size_t>(r * nc + c)] = scale * kr[from];
                ws.spec1[static_cast<std::size_t>(r * nc + c)] = scale * ki[from];
            }
        },
        2.0 * static_cast<double>(nc));
}

template <int Dim>
tsne_gradient_stats fft_gradient_impl(const sparse_affinities& p, const const_matrix_ref<double>& y,
                                      matrix_ref<double> grad, double exaggeration, double dof, bool want_kl,
                                      const tsne_fft_options& o, tsne_fft_workspace& ws)
{
    const tsne_kernel kern{dof};
    const std::vector<point<Dim>> pts = pack_points<Dim>(y);
    const index_t n = p.n;
    const fft_grid<Dim> gr(pts, o);
    const index_t m = gr.m, nr = gr.nr, nc = gr.nc, np = gr.p;
    const auto grid_size = static_cast<std::size_t>(nr * nc);
    if (ws.plan.size() != nc) ws.plan = batch_fft_plan(nc); // nr is nc (2-D) or 1

    fft_kernel_spectra<Dim>(gr, dof, ws);

    // Points sorted (stably) by row of intervals (1-D: by interval): each row's nodes are then written by one
    // thread, in point-index order.
    ws.key.resize(static_cast<std::size_t>(n));
    ws.order.resize(static_cast<std::size_t>(n));
    ws.row_start.assign(static_cast<std::size_t>(gr.nb) + 1, 0);
    for (index_t i = 0; i < n; ++i) {
        const double s = (pts[static_cast<std::size_t>(i)][Dim - 1] - gr.lo[Dim - 1]) * gr.inv_width;
        const index_t b = std::clamp<index_t>(static_cast<index_t>(s), 0, gr.nb - 1);
        ws.key[static_cast<std::size_t>(i)] = b;
        ++ws.row_start[static_cast<std::size_t>(b) + 1];
    }
    for (index_t b = 0; b < gr.nb; ++b)
        ws.row_start[static_cast<std::size_t>(b) + 1] += ws.row_start[static_cast<std::size_t>(b)];
    for (index_t i = 0; i < n; ++i) { // row_start[b] walks to the end of row b ...
        const auto b = static_cast<std::size_t>(ws.key[static_cast<std::size_t>(i)]);
        ws.order[static_cast<std::size_t>(ws.row_start[b]++)] = i;
    }
    for (index_t b = gr.nb; b > 0; --b) // ... so shift it back by one row
        ws.row_start[static_cast<std::size_t>(b)] = ws.row_start[static_cast<std::size_t>(b) - 1];
    ws.row_start[0] = 0;

    // Charges onto the nodes: A = (1, y_0); B = (y_1, 1) in 2-D, (1, 0) in 1-D.
    for (auto* v : {&ws.a_re, &ws.a_im, &ws.b_re, &ws.b_im}) v->resize(grid_size);
    double *ar = ws.a_re.data(), *ai = ws.a_im.data(), *br = ws.b_re.data(), *bi = ws.b_im.data();
    const index_t rows_used = Dim == 2 ? m : 1;
    parallel_for(
        nr,
        [&](index_t r) {
            for (double* g : {ar, ai, br, bi}) std::fill_n(g + r * nc, nc, 0.0);
        },
        4.0 * static_cast<double>(nc));
    parallel_for(
        gr.nb,
        [&](index_t row) {
            const index_t first = ws.row_start[static_cast<std::size_t>(row)];
            const index_t last = ws.row_start[static_cast<std::size_t>(row) + 1];
            std::array<index_t, Dim> box;
            std::array<std::array<double, fft_grid<Dim>::max_points>, Dim> w;
            for (index_t e = first; e < last; ++e) {
                const point<Dim>& q = pts[static_cast<std::size_t>(ws.order[static_cast<std::size_t>(e)])];
                gr.locate(q, box, w);
                const index_t base = gr.base(box);
                if constexpr (Dim == 2) {
                    for (index_t ky = 0; ky < np; ++ky)
                        for (index_t kx = 0; kx < np; ++kx) {
                            const double wt = w[1][ky] * w[0][kx];
                            const index_t at = base + ky * nc + kx;
                            ar[at] += wt;
                            ai[at] += wt * q[0];
                            br[at] += wt * q[1];
                            bi[at] += wt;
                        }
                } else {
                    for (index_t kx = 0; kx < np; ++kx) {
                        const double wt = w[0][kx];
                        ar[base + kx] += wt;
                        ai[base + kx] += wt * q[0];
                        br[base + kx] += wt;
                    }
                }
            }
        },
        50.0 * static_cast<double>(n) / static_cast<double>(gr.nb));

    // Forward transforms (only the charged rows need the first pass); 2-D spectra come out transposed, which the
    // element-wise products below do not mind (square grid, symmetric kernel spectra).
    if constexpr (Dim == 2) {
        fft_2d_forward({{ar, ai}, {br, bi}}, rows_used, ws.plan);
    } else {
        fft_rows({{ar, ai}, {br, bi}}, 1, ws.plan, false);
    }
    // Kernel products. A: both channels with K2. B -> K: in 2-D the real channel needs K2 and the imaginary one
    // K1: with B' = conj(B(-k)), out = (F2 + F1) / 2 B + (F2 - F1) / 2 B'. In 1-D, K1 alone.
    double *kr = ws.k_re.data(), *ki = ws.k_im.data();
    parallel_for(
        nr,
        [&](index_t r) {
            const index_t rn = (nr - r) % nr;
            for (index_t c = 0; c < nc; ++c) {
                const index_t k = r * nc + c;
                const double f1 = ws.spec1[static_cast<std::size_t>(k)], f2 = ws.spec2[static_cast<std::size_t>(k)];
                ar[k] *= f2;
                ai[k] *= f2;
                if constexpr (Dim == 2) {
                    const index_t kn = rn * nc + (nc - c) % nc;
                    const double s = 0.5 * (f2 + f1), d = 0.5 * (f2 - f1);
                    kr[k] = s * br[k] + d * br[kn];
                    ki[k] = s * bi[k] - d * bi[kn];
                } else {
                    kr[k] = f1 * br[k];
                    ki[k] = f1 * bi[k];
                }
            }
        },
        20.0 * static_cast<double>(nc));
    // Inverse transforms: only the node rows are read afterwards.
    if constexpr (Dim == 2) {
        fft_2d_inverse({{ar, ai}, {kr, ki}}, rows_used, ws.plan);
    } else {
        fft_rows({{ar, ai}, {kr, ki}}, 1, ws.plan, true);
    }

    const double* k1 = ws.table1.data();
    return gradient_pass<Dim>(p, pts, grad, exaggeration, kern, want_kl,
                              16.0 * static_cast<double>(np * (Dim == 2 ? np : 1)), [&](index_t i, point<Dim>& f) {
                                  const point<Dim>& q = pts[static_cast<std::size_t>(i)];
                                  std::array<index_t, Dim> box;
                                  std::array<std::array<double, fft_grid<Dim>::max_points>, Dim> w;
                                  gr.locate(q, box, w);
                                  const index_t base = gr.base(box);
                                  // phi: sum K2, sum K2 y_0, then (2-D) sum K2 y_1 and sum K1, or (1-D) sum K1.
                                  double phi0 = 0.0, phi1 = 0.0, phi2 = 0.0, phi3 = 0.0;
                                  if constexpr (Dim == 2) {
                                      for (index_t ky = 0; ky < np; ++ky)
                                          for (index_t kx = 0; kx < np; ++kx) {
                                              const double wt = w[1][ky] * w[0][kx];
                                              const index_t at = base + ky * nc + kx;
                                              phi0 += wt * ar[at];
                                              phi1 += wt * ai[at];
                                              phi2 += wt * kr[at];
                                              phi3 += wt * ki[at];
                                          }
                                      f[0] = q[0] * phi0 - phi1;
                                      f[1] = q[1] * phi0 - phi2;
                                      return phi3 - gr.self_term(w, k1, m + 1);
                                  } else {
                                      for (index_t kx = 0; kx < np; ++kx) {
                                          const double wt = w[0][kx];
                                          phi0 += wt * ar[base + kx];
                                          phi1 += wt * ai[base + kx];
                                          phi2 += wt * kr[base + kx];
                                      }
                                      (void)phi3;
                                      f[0] = q[0] * phi0 - phi1;
                                      return phi2 - gr.self_term(w, k1, m + 1);
                                  }
                              });
}

inline void validate_fft_options(const tsne_fft_options& o)
{
    constexpr std::string_view op = "tsne_gradient_fft";
    if (o.points_per_interval < 1 || o.points_per_interval > fft_grid<1>::max_points)
        throw value_error(describe(op, "points_per_interval in [1, 16]", std::to_string(o.points_per_interval)));
    if (o.min_intervals < 1) throw value_error(describe(op, "min_intervals >= 1", std::to_string(o.min_intervals)));
    if (o.max_intervals < o.min_intervals)
        throw value_error(describe(op, "max_intervals >= min_intervals = " + std::to_string(o.min_intervals),
                                   std::to_string(o.max_intervals)));
    if (!(o.ints_in_interval > 0.0) || !std::isfinite(o.ints_in_interval))
        throw value_error(describe(op, "finite ints_in_interval > 0", std::to_string(o.ints_in_interval)));
}

} // namespace detail

/// FFT-interpolation t-SNE gradient (FIt-SNE) for 1- and 2-D embeddings: grad = dKL/dy with P scaled by
/// `exaggeration` in the attractive term, as tsne_gradient_exact / tsne_gradient_bh. y: [N, d], d in {1, 2};
/// grad: [N, d]. Returns Z (estimated) and, if want_kl, KL(P || Q) with that Z. Throws value_error for 3-D.
/// `ws` keeps the grids between calls.
inline tsne_gradient_stats tsne_gradient_fft(const sparse_affinities& p, const_matrix_ref<double> y,
                                             matrix_ref<double> grad, double exaggeration, double dof, bool want_kl,
                                             const tsne_fft_options& options, tsne_fft_workspace& ws)
{
    detail::require_gradient_args("tsne_gradient_fft", p, y, grad, dof);
    if (y.cols() > 2)
        throw value_error(detail::describe("tsne_gradient_fft",
                                           "an embedding with 1 or 2 columns (use Barnes-Hut for 3)",
                                           std::to_string(y.cols()) + " columns"));
    detail::validate_fft_options(options);
    if (p.n == 0) return {};
    if (y.cols() == 1) return detail::fft_gradient_impl<1>(p, y, grad, exaggeration, dof, want_kl, options, ws);
    return detail::fft_gradient_impl<2>(p, y, grad, exaggeration, dof, want_kl, options, ws);
}

/// As above with a per-thread workspace (it keeps the largest grid this thread has used).
inline tsne_gradient_stats tsne_gradient_fft(const sparse_affinities& p, const_matrix_ref<double> y,
                                             matrix_ref<double> grad, double exaggeration = 1.0, double dof = 1.0,
                                             bool want_kl = true, const tsne_fft_options& options = {})
{
    thread_local tsne_fft_workspace ws;
    return tsne_gradient_fft(p, y, grad, exaggeration, dof, want_kl, options, ws);
}

} // namespace dskit
