// dskit::sparse_attention: top-k and block-sparse selection against dense attention and against a
// brute-force reference, backends against each other, masks, quality on concentrated attention, errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <dskit/attention/sparse.hpp>

#include "../test_util.hpp"
#include "concentrated_input.hpp"

using namespace dskit;
namespace am = dskit::attention_mods;

namespace {

using simd_b = backend::simd<>;

double normwise(const matrix<float>& a, const matrix<float>& b)
{
    REQUIRE(a.allFinite());
    return static_cast<double>((a - b).cwiseAbs().maxCoeff()) /
           std::max(1e-30, static_cast<double>(b.cwiseAbs().maxCoeff()));
}

// Top-k attention by the definition, in double: scores, the k largest (ties: smaller index), softmax, sum.
matrix<float> topk_reference(const matrix<float>& q, const matrix<float>& k, const matrix<float>& v, index_t heads,
                             index_t kv_heads, index_t top, bool causal)
{
    const index_t n = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
    matrix<float> out = matrix<float>::Zero(n, q.cols());
    for (index_t h = 0; h < heads; ++h)
        for (index_t i = 0; i < n; ++i) {
            const index_t g = h / group, visible = causal ? std::min(len, i + 1) : len;
            std::vector<double> s(static_cast<std::size_t>(visible));
            for (index_t j = 0; j < visible; ++j)
                s[static_cast<std::size_t>(j)] =
                    q.row(i).segment(h * d, d).cast<double>().dot(k.row(j).segment(g * d, d).cast<double>()) /
                    std::sqrt(static_cast<double>(d));
            std::vector<index_t> idx(static_cast<std::size_t>(visible));
            std::iota(idx.begin(), idx.end(), index_t(0));
            std::stable_sort(idx.begin(), idx.end(), [&](index_t a, index_t b) {
                return s[static_cast<std::size_t>(a)] > s[static_cast<std::size_t>(b)];
            });
            idx.resize(static_cast<std::size_t>(std::min(top, visible)));
            double m = -INFINITY, sum = 0;
            for (index_t j : idx) m = std::max(m, s[static_cast<std::size_t>(j)]);
            Eigen::VectorXd acc = Eigen::VectorXd::Zero(d);
            for (index_t j : idx) {
                const double w = std::exp(s[static_cast<std::size_t>(j)] - m);
                sum += w;
                acc += w * v.row(j).segment(g * d, d).cast<double>().transpose();
            }
            if (sum > 0) out.row(i).segment(h * d, d) = (acc / sum).cast<float>().transpose();
        }
    return out;
}

} // namespace

TEST_CASE_TEMPLATE("sparse_attention: keeping every key equals dense attention", B, backend::scalar, simd_b)
{
    const matrix<float> q = test::random_matrix(70, 4 * 16, 1), k = test::random_matrix(300, 2 * 16, 2),
                        v = test::random_matrix(300, 2 * 16, 3);
    const matrix<float> dense = attention<backend::scalar>(q, k, v, 4, 2);
    CHECK(normwise(sparse_attention<B>(q, k, v, 4, 2, topk_keys{300}), dense) < 1e-5);
    CHECK(normwise(sparse_attention<B>(q, k, v, 4, 2, topk_keys{1000}), dense) < 1e-5);
    CHECK(normwise(sparse_attention<B>(q, k, v, 4, 2, block_sparse{.block = 64, .keep = 1.0}), dense) < 1e-5);
    const am::causal c{};
    const matrix<float> dense_c = attention<backend::scalar>(q, k, v, 4, 2, c);
    CHECK(normwise(sparse_attention<B>(q, k, v, 4, 2, topk_keys{300}, c), dense_c) < 1e-5);
    CHECK(normwise(sparse_attention<B>(q, k, v, 4, 2, block_sparse{.block = 32, .keep = 1.0}, c), dense_c) < 1e-5);
}

TEST_CASE_TEMPLATE("sparse_attention: top-k matches the definition computed in double", B, backend::scalar, simd_b)
{
    const matrix<float> q = test::random_matrix(40, 3 * 40, 4), k = test::random_matrix(200, 3 * 40, 5),
                        v = test::random_matrix(200, 3 * 40, 6);
    CHECK(normwise(sparse_attention<B>(q, k, v, 3, 3, topk_keys{16}), topk_reference(q, k, v, 3, 3, 16, false)) < 1e-5);
    CHECK(normwise(sparse_attention<B>(q, k, v, 3, 3, topk_keys{5}, am::causal{}),
                   topk_reference(q, k, v, 3, 3, 5, true)) < 1e-5);
}

