// t-SNE building blocks against scikit-learn (fixtures from tests/reference/make_tsne_fixtures.py), the
// Barnes-Hut gradient against the exact one, determinism across thread counts, and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <dskit/io/npy.hpp>
#include <dskit/manifold/affinity.hpp>
#include <dskit/manifold/knn.hpp>
#include <dskit/manifold/pca.hpp>
#include <dskit/manifold/quality.hpp>
#include <dskit/manifold/svg_scatter.hpp>
#include <dskit/manifold/tsne.hpp>
#include <dskit/manifold/tsne_gradient.hpp>

#include "manifold_test_util.hpp"

using namespace dskit;

namespace {

matrix<float> load(const std::string& name)
{
    return load_npy_matrix(test::fixture("manifold/" + name));
}

using test::clusters;
using test::error_message;

} // namespace

TEST_CASE("manifold: exact kNN matches brute force, ties by index")
{
    // Every other point of row i as (squared distance, index), in that order.
    const auto brute_force = [](const matrix<float>& m, index_t i) {
        std::vector<std::pair<double, index_t>> all;
        for (index_t j = 0; j < m.rows(); ++j)
            if (j != i) all.push_back({(m.row(i).cast<double>() - m.row(j).cast<double>()).squaredNorm(), j});
        std::sort(all.begin(), all.end());
        return all;
    };
    const matrix<float> x = test::random_matrix(300, 7, 3);
    const knn_graph g = exact_knn(x, 12);
    for (index_t i = 0; i < x.rows(); i += 17) {
        const auto all = brute_force(x, i);
        for (index_t c = 0; c < 12; ++c) {
            CHECK(g.indices(i, c) == all[static_cast<std::size_t>(c)].second);
            CHECK(g.sq_distances(i, c) == doctest::Approx(all[static_cast<std::size_t>(c)].first).epsilon(1e-6));
        }
    }
    // Many exact ties among more candidates than the first bound needs (4 copies of 60 points): the
    // neighbour lists equal brute force's (distance, index) order.
    matrix<float> copies(240, 5);
    const matrix<float> base = test::random_matrix(60, 5, 8);
    for (index_t i = 0; i < copies.rows(); ++i) copies.row(i) = base.row(i % 60);
    const knn_graph gc = exact_knn(copies, 10);
    for (index_t i = 0; i < copies.rows(); i += 13) {
        const auto all = brute_force(copies, i);
        for (index_t c = 0; c < 10; ++c) CHECK(gc.indices(i, c) == all[static_cast<std::size_t>(c)].second);
    }
    // More points than one column block (2048) and more candidates than 2k before the bound settles (low
    // dimension, clustered, k = 150): the state carried across blocks and the cut-backs select what brute
    // force does.
    const matrix<float> wide = clusters(2600, 3, 17);
    const knn_graph gw = exact_knn(wide, 150);
    for (index_t i : {index_t{0}, index_t{1}, index_t{777}, index_t{2047}, index_t{2048}, index_t{2599}}) {
        const auto all = brute_force(wide, i);
        for (index_t c = 0; c < 150; ++c) CHECK(gw.indices(i, c) == all[static_cast<std::size_t>(c)].second);
    }
    // Too few columns for a first bound (N < 4 (k + 1)): every point enters and the list is cut back at 2k.
    const matrix<float> few = test::random_matrix(120, 4, 5);
    const knn_graph gf = exact_knn(few, 50);
    for (index_t i = 0; i < few.rows(); i += 11) {
        const auto all = brute_force(few, i);
        for (index_t c = 0; c < 50; ++c) CHECK(gf.indices(i, c) == all[static_cast<std::size_t>(c)].second);
    }
    // More than 512 candidates left (k = 300): ordered by a comparison sort instead of the rank sort.
    const matrix<float> many = test::random_matrix(700, 3, 6);
    const knn_graph gm = exact_knn(many, 300);
    for (index_t i : {index_t{0}, index_t{350}, index_t{699}}) {
        const auto all = brute_force(many, i);
        for (index_t c = 0; c < 300; ++c) CHECK(gm.indices(i, c) == all[static_cast<std::size_t>(c)].second);
    }
    // Integer lattice points: many distinct points at exactly the same distance, whose float keys differ by
    // rounding; ties are decided by index, not by the keys (which ordered 351 of these 400 rows differently
    // from brute force before the margin, on the portable build).
    matrix<float> lattice(400, 3);
    std::mt19937 gen(11);
    std::uniform_int_distribution<int> coord(0, 3);
    for (index_t i = 0; i < lattice.size(); ++i) lattice.data()[i] = static_cast<float>(coord(gen)) + 0.5f;
    const knn_graph gl = exact_knn(lattice, 100);
    index_t wrong = 0;
    for (index_t i = 0; i < lattice.rows(); ++i) {
        const auto all = brute_force(lattice, i);
        for (index_t c = 0; c < 100; ++c) wrong += gl.indices(i, c) != all[static_cast<std::size_t>(c)].second;
    }
    CHECK(wrong == 0);
    // Duplicates: every copy is at distance 0 and they come in index order.
    matrix<float> dup = matrix<float>::Zero(5, 3);
    const knn_graph gd = exact_knn(dup, 4);
    CHECK(gd.indices(2, 0) == 0);
    CHECK(gd.indices(2, 1) == 1);
    CHECK(gd.indices(2, 2) == 3);
    CHECK(gd.sq_distances.maxCoeff() == 0.0f);
}

