// simd against the scalar reference, edge values, in-place and strided calls, argument errors.
#include "kernel_test_util.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <dskit/backend/simd/math.hpp>
#include <dskit/core/parallel.hpp>

using namespace dskit;

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

using simd_b = backend::simd<>;

// Relative error with a floor of 1e-30: tiny results (e.g. e^-80) must be right relative to themselves,
// except where one side underflows to a subnormal (both below ~1e-38, compared absolutely).
double rel(const matrix<float>& a, const matrix<float>& b)
{
    return test::max_rel_error(a, b, 1e-37);
}

template <class Fn>
void each_activation(Fn fn)
{
    fn("exp", [](auto in, auto out, auto b) { ops::exp<decltype(b)>(in, out); });
    fn("sigmoid", [](auto in, auto out, auto b) { ops::sigmoid<decltype(b)>(in, out); });
    fn("silu", [](auto in, auto out, auto b) { ops::silu<decltype(b)>(in, out); });
    fn("gelu", [](auto in, auto out, auto b) { ops::gelu<decltype(b)>(in, out); });
    fn("gelu_tanh", [](auto in, auto out, auto b) { ops::gelu_tanh<decltype(b)>(in, out); });
    fn("relu", [](auto in, auto out, auto b) { ops::relu<decltype(b)>(in, out); });
}

template <class B, class Op>
matrix<float> apply(Op op, const matrix<float>& x)
{
    matrix<float> y(x.rows(), x.cols());
    op(const_matrix_ref<float>(x), matrix_ref<float>(y), B{});
    return y;
}

} // namespace

TEST_CASE("kernels: simd exp, sigmoid, silu and softmax agree with scalar to 1e-6 relative")
{
    // Odd widths exercise the padded row tails; scale 8 spans e^-30..e^30.
    for (const auto& shape : {std::pair<index_t, index_t>{7, 1}, {9, 13}, {33, 257}, {64, 1000}}) {
        const index_t r = shape.first, c = shape.second;
        CAPTURE(r);
        CAPTURE(c);
        const matrix<float> x = test::random_matrix(r, c, static_cast<unsigned>(r * c), 8.0f);
        CHECK(rel(ops::exp<simd_b>(x), ops::exp<backend::scalar>(x)) < 1e-6);
        CHECK(rel(ops::sigmoid<simd_b>(x), ops::sigmoid<backend::scalar>(x)) < 1e-6);
        CHECK(rel(ops::silu<simd_b>(x), ops::silu<backend::scalar>(x)) < 1e-6);
        CHECK(rel(ops::softmax_rows<simd_b>(x), ops::softmax_rows<backend::scalar>(x)) < 1e-6);
        // GELU's relative condition number grows like x^2 for negative x (see the fixture test).
        CHECK(test::max_rel_error(ops::gelu<simd_b>(x), ops::gelu<backend::scalar>(x), 1e-30) < 5e-5);
        CHECK(test::max_rel_error(ops::gelu_tanh<simd_b>(x), ops::gelu_tanh<backend::scalar>(x), 1e-30) < 5e-5);
        CHECK(ops::relu<simd_b>(x) == ops::relu<backend::scalar>(x));
    }
}

TEST_CASE("kernels: simd exp is within 2 ulp over the whole float range, with exact underflow and overflow")
{
    std::vector<float> v;
    for (float x = -110.0f; x <= 95.0f; x += 0.0137f) v.push_back(x);
    for (float x : {-inf, inf, -103.97f, -87.34f, -87.33f, 88.72f, 88.7228f, 88.73f, 0.0f, -0.0f, 1e-30f, -1e-30f})
        v.push_back(x);
    const auto x = map_matrix(v.data(), 1, static_cast<index_t>(v.size()));
    const matrix<float> y = ops::exp<simd_b>(x), ref = ops::exp<backend::scalar>(x);
    for (index_t j = 0; j < x.cols(); ++j) {
        CAPTURE(x(0, j));
        const float a = y(0, j), b = ref(0, j);
        if (b == 0.0f || std::isinf(b)) {
            CHECK(a == b);
        } else if (std::fpclassify(b) == FP_SUBNORMAL) {
            CHECK(std::abs(a - b) <= 2 * std::numeric_limits<float>::denorm_min());
        } else {
            CHECK(std::abs(a - b) <= 2.0f * (std::nextafter(b, inf) - b));
        }
    }
    const float nan_in = qnan;
    CHECK(std::isnan(ops::exp<simd_b>(map_matrix(&nan_in, 1, 1))(0, 0)));
}

