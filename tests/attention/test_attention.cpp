// dskit::attention: both backends against PyTorch (tests/reference/make_attention_fixtures.py),
// simd against scalar for every modifier and combination, masked rows, GQA/MQA, views, threads, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <dskit/attention/flash.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>

#include "../test_util.hpp"
#include "window_modifier.hpp"

using namespace dskit;
namespace am = dskit::attention_mods;

namespace {

using simd_b = backend::simd<>;

// Normwise relative error: max |a - b| / max |b|.
double normwise(const matrix<float>& a, const matrix<float>& b)
{
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    if (!a.allFinite()) return INFINITY;
    return static_cast<double>((a - b).cwiseAbs().maxCoeff()) / std::max(1e-30, double(b.cwiseAbs().maxCoeff()));
}

const safetensors_file& fixture()
{
    static const safetensors_file f = safetensors_file::open(test::fixture("attention/attention.safetensors"));
    return f;
}

matrix<float> tensor(const std::string& name)
{
    return to_matrix(fixture().at(name), name);
}

std::vector<float> values(const std::string& name)
{
    const matrix<float> m = tensor(name);
    return {m.data(), m.data() + m.size()};
}

// Runs attention with the modifier a fixture case describes (by its name).
template <class B>
matrix<float> run_case(const std::string& c, const matrix<float>& q, const matrix<float>& k, const matrix<float>& v,
                       index_t h, index_t hkv, std::vector<std::uint8_t>& mask_storage)
{
    const auto starts = [&](std::string_view p) { return c.rfind(p, 0) == 0; };
    if (starts("plain")) return attention<B>(q, k, v, h, hkv);
    if (starts("causal")) return attention<B>(q, k, v, h, hkv, am::causal{});
    if (c == "key_length")
        return attention<B>(q, k, v, h, hkv, am::key_length{static_cast<index_t>(values(c + "/length")[0])});
    if (c == "key_mask") {
        for (float x : values(c + "/mask")) mask_storage.push_back(x != 0.0f ? 1 : 0);
        return attention<B>(q, k, v, h, hkv, am::key_mask{mask_storage});
    }
    if (starts("decay_abs")) return attention<B>(q, k, v, h, hkv, am::decay_absolute{values(c + "/gamma")[0]});
    if (starts("decay_rel_causal"))
        return attention<B>(q, k, v, h, hkv, am::combine{am::causal{}, am::decay_relative{values(c + "/gamma")}});
    if (c == "decay_rel") return attention<B>(q, k, v, h, hkv, am::decay_relative{values(c + "/gamma")});
    if (c == "alibi") return attention<B>(q, k, v, h, hkv, am::alibi::standard(h));
    if (c == "alibi_causal_gqa") {
        const am::alibi a(values(c + "/slopes"));
        CHECK(a.slopes == am::alibi::standard(h).slopes);
        return attention<B>(q, k, v, h, hkv, am::combine{am::causal{}, a});
    }
    FAIL("unknown fixture case " << c);
    return {};
}

using test::window;
static_assert(score_modifier<window>);

// Every modifier and a few combinations, for one head count (per-head parameters sized to it).
template <class Fn>
void each_modifier(index_t heads, index_t n, index_t l, const std::vector<std::uint8_t>& mask, Fn fn)
{
    std::vector<float> gammas, slopes;
    for (index_t h = 0; h < heads; ++h)
        gammas.push_back(0.9f + 0.09f * static_cast<float>(h) / static_cast<float>(heads));
    fn("none", am::none{});
    fn("causal", am::causal{});
    fn("causal offset L-N", am::causal{l - n});
    fn("key_length", am::key_length{l / 2 + 3});
    fn("key_mask", am::key_mask{mask});
    fn("decay_absolute", am::decay_absolute{0.97f});
    fn("decay_relative", am::decay_relative{gammas});
    fn("alibi", am::alibi::standard(heads));
    fn("causal + decay_relative", am::combine{am::causal{}, am::decay_relative{0.95f}});
    fn("decay_absolute + causal + key_length",
       am::combine{am::decay_absolute{0.99f}, am::causal{}, am::key_length{l - 7}});
    fn("window (user-defined)", window{37});
    fn("window + decay_relative", am::combine{window{100}, am::decay_relative{0.9f}});
    fn("alibi + key_mask", am::combine{am::alibi::standard(heads), am::key_mask{mask}});
}

std::vector<std::uint8_t> random_mask(index_t l, unsigned seed)
{
    std::mt19937 gen(seed);
    std::vector<std::uint8_t> m(static_cast<std::size_t>(l));
    for (auto& x : m) x = gen() % 3 != 0 ? 1 : 0;
    return m;
}

} // namespace

