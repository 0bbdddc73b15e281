// t-SNE input affinities P: perplexity-calibrated Gaussian kernels on the k nearest neighbours, symmetrised.
//
//   p_{j|i} = exp(-beta_i d_ij²) / sum_l exp(-beta_i d_il²)    over i's k neighbours, beta_i found by bisection
//             so that the entropy of p_{.|i} is log(perplexity) (natural log, within 1e-5 nats)
//   p_ij    = (p_{j|i} + p_{i|j}) / (2N)                        sparse, symmetric, sums to 1
//
// The default k = min(N - 1, floor(3 * perplexity)), as openTSNE does (scikit-learn uses one more).
// Precomputed neighbours (any metric) go through perplexity_affinities(knn_graph, perplexity); precomputed
// affinities can be passed straight to dskit::tsne as a sparse_affinities.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/core/uninitialized_buffer.hpp"
#include "dskit/manifold/knn.hpp"

namespace dskit {

/// A sparse N x N matrix in CSR form (row i: columns indices[indptr[i] .. indptr[i+1]), ascending).
struct sparse_affinities {
    index_t n = 0;
    std::vector<index_t> indptr{0};
    std::vector<index_t> indices;
    std::vector<double> values;

    [[nodiscard]] index_t nnz() const { return static_cast<index_t>(values.size()); }
    /// Dense copy (for tests and small N).
    [[nodiscard]] matrix<double> to_dense() const
    {
        matrix<double> d = matrix<double>::Zero(n, n);
        for (index_t i = 0; i < n; ++i)
            for (auto e = indptr[static_cast<std::size_t>(i)]; e < indptr[static_cast<std::size_t>(i) + 1]; ++e)
                d(i, indices[static_cast<std::size_t>(e)]) += values[static_cast<std::size_t>(e)];
        return d;
    }
};

/// Neighbours openTSNE uses for a perplexity: min(N - 1, floor(3 * perplexity)).
inline index_t tsne_neighbors_for(double perplexity, index_t n)
{
    return std::max<index_t>(1, std::min<index_t>(n - 1, static_cast<index_t>(std::floor(3.0 * perplexity))));
}

namespace detail {

/// Throws value_error unless 0 < perplexity <= n_neighbors (the entropy of k weights is at most log k).
inline void require_perplexity(std::string_view op, double perplexity, index_t n_neighbors)
{
    std::ostringstream got;
    got << "perplexity = " << perplexity;
    if (!(perplexity > 0.0) || !std::isfinite(perplexity)) throw value_error(describe(op, "perplexity > 0", got.str()));
    if (perplexity > static_cast<double>(n_neighbors))
        throw value_error(describe(op,
                                   "perplexity <= number of neighbours = " + std::to_string(n_neighbors) +
                                       " (at most N - 1 = number of points - 1)",
                                   got.str()));
}

/// Conditional probabilities of one row: the beta whose entropy is log(perplexity) (within 1e-5 nats) by
/// Newton's method on H(beta), kept inside a bracket [lo, hi] that every step narrows, with bisection (or
/// doubling while no upper bound is known) whenever a Newton step would leave it. Newton needs H's
/// derivative, -beta Var_p(d), which the same pass over the row gives; it converges in ~4 steps from the
/// scale-free start beta = 1 / mean(d - dmin), where bisection from beta = 1 (scikit-learn's schedule) took
/// ~30 on unscaled data. Distances are shifted by their minimum, which leaves p unchanged and keeps exp()
/// from underflowing for far-away neighbourhoods.
inline void calibrate_row(const float* sq_dist, index_t k, double perplexity, double* p)
{
    const double target = std::log(perplexity);
    double dmin = std::numeric_limits<double>::infinity(), dsum0 = 0.0;
    for (index_t j = 0; j < k; ++j) dmin = std::min(dmin, static_cast<double>(sq_dist[j]));
    // The shifted distances, in p until the end (the passes need only the sums); exp in double vectors.
    for (index_t j = 0; j < k; ++j) {
        p[j] = static_cast<double>(sq_dist[j]) - dmin;
        dsum0 += p[j];
    }
    if (!(dsum0 > 0.0)) { // all neighbours equidistant (duplicates): p is uniform whatever beta is
        std::fill(p, p + k, 1.0 / static_cast<double>(k));
        return;
    }
    using B = xsimd::batch<double>;
    constexpr auto w = static_cast<index_t>(B::size);
    double beta = static_cast<double>(k) / dsum0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
    for (int step = 0; step < 200; ++step) {
        B vsum(0.0), vdsum(0.0), vd2sum(0.0);
        const B nb(-beta);
        index_t j = 0;
        for (; j + w <= k; j += w) {
            const B d = B::load_unaligned(p + j);
            const B e = xsimd::exp(nb * d);
            vsum += e;
            vdsum = xsimd::fma(d, e, vdsum);
            vd2sum = xsimd::fma(d * d, e, vd2sum);
        }
        double sum = xsimd::hadd(vsum), dsum = xsimd::hadd(vdsum), d2sum = xsimd::hadd(vd2sum);
        for (; j < k; ++j) {
            const double e = std::exp(-beta * p[j]);
            sum += e;
            dsum += p[j] * e;
            d2sum += p[j] * p[j] * e;
        }
        const double mean = dsum / sum;
        const double gap = std::log(sum) + beta * mean - target; // sum >= 1: the nearest term is exp(0)
        if (std::abs(gap) <= 1e-5) break;
        (gap > 0.0 ? lo : hi) = beta; // the entropy falls as beta grows
        const double var = d2sum / sum - mean * mean;
        double next = beta + gap / (beta * var); // Newton: H'(beta) = -beta Var(d)
        if (!(next > lo && next < hi)) next = std::isinf(hi) ? 2.0 * beta : 0.5 * (lo + hi);
        if (next == beta || next > 1e300) break; // bracket below double resolution
        beta = next;
    }
    const B nb(-beta);
    B vsum(0.0);
    index_t j = 0;
    for (; j + w <= k; j += w) {
        const B e = xsimd::exp(nb * B::load_unaligned(p + j));
        e.store_unaligned(p + j);
        vsum += e;
    }
    double sum = xsimd::hadd(vsum);
    for (; j < k; ++j) {
        p[j] = std::exp(-beta * p[j]);
        sum += p[j];
    }
    const double inv = 1.0 / sum;
    for (j = 0; j < k; ++j) p[j] *= inv;
}

/// The two orders symmetrisation merges, as entry numbers e = i k + c of the neighbour graph (Entry: 4
/// bytes while N k fits, else 8): rev, for each column j the entries naming j with their rows, rows
/// ascending; own, for each row its entries in column order. Two counting-sort passes (the transpose, then
/// its transpose), so no row is sorted. Needs only the graph's columns, not the affinities: it runs beside
/// the calibration.
template <class Entry>
struct neighbour_orders {
    index_t n, k;
    std::vector<index_t> rev_start, cursor;
    // Uninitialised: zeroing them first (a vector's resize) was a serial pass of page faults before the
    // parallel part; their pages now fault in build(), beside the calibration.
    uninitialized_buffer<Entry> rev, rev_row, own;