TEST_CASE_TEMPLATE("kernels: large, tiny and infinite inputs give the limits, never NaN from finite input", B,
                   backend::scalar, simd_b)
{
    const float v[] = {100.0f, -100.0f, 1e30f, -1e30f, 88.0f, -88.0f, 1e-30f, -1e-30f, 0.0f};
    const auto x = map_matrix(v, 1, 9);
    each_activation([&](const char* name, auto op) {
        CAPTURE(name);
        const matrix<float> y = apply<B>(op, x);
        CHECK(y.allFinite() == (std::string(name) != "exp"));
        CHECK(!y.hasNaN());
    });
    const matrix<float> s = ops::sigmoid<B>(x);
    CHECK(s(0, 0) == 1.0f);
    CHECK(s(0, 1) == doctest::Approx(3.7200759760208e-44).epsilon(0.05));
    CHECK(s(0, 2) == 1.0f);
    CHECK(s(0, 3) == 0.0f);
    const matrix<float> si = ops::silu<B>(x);
    CHECK(si(0, 0) == 100.0f);
    CHECK(si(0, 2) == 1e30f);
    CHECK(si(0, 3) == 0.0f);
    const matrix<float> g = ops::gelu<B>(x), gt = ops::gelu_tanh<B>(x);
    CHECK(g(0, 0) == 100.0f);
    CHECK(g(0, 1) == 0.0f);
    CHECK(gt(0, 2) == 1e30f);
    CHECK(gt(0, 3) == 0.0f);

    // Infinities and NaN follow PyTorch.
    const float w[] = {inf, -inf, qnan};
    const auto z = map_matrix(w, 1, 3);
    const matrix<float> e = ops::exp<B>(z), sg = ops::sigmoid<B>(z), r = ops::relu<B>(z);
    CHECK(e(0, 0) == inf);
    CHECK(e(0, 1) == 0.0f);
    CHECK(std::isnan(e(0, 2)));
    CHECK(sg(0, 0) == 1.0f);
    CHECK(sg(0, 1) == 0.0f);
    CHECK(std::isnan(sg(0, 2)));
    CHECK(r(0, 0) == inf);
    CHECK(r(0, 1) == 0.0f);
    CHECK(std::isnan(r(0, 2)));
}