TEST_CASE_TEMPLATE("attention: both backends reproduce PyTorch on every fixture case", B, backend::scalar, simd_b)
{
    std::vector<std::string> cases;
    for (const auto& name : fixture().names())
        if (name.size() > 4 && name.compare(name.size() - 4, 4, "/out") == 0)
            cases.push_back(name.substr(0, name.size() - 4));
    REQUIRE(cases.size() >= 17);
    for (const auto& c : cases) {
        CAPTURE(c);
        const matrix<float> heads = tensor(c + "/heads");
        const auto h = static_cast<index_t>(heads(0, 0)), hkv = static_cast<index_t>(heads(0, 1));
        std::vector<std::uint8_t> mask;
        const matrix<float> out = run_case<B>(c, tensor(c + "/q"), tensor(c + "/k"), tensor(c + "/v"), h, hkv, mask);
        CHECK(normwise(out, tensor(c + "/out")) < 1e-5);
    }
}

TEST_CASE("attention: simd agrees with scalar for every modifier and combination")
{
    // 150 queries x 200 keys: several query and key blocks with ragged tails; GQA with 4 / 2 heads.
    const index_t n = 150, l = 200, h = 4, hkv = 2, d = 24;
    const matrix<float> q = test::random_matrix(n, h * d, 11), k = test::random_matrix(l, hkv * d, 12),
                        v = test::random_matrix(l, hkv * d, 13);
    const auto mask = random_mask(l, 5);
    each_modifier(h, n, l, mask, [&](const char* name, const auto& mod) {
        CAPTURE(name);
        const matrix<float> ref = attention<backend::scalar>(q, k, v, h, hkv, mod);
        const matrix<float> got = attention<simd_b>(q, k, v, h, hkv, mod);
        CHECK(normwise(got, ref) < 2e-6);
        // The element-wise form (score) and the block form (apply) of the modifier agree.
        CHECK(ref.allFinite());
    });
}

TEST_CASE_TEMPLATE("attention: fully masked rows give zeros, the others are unaffected", B, backend::scalar, simd_b)
{
    const index_t n = 70, l = 90, h = 2, d = 8;
    const matrix<float> q = test::random_matrix(n, h * d, 21), k = test::random_matrix(l, h * d, 22),
                        v = test::random_matrix(l, h * d, 23);
    // Queries 0..4 see no key (causal with offset -5).
    const matrix<float> o = attention<B>(q, k, v, h, h, am::causal{-5});
    CHECK(o.allFinite());
    CHECK(o.topRows(5).cwiseAbs().maxCoeff() == 0.0f);
    CHECK(o.bottomRows(n - 5).cwiseAbs().maxCoeff() > 0.0f);
    const matrix<float> shifted = attention<B>(q.bottomRows(n - 5), k, v, h, h, am::causal{0});
    CHECK(normwise(o.bottomRows(n - 5), shifted) < 1e-6);

    // No key at all: key_length 0, an all-zero mask, and a mask combined with causal.
    CHECK(attention<B>(q, k, v, h, h, am::key_length{0}).cwiseAbs().maxCoeff() == 0.0f);
    const std::vector<std::uint8_t> none_kept(static_cast<std::size_t>(l), 0);
    CHECK(attention<B>(q, k, v, h, h, am::key_mask{none_kept}).cwiseAbs().maxCoeff() == 0.0f);
    std::vector<std::uint8_t> late(static_cast<std::size_t>(l), 1);
    for (index_t j = 0; j < 10; ++j) late[static_cast<std::size_t>(j)] = 0;
    const matrix<float> o2 = attention<B>(q, k, v, h, h, am::combine{am::causal{}, am::key_mask{late}});
    CHECK(o2.allFinite());
    CHECK(o2.topRows(10).cwiseAbs().maxCoeff() == 0.0f);
    CHECK(o2.row(10).cwiseAbs().maxCoeff() > 0.0f);
}