TEST_CASE("manifold: rank_sort orders distinct keys as std::sort does")
{
    std::mt19937_64 rng(7);
    for (index_t n : {0, 1, 2, 7, 8, 9, 31, 33, 117, 180, 511, 512}) {
        std::vector<std::uint64_t> keys(static_cast<std::size_t>(n) + 64), out(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i) // distinct: a random high half, the index as the low half
            keys[static_cast<std::size_t>(i)] = (rng() & 0xffffffff00000000ull) | static_cast<std::uint64_t>(i);
        std::vector<std::uint64_t> want(keys.begin(), keys.begin() + n);
        std::sort(want.begin(), want.end());
        detail::rank_sort(keys.data(), n, out.data());
        CHECK(out == want);
    }
}

TEST_CASE("manifold: affinities match scikit-learn's _joint_probabilities_nn")
{
    const matrix<float> x = load("x.npy"), p_ref = load("p.npy");
    const sparse_affinities p = tsne_affinities(x, 10.0);
    const matrix<double> dense = p.to_dense();
    double total = 0.0, worst = 0.0;
    for (index_t i = 0; i < dense.rows(); ++i)
        for (index_t j = 0; j < dense.cols(); ++j) {
            total += dense(i, j);
            CHECK(dense(i, j) == dense(j, i));
            worst = std::max(worst, std::abs(dense(i, j) - p_ref(i, j)) / std::max<double>(p_ref.maxCoeff(), 1e-30));
        }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(worst < 1e-4);
}

TEST_CASE("manifold: exact gradient and KL match scikit-learn")
{
    const matrix<float> p_ref = load("p.npy");
    const matrix<double> y = load("y.npy").cast<double>(), grad_ref = load("grad.npy").cast<double>();
    const double kl_ref = load("kl.npy")(0, 0);
    // The reference P as CSR, to test the gradient alone.
    sparse_affinities p;
    p.n = p_ref.rows();
    p.indptr.assign(1, 0);
    for (index_t i = 0; i < p.n; ++i) {
        for (index_t j = 0; j < p.n; ++j)
            if (p_ref(i, j) > 0) {
                p.indices.push_back(j);
                p.values.push_back(p_ref(i, j));
            }
        p.indptr.push_back(p.nnz());
    }
    matrix<double> grad(p.n, 2);
    const tsne_gradient_stats st = tsne_gradient_exact<backend::scalar>(p, y, grad);
    CHECK(test::max_rel_error(grad, grad_ref, 1e-3 * grad_ref.cwiseAbs().maxCoeff()) < 1e-5);
    CHECK(st.kl == doctest::Approx(kl_ref).epsilon(1e-5));
    CHECK(kl_divergence(p, y) == doctest::Approx(kl_ref).epsilon(1e-5));
}

