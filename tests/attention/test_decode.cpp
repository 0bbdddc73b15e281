// dskit::attention_decode: the flash-decoding schedule against the scalar reference and the fused
// attention kernel, for multi-head, grouped-query and multi-query caches, masks and biases; thread
// independence; fully masked rows; shape errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <dskit/attention/decode.hpp>

#include "../test_util.hpp"

using namespace dskit;
namespace am = dskit::attention_mods;

namespace {

using simd_b = backend::simd<>;

struct decode_case {
    index_t t_new, len, heads, kv_heads, d;
};

// Runs decode on simd and attention on scalar with the same modifier; returns the normwise error.
template <class Mod>
double decode_vs_scalar(const decode_case& c, const Mod& mod, unsigned seed)
{
    const matrix<float> q = test::random_matrix(c.t_new, c.heads * c.d, seed);
    const matrix<float> k = test::random_matrix(c.len, c.kv_heads * c.d, seed + 1);
    const matrix<float> v = test::random_matrix(c.len, c.kv_heads * c.d, seed + 2);
    const matrix<float> fast = attention_decode<simd_b>(q, k, v, c.heads, c.kv_heads, mod);
    const matrix<float> ref = attention<backend::scalar>(q, k, v, c.heads, c.kv_heads, mod);
    REQUIRE(fast.allFinite());
    return static_cast<double>((fast - ref).cwiseAbs().maxCoeff()) /
           std::max(1e-30, static_cast<double>(ref.cwiseAbs().maxCoeff()));
}

} // namespace

TEST_CASE("attention_decode: simd matches the scalar reference for MHA, GQA, MQA and every modifier")
{
    const std::vector<decode_case> cases = {
        {1, 1, 8, 8, 64},   {1, 17, 3, 3, 40},  {2, 300, 8, 2, 64},  {4, 1000, 8, 1, 128},
        {1, 257, 4, 4, 16}, {3, 513, 6, 3, 24}, {1, 2048, 8, 8, 64},
    };
    unsigned seed = 10;
    for (const auto& c : cases) {
        CAPTURE(c.t_new);
        CAPTURE(c.len);
        CAPTURE(c.heads);
        CAPTURE(c.kv_heads);
        CAPTURE(c.d);
        const index_t offset = c.len - c.t_new;
        CHECK(decode_vs_scalar(c, am::none{}, seed++) < 1e-5);
        CHECK(decode_vs_scalar(c, am::causal{offset}, seed++) < 1e-5);
        CHECK(decode_vs_scalar(c, am::key_length{c.len / 2 + 1}, seed++) < 1e-5);
        CHECK(decode_vs_scalar(c, am::combine{am::causal{offset}, am::alibi::standard(c.heads, offset)}, seed++) <
              1e-5);
        CHECK(decode_vs_scalar(c, am::combine{am::decay_absolute{0.999f}, am::causal{offset}}, seed++) < 1e-5);
    }
}

TEST_CASE("attention_decode: equals the fused kernel and does not depend on the thread count")
{
    const index_t len = 1500, heads = 8, kv_heads = 2, d = 64, t_new = 2;
    const matrix<float> q = test::random_matrix(t_new, heads * d, 3);
    const matrix<float> k = test::random_matrix(len, kv_heads * d, 4);
    const matrix<float> v = test::random_matrix(len, kv_heads * d, 5);
    const am::causal mod{len - t_new};
    const matrix<float> flash = attention<simd_b>(q, k, v, heads, kv_heads, mod);
    const int before = max_threads();
    set_num_threads(1);
    const matrix<float> one = attention_decode<simd_b>(q, k, v, heads, kv_heads, mod);
    set_num_threads(2);
    const matrix<float> two = attention_decode<simd_b>(q, k, v, heads, kv_heads, mod);
    set_num_threads(before);
    CHECK(one == two);
    CHECK(test::max_rel_error(one, flash, 1e-2) < 1e-4);
}