TEST_CASE_TEMPLATE("kernels: softmax_rows handles masked rows, huge values and in-place calls", B, backend::scalar,
                   simd_b)
{
    matrix<float> x(4, 11);
    x.setConstant(-inf);         // row 0: fully masked -> zeros
    x.row(1).setConstant(1e30f); // row 1: equal huge values -> uniform
    x.row(1)(3) = -1e30f;
    x.row(2) = test::random_matrix(1, 11, 5, 100.0f); // row 2: spread of +-100s
    x.row(3).setConstant(-inf);                       // row 3: one live entry -> one-hot
    x.row(3)(7) = -5.0f;
    const matrix<float> y = ops::softmax_rows<B>(x);
    CHECK(!y.hasNaN());
    CHECK(y.row(0).isZero(0));
    CHECK(y(1, 0) == doctest::Approx(0.1));
    CHECK(y(1, 3) == 0.0f);
    CHECK(y.row(2).sum() == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(y(3, 7) == 1.0f);
    CHECK(y.row(3).sum() == 1.0f);

    matrix<float> in_place = x;
    ops::softmax_rows<B>(in_place, in_place);
    CHECK(in_place == y);

    // A row with NaN or +inf is NaN, as in PyTorch.
    matrix<float> bad = matrix<float>::Zero(2, 5);
    bad(0, 2) = qnan;
    bad(1, 4) = inf;
    const matrix<float> yb = ops::softmax_rows<B>(bad);
    CHECK(yb.row(0).hasNaN());
    CHECK(yb.row(1).hasNaN());
}

TEST_CASE_TEMPLATE("kernels: strided views and in-place calls give the same results as dense ones", B, backend::scalar,
                   simd_b)
{
    const matrix<float> big = test::random_matrix(20, 50, 11, 3.0f);
    const auto block = big.block(3, 5, 9, 37); // row stride 50, unaligned start
    const matrix<float> dense = block;
    const std::vector<float> w(37, 0.75f), b(37, -0.25f);

    each_activation([&](const char* name, auto op) {
        CAPTURE(name);
        matrix<float> out_big = matrix<float>::Constant(20, 50, 7.0f);
        op(const_matrix_ref<float>(block), matrix_ref<float>(out_big.block(2, 1, 9, 37)), B{});
        CHECK(out_big.block(2, 1, 9, 37) == apply<B>(op, dense));
        CHECK(out_big.block(0, 0, 2, 50).isConstant(7.0f)); // nothing written outside the view
        CHECK(out_big.block(11, 0, 9, 50).isConstant(7.0f));
        CHECK(out_big.col(0).isConstant(7.0f));
        CHECK(out_big.block(2, 38, 9, 12).isConstant(7.0f));
        matrix<float> inplace = big;
        op(const_matrix_ref<float>(inplace.block(3, 5, 9, 37)), matrix_ref<float>(inplace.block(3, 5, 9, 37)), B{});
        CHECK(inplace.block(3, 5, 9, 37) == apply<B>(op, dense));
    });

    matrix<float> s = big;
    ops::softmax_rows<B>(s.block(3, 5, 9, 37), s.block(3, 5, 9, 37));
    CHECK(s.block(3, 5, 9, 37) == ops::softmax_rows<B>(dense));
    CHECK(s.col(4) == big.col(4));

    const std::span<const float> ws(w), bs(b);
    matrix<float> r = big;
    ops::rms_norm<B>(r.block(3, 5, 9, 37), ws, 1e-6f, r.block(3, 5, 9, 37));
    CHECK(r.block(3, 5, 9, 37) == ops::rms_norm<B>(dense, ws, 1e-6f));
    matrix<float> l = big;
    ops::layer_norm<B>(l.block(3, 5, 9, 37), ws, bs, 1e-5f, l.block(3, 5, 9, 37));
    CHECK(l.block(3, 5, 9, 37) == ops::layer_norm<B>(dense, ws, bs, 1e-5f));

    const matrix<float> wt = test::random_matrix(13, 50, 12);
    matrix<float> mm = matrix<float>::Zero(30, 40);
    ops::matmul_nt<B>(big.block(1, 2, 6, 30), wt.block(0, 3, 13, 30), mm.block(4, 5, 6, 13));
    const matrix<float> ref = big.block(1, 2, 6, 30) * wt.block(0, 3, 13, 30).transpose();
    CHECK(test::max_rel_error(mm.block(4, 5, 6, 13), ref, std::sqrt(30.0)) < 1e-6); // sums of 30 products
    CHECK(mm.block(0, 0, 4, 40).isZero(0));
}

TEST_CASE("kernels: simd norms and gemm agree with scalar on random inputs")
{
    for (const auto& shape : {std::pair<index_t, index_t>{1, 1}, {5, 7}, {16, 128}, {9, 1031}}) {
        const index_t r = shape.first, c = shape.second;
        CAPTURE(c);
        const matrix<float> x = test::random_matrix(r, c, 3, 2.0f).array() + 1.0f;
        const matrix<float> w = test::random_matrix(1, c, 4), b = test::random_matrix(1, c, 5);
        const auto ws = test::span_of(w), bs = test::span_of(b);
        CHECK(test::max_rel_error(ops::rms_norm<simd_b>(x, ws, 1e-6f), ops::rms_norm<backend::scalar>(x, ws, 1e-6f)) <
              2e-6);
        CHECK(test::max_rel_error(ops::layer_norm<simd_b>(x, ws, bs, 1e-5f),
                                  ops::layer_norm<backend::scalar>(x, ws, bs, 1e-5f), 1.0) < 3e-6);
        const matrix<float> m = test::random_matrix(c, 2 * c, 6);
        CHECK(test::max_rel_error(ops::matmul_nt<simd_b>(x, m.leftCols(c)),
                                  ops::matmul_nt<backend::scalar>(x, m.leftCols(c)), std::sqrt(double(c)) * 2) < 1e-5);
    }
    // The fused bias GEMM: simd against scalar, and against matmul_nt plus a broadcast bias.
    for (const index_t c : {1, 7, 130}) {
        CAPTURE(c);
        const matrix<float> x = test::random_matrix(6, c, 7), w = test::random_matrix(11, c, 8);
        const matrix<float> b = test::random_matrix(1, 11, 9);
        matrix<float> ys(6, 11), yr(6, 11), yn(6, 11);
        ops::linear<simd_b>(x, w, test::span_of(b), ys);
        ops::linear<backend::scalar>(x, w, test::span_of(b), yr);
        CHECK(test::max_rel_error(ys, yr, std::sqrt(double(c))) < 1e-5);
        const matrix<float> ref = ops::matmul_nt<backend::scalar>(x, w).rowwise() + b.row(0);
        // Relative to the terms' size (1), not the result's: compiled with FMA, the fused bias may round
        // x w + b once where the reference rounds x w first (1.2e-6 of a result near 0.05 seen with -mavx2).
        CHECK(test::max_rel_error(yr, ref, 1.0) < 1e-6);
        ops::linear<simd_b>(x, w, {}, yn);
        CHECK(test::max_rel_error(yn, ops::matmul_nt<backend::scalar>(x, w), std::sqrt(double(c))) < 1e-5);
    }
    // A constant row: variance 0, the output is the bias (no NaN).
    const matrix<float> k = matrix<float>::Constant(2, 9, 3.5f);
    const std::vector<float> b(9, 0.5f);
    CHECK(ops::layer_norm<simd_b>(k, {}, b, 1e-5f).isConstant(0.5f));
    CHECK(ops::layer_norm<backend::scalar>(k, {}, b, 1e-5f).isConstant(0.5f));
    CHECK(ops::rms_norm<simd_b>(matrix<float>::Zero(2, 9), {}, 1e-6f).isZero(0));
}

TEST_CASE("kernels: results do not depend on the thread count, also for outputs that bypass the cache")
{
    // 9 MB: above the simd backend's non-temporal store threshold.
    const matrix<float> x = test::random_matrix(1100, 2048, 21, 4.0f);
    const int threads = max_threads();
    set_num_threads(1);
    const matrix<float> s1 = ops::softmax_rows<simd_b>(x), e1 = ops::exp<simd_b>(x),
                        n1 = ops::rms_norm<simd_b>(x, {}, 1e-6f);
    set_num_threads(std::max(2, threads));
    CHECK(ops::softmax_rows<simd_b>(x) == s1);
    CHECK(ops::exp<simd_b>(x) == e1);
    CHECK(ops::rms_norm<simd_b>(x, {}, 1e-6f) == n1);
    set_num_threads(threads);
    CHECK(rel(s1, ops::softmax_rows<backend::scalar>(x)) < 1e-6);
    CHECK(rel(e1, ops::exp<backend::scalar>(x)) < 1e-6);
    // The same computation below the threshold (ordinary stores) gives the same rows.
    CHECK(ops::softmax_rows<simd_b>(x.topRows(3)) == s1.topRows(3));
}

TEST_CASE("kernels: streamed softmax into an unaligned view of odd width, with masked and wide-range rows")
{
    // 1040 x 2053 floats (8.1 MiB) written into a view starting 3 floats into a wider matrix: partial
    // lines at both ends of every row. Masked rows and rows whose range exceeds exp's fast path sit
    // between ordinary ones, also as a block's first and last row.
    const index_t r = 1040, c = 2053;
    matrix<float> x = test::random_matrix(r, c, 33, 4.0f);
    for (index_t i : {0, 15, 16, 17, 500}) x.row(i).setConstant(-inf);
    x(16, 100) = 2.0f; // one live entry
    for (index_t i : {31, 32, 700}) x(i, i) = -200.0f;
    x(33, 7) = qnan;
    matrix<float> big = matrix<float>::Constant(r + 2, c + 7, 9.0f);
    ops::softmax_rows<simd_b>(x, big.block(1, 3, r, c));
    const matrix<float> y = big.block(1, 3, r, c);
    CHECK(big.row(0).isConstant(9.0f));
    CHECK(big.row(r + 1).isConstant(9.0f));
    CHECK(big.leftCols(3).isConstant(9.0f));
    CHECK(big.rightCols(4).isConstant(9.0f));
    CHECK(y.row(0).isZero(0));
    CHECK(y.row(500).isZero(0));
    CHECK(y(16, 100) == 1.0f);
    CHECK(y.row(33).hasNaN());
    // Each row as computed alone (ordinary stores): the same bits.
    for (index_t i = 0; i < r; ++i) {
        if (i == 33) continue;
        const matrix<float> alone = ops::softmax_rows<simd_b>(x.row(i));
        CHECK_MESSAGE(alone == y.row(i), "row " << i);
    }
    matrix<float> rest = x;
    rest.row(33).setZero();
    CHECK(rel(ops::softmax_rows<simd_b>(rest), ops::softmax_rows<backend::scalar>(rest)) < 1e-6);
}

TEST_CASE("kernels: exp_nonpositive is exp's fast path above -87, 0 below and for -inf, NaN for NaN")
{
    // Attention's softmax weights. The AVX-512 version scales by 2^n with scalef and masks; every ISA must give
    // the bits of exp_in_range where that is valid.
    using F = xsimd::batch<float>;
    constexpr std::size_t n = F::size;
    std::vector<float> xs;
    for (float x = 0.0f; x > -90.0f; x -= 0.0137f) xs.push_back(x);
    for (float x :
         {-0.0f, -1e-30f, -86.999f, -87.0f, -87.0001f, -87.4f, -103.9f, -1e30f, -std::numeric_limits<float>::infinity(),
          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::max()})
        xs.push_back(x);
    while (xs.size() % n != 0) xs.push_back(-1.0f);
    int mismatches = 0;
    for (std::size_t i = 0; i < xs.size(); i += n) {
        alignas(64) float got[n], fast[n];
        const F x = F::load_unaligned(xs.data() + i);
        detail::simd::exp_nonpositive(x).store_aligned(got);
        detail::simd::exp_in_range(xsimd::max(x, F(-87.0f))).store_aligned(fast);
        for (std::size_t l = 0; l < n; ++l) {
            const float xi = xs[i + l];
            const bool ok = std::isnan(xi) ? std::isnan(got[l])
                            : !(xi >= -87.0f)
                                ? got[l] == 0.0f
                                : std::bit_cast<std::uint32_t>(got[l]) == std::bit_cast<std::uint32_t>(fast[l]);
            if (!ok && ++mismatches <= 5) {
                CAPTURE(xi);
                CAPTURE(got[l]);
                CHECK(ok);
            }
        }
    }
    CHECK(mismatches == 0);
}

TEST_CASE("kernels: lane_mask sets bit l exactly where lane l of a comparison is true")
{
    using F = xsimd::batch<float>;
    constexpr std::size_t n = F::size;
    alignas(64) float v[n];
    for (std::uint32_t pattern : {0u, 1u, 0x5555u, 0xa5a5u, 0xffffu, 0x8001u, 0x1234u}) {
        for (std::size_t l = 0; l < n; ++l) v[l] = (pattern >> (l % 16)) & 1u ? -1.0f : 1.0f;
        std::uint32_t want = 0;
        for (std::size_t l = 0; l < n; ++l)
            if (v[l] < 0.0f) want |= 1u << l;
        CHECK(detail::simd::lane_mask(F::load_aligned(v) < F(0.0f)) == want);
    }
}

TEST_CASE("kernels: wrong shapes, bad eps and overlapping outputs throw errors that name the operation")
{
    const matrix<float> x = test::random_matrix(3, 4);
    matrix<float> wrong(3, 5);
    const auto message = [](auto&& f) {
        try {
            f();
        } catch (const error& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    CHECK_THROWS_AS(ops::softmax_rows(x, wrong), shape_error);
    CHECK(message([&] { ops::softmax_rows(x, wrong); }) ==
          "ops::softmax_rows: expected output of shape [3, 4], got [3, 5]");
    CHECK_THROWS_AS(ops::exp<backend::scalar>(x, wrong), shape_error);
    CHECK(message([&] { ops::silu(x, wrong); }) == "ops::silu: expected output of shape [3, 4], got [3, 5]");

    const std::vector<float> w3(3, 1.0f), w4(4, 1.0f);
    matrix<float> out(3, 4);
    CHECK_THROWS_AS(ops::rms_norm(x, w3, 1e-6f, out), shape_error);
    CHECK(message([&] { ops::rms_norm(x, w3, 1e-6f, out); }) ==
          "ops::rms_norm: expected weight of size 4 (or empty), got size 3");
    CHECK(message([&] { ops::layer_norm(x, w4, w3, 1e-6f, out); }) ==
          "ops::layer_norm: expected bias of size 4 (or empty), got size 3");
    CHECK_THROWS_AS(ops::rms_norm(x, w4, 0.0f, out), value_error);
    CHECK_THROWS_AS(ops::rms_norm(x, w4, -1.0f, out), value_error);
    CHECK_THROWS_AS(ops::layer_norm(x, {}, {}, qnan, out), value_error);
    CHECK(message([&] { ops::layer_norm(x, {}, {}, -1.0f, out); }).starts_with("ops::layer_norm: expected eps > 0"));

    const matrix<float> b = test::random_matrix(5, 6);
    CHECK_THROWS_AS(ops::matmul_nt(x, b), shape_error);
    CHECK(message([&] { ops::matmul_nt(x, b); }) ==
          "ops::matmul_nt: expected b with 4 columns (a is [3, 4]), got [5, 6]");
    matrix<float> o(3, 6);
    CHECK(message([&] { ops::matmul_nt(x, b.leftCols(4), o); }) ==
          "ops::matmul_nt: expected out of shape [3, 5], got [3, 6]");
    CHECK(message([&] { ops::matmul(x, b); }) == "ops::matmul: expected b with 4 rows (a is [3, 4]), got [5, 6]");
    const std::vector<float> bias3(3, 0.0f);
    matrix<float> o5(3, 5);
    CHECK(message([&] { ops::linear(x, b.leftCols(4), bias3, o5); }) ==
          "ops::linear: expected bias of size 5 (or none), got size 3");
    CHECK(message([&] { ops::linear(x, b, {}, o5); }) ==
          "ops::linear: expected w with 4 columns (x is [3, 4]), got [5, 6]");

    matrix<float> sq = test::random_matrix(4, 4);
    CHECK_THROWS_AS(ops::matmul_nt(sq, sq, sq), value_error);
    CHECK_THROWS_AS(ops::softmax_rows(sq.topRows(3), sq.bottomRows(3)), value_error);
}