TEST_CASE("manifold: Barnes-Hut gradient agrees with the exact one (1-, 2-, 3-D)")
{
    const matrix<float> x = clusters(200, 8, 5);
    const sparse_affinities p = tsne_affinities(x, 15.0);
    for (int dims = 1; dims <= 3; ++dims) {
        CAPTURE(dims);
        // A realistic layout (a short exact t-SNE run), where BH's approximation is meant to be judged.
        tsne_options opt;
        opt.dims = dims;
        opt.perplexity = 15;
        opt.method = tsne_method::exact;
        opt.early_exaggeration_iter = 100;
        opt.n_iter = 100;
        const matrix<double> y = tsne<backend::scalar>(x, opt).embedding.cast<double>();
        matrix<double> ge(200, dims), gb(200, dims), g0(200, dims);
        // theta = 0 opens every cell: the exact gradient up to summation order.
        const auto se = tsne_gradient_exact<backend::scalar>(p, y, ge);
        const auto s0 = tsne_gradient_bh(p, y, g0, 0.0);
        CHECK((g0 - ge).norm() / ge.norm() < 1e-10);
        CHECK(s0.kl == doctest::Approx(se.kl).epsilon(1e-12));
        // theta = 0.5 with early exaggeration (attraction and repulsion far from balance): within 1e-2.
        tsne_gradient_exact<backend::scalar>(p, y, ge, 12.0);
        tsne_gradient_bh(p, y, gb, 0.5, 12.0);
        CHECK((gb - ge).norm() / ge.norm() < 1e-2);
        // Without exaggeration this layout is near equilibrium: the gradient is a small difference of large
        // forces, so judge what BH approximates, the repulsive force field (P = 0 leaves only that).
        sparse_affinities none;
        none.n = p.n;
        none.indptr.assign(static_cast<std::size_t>(p.n) + 1, 0);
        tsne_gradient_exact<backend::scalar>(none, y, ge);
        const auto sb = tsne_gradient_bh(none, y, gb, 0.5);
        CHECK((gb - ge).norm() / ge.norm() < 2e-2);
        CHECK(sb.z == doctest::Approx(se.z).epsilon(1e-2));
        tsne_gradient_bh(none, y, gb, 0.2);
        CHECK((gb - ge).norm() / ge.norm() < 2e-3);
        CHECK(tsne_gradient_bh(p, y, gb, 0.5).kl == doctest::Approx(se.kl).epsilon(1e-2));
        // Heavy tails (dof < 1) go through the same two paths.
        const auto he = tsne_gradient_exact<backend::scalar>(none, y, ge, 1.0, 0.6);
        tsne_gradient_bh(none, y, gb, 0.5, 1.0, 0.6);
        CHECK((gb - ge).norm() / ge.norm() < 3e-2);
        CHECK(std::isfinite(he.kl));
    }
}

TEST_CASE("manifold: trustworthiness matches scikit-learn")
{
    const matrix<float> x = load("x.npy"), y = load("y_pca.npy");
    const matrix<float> ref = load("trust.npy"); // stored as float64, read as float
    CHECK(trustworthiness(x, y, 5) == doctest::Approx(ref(0, 0)).epsilon(1e-6));
    CHECK(trustworthiness(x, y, 10) == doctest::Approx(ref(0, 1)).epsilon(1e-6));
    CHECK(trustworthiness(x, y, 20) == doctest::Approx(ref(0, 2)).epsilon(1e-6));
    CHECK(trustworthiness(x, x, 10) == doctest::Approx(1.0));
    CHECK(error_message([&] { trustworthiness(x, y, 75); }).find("N / 2") != std::string::npos);
}

TEST_CASE("manifold: kNN accuracy and PCA")
{
    matrix<float> y(6, 2);
    y << 0, 0, 0.1f, 0, 0, 0.1f, 5, 5, 5.1f, 5, 5, 5.1f;
    const std::vector<std::int64_t> labels{1, 1, 1, 2, 2, 7};
    CHECK(knn_accuracy(y, labels, 2) == doctest::Approx(5.0 / 6.0));

    // PCA: data stretched along (1, 1, 0) projects onto it, with a positive sign.
    matrix<float> x = test::random_matrix(100, 3, 4, 0.1f);
    const matrix<float> t = test::random_matrix(100, 1, 5, 10.0f);
    x.col(0) += t.col(0);
    x.col(1) += t.col(0);
    const matrix<double> proj = pca_project(x, 1);
    const double c = (proj.col(0).array() - proj.mean()).matrix().dot(t.col(0).cast<double>());
    CHECK(c > 0);
    CHECK(std::abs(c) / (proj.col(0).norm() * t.col(0).cast<double>().norm()) > 0.999);
}