TEST_CASE("attention_decode: a fully masked row gives zeros, a cache of length 0 too")
{
    const index_t heads = 4, d = 16;
    const matrix<float> q = test::random_matrix(2, heads * d, 7);
    const matrix<float> k = test::random_matrix(600, heads * d, 8);
    const matrix<float> v = test::random_matrix(600, heads * d, 9);
    // Keys 0..299 visible to row 1 only: causal with offset -300 hides everything from row 0.
    std::vector<std::uint8_t> mask(600, 0);
    const matrix<float> masked = attention_decode<simd_b>(q, k, v, heads, heads, am::key_mask{mask});
    CHECK(masked.isZero(0.0f));
    const matrix<float> out = attention_decode<simd_b>(q, k, v, heads, heads, am::causal{-1});
    CHECK(out.row(0).isZero(0.0f));
    const matrix<float> ref = attention<backend::scalar>(q, k, v, heads, heads, am::causal{-1});
    CHECK(test::max_rel_error(out, ref, 1e-2) < 1e-5);
    const matrix<float> empty_k(0, heads * d), empty_v(0, heads * d);
    CHECK(attention_decode<simd_b>(q, empty_k, empty_v, heads, heads).isZero(0.0f));
}

TEST_CASE("attention_decode: a NaN in a new query gives NaN in its output, as the fused kernel does")
{
    const index_t heads = 4, kv = 2, d = 16;
    matrix<float> q = test::random_matrix(2, heads * d, 17);
    const matrix<float> k = test::random_matrix(700, kv * d, 18), v = test::random_matrix(700, kv * d, 19);
    q(1, 2 * d + 5) = std::numeric_limits<float>::quiet_NaN(); // head 2 of the second token
    const matrix<float> out = attention_decode<simd_b>(q, k, v, heads, kv);
    const matrix<float> ref = attention<backend::scalar>(q, k, v, heads, kv);
    for (index_t x = 0; x < d; ++x) CHECK(std::isnan(out(1, 2 * d + x)));
    CHECK(out.row(0) == attention_decode<simd_b>(matrix<float>(q.topRows(1)), k, v, heads, kv));
    CHECK(test::max_rel_error(out.row(0), ref.row(0), 1e-2) < 1e-5);
    CHECK(std::isnan(ref(1, 2 * d)));
}

TEST_CASE("attention_decode: bad shapes throw shape_error naming attention")
{
    const matrix<float> q = test::random_matrix(1, 64, 1), k = test::random_matrix(10, 64, 2),
                        v = test::random_matrix(11, 64, 3);
    CHECK_THROWS_AS(attention_decode<simd_b>(q, k, v, 4, 4), shape_error);
    CHECK_THROWS_AS(attention_decode<simd_b>(q, k, k, 4, 3), shape_error);
    CHECK_THROWS_WITH_AS(attention_decode<simd_b>(q, k, k, 5, 5), doctest::Contains("attention"), shape_error);
}

TEST_CASE("attention: a cache too long to pack at once is done a few K/V heads at a time, same result")
{
    // 40000 keys of d = 64: one K/V head packs to ~20 MiB, so the two K/V heads go in separate passes.
    const index_t len = 40000, heads = 4, kv_heads = 2, d = 64;
    const matrix<float> q = test::random_matrix(3, heads * d, 11);
    const matrix<float> k = test::random_matrix(len, kv_heads * d, 12);
    const matrix<float> v = test::random_matrix(len, kv_heads * d, 13);
    const am::causal mod{len - 3};
    const matrix<float> fast = attention<simd_b>(q, k, v, heads, kv_heads, mod);
    const matrix<float> ref = attention<backend::scalar>(q, k, v, heads, kv_heads, mod);
    // Normwise: the outputs average 40000 values and are small; a wrong head or pass would be off by O(1).
    const auto normwise = [&](const matrix<float>& a) {
        return static_cast<double>((a - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff());
    };
    CHECK(normwise(fast) < 1e-5);
    CHECK(normwise(attention_decode<simd_b>(q, k, v, heads, kv_heads, mod)) < 1e-5);
}
