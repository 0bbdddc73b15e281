// Exact k-nearest neighbours (Euclidean) by blocked GEMM.
//
//   knn_graph g = exact_knn(x, k);   // x: [N, D]; g.indices, g.sq_distances: [N, k]
//
// Row i of the result lists the k nearest *other* points of row i (a duplicate of i counts, at distance 0),
// nearest first; ties are broken by the smaller index, so the graph is a deterministic function of x.
// Distances are squared Euclidean. Candidates come from ||y||² - 2 x·y on [256 x 2048] blocks
// of the centred data (ops::matmul_nt, one block per thread); the k survivors' distances are then recomputed
// exactly in double, so cancellation in the GEMM trick never reaches the result. Cost O(N² D), memory O(N k).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/backend/simd/math.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/ops/gemm.hpp"

namespace dskit {

/// Row-major matrix of point indices.
using index_matrix = Eigen::Matrix<index_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A k-nearest-neighbour graph: row i holds i's neighbours, nearest first (ties: smaller index first).
struct knn_graph {
    index_matrix indices;       ///< [N, k] neighbour indices, never i itself
    matrix<float> sq_distances; ///< [N, k] squared Euclidean distances, ascending per row
};

namespace detail {

/// Calls f(b) for b in [0, n) inside an OpenMP team whenever more than one thread is allowed. Eigen's GEMM
/// runs single-threaded inside a team, so every block is computed with the same blocking (and the same
/// rounding) whatever the thread count: results stay bit-identical.
template <class F>
void parallel_blocks(index_t n, F&& f)
{
#if DSKIT_HAS_OPENMP
    if (n > 1 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
        for (index_t b = 0; b < n; ++b) f(b);
        return;
    }
#endif
    for (index_t b = 0; b < n; ++b) f(b);
}

/// Throws value_error naming `op` if x holds NaN or Inf.
template <class M>
void require_finite(std::string_view op, const M& x)
{
    for (index_t i = 0; i < x.rows(); ++i)
        for (index_t j = 0; j < x.cols(); ++j)
            if (!std::isfinite(x(i, j)))
                throw value_error(
                    describe(op, "finite input",
                             "a non-finite value at row " + std::to_string(i) + ", column " + std::to_string(j)));
}

/// Column means in double, summed in row order (deterministic).
inline Eigen::RowVectorXd column_means(const const_matrix_ref<float>& x)
{
    Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(x.cols());
    for (index_t i = 0; i < x.rows(); ++i) mean += x.row(i).cast<double>();
    if (x.rows() > 0) mean /= static_cast<double>(x.rows());
    return mean;
}

/// (distance, index) in lexicographic order: the total order that makes neighbour sets unique.
struct knn_entry {
    double d;
    index_t j;
    friend bool operator<(const knn_entry& a, const knn_entry& b) { return a.d < b.d || (a.d == b.d && a.j < b.j); }
};

inline double exact_sq_distance(const const_matrix_ref<float>& x, index_t i, index_t j)
{
    // Double vectors of the widest kind (one running sum made this loop add-latency bound, a quarter of the
    // whole kNN's time on 64-D data; GCC's auto-vectoriser stops at 256 bits on recent Intel cores).
    using B = xsimd::batch<double>;
    constexpr auto w = static_cast<index_t>(B::size);
    const float* a = x.data() + i * x.outerStride();
    const float* b = x.data() + j * x.outerStride();
    const index_t n = x.cols();
    B s0(0.0), s1(0.0);
    index_t c = 0;
    for (; c + 2 * w <= n; c += 2 * w) {
        const B t0 = B::load_unaligned(a + c) - B::load_unaligned(b + c);
        const B t1 = B::load_unaligned(a + c + w) - B::load_unaligned(b + c + w);
        s0 = xsimd::fma(t0, t0, s0);
        s1 = xsimd::fma(t1, t1, s1);
    }
    double s = xsimd::hadd(s0 + s1);
    for (; c < n; ++c) {
        const double t = static_cast<double>(a[c]) - static_cast<double>(b[c]);
        s += t * t;
    }
    return s;
}

} // namespace detail

/// Exact k nearest neighbours of every row of x among the other rows. Requires 1 <= k <= N - 1 and finite x
/// (value_error otherwise, naming the limit).
inline knn_graph exact_knn(const_matrix_ref<float> x, index_t k)
{
    const index_t n = x.rows();
    if (n < 2) throw value_error(detail::describe("exact_knn", "at least 2 points", std::to_string(n) + " points"));
    if (k < 1 || k > n - 1)
        throw value_error(detail::describe("exact_knn", "k in [1, N - 1 = " + std::to_string(n - 1) + "]",
                                           "k = " + std::to_string(k)));
    detail::require_finite("exact_knn", x);

    // Centring keeps ||x||² small relative to distances, so the GEMM trick loses fewer digits.
    const Eigen::RowVectorXd mean = detail::column_means(x);
    matrix<float> xc(n, x.cols());
    for (index_t i = 0; i < n; ++i) xc.row(i) = (x.row(i).cast<double>() - mean).cast<float>();
    Eigen::VectorXf norms(n);
    for (index_t i = 0; i < n; ++i) norms(i) = xc.row(i).squaredNorm();

    // Blocks of at most 256 rows, of equal size: 1797 rows in 7 blocks of 256 and one of 5 left one of
    // two threads a block short (digits: 25% of the kNN's time). The sizes depend on N only, never on the
    // thread count, so the result does not either.
    constexpr index_t col_block = 2048, max_row_block = 256;
    const index_t n_row_blocks = (n + max_row_block - 1) / max_row_block;
    const index_t row_block = (n + n_row_blocks - 1) / n_row_blocks;
    knn_graph g{index_matrix(n, k), matrix<float>(n, k)};

    detail::parallel_blocks(n_row_blocks, [&](index_t rb) {
        const index_t r0 = rb * row_block, rn = std::min(row_block, n - r0);
        matrix<float> dots(rn, std::min(col_block, n));
        // Per row: the candidates so far and the key a new one must not exceed. Candidates are appended and,
        // whenever 2k have gathered, cut back to the k best (nth_element, O(k)): O(1) per candidate, where a heap
        // pays a logarithmic sift for each. The total order (key, index) makes the surviving set unique.
        std::vector<std::vector<detail::knn_entry>> cands(static_cast<std::size_t>(rn));
        std::vector<float> bound(static_cast<std::size_t>(rn), std::numeric_limits<float>::infinity());
        const auto keep_best = [k](std::vector<detail::knn_entry>& v) {
            if (static_cast<index_t>(v.size()) <= k) return;
            std::nth_element(v.begin(), v.begin() + (k - 1), v.end());
            v.resize(static_cast<std::size_t>(k));
        };
        for (auto& v : cands) v.reserve(2 * static_cast<std::size_t>(k) + 16);
        std::vector<float> group_mins;
        using fb = xsimd::batch<float>;
        constexpr index_t w = static_cast<index_t>(fb::size);
        for (index_t c0 = 0; c0 < n; c0 += col_block) {
            const index_t cn = std::min(col_block, n - c0);
            auto block = dots.leftCols(cn);
            ops::matmul_nt(xc.middleRows(r0, rn), xc.middleRows(c0, cn), block);
            for (index_t r = 0; r < rn; ++r) {
                auto& v = cands[static_cast<std::size_t>(r)];
                float& thr = bound[static_cast<std::size_t>(r)];
                const index_t i = r0 + r;
                // Selection key ||y||² - 2 x·y: ||x||² is the same for the whole row, so it cannot change the
                // order, and the survivors' distances are recomputed exactly below.
                const float* dot = &block(r, 0);
                const float* nrm = norms.data() + c0;
                const auto consider = [&](index_t c) {
                    const float key = nrm[c] - 2.0f * dot[c];
                    const index_t j = c0 + c;
                    if (key > thr || j == i) return;
                    v.push_back(detail::knn_entry{key, j});
                    if (static_cast<index_t>(v.size()) >= 2 * k) {
                        keep_best(v);
                        thr = static_cast<float>(v[static_cast<std::size_t>(k - 1)].d); // the k-th best so far
                    }
                };
                if (thr == std::numeric_limits<float>::infinity() && cn >= 4 * (k + 1)) {
                    // A first bound before any candidate: the (k + 1)-th smallest of the minima of 2 (k + 1)
                    // disjoint groups of keys. Those k + 1 minima are distinct points, at most one of them
                    // i itself, so at least k others lie within it; without it the first 2k columns all
                    // entered and were cut back again and again while the bound tightened.
                    const index_t m = (2 * (k + 1) + w - 1) / w; // groups: lane l of vectors v = m q + r
                    auto& mins = group_mins;                     // reused across rows
                    mins.assign(static_cast<std::size_t>(m * w), std::numeric_limits<float>::infinity());
                    for (index_t c = 0, v = 0; c + w <= cn; c += w, v = v + 1 == m ? 0 : v + 1) {
                        const fb key = fb::load_unaligned(nrm + c) - fb(2.0f) * fb::load_unaligned(dot + c);
                        float* g = mins.data() + v * w;
                        xsimd::min(fb::load_unaligned(g), key).store_unaligned(g);
                    }
                    std::nth_element(mins.begin(), mins.begin() + k, mins.end());
                    thr = mins[static_cast<std::size_t>(k)];
                }
                // Most candidates are rejected: test a batch against the bound at once and visit only the lanes
                // it lets through (the keys are floats, so this selects exactly what the one-by-one test would;
                // consider() tests again against the bound as it tightens).
                index_t c = 0;
                for (; c + w <= cn; c += w) {
                    const fb key = fb::load_unaligned(nrm + c) - fb(2.0f) * fb::load_unaligned(dot + c);
                    for (std::uint32_t m = detail::simd::lane_mask(key <= fb(thr)); m != 0; m &= m - 1)
                        consider(c + std::countr_zero(m));
                }
                for (; c < cn; ++c) consider(c);
            }
        }
        for (auto& v : cands) keep_best(v);
        for (index_t r = 0; r < rn; ++r) {
            auto& best = cands[static_cast<std::size_t>(r)];
            const index_t i = r0 + r;
            for (auto& e : best) e.d = detail::exact_sq_distance(x, i, e.j);
            std::sort(best.begin(), best.end());
            for (index_t c = 0; c < k; ++c) {
                g.indices(i, c) = best[static_cast<std::size_t>(c)].j;
                g.sq_distances(i, c) = static_cast<float>(best[static_cast<std::size_t>(c)].d);
            }
        }
    });
    return g;
}

} // namespace dskit