    neighbour_orders(index_t n_, index_t k_)
        : n(n_), k(k_), rev_start(static_cast<std::size_t>(n_) + 1), cursor(static_cast<std::size_t>(n_)),
          rev(static_cast<std::size_t>(n_ * k_)), rev_row(static_cast<std::size_t>(n_ * k_)),
          own(static_cast<std::size_t>(n_ * k_))
    {
    }
    /// Fills the orders from the graph's columns (no allocation: safe inside a parallel region).
    void build(const index_t* col) noexcept
    {
        const auto m = static_cast<std::size_t>(n * k);
        Entry* const by_col = rev.get();
        Entry* const by_col_row = rev_row.get();
        Entry* const by_row = own.get();
        std::fill(rev_start.begin(), rev_start.end(), 0);
        for (std::size_t e = 0; e < m; ++e) ++rev_start[static_cast<std::size_t>(col[e]) + 1];
        for (index_t i = 0; i < n; ++i)
            rev_start[static_cast<std::size_t>(i) + 1] += rev_start[static_cast<std::size_t>(i)];
        std::copy(rev_start.begin(), rev_start.end() - 1, cursor.begin());
        for (index_t i = 0, e = 0; i < n; ++i)
            for (index_t c = 0; c < k; ++c, ++e) {
                const auto t = static_cast<std::size_t>(cursor[static_cast<std::size_t>(col[e])]++);
                by_col[t] = static_cast<Entry>(e);
                by_col_row[t] = static_cast<Entry>(i);
            }
        for (index_t i = 0; i < n; ++i) cursor[static_cast<std::size_t>(i)] = i * k;
        for (std::size_t t = 0; t < m; ++t) by_row[static_cast<std::size_t>(cursor[by_col_row[t]]++)] = by_col[t];
    }
};

/// (C + C^T) / (2N) in CSR, C the conditional matrix cond on the graph's columns. Row i is the merge of i's
/// own entries, in column order, with the rows that list i, in row order; equal columns are summed. Each
/// output row is built from its own inputs alone, in a fixed order: the result is the same for any thread
/// count.
template <class Entry>
sparse_affinities merge_affinities(const neighbour_orders<Entry>& o, const index_t* col, const matrix<double>& cond)
{
    const index_t n = o.n, k = o.k;
    const double* val = cond.data();
    const auto& rev_start = o.rev_start;
    const Entry* rev = o.rev.get();
    const Entry* rev_row = o.rev_row.get();
    const Entry* own = o.own.get();
    const double scale = 1.0 / (2.0 * static_cast<double>(n)); // (C + C^T) / (2N)
    // Row i: the union of its own entries (ascending columns) and the entries naming i (ascending rows), equal
    // columns summed. Without branches on the data (which list comes next, whether a column repeats: each is
    // a coin flip, and mispredicting them took ~8 ns a step, 5-6 ms of a digits set-up for both passes).
    // Write = false only counts. rv: the values of the entries naming i, gathered beforehand (in the merge
    // each address waited on the previous step's comparison: one cache miss after another into cond, 60% of
    // the fill pass's time). Returns the row's length.
    const auto merge = [&]<bool Write>(index_t i, index_t* out_c, double* out_v, const double* rv) {
        const Entry* a = own + i * k;
        const Entry* const a_end = a + k;
        const index_t b0 = rev_start[static_cast<std::size_t>(i)], b_end = rev_start[static_cast<std::size_t>(i) + 1];
        index_t b = b0;
        index_t pos = -1, last = -1;
        double v = 0.0;
        const auto take = [&](index_t c, double x) {
            const bool same = c == last;
            pos += !same;
            last = c;
            if constexpr (Write) {
                v = x + v * static_cast<double>(same); // v + x while the column repeats (v * 1 is exact)
                out_c[pos] = c;
                out_v[pos] = v * scale; // the last write of a column holds its whole sum
            } else {
                (void)x;
            }
        };
        while (a != a_end && b != b_end) {
            const auto ca = static_cast<index_t>(col[*a]),
                       cb = static_cast<index_t>(rev_row[static_cast<std::size_t>(b)]);
            const bool from_a = ca <= cb;
            double x = 0.0;
            if constexpr (Write) {
                const double xa = val[*a], xb = rv[b - b0];
                x = from_a ? xa : xb;
            }
            take(from_a ? ca : cb, x);
            a += from_a;
            b += !from_a;
        }
        for (; a != a_end; ++a) take(static_cast<index_t>(col[*a]), Write ? val[*a] : 0.0);
        for (; b != b_end; ++b)
            take(static_cast<index_t>(rev_row[static_cast<std::size_t>(b)]), Write ? rv[b - b0] : 0.0);
        return pos + 1;
    };
    // Two passes over the merges: the length of each row, then (after the prefix sum) its entries. A column
    // normally comes once from each side; a precomputed graph that lists a neighbour twice adds more terms.
    sparse_affinities p;
    p.n = n;
    p.indptr.assign(static_cast<std::size_t>(n) + 1, 0);
    parallel_for(
        n,
        [&](index_t i) {
            p.indptr[static_cast<std::size_t>(i) + 1] = merge.template operator()<false>(i, nullptr, nullptr, nullptr);
        },
        4.0 * static_cast<double>(k));
    for (index_t i = 0; i < n; ++i) p.indptr[static_cast<std::size_t>(i) + 1] += p.indptr[static_cast<std::size_t>(i)];
    p.indices.resize(static_cast<std::size_t>(p.indptr.back()));
    p.values.resize(static_cast<std::size_t>(p.indptr.back()));
    index_t most = 0; // the longest list of entries naming one point
    for (index_t i = 0; i < n; ++i)
        most = std::max(most, rev_start[static_cast<std::size_t>(i) + 1] - rev_start[static_cast<std::size_t>(i)]);
    std::vector<std::vector<double>> gathered(static_cast<std::size_t>(parallel_threads()),
                                              std::vector<double>(static_cast<std::size_t>(most)));
    constexpr index_t rows_per_block = 64;
    parallel_blocks((n + rows_per_block - 1) / rows_per_block, [&](index_t block, int thread) {
        double* rv = gathered[static_cast<std::size_t>(thread)].data();
        for (index_t i = block * rows_per_block; i < std::min(n, (block + 1) * rows_per_block); ++i) {
            const index_t b0 = rev_start[static_cast<std::size_t>(i)],
                          nb = rev_start[static_cast<std::size_t>(i) + 1] - b0;
            for (index_t q = 0; q < nb; ++q) rv[q] = val[rev[static_cast<std::size_t>(b0 + q)]]; // independent loads
            const auto at = static_cast<std::size_t>(p.indptr[static_cast<std::size_t>(i)]);
            merge.template operator()<true>(i, p.indices.data() + at, p.values.data() + at, rv);
        }
    });
    return p;
}

/// Calibration and symmetrisation of a validated graph: one thread builds the neighbour orders while the
/// others calibrate rows (the orders are serial passes; alone they took longer than the calibration on
/// digits), then the merge.
template <class Entry>
sparse_affinities calibrate_and_symmetrise(const knn_graph& g, double perplexity)
{
    const index_t n = g.indices.rows(), k = g.indices.cols();
    matrix<double> cond(n, k);
    neighbour_orders<Entry> orders(n, k);
    run_beside([&] { orders.build(g.indices.data()); }, n,
               [&](index_t i) { calibrate_row(&g.sq_distances(i, 0), k, perplexity, &cond(i, 0)); });
    return merge_affinities(orders, g.indices.data(), cond);
}

/// Entry width for a graph: 4 bytes while N k fits (narrow), else 8; tests force either.
inline sparse_affinities calibrate_and_symmetrise(const knn_graph& g, double perplexity, bool narrow)
{
    return narrow ? calibrate_and_symmetrise<std::uint32_t>(g, perplexity)
                  : calibrate_and_symmetrise<std::uint64_t>(g, perplexity);
}

} // namespace detail

/// Symmetric t-SNE affinities from a neighbour graph (squared distances, any metric). Row sums of the
/// conditional matrix are 1; the result is (P + P^T) / (2N). Throws value_error if perplexity > k.
inline sparse_affinities perplexity_affinities(const knn_graph& g, double perplexity)
{
    const index_t n = g.indices.rows(), k = g.indices.cols();
    if (g.sq_distances.rows() != n || g.sq_distances.cols() != k)
        detail::throw_shape("perplexity_affinities", "sq_distances of shape " + detail::shape_string({n, k}),
                            detail::shape_of(g.sq_distances));
    if (n < 2)
        throw value_error(
            detail::describe("perplexity_affinities", "at least 2 points", std::to_string(n) + " points"));
    detail::require_perplexity("perplexity_affinities", perplexity, k);
    for (index_t i = 0; i < n; ++i)
        for (index_t c = 0; c < k; ++c) {
            const index_t j = g.indices(i, c);
            const float d = g.sq_distances(i, c);
            if (j < 0 || j >= n || j == i)
                throw value_error(detail::describe("perplexity_affinities",
                                                   "neighbour indices in [0, N) other than the row itself",
                                                   std::to_string(j) + " in row " + std::to_string(i)));
            if (!std::isfinite(d) || d < 0.0f)
                throw value_error(detail::describe("perplexity_affinities", "finite squared distances >= 0",
                                                   std::to_string(d) + " in row " + std::to_string(i)));
        }

    return detail::calibrate_and_symmetrise(g, perplexity, n * k <= index_t{0xffffffff});
}

/// P for t-SNE from raw data: exact kNN with k = tsne_neighbors_for(perplexity, N), then calibration.
/// Throws value_error for N < 2, NaN/Inf input, or a perplexity above N - 1.
inline sparse_affinities tsne_affinities(const_matrix_ref<float> x, double perplexity)
{
    const index_t n = x.rows();
    if (n < 2)
        throw value_error(detail::describe("tsne_affinities", "at least 2 points", std::to_string(n) + " points"));
    const index_t k = tsne_neighbors_for(perplexity, n);
    detail::require_perplexity("tsne_affinities", perplexity, k);
    return perplexity_affinities(exact_knn(x, k), perplexity);
}

} // namespace dskit
