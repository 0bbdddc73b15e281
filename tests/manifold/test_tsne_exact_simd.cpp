// The simd backend's exact t-SNE gradient (tsne_exact_simd.hpp) against the double-precision scalar
// reference, for 1-, 2- and 3-D embeddings and dof != 1, and bit-identical results across thread counts.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include <dskit/manifold/affinity.hpp>
#include <dskit/manifold/quality.hpp>
#include <dskit/manifold/tsne.hpp>
#include <dskit/manifold/tsne_gradient.hpp>
#include <dskit/manifold/tsne_step.hpp>

#include "../test_util.hpp"

using namespace dskit;

namespace {

using simd_backend = backend::simd<>;

/// `n` points in `d` dimensions around 4 centres.
matrix<float> clusters(index_t n, index_t d, unsigned seed)
{
    matrix<float> x = test::random_matrix(n, d, seed);
    const matrix<float> c = test::random_matrix(4, d, seed + 1, 5.0f);
    for (index_t i = 0; i < n; ++i) x.row(i) += c.row(i % 4);
    return x;
}

/// A spread-out layout like a finished t-SNE map (coordinates of order 10, clusters of order 1).
matrix<double> layout(index_t n, index_t dims, unsigned seed)
{
    matrix<double> y = test::random_matrix(n, dims, seed).cast<double>();
    const matrix<double> c = test::random_matrix(4, dims, seed + 1, 10.0f).cast<double>();
    for (index_t i = 0; i < n; ++i) y.row(i) += c.row(i % 4);
    return y;
}

double rel(const matrix<double>& a, const matrix<double>& b)
{
    return (a - b).norm() / b.norm();
}

} // namespace

TEST_CASE("tsne exact simd: gradient, Z and KL match the scalar reference (1-, 2-, 3-D, dof)")
{
    // 2001 points: three tiles of 672 (of 668 with 4-lane vectors), the last one padded (masked lanes in
    // diagonal and off-diagonal tiles).
    for (index_t n : {5, 2001}) {
        const matrix<float> x = clusters(n, 6, 3);
        const sparse_affinities p = tsne_affinities(x, n > 10 ? 15.0 : 2.0);
        for (int dims = 1; dims <= 3; ++dims)
            for (double dof : {1.0, 0.6, 2.5}) {
                CAPTURE(n);
                CAPTURE(dims);
                CAPTURE(dof);
                const matrix<double> y = layout(n, dims, 7);
                matrix<double> gs(n, dims), gv(n, dims);
                for (double exaggeration : {1.0, 12.0}) {
                    const auto ss = tsne_gradient_exact<backend::scalar>(p, y, gs, exaggeration, dof, true);
                    const auto sv = tsne_gradient_exact<simd_backend>(p, y, gv, exaggeration, dof, true);
                    // Float coordinates and pair terms: measured ~2e-5 on this data; 1e-4 leaves room for
                    // other x86 reciprocal approximations. Z and KL: on AVX-512 the repulsion's unrefined
                    // 14-bit reciprocal (pair_reciprocal) puts Z ~3e-5 off for n = 5, where the few pair
                    // terms average nothing out (6e-5 at most per term).
                    CHECK(rel(gv, gs) < 1e-4);
                    CHECK(sv.z == doctest::Approx(ss.z).epsilon(1e-4));
                    CHECK(sv.kl == doctest::Approx(ss.kl).epsilon(1e-4));
                    // Without KL the attraction takes another path (2-D AVX-512: rows reduced eight at a time);
                    // once per layout (exaggeration only scales the attraction; each call is seconds under ASan).
                    if (exaggeration > 1.0) {
                        matrix<double> gq(n, dims);
                        const auto sq = tsne_gradient_exact<simd_backend>(p, y, gq, exaggeration, dof, false);
                        CHECK(rel(gq, gs) < 1e-4);
                        CHECK(sq.z == doctest::Approx(ss.z).epsilon(1e-4));
                    }
                }
                // The repulsive field alone (P = 0): the part the O(N²) vector loop computes.
                sparse_affinities none;
                none.n = n;
                none.indptr.assign(static_cast<std::size_t>(n) + 1, 0);
                tsne_gradient_exact<backend::scalar>(none, y, gs, 1.0, dof, false);
                tsne_gradient_exact<simd_backend>(none, y, gv, 1.0, dof, false);
                CHECK(rel(gv, gs) < 1e-4);
            }
    }
}

TEST_CASE("tsne exact simd: coincident points and the kl_divergence reference")
{
    // Duplicates sit at distance 0 from each other: they must count in Z (w = 1), unlike the point itself.
    const matrix<float> x = clusters(40, 3, 9);
    const sparse_affinities p = tsne_affinities(x, 5.0);
    matrix<double> y = layout(40, 2, 4);
    for (index_t i = 1; i < 10; ++i) y.row(i) = y.row(0);
    matrix<double> gs(40, 2), gv(40, 2);
    const auto ss = tsne_gradient_exact<backend::scalar>(p, y, gs);
    const auto sv = tsne_gradient_exact<simd_backend>(p, y, gv);
    CHECK(sv.z == doctest::Approx(ss.z).epsilon(1e-5));
    CHECK(rel(gv, gs) < 1e-4);
    CHECK(kl_divergence(p, y) == ss.kl); // the quality measure stays on the double reference
}

