// Exact k-nearest neighbours (Euclidean) by blocked GEMM.
//
//   knn_graph g = exact_knn(x, k);   // x: [N, D]; g.indices, g.sq_distances: [N, k]
//
// Row i of the result lists the k nearest *other* points of row i (a duplicate of i counts, at distance 0),
// nearest first by the distance computed in double from x; ties are broken by the smaller index, so the graph
// is a deterministic function of x and equals a double-precision brute force's. Distances are squared
// Euclidean. Candidates come from the float keys ||y||² - 2 x·y of the centred data, made by a GEMM kernel
// eight rows at a time over column blocks of 2048 (blocks of 64 rows per thread). The keys decide only where
// they are further apart than their rounding bound: candidates within that margin of the k-th key are
// compared by exact distance (in double), so neither cancellation in the GEMM trick nor near-ties reach the
// result. (Randomised against a brute force: 3000 cases, N up to 3500, k up to N - 1, Gaussian, integer
// lattice and duplicate-heavy data: identical lists. Before the margin, near-ties at the k-th place and exact
// ties between distinct points were decided by the float keys.) Cost O(N² D), memory O(N (k + D)).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "dskit/backend/simd/math.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/core/uninitialized_buffer.hpp"

namespace dskit {

/// Row-major matrix of point indices.
using index_matrix = Eigen::Matrix<index_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A k-nearest-neighbour graph: row i holds i's neighbours, nearest first (ties: smaller index first).
struct knn_graph {
    index_matrix indices;       ///< [N, k] neighbour indices, never i itself
    matrix<float> sq_distances; ///< [N, k] squared Euclidean distances, ascending per row
};

namespace detail {

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

/// Packed candidate: order-preserving bits of the float key (high half), column index (low half). Needs
/// key != -0 (callers add +0) and j < 2^32.
inline std::uint64_t knn_key(float key, index_t j) noexcept
{
    const auto b = std::bit_cast<std::uint32_t>(key);
    const std::uint32_t ordered = (b & 0x80000000u) != 0 ? ~b : (b | 0x80000000u);
    return (static_cast<std::uint64_t>(ordered) << 32) | static_cast<std::uint64_t>(j);
}
inline float knn_key_value(std::uint64_t packed) noexcept
{
    const auto ordered = static_cast<std::uint32_t>(packed >> 32);
    return std::bit_cast<float>((ordered & 0x80000000u) != 0 ? (ordered & 0x7fffffffu) : ~ordered);
}
inline index_t knn_key_index(std::uint64_t packed) noexcept
{
    return static_cast<index_t>(packed & 0xffffffffu);
}
/// The packed bounds of the float keys >= t (every index) and <= t: c < knn_key_from(t) iff c's key < t, and
/// c <= knn_key_upto(t) iff c's key <= t.
inline std::uint64_t knn_key_from(float t) noexcept
{
    return knn_key(t + 0.0f, 0);
}
inline std::uint64_t knn_key_upto(float t) noexcept
{
    return knn_key(t + 0.0f, 0xffffffff);
}

/// Largest list rank_sort takes (its cost grows as n², a comparison sort's as n log n).
inline constexpr index_t rank_sort_max = 512;

/// Distinct keys v[0 .. n) in ascending order to out[0 .. n): each key's place is the number of keys below
/// it, counted with vector compares (n² / L compare-and-adds, no branches: a comparison sort of ~100 random
/// keys mispredicts about every other branch; digits' kNN: 3x faster). v needs room for n rounded up to
/// the lane count (filled with the largest key).
inline void rank_sort(std::uint64_t* v, index_t n, std::uint64_t* out)
{
    using U = xsimd::batch<std::uint64_t>;
    constexpr index_t w = static_cast<index_t>(U::size);
    const index_t padded = (n + w - 1) / w * w;
    std::fill(v + n, v + padded, ~std::uint64_t{0});
    alignas(64) std::uint64_t place[4 * w];
    const U one(1), zero(0);
    index_t b = 0;
    for (; b + 4 * w <= padded; b += 4 * w) { // four vectors of keys share each broadcast
        const U e0 = U::load_unaligned(v + b), e1 = U::load_unaligned(v + b + w);
        const U e2 = U::load_unaligned(v + b + 2 * w), e3 = U::load_unaligned(v + b + 3 * w);
        U r0(0), r1(0), r2(0), r3(0);
        for (index_t c = 0; c < n; ++c) {
            const U x(v[c]);
            r0 += xsimd::select(x < e0, one, zero);
            r1 += xsimd::select(x < e1, one, zero);
            r2 += xsimd::select(x < e2, one, zero);
            r3 += xsimd::select(x < e3, one, zero);
        }
        r0.store_aligned(place);
        r1.store_aligned(place + w);
        r2.store_aligned(place + 2 * w);
        r3.store_aligned(place + 3 * w);
        for (index_t l = 0; l < 4 * w && b + l < n; ++l) out[place[l]] = v[b + l];
    }
    for (; b < padded; b += w) {
        const U e = U::load_unaligned(v + b);
        U r(0);
        for (index_t c = 0; c < n; ++c) r += xsimd::select(U(v[c]) < e, one, zero);
        r.store_aligned(place);
        for (index_t l = 0; l < w && b + l < n; ++l) out[place[l]] = v[b + l];
    }
}

/// A value t with at least `rank` of v[0..n) <= t, close to the rank-th smallest (never below it): bisection
/// on the value range, counting with vector compares (n a multiple of the batch size). Needs 1 <= rank <= n.
inline float kth_smallest_bound(const float* v, index_t n, index_t rank)
{
    using fb = xsimd::batch<float>;
    constexpr index_t w = static_cast<index_t>(fb::size);
    fb lo_v(std::numeric_limits<float>::infinity()), hi_v(-std::numeric_limits<float>::infinity());
    for (index_t c = 0; c < n; c += w) {
        const fb x = fb::load_unaligned(v + c);
        lo_v = xsimd::min(lo_v, x);
        hi_v = xsimd::max(hi_v, x);
    }
    float lo = simd::reduce_min(lo_v), hi = simd::reduce_max(hi_v); // count(<= hi) = n >= rank
    if (!std::isfinite(hi)) return hi;
    for (int step = 0; step < 16 && lo < hi; ++step) {
        const float mid = lo + 0.5f * (hi - lo);
        if (!(mid < hi)) break;
        index_t cnt = 0;
        for (index_t c = 0; c < n; c += w) cnt += std::popcount(simd::lane_mask(fb::load_unaligned(v + c) <= fb(mid)));
        (cnt >= rank ? hi : lo) = mid;
    }
    return hi;
}

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

/// Selection keys ||x_j||² - 2 x_i·x_j of `rows` (key_rows of them) against the columns [c0, c0 + cn) of
/// the centred data: panels holds it in panels of two vectors of columns (panel p: D rows of 2 L floats for
/// columns [2 L p, 2 L p + 2 L), zero past N), so the kernel reads memory in order (a plain transposed copy
/// walked D rows of N floats apart: a new page per load at N = 100 000); c0 a multiple of 2 L. norms: the
/// squared norms (padded). keys: key_rows rows of key_stride floats, cn rounded up to two vectors. Each key
/// is summed over the D coordinates in order with fmas, so it depends on the data alone. Eight rows by two
/// vectors of columns: 16 accumulators, 10 loads per 16 fmas, each panel read once per eight rows.
inline constexpr index_t key_rows = 8;
inline void knn_keys(const float* const* rows, const float* panels, index_t d, const float* norms, index_t c0,
                     index_t cn, float* keys, index_t key_stride)
{
    using fb = xsimd::batch<float>;
    constexpr index_t w = static_cast<index_t>(fb::size);
    for (index_t c = 0; c < cn; c += 2 * w) {
        fb acc[key_rows][2];
        for (auto& a : acc) a[0] = a[1] = fb(0.0f);
        const float* b = panels + (c0 + c) * d; // panel (c0 + c) / 2L, 2 L d floats each
        for (index_t q = 0; q < d; ++q, b += 2 * w) {
            const fb b0 = fb::load_aligned(b), b1 = fb::load_aligned(b + w);
            for (index_t r = 0; r < key_rows; ++r) {
                const fb a(rows[r][q]);
                acc[r][0] = xsimd::fma(a, b0, acc[r][0]);
                acc[r][1] = xsimd::fma(a, b1, acc[r][1]);
            }
        }
        // + 0 turns -0 into +0 (knn_key needs it).
        const fb n0 = fb::load_aligned(norms + c0 + c), n1 = fb::load_aligned(norms + c0 + c + w);
        for (index_t r = 0; r < key_rows; ++r) {
            (xsimd::fnma(fb(2.0f), acc[r][0], n0) + fb(0.0f)).store_aligned(keys + r * key_stride + c);
            (xsimd::fnma(fb(2.0f), acc[r][1], n1) + fb(0.0f)).store_aligned(keys + r * key_stride + c + w);
        }
    }
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
    if (n > index_t{0xffffffff})
        throw value_error(detail::describe("exact_knn", "at most 2^32 - 1 points", std::to_string(n) + " points"));
    detail::require_finite("exact_knn", x);

    // Centring keeps ||x||² small relative to distances, so the GEMM trick loses fewer digits.
    const Eigen::RowVectorXd mean = detail::column_means(x);
    matrix<float> xc(n, x.cols());
    for (index_t i = 0; i < n; ++i) xc.row(i) = (x.row(i).cast<double>() - mean).cast<float>();
    // The panels the key kernel streams (see knn_keys; columns padded to two vectors with zeros) and the norms.
    using fb = xsimd::batch<float>;
    constexpr index_t w = static_cast<index_t>(fb::size);
    const index_t d = x.cols(), stride = (n + 2 * w - 1) / (2 * w) * (2 * w);
    detail::uninitialized_buffer<float> panels(static_cast<std::size_t>(d * stride)),
        norms(static_cast<std::size_t>(stride));
    for (index_t p0 = 0; p0 < stride; p0 += 2 * w) {
        float* panel = panels.get() + p0 * d;
        for (index_t q = 0; q < d; ++q)
            for (index_t l = 0; l < 2 * w; ++l) panel[q * 2 * w + l] = p0 + l < n ? xc(p0 + l, q) : 0.0f;
    }
    for (index_t i = 0; i < stride; ++i) norms.get()[i] = i < n ? xc.row(i).squaredNorm() : 0.0f;
    // The float keys ||y||² - 2 x·y and the float distances returned stay finite while every squared norm
    // (about the mean) is at most a quarter of the float range; beyond it they would overflow into NaN and
    // select nonsense.
    constexpr float max_norm = std::numeric_limits<float>::max() / 4.0f;
    for (index_t i = 0; i < n; ++i)
        if (!(norms.get()[i] <= max_norm)) {
            char got[64];
            std::snprintf(got, sizeof got, "row %lld at squared distance %g", static_cast<long long>(i),
                          static_cast<double>(norms.get()[i]));
            throw value_error(detail::describe(
                "exact_knn", "squared distances from the data's mean at most 8.5e37 (coordinates within ~9e18)", got));
        }

    // How far a float key can sit from its exact value (||x_i - x_j||² in double minus ||x_i||²): a dot product
    // of D terms and the norm, each within (D + 2) u of its terms' magnitudes (u = 2^-24), and the centring's
    // rounding, within 8 u M (M: the largest squared norm). A point among the exact k nearest can therefore
    // have a key up to twice that above the k-th smallest key: the search keeps every candidate within
    // margin[i] of the k-th key, and the exact distances decide.
    std::vector<float> margin(static_cast<std::size_t>(n));
    {
        float big = 0.0f;
        for (index_t i = 0; i < n; ++i) big = std::max(big, norms.get()[i]);
        const double u = std::ldexp(1.0, -24), m_all = static_cast<double>(big);
        for (index_t i = 0; i < n; ++i) {
            const double e = static_cast<double>(d + 2) * u *
                                 (m_all + 2.0 * std::sqrt(static_cast<double>(norms.get()[i]) * m_all)) +
                             8.0 * u * m_all;
            margin[static_cast<std::size_t>(i)] = static_cast<float>(2.5 * e); // 2 E, and slack for rounding
        }
    }

    // Blocks of at most 64 rows, of equal size, handed out one at a time: few, large blocks left one thread
    // idle at the end (digits: 7 blocks of 256 on 2 threads). The sizes depend on N only, never on the thread
    // count, so the result does not either.
    constexpr index_t col_block = 2048, max_row_block = 64;
    const index_t n_row_blocks = (n + max_row_block - 1) / max_row_block;
    const index_t row_block = (n + n_row_blocks - 1) / n_row_blocks;
    knn_graph g{index_matrix(n, k), matrix<float>(n, k)};

    // Candidates are packed 64-bit keys (order-preserving bits of the float key << 32 | column), so the order
    // (key, index) is one integer compare: cut-backs are a plain nth_element on integers and the final order
    // a rank_sort. Only candidates within the margin of the k-th key need their exact distances (see
    // cut_back below).
    const auto cap = static_cast<std::size_t>(2 * k + 64);
    const index_t key_stride = (std::min(col_block, n) + 2 * w - 1) / (2 * w) * (2 * w);
    struct scratch {
        detail::uninitialized_buffer<float> keys; // key_rows rows of key_stride
        detail::uninitialized_buffer<std::uint64_t> cands;
        std::vector<index_t> count;
        std::vector<float> bound, group_mins;
        std::vector<detail::knn_entry> best;
        std::vector<std::uint64_t> sorted;
        std::vector<std::pair<detail::knn_entry, std::uint64_t>> band; // cut_back's exact distances
    };
    // One scratch per thread, not per block: fresh pages cost more than the selection on 64-row blocks.
    std::vector<scratch> scratches(static_cast<std::size_t>(detail::parallel_threads()));
    detail::parallel_blocks(n_row_blocks, [&](index_t rb, int thread) {
        const index_t r0 = rb * row_block, rn = std::min(row_block, n - r0);
        scratch& sc = scratches[static_cast<std::size_t>(thread)];
        if (sc.keys.get() == nullptr) {
            sc.keys = detail::uninitialized_buffer<float>(static_cast<std::size_t>(detail::key_rows * key_stride));
            sc.cands = detail::uninitialized_buffer<std::uint64_t>(static_cast<std::size_t>(row_block) * cap);
            sc.best.resize(static_cast<std::size_t>(k));
            sc.band.reserve(cap); // no allocation inside the team
            sc.sorted.resize(cap);
        }
        // Per row: the candidates so far and the key a new one must not exceed. Candidates are appended and,
        // whenever 2k have gathered, cut back to the k best (nth_element, O(k)): O(1) per candidate, where a heap
        // pays a logarithmic sift for each.
        std::uint64_t* cands = sc.cands.get();
        auto& count = sc.count;
        auto& bound = sc.bound;
        count.assign(static_cast<std::size_t>(rn), 0);
        bound.assign(static_cast<std::size_t>(rn), std::numeric_limits<float>::infinity());
        // Cuts v[0, cnt) back to the k best by (exact distance, index) of row i and returns the key a new
        // candidate must not exceed to have a chance. With K the k-th smallest key and m the margin: keys
        // below K - m belong to the k best (fewer than k candidates can be exactly nearer), keys above K + m
        // do not (k candidates are exactly nearer); only the band between needs exact distances, usually a
        // few points (more where many are exactly tied: lattice data). A later candidate nearer than the k
        // kept has a key within m of theirs.
        auto& band = sc.band;
        const auto cut_back = [&](std::uint64_t* v, index_t& cnt, index_t i, float m) {
            std::nth_element(v, v + (k - 1), v + cnt);
            const float kth = detail::knn_key_value(v[k - 1]);
            const std::uint64_t below = detail::knn_key_from(kth - m), above = detail::knn_key_upto(kth + m);
            std::uint64_t* sure = std::partition(v, v + cnt, [below](std::uint64_t c) { return c < below; });
            std::uint64_t* band_end = std::partition(sure, v + cnt, [above](std::uint64_t c) { return c <= above; });
            const auto need = static_cast<std::size_t>(v + k - sure);
            if (static_cast<std::size_t>(band_end - sure) > need) {
                band.clear();
                for (const std::uint64_t* c = sure; c != band_end; ++c) {
                    const index_t j = detail::knn_key_index(*c);
                    band.push_back({detail::knn_entry{detail::exact_sq_distance(x, i, j), j}, *c});
                }
                std::nth_element(band.begin(), band.begin() + static_cast<std::ptrdiff_t>(need - 1), band.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
                for (std::size_t b = 0; b < need; ++b) sure[b] = band[b].second;
            }
            cnt = k;
            return detail::knn_key_value(*std::max_element(v, v + k)) + m + 0.0f;
        };
        alignas(64) float lanes[w];
        for (index_t c0 = 0; c0 < n; c0 += col_block) {
            const index_t cn = std::min(col_block, n - c0);
            for (index_t r = 0; r < rn; ++r) {
                if (r % detail::key_rows == 0) { // the keys of this row and the next key_rows - 1
                    const float* rows[detail::key_rows];
                    for (index_t q = 0; q < detail::key_rows; ++q) // past the block: repeat its last row
                        rows[q] = &xc(r0 + std::min(r + q, rn - 1), 0);
                    detail::knn_keys(rows, panels.get(), d, norms.get(), c0, cn, sc.keys.get(), key_stride);
                }
                std::uint64_t* v = cands + static_cast<std::size_t>(r) * cap;
                index_t& cnt = count[static_cast<std::size_t>(r)];
                float& thr = bound[static_cast<std::size_t>(r)];
                const index_t i = r0 + r;
                const float m = margin[static_cast<std::size_t>(i)];
                // Selection key ||y||² - 2 x·y (+ 0, so -0 reads as +0): ||x||² is the same for the whole row, so
                // it cannot change the order, and the survivors' distances are recomputed exactly below.
                const float* keys = sc.keys.get() + (r % detail::key_rows) * key_stride;
                const auto key_at = [&](index_t c) { return fb::load_aligned(keys + c); };
                const auto push = [&](float key, index_t c) {
                    const index_t j = c0 + c;
                    if (j != i) v[cnt++] = detail::knn_key(key, j);
                };
                const auto shrink = [&] {
                    if (cnt < 2 * k) return;
                    thr = cut_back(v, cnt, i, m);
                };
                if (thr == std::numeric_limits<float>::infinity() && cn >= 4 * (k + 1)) {
                    // A first bound before any candidate: the (k + 1)-th smallest of the minima of 2 (k + 1)
                    // disjoint groups of keys. Those k + 1 minima are distinct points, at most one of them
                    // i itself, so at least k others lie within it; without it the first 2k columns all
                    // entered and were cut back again and again while the bound tightened.
                    const index_t groups = (2 * (k + 1) + w - 1) / w; // lane l of vectors v = groups q + r
                    auto& mins = sc.group_mins;                       // reused across rows
                    mins.assign(static_cast<std::size_t>(groups * w), std::numeric_limits<float>::infinity());
                    for (index_t c = 0, q = 0; c + w <= cn; c += w, q = q + 1 == groups ? 0 : q + 1) {
                        float* gm = mins.data() + q * w;
                        xsimd::min(fb::load_unaligned(gm), key_at(c)).store_unaligned(gm);
                    }
                    thr = detail::kth_smallest_bound(mins.data(), groups * w, k + 1) + m + 0.0f;
                }
                // Most candidates are rejected: test a batch against the bound at once and visit only the lanes
                // it lets through (the keys are floats, so this selects exactly what the one-by-one test would).
                index_t c = 0;
                for (; c + w <= cn; c += w) {
                    const fb key = key_at(c);
                    std::uint32_t mask = detail::simd::lane_mask(key <= fb(thr));
                    if (mask == 0) continue;
                    key.store_aligned(lanes);
                    for (; mask != 0; mask &= mask - 1) {
                        const auto l = static_cast<index_t>(std::countr_zero(mask));
                        push(lanes[l], c + l);
                    }
                    shrink();
                }
                for (; c < cn; ++c) {
                    const float key = keys[c];
                    if (key <= thr) push(key, c);
                    shrink();
                }
            }
        }
        auto& best = sc.best;
        for (index_t r = 0; r < rn; ++r) {
            std::uint64_t* v = cands + static_cast<std::size_t>(r) * cap;
            // The candidates in key order (about 2k at most: sorting them all is cheaper than nth_element
            // followed by a sort of k).
            const index_t cnt = count[static_cast<std::size_t>(r)];
            const std::uint64_t* ordered = v;
            if (cnt <= detail::rank_sort_max) {
                detail::rank_sort(v, cnt, sc.sorted.data());
                ordered = sc.sorted.data();
            } else {
                std::sort(v, v + cnt);
            }
            // The k best by (exact distance, index) among the k best keys and those within the margin of the
            // k-th. Sorted by the float key, the exact distances are nearly in order already: the insertion
            // into the k best moves only the near-ties the float keys misordered.
            const index_t i = r0 + r;
            const std::uint64_t last =
                detail::knn_key_upto(detail::knn_key_value(ordered[k - 1]) + margin[static_cast<std::size_t>(i)]);
            index_t candidates = k;
            while (candidates < cnt && ordered[candidates] <= last) ++candidates;
            for (index_t c = 0; c < candidates; ++c) {
                const index_t j = detail::knn_key_index(ordered[c]);
                detail::knn_entry e{detail::exact_sq_distance(x, i, j), j};
                index_t t = std::min(c, k);
                if (t == k && !(e < best[static_cast<std::size_t>(k - 1)])) continue;
                if (t == k) --t; // the k-th best makes room
                for (; t > 0 && e < best[static_cast<std::size_t>(t - 1)]; --t)
                    best[static_cast<std::size_t>(t)] = best[static_cast<std::size_t>(t - 1)];
                best[static_cast<std::size_t>(t)] = e;
            }
            for (index_t c = 0; c < k; ++c) {
                g.indices(i, c) = best[static_cast<std::size_t>(c)].j;
                g.sq_distances(i, c) = static_cast<float>(best[static_cast<std::size_t>(c)].d);
            }
        }
    });
    return g;
}

} // namespace dskit