TEST_CASE("manifold: t-SNE separates clusters and is bit-identical across thread counts")
{
    const matrix<float> x = clusters(200, 10, 11);
    tsne_options opt;
    opt.perplexity = 20;
    opt.early_exaggeration_iter = 100;
    opt.n_iter = 100;
    std::vector<tsne_progress> seen;
    opt.callback_every = 50;
    opt.callback = [&](const tsne_progress& pr) {
        seen.push_back(pr);
        return true;
    };
    const int threads_before = max_threads();
    for (tsne_method m : {tsne_method::exact, tsne_method::barnes_hut}) {
        CAPTURE(static_cast<int>(m));
        opt.method = m;
        seen.clear();
        set_num_threads(1);
        const tsne_result r1 = tsne(x, opt);
        set_num_threads(2);
        const tsne_result r2 = tsne(x, opt);
        CHECK(r1.iterations == 200);
        CHECK(r1.embedding == r2.embedding);
        CHECK(r1.kl == r2.kl);
        REQUIRE(seen.size() == 8);
        CHECK(seen[3].iteration == 200);
        CHECK(seen[7].kl == r2.kl);
        std::vector<std::int64_t> labels(200);
        for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 4);
        CHECK(knn_accuracy(r1.embedding, labels, 10) > 0.99);
        CHECK(trustworthiness(x, r1.embedding, 10) > 0.9);
        CHECK(r1.kl < 2.0);
    }
    set_num_threads(threads_before);
    // 3-D output, random init, heavy tails; the callback can stop the run.
    opt.method = tsne_method::automatic;
    opt.dims = 3;
    opt.init = tsne_init::random;
    opt.dof = 0.8;
    opt.callback = [](const tsne_progress& pr) { return pr.iteration < 100; };
    const tsne_result r3 = tsne(x, opt);
    CHECK(r3.iterations == 100);
    CHECK(r3.embedding.cols() == 3);
    CHECK(r3.embedding.allFinite());
    CHECK(std::isfinite(r3.kl));
}

TEST_CASE("manifold: duplicates and constant columns give finite output")
{
    matrix<float> x = clusters(60, 5, 21);
    x.col(2).setConstant(3.0f);
    for (index_t i = 0; i < 20; ++i) x.row(i) = x.row(0); // 20 copies of one point
    tsne_options opt;
    opt.perplexity = 5;
    opt.early_exaggeration_iter = 50;
    opt.n_iter = 50;
    for (tsne_method m : {tsne_method::exact, tsne_method::barnes_hut}) {
        opt.method = m;
        const tsne_result r = tsne(x, opt);
        CHECK(r.embedding.allFinite());
        CHECK(std::isfinite(r.kl));
    }
    const matrix<float> same = matrix<float>::Constant(30, 4, 1.5f); // no direction for PCA at all
    opt.method = tsne_method::barnes_hut;
    const tsne_result r = tsne(same, opt);
    CHECK(r.embedding.allFinite());
}