TEST_CASE_TEMPLATE("attention: grouped-query and multi-query equal multi-head with repeated K/V heads", B,
                   backend::scalar, simd_b)
{
    const index_t n = 33, l = 47, h = 6, d = 8;
    const matrix<float> q = test::random_matrix(n, h * d, 31);
    for (const index_t hkv : {index_t{1}, index_t{2}, index_t{3}}) {
        CAPTURE(hkv);
        const matrix<float> k = test::random_matrix(l, hkv * d, 32), v = test::random_matrix(l, hkv * d, 33);
        matrix<float> k_full(l, h * d), v_full(l, h * d);
        for (index_t hh = 0; hh < h; ++hh) {
            k_full.middleCols(hh * d, d) = k.middleCols((hh / (h / hkv)) * d, d);
            v_full.middleCols(hh * d, d) = v.middleCols((hh / (h / hkv)) * d, d);
        }
        const am::combine mod{am::causal{l - n}, am::alibi::standard(h)};
        CHECK(normwise(attention<B>(q, k, v, h, hkv, mod), attention<B>(q, k_full, v_full, h, h, mod)) < 1e-6);
    }
}

TEST_CASE_TEMPLATE("attention: strided views in and out, and an explicit scale", B, backend::scalar, simd_b)
{
    const index_t n = 40, l = 70, h = 2, d = 16;
    // q, k, v as column blocks of one fused [tokens, 3 D] projection, out a block of a wider buffer.
    const matrix<float> qkv = test::random_matrix(l, 3 * h * d, 41);
    const auto q = qkv.topRows(n).leftCols(h * d);
    const auto k = qkv.middleCols(h * d, h * d);
    const auto v = qkv.rightCols(h * d);
    matrix<float> buffer = matrix<float>::Constant(n + 3, h * d + 5, 7.0f);
    attention<B>(q, k, v, h, h, buffer.block(1, 2, n, h * d), am::decay_absolute{0.9f});
    const matrix<float> ref =
        attention<B>(matrix<float>(q), matrix<float>(k), matrix<float>(v), h, h, am::decay_absolute{0.9f});
    CHECK(normwise(buffer.block(1, 2, n, h * d), ref) == 0.0);
    CHECK(buffer.row(0).cwiseEqual(7.0f).all());
    CHECK(buffer.col(0).cwiseEqual(7.0f).all());

    // scale s is the same as pre-multiplying q by s * sqrt(d) with the default scale.
    const matrix<float> a = attention<B>(q, k, v, h, h, am::none{}, 0.5f);
    const matrix<float> b = attention<B>(matrix<float>(q * (0.5f * 4.0f)), k, v, h, h);
    CHECK(normwise(a, b) < 1e-6);
}

TEST_CASE("attention: simd results do not depend on the thread count")
{
    const index_t n = 200, l = 200, h = 4, d = 32;
    const matrix<float> q = test::random_matrix(n, h * d, 51), k = test::random_matrix(l, h * d, 52),
                        v = test::random_matrix(l, h * d, 53);
    const am::combine mod{am::causal{}, am::decay_relative{0.97f}};
    const int before = max_threads();
    set_num_threads(1);
    const matrix<float> one = attention<simd_b>(q, k, v, h, h, mod);
    set_num_threads(2);
    const matrix<float> two = attention<simd_b>(q, k, v, h, h, mod);
    set_num_threads(before);
    CHECK(one == two);
}

TEST_CASE_TEMPLATE("attention: large-magnitude inputs give finite outputs", B, backend::scalar, simd_b)
{
    const index_t n = 65, l = 130, h = 2, d = 16;
    // Scores of order 1e4: exp would overflow without the running maximum.
    const matrix<float> q = test::random_matrix(n, h * d, 61, 30.0f), k = test::random_matrix(l, h * d, 62, 30.0f),
                        v = test::random_matrix(l, h * d, 63);
    for (const matrix<float>& o : {attention<B>(q, k, v, h, h), attention<B>(q, k, v, h, h, am::causal{}),
                                   attention<B>(q, k, v, h, h, am::decay_absolute{0.5f})}) {
        CHECK(o.allFinite());
        CHECK(o.cwiseAbs().maxCoeff() <= v.cwiseAbs().maxCoeff() * 1.0001f); // a convex combination of v's rows
    }
    CHECK(normwise(attention<simd_b>(q, k, v, h, h), attention<backend::scalar>(q, k, v, h, h)) < 1e-4);
}

