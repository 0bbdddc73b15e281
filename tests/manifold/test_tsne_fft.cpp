// The FFT-interpolation t-SNE gradient (FIt-SNE) against the exact one, determinism across thread counts, bad
// input, and full t-SNE runs with it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <dskit/manifold/affinity.hpp>
#include <dskit/manifold/quality.hpp>
#include <dskit/manifold/tsne.hpp>
#include <dskit/manifold/tsne_fft.hpp>
#include <dskit/manifold/tsne_gradient.hpp>

#include "manifold_test_util.hpp"

using namespace dskit;

namespace {

using test::clusters;
using test::error_message;

sparse_affinities no_affinities(index_t n)
{
    sparse_affinities none;
    none.n = n;
    none.indptr.assign(static_cast<std::size_t>(n) + 1, 0);
    return none;
}

double rel_error(const matrix<double>& a, const matrix<double>& ref)
{
    return (a - ref).norm() / ref.norm();
}

} // namespace

TEST_CASE("tsne_fft: gradient agrees with the exact one (1-D and 2-D, dof 1 and 0.5)")
{
    const index_t n = 300;
    const matrix<float> x = clusters(n, 8, 5);
    const sparse_affinities p = tsne_affinities(x, 20.0);
    const sparse_affinities none = no_affinities(n);
    for (int dims = 1; dims <= 2; ++dims) {
        // A mid-optimisation layout: a short exact run stopped while the map still expands after early
        // exaggeration. Run with the double reference, so that the layout does not move with the rounding of
        // the vector kernels (a run is chaotic: an ulp changes the layout, and with it the error below).
        tsne_options opt;
        opt.dims = dims;
        opt.perplexity = 20;
        opt.method = tsne_method::exact;
        opt.early_exaggeration_iter = 100;
        opt.n_iter = 25;
        const matrix<double> y = tsne<backend::scalar>(x, opt).embedding.cast<double>();
        for (double dof : {1.0, 0.5}) {
            CAPTURE(dims);
            CAPTURE(dof);
            matrix<double> ge(n, dims), gf(n, dims);
            for (double exaggeration : {1.0, 12.0}) {
                CAPTURE(exaggeration);
                const auto se = tsne_gradient_exact(p, y, ge, exaggeration, dof);
                const auto sf = tsne_gradient_fft(p, y, gf, exaggeration, dof);
                const double err = rel_error(gf, ge);
                MESSAGE("dims " << dims << " dof " << dof << " exaggeration " << exaggeration
                                << ": |g_fft - g_exact| / |g_exact| = " << err
                                << ", Z rel. error = " << std::abs(sf.z - se.z) / se.z);
                // As for Barnes-Hut (test_manifold): within 1e-2 while attraction and repulsion are far from
                // balance (at most 0.1% on 16 layouts, 1- and 2-D, 25 and 100 iterations after early
                // exaggeration). Without exaggeration the gradient is the difference of the two, and the
                // interpolation's error in the repulsion shows through: 0.05-1.1% on 16 layouts 25 iterations
                // after (1-D up to 1.1%), 2.5-45% near equilibrium 100 iterations after (openTSNE's grid, the
                // same scheme).
                CHECK(err < (exaggeration > 1.0 ? 1e-2 : 5e-2));
                CHECK(sf.z == doctest::Approx(se.z).epsilon(5e-3));
                CHECK(sf.kl == doctest::Approx(se.kl).epsilon(5e-3));
            }
            // The repulsive field alone (P = 0), what the interpolation approximates. With openTSNE's grid
            // (3 nodes per unit interval) openTSNE's own FFT gradient is off by 1.6-3.2 % on such layouts
            // (measured with openTSNE 1.0.4 on Gaussian-mixture layouts of span 35-60); this is the same scheme.
            tsne_gradient_exact(none, y, ge, 1.0, dof);
            tsne_gradient_fft(none, y, gf, 1.0, dof);
            const double err = rel_error(gf, ge);
            MESSAGE("dims " << dims << " dof " << dof << ": repulsion only, relative error " << err);
            CHECK(err < 4e-2);
            // More nodes per interval: the error must drop (the interpolation converges).
            tsne_fft_options fine;
            fine.points_per_interval = 5;
            tsne_gradient_fft(none, y, gf, 1.0, dof, false, fine);
            const double err5 = rel_error(gf, ge);
            MESSAGE("  with 5 nodes per interval: " << err5);
            CHECK(err5 < 0.2 * err);
        }
    }
}