TEST_CASE("manifold: precomputed neighbours and affinities")
{
    const matrix<float> x = clusters(120, 6, 31);
    // Neighbours from elsewhere (here: our own kNN) give the same P as the all-in-one call.
    const knn_graph g = exact_knn(x, 30);
    const sparse_affinities p = perplexity_affinities(g, 10.0);
    CHECK(p.to_dense() == tsne_affinities(x, 10.0).to_dense());
    knn_graph bad = g;
    bad.indices(3, 2) = 3;
    CHECK(error_message([&] { perplexity_affinities(bad, 10.0); }).find("other than the row itself") !=
          std::string::npos);
    CHECK(error_message([&] { perplexity_affinities(g, 31.0); }).find("number of neighbours = 30") !=
          std::string::npos);
    // The symmetrisation's wide entry numbers (used once N k needs more than 32 bits) build the same CSR.
    {
        const sparse_affinities narrow = detail::calibrate_and_symmetrise(g, 10.0, true);
        const sparse_affinities wide = detail::calibrate_and_symmetrise(g, 10.0, false);
        CHECK(narrow.indptr == wide.indptr);
        CHECK(narrow.indices == wide.indices);
        CHECK(narrow.values == wide.values);
        CHECK(narrow.indptr == p.indptr);
        CHECK(narrow.indices == p.indices);
        CHECK(narrow.values == p.values);
    }
    // A graph that lists a neighbour twice: the CSR holds that column once, with every contribution summed.
    knn_graph twice = g;
    twice.indices(7, 1) = twice.indices(7, 0);
    twice.sq_distances(7, 1) = twice.sq_distances(7, 0);
    const sparse_affinities pt = perplexity_affinities(twice, 10.0);
    const matrix<double> dt = pt.to_dense();
    CHECK(dt.sum() == doctest::Approx(1.0).epsilon(1e-12));
    CHECK((dt - dt.transpose()).cwiseAbs().maxCoeff() < 1e-15);
    for (index_t i = 0; i < pt.n; ++i)
        for (auto e = pt.indptr[static_cast<std::size_t>(i)] + 1; e < pt.indptr[static_cast<std::size_t>(i) + 1]; ++e)
            CHECK(pt.indices[static_cast<std::size_t>(e)] > pt.indices[static_cast<std::size_t>(e) - 1]);

    tsne_options opt;
    opt.early_exaggeration_iter = 50;
    opt.n_iter = 50;
    opt.seed = 3;
    const tsne_result a = tsne(p, opt), b = tsne(p, opt);
    CHECK(a.embedding == b.embedding);
    CHECK(a.embedding.allFinite());
    opt.seed = 4;
    CHECK(tsne(p, opt).embedding != a.embedding);
    sparse_affinities broken = p;
    broken.indices[5] = 500;
    CHECK(error_message([&] { tsne(broken, opt); }).find("column indices in [0, N)") != std::string::npos);
}

TEST_CASE("manifold: bad input throws value_error naming the limit")
{
    const matrix<float> x = test::random_matrix(40, 3, 2);
    tsne_options opt;
    opt.perplexity = 50;
    const std::string too_big = error_message([&] { tsne(x, opt); });
    CHECK(too_big.find("perplexity <= number of neighbours = 39") != std::string::npos);
    CHECK(too_big.find("perplexity = 50") != std::string::npos);

    opt.perplexity = 5;
    CHECK(error_message([&] { tsne(x.topRows(1), opt); }).find("at least 2 points") != std::string::npos);
    matrix<float> bad = x;
    bad(7, 1) = std::nanf("");
    CHECK(error_message([&] { tsne(bad, opt); }).find("row 7, column 1") != std::string::npos);
    bad(7, 1) = INFINITY;
    CHECK(error_message([&] { tsne(bad, opt); }).find("finite input") != std::string::npos);
    opt.dims = 4;
    CHECK(error_message([&] { tsne(x, opt); }).find("dims in [1, 3]") != std::string::npos);
    CHECK(error_message([&] { exact_knn(x, 40); }).find("N - 1 = 39") != std::string::npos);
    // Finite but so large that the float selection keys would overflow: an error, not a wrong graph.
    const matrix<float> huge = x * 1e20f;
    CHECK(error_message([&] { exact_knn(huge, 5); }).find("at most 8.5e37") != std::string::npos);
    CHECK(exact_knn(matrix<float>(x * 1e18f), 5).indices == exact_knn(x, 5).indices);
    CHECK_THROWS_AS(tsne_affinities(x, 0.0), value_error);
}

TEST_CASE("manifold: SVG scatter has one circle per point and a legend")
{
    matrix<float> y(3, 2);
    y << 0, 0, 1, 1, 2, 0;
    const std::vector<std::int64_t> labels{3, 4, 3};
    const std::string svg = svg_scatter(y, labels);
    std::size_t circles = 0;
    for (auto at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1)) ++circles;
    CHECK(circles == 5); // 3 points + 2 legend entries
    CHECK(svg.find(">4</text>") != std::string::npos);
    CHECK_THROWS_AS(svg_scatter(y.leftCols(1)), shape_error);
}