TEST_CASE("tsne exact simd: bit-identical across thread counts, and as good as the scalar run")
{
    const int threads_before = max_threads();
    {
        // 2001 points: three tiles, six tile pairs for the threads to share, each tile's slots summed by
        // whichever thread finishes its last pair.
        const index_t n = 2001;
        const matrix<float> x = clusters(n, 10, 11);
        const sparse_affinities p = tsne_affinities(x, 20.0);
        const matrix<double> y = layout(n, 2, 5);
        matrix<double> g1(n, 2), g2(n, 2);
        set_num_threads(1);
        const auto s1 = tsne_gradient_exact<simd_backend>(p, y, g1);
        set_num_threads(2);
        const auto s2 = tsne_gradient_exact<simd_backend>(p, y, g2);
        CHECK(g1 == g2);
        CHECK(s1.z == s2.z);
        CHECK(s1.kl == s2.kl);
    }
    // Whole runs on 801 points (one tile: the threads share its rows' attraction and the diagonal tile).
    const index_t n = 801;
    const matrix<float> x = clusters(n, 10, 11);

    tsne_options opt;
    opt.perplexity = 20;
    opt.method = tsne_method::exact;
    opt.early_exaggeration_iter = 100;
    opt.n_iter = 150;
    set_num_threads(1);
    const tsne_result r1 = tsne<simd_backend>(x, opt);
    set_num_threads(2);
    const tsne_result r2 = tsne<simd_backend>(x, opt);
    set_num_threads(threads_before);
    CHECK(r1.embedding == r2.embedding);
    CHECK(r1.kl == r2.kl);
    // Scalar and simd runs drift apart (float rounding grows over iterations) but reach the same quality.
    const tsne_result rs = tsne<backend::scalar>(x, opt);
    CHECK(r1.kl == doctest::Approx(rs.kl).epsilon(0.02));
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 4);
    CHECK(knn_accuracy(r1.embedding, labels, 10) > 0.99);
}

TEST_CASE("tsne exact simd: no points")
{
    // An empty P and embedding: no tiles and no work, as on the scalar reference (this divided by a tile
    // size of 0 before).
    sparse_affinities p;
    p.n = 0;
    const matrix<double> y(0, 2);
    matrix<double> gs(0, 2), gv(0, 2);
    const auto ss = tsne_gradient_exact<backend::scalar>(p, y, gs);
    const auto sv = tsne_gradient_exact<simd_backend>(p, y, gv);
    CHECK(sv.z == 0.0);
    CHECK(sv.z == ss.z);
    CHECK(sv.kl == ss.kl);
}

TEST_CASE("tsne step: the 2-D vector pass equals the scalar rows")
{
    // Gradients and updates of either sign and zero, gains near min_gain, updates on both sides of the
    // clipping norm, and 1797 points (a scalar tail after the last whole vector).
    const index_t n = 1797;
    const auto m = static_cast<std::size_t>(2 * n);
    const matrix<float> r = test::random_matrix(n, 8, 11);
    std::vector<double> grad(m), update(m), gains(m), y(m);
    for (std::size_t e = 0; e < m; ++e) {
        const auto i = static_cast<index_t>(e / 2), c = static_cast<index_t>(e % 2);
        grad[e] = e % 17 == 0 ? 0.0 : 0.05 * r(i, c);
        update[e] = e % 13 == 0 ? 0.0 : 3.0 * r(i, 2 + c);
        gains[e] = e % 5 == 0 ? 0.011 : 1.0 + std::abs(static_cast<double>(r(i, 4 + c)));
        y[e] = 10.0 * r(i, 6 + c);
    }
    for (double max_step_norm : {5.0, 0.0}) {
        CAPTURE(max_step_norm);
        std::vector<double> u_vec = update, g_vec = gains, y_vec = y, u_ref = update, g_ref = gains, y_ref = y;
        double sum[2] = {0.0, 0.0};
        const std::size_t done = detail::tsne_step_rows_2d(grad.data(), u_vec.data(), g_vec.data(), y_vec.data(), m,
                                                           0.8, 37.4, 0.01, max_step_norm, sum);
        CHECK(done + xsimd::batch<double>::size > m); // every whole vector
        detail::tsne_step_rows<2>(grad.data(), u_vec.data(), g_vec.data(), y_vec.data(), done, m, 0.8, 37.4, 0.01,
                                  max_step_norm);
        detail::tsne_step_rows<2>(grad.data(), u_ref.data(), g_ref.data(), y_ref.data(), 0, m, 0.8, 37.4, 0.01,
                                  max_step_norm);
        int clipped = 0;
        double ref_sum[2] = {0.0, 0.0};
        for (std::size_t e = 0; e < m; ++e) {
            CHECK(g_vec[e] == g_ref[e]); // signs compared, then + 0.2 or * 0.8: no rounding to differ in
            // The update may differ by an FMA's rounding where momentum u and rate g cancel.
            CHECK(u_vec[e] == doctest::Approx(u_ref[e]).epsilon(1e-12).scale(1e-12));
            CHECK(y_vec[e] == doctest::Approx(y_ref[e]).epsilon(1e-12));
            if (e < done) ref_sum[e % 2] += y_ref[e];
            if (e % 2 == 0 && u_ref[e] * u_ref[e] + u_ref[e + 1] * u_ref[e + 1] > 24.999) ++clipped;
        }
        CHECK(sum[0] == doctest::Approx(ref_sum[0]).epsilon(1e-12));
        CHECK(sum[1] == doctest::Approx(ref_sum[1]).epsilon(1e-12));
        if (max_step_norm > 0.0) CHECK(clipped > 100); // the clip was exercised
    }
}