TEST_CASE("tsne_fft: tiny, coincident and far-spread embeddings")
{
    const index_t n = 120;
    const matrix<float> x = clusters(n, 5, 9);
    const sparse_affinities p = tsne_affinities(x, 10.0);
    for (int dims = 1; dims <= 2; ++dims) {
        CAPTURE(dims);
        matrix<double> ge(n, dims), gf(n, dims);
        // The start of an optimisation: spread 1e-4.
        const matrix<double> y0 = 1e-4 * test::random_matrix(n, dims, 3).cast<double>();
        const auto se = tsne_gradient_exact(p, y0, ge, 12.0);
        const auto sf = tsne_gradient_fft(p, y0, gf, 12.0);
        CHECK(rel_error(gf, ge) < 1e-3);
        CHECK(sf.z == doctest::Approx(se.z).epsilon(1e-6));
        // All points in one place: no repulsion, Z = N (N - 1), all finite.
        const matrix<double> same = matrix<double>::Constant(n, dims, 3.0);
        const auto s1 = tsne_gradient_fft(p, same, gf);
        CHECK(gf.allFinite());
        CHECK(gf.norm() < 1e-9);
        CHECK(s1.z == doctest::Approx(static_cast<double>(n * (n - 1))).epsilon(1e-6));
        CHECK(std::isfinite(s1.kl));
        // Spread wider than min_intervals x ints_in_interval (the grid grows): four clusters ~100 apart.
        const matrix<float> centres = test::random_matrix(4, dims, 6, 40.0f);
        matrix<double> far = 2.0 * test::random_matrix(n, dims, 4).cast<double>();
        for (index_t i = 0; i < n; ++i) far.row(i) += centres.row(i % 4).cast<double>();
        tsne_gradient_exact(p, far, ge, 1.0);
        tsne_gradient_fft(p, far, gf, 1.0);
        const double err = rel_error(gf, ge);
        // Capped at fewer, wider intervals than ints_in_interval asks for: finite, less accurate.
        tsne_fft_options capped;
        capped.min_intervals = 20;
        capped.max_intervals = 20;
        tsne_gradient_fft(p, far, gf, 1.0, 1.0, true, capped);
        const double err_capped = rel_error(gf, ge);
        MESSAGE("dims " << dims << ": clusters ~100 apart, error " << err << ", capped at 20 intervals " << err_capped);
        CHECK(err < 5e-2); // the near-field interpolation error of 3 nodes per unit interval (see above)
        CHECK(gf.allFinite());
        CHECK(err_capped > err);
    }
}

TEST_CASE("tsne_fft: bit-identical across thread counts and workspaces")
{
    const index_t n = 2000;
    const matrix<float> x = clusters(n, 6, 13);
    const sparse_affinities p = tsne_affinities(x, 15.0);
    const int threads_before = max_threads();
    for (int dims = 1; dims <= 2; ++dims) {
        CAPTURE(dims);
        const matrix<double> y = 20.0 * test::random_matrix(n, dims, 17).cast<double>();
        matrix<double> g1(n, dims), g2(n, dims), g3(n, dims);
        set_num_threads(1);
        const auto s1 = tsne_gradient_fft(p, y, g1, 4.0, 0.7);
        set_num_threads(2);
        const auto s2 = tsne_gradient_fft(p, y, g2, 4.0, 0.7);
        tsne_fft_workspace ws;
        const auto s3 = tsne_gradient_fft(p, y, g3, 4.0, 0.7, true, {}, ws);
        CHECK(g1 == g2);
        CHECK(g1 == g3);
        CHECK(s1.z == s2.z);
        CHECK(s1.kl == s2.kl);
        CHECK(s1.kl == s3.kl);
    }
    set_num_threads(threads_before);
}