TEST_CASE("sparse_attention: simd and scalar select the same blocks and agree")
{
    const matrix<float> q = test::random_matrix(150, 4 * 32, 7), k = test::random_matrix(1000, 4 * 32, 8),
                        v = test::random_matrix(1000, 4 * 32, 9);
    const block_sparse sel{.block = 64, .keep = 0.3};
    CHECK(normwise(sparse_attention<simd_b>(q, k, v, 4, 4, sel),
                   sparse_attention<backend::scalar>(q, k, v, 4, 4, sel)) < 1e-5);
    const am::combine mod{am::causal{850}, am::alibi::standard(4, 850)};
    CHECK(normwise(sparse_attention<simd_b>(q, k, v, 4, 4, sel, mod),
                   sparse_attention<backend::scalar>(q, k, v, 4, 4, sel, mod)) < 1e-5);
}

TEST_CASE("sparse_attention: on concentrated attention, a quarter of the key blocks keeps >= 0.98 cosine similarity")
{
    const index_t n = 1024, d = 32, heads = 2;
    // 8 segments, 4 topics: each query block's weight sits on 2 of the 8 key blocks.
    const test::concentrated_input in = test::make_concentrated_input(n, d, heads, 3, 128, 4);
    const matrix<float> dense = attention<simd_b>(in.q, in.k, in.v, heads, heads);
    const test::cosine_report block = test::cosine_similarity(
        sparse_attention<simd_b>(in.q, in.k, in.v, heads, heads, block_sparse{.keep = 0.25}), dense, heads);
    const test::cosine_report topk =
        test::cosine_similarity(sparse_attention<simd_b>(in.q, in.k, in.v, heads, heads, topk_keys{256}), dense, heads);
    MESSAGE("block_sparse keep 0.25: mean cosine " << block.mean << ", min " << block.min);
    MESSAGE("topk 256: mean cosine " << topk.mean << ", min " << topk.min);
    CHECK(block.mean >= 0.98);
    CHECK(topk.mean >= 0.98);
    // Random (unconcentrated) input: the same selection loses much more, so the test above can fail.
    const matrix<float> q = test::random_matrix(n, heads * d, 4), k = test::random_matrix(n, heads * d, 5),
                        v = test::random_matrix(n, heads * d, 6);
    const test::cosine_report rnd =
        test::cosine_similarity(sparse_attention<simd_b>(q, k, v, heads, heads, block_sparse{.keep = 0.25}),
                                attention<simd_b>(q, k, v, heads, heads), heads);
    MESSAGE("block_sparse keep 0.25 on random input: mean cosine " << rnd.mean);
    CHECK(rnd.mean < 0.95);
}

TEST_CASE("sparse_attention: masked rows give zeros; bad options throw value_error")
{
    const matrix<float> q = test::random_matrix(4, 16, 1), k = test::random_matrix(100, 16, 2),
                        v = test::random_matrix(100, 16, 3);
    const std::vector<std::uint8_t> none(100, 0);
    CHECK(sparse_attention<simd_b>(q, k, v, 1, 1, topk_keys{8}, am::key_mask{none}).isZero(0.0f));
    CHECK(sparse_attention<simd_b>(q, k, v, 1, 1, block_sparse{}, am::key_mask{none}).isZero(0.0f));
    CHECK(sparse_attention<simd_b>(q, k, v, 1, 1, topk_keys{8}, am::causal{-1}).row(0).isZero(0.0f));
    // A NaN query gives NaN, not a silent zero row (as the dense kernel).
    matrix<float> qn = q;
    qn(2, 7) = std::numeric_limits<float>::quiet_NaN();
    for (const matrix<float>& o : {sparse_attention<simd_b>(qn, k, v, 1, 1, topk_keys{8}),
                                   sparse_attention<simd_b>(qn, k, v, 1, 1, block_sparse{}),
                                   sparse_attention<backend::scalar>(qn, k, v, 1, 1, topk_keys{8})}) {
        CHECK(o.row(2).array().isNaN().all());
        CHECK(o.row(1).allFinite());
    }
    CHECK_THROWS_AS(sparse_attention<simd_b>(q, k, v, 1, 1, topk_keys{0}), value_error);
    CHECK_THROWS_AS(sparse_attention<simd_b>(q, k, v, 1, 1, block_sparse{.keep = 0.0}), value_error);
    CHECK_THROWS_AS(sparse_attention<simd_b>(q, k, v, 1, 1, block_sparse{.block = 0}), value_error);
    CHECK_THROWS_AS(sparse_attention<simd_b>(q, k, v, 3, 3, topk_keys{4}), shape_error);
}