TEST_CASE_TEMPLATE("attention: scores far below the row maximum, and a NaN input, are handled like the reference", B,
                   backend::scalar, simd_b)
{
    const index_t n = 70, l = 300, h = 2, d = 16;
    const matrix<float> q = test::random_matrix(n, h * d, 71), k = test::random_matrix(l, h * d, 72),
                        v = test::random_matrix(l, h * d, 73);
    // ALiBi with steep slopes: most weights are below e^-87 (zero in float, or a subnormal).
    const am::alibi steep(std::vector<float>{3.0f, 0.7f});
    CHECK(normwise(attention<B>(q, k, v, h, h, steep), attention<backend::scalar>(q, k, v, h, h, steep)) < 1e-5);
    // A NaN in one query: that query's output for its head is NaN; nothing else changes.
    matrix<float> qn = q;
    qn(5, 3) = std::numeric_limits<float>::quiet_NaN(); // head 0
    const matrix<float> o = attention<B>(qn, k, v, h, h, steep), ref = attention<B>(q, k, v, h, h, steep);
    for (index_t x = 0; x < d; ++x) CHECK(std::isnan(o(5, x)));
    CHECK(o.block(5, d, 1, d) == ref.block(5, d, 1, d));
    CHECK(o.topRows(5) == ref.topRows(5));
    CHECK(o.bottomRows(n - 6) == ref.bottomRows(n - 6));
}

TEST_CASE("attention: bad shapes throw shape_error naming attention, the expected and the actual shape")
{
    const matrix<float> q = test::random_matrix(5, 24), k = test::random_matrix(7, 24), v = test::random_matrix(7, 24);
    const auto message = [](const std::function<void()>& f) -> std::string {
        try {
            f();
        } catch (const shape_error& e) {
            return e.what();
        }
        return "no shape_error";
    };
    // d = 24 / 5 is not an integer.
    CHECK(message([&] { (void)attention(q, k, v, 5, 5); }) ==
          "attention: expected q with a positive multiple of heads = 5 columns, got [5, 24]");
    // kv_heads does not divide heads.
    CHECK(message([&] { (void)attention(q, k, v, 4, 3); }) ==
          "attention: expected kv_heads dividing heads = 4, got kv_heads = 3");
    // k has the wrong width for kv_heads * d.
    CHECK(message([&] { (void)attention(q, k, v, 4, 2); }) ==
          "attention: expected k with kv_heads * d = 12 columns (q is [5, 24]), got [7, 24]");
    // k and v lengths differ.
    const matrix<float> v6 = test::random_matrix(6, 24);
    CHECK(message([&] { (void)attention(q, k, v6, 4, 4); }) ==
          "attention: expected v of k's shape [7, 24], got [6, 24]");
    // out of the wrong shape.
    matrix<float> out(5, 23);
    CHECK(message([&] { attention(q, k, v, 4, 4, out); }) ==
          "attention: expected out of q's shape [5, 24], got [5, 23]");
    CHECK(message([&] { (void)attention(q, k, v, 0, 1); }).find("attention: expected heads >= 1") == 0);
    // Per-head parameters must match the head count.
    CHECK(message([&] {
              (void)attention(q, k, v, 4, 4, am::alibi({0.5f, 0.25f}));
          }) == "attention: expected alibi slopes with 1 or 4 values, got 2 values");
    const std::vector<std::uint8_t> short_mask(3, 1);
    CHECK(message([&] { (void)attention(q, k, v, 4, 4, am::key_mask{short_mask}); }) ==
          "attention: expected key_mask of size 7, got size 3");
    // out overlapping an input, and bad values.
    matrix<float> qq = q;
    CHECK_THROWS_AS(attention(qq, k, v, 4, 4, qq), value_error);
    CHECK_THROWS_AS(am::decay_relative(1.5f), value_error);
    CHECK_THROWS_AS((void)attention(q, k, v, 4, 4, am::decay_absolute{-1.0f}), value_error);
}