TEST_CASE("tsne_fft: bad input throws value_error naming the limit")
{
    const matrix<float> x = clusters(50, 4, 2);
    const sparse_affinities p = tsne_affinities(x, 5.0);
    const matrix<double> y3 = test::random_matrix(50, 3, 1).cast<double>();
    matrix<double> g3(50, 3);
    CHECK(error_message([&] { tsne_gradient_fft(p, y3, g3); }).find("1 or 2 columns") != std::string::npos);
    matrix<double> y = test::random_matrix(50, 2, 1).cast<double>(), g(50, 2);
    tsne_fft_options o;
    o.points_per_interval = 0;
    CHECK(error_message([&] { tsne_gradient_fft(p, y, g, 1.0, 1.0, true, o); }).find("[1, 16]") != std::string::npos);
    o = {};
    o.ints_in_interval = 0.0;
    CHECK(error_message([&] { tsne_gradient_fft(p, y, g, 1.0, 1.0, true, o); }).find("ints_in_interval") !=
          std::string::npos);
    o = {};
    o.max_intervals = 10;
    CHECK(error_message([&] { tsne_gradient_fft(p, y, g, 1.0, 1.0, true, o); }).find("max_intervals") !=
          std::string::npos);
    CHECK(error_message([&] { tsne_gradient_fft(p, y, g, 1.0, 0.0); }).find("degrees of freedom") != std::string::npos);
    y(3, 1) = std::nan("");
    CHECK(error_message([&] { tsne_gradient_fft(p, y, g); }).find("finite") != std::string::npos);
    // t-SNE itself: fft for 3-D is refused up front.
    tsne_options opt;
    opt.dims = 3;
    opt.method = tsne_method::fft;
    CHECK(error_message([&] { tsne(x, opt); }).find("dims") != std::string::npos);
}

TEST_CASE("tsne_fft: t-SNE with the FFT gradient separates clusters, bit-identical across threads")
{
    const index_t n = 300;
    const matrix<float> x = clusters(n, 10, 11);
    tsne_options opt;
    opt.perplexity = 20;
    opt.method = tsne_method::fft;
    opt.fft.min_intervals = 20; // a small map needs no more; keeps the test fast
    opt.early_exaggeration_iter = 60;
    opt.n_iter = 90;
    const int threads_before = max_threads();
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 4);
    for (int dims = 1; dims <= 2; ++dims) {
        CAPTURE(dims);
        opt.dims = dims;
        set_num_threads(1);
        const tsne_result r1 = tsne(x, opt);
        set_num_threads(2);
        const tsne_result r2 = tsne(x, opt);
        CHECK(r1.method == tsne_method::fft);
        CHECK(r1.embedding.allFinite());
        CHECK(r1.embedding == r2.embedding);
        CHECK(r1.kl == r2.kl);
        CHECK(std::isfinite(r1.kl));
        CHECK(knn_accuracy(r1.embedding, labels, 10) > 0.99);
        const double trust = trustworthiness(x, r1.embedding, 10);
        MESSAGE("dims " << dims << ": trustworthiness(10) = " << trust << ", KL = " << r1.kl);
        CHECK(trust > (dims == 2 ? 0.9 : 0.8));
        if (dims == 2) { // the same run with the exact gradient ends at a similar KL (1-D runs part ways sooner)
            // Against the double reference: the float exact run's end point moves with its rounding.
            tsne_options ex = opt;
            ex.method = tsne_method::exact;
            CHECK(r1.kl == doctest::Approx(tsne<backend::scalar>(x, ex).kl).epsilon(0.05));
        }
    }
    set_num_threads(threads_before);
    // `automatic`: exact below 1000 points, fft from 10000 in 1-D / 2-D, Barnes-Hut otherwise.
    CHECK(detail::resolve_method(tsne_method::automatic, 10000, 2) == tsne_method::fft);
    CHECK(detail::resolve_method(tsne_method::automatic, 10000, 1) == tsne_method::fft);
    CHECK(detail::resolve_method(tsne_method::automatic, 10000, 3) == tsne_method::barnes_hut);
    CHECK(detail::resolve_method(tsne_method::automatic, 5000, 2) == tsne_method::barnes_hut);
    CHECK(detail::resolve_method(tsne_method::fft, 100, 2) == tsne_method::fft);
}
