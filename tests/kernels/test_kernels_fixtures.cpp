// Every backend against PyTorch (tests/reference/make_kernel_fixtures.py; results computed in float64).
#include "kernel_test_util.hpp"

using namespace dskit;
using test::load;

#define DSKIT_KERNEL_BACKENDS backend::scalar, backend::simd<>

TEST_CASE_TEMPLATE("kernels: activations match PyTorch", B, DSKIT_KERNEL_BACKENDS)
{
    const auto f = safetensors_file::open(test::fixture("kernels/activation.safetensors"));
    for (const auto& s : test::kernel_shapes) {
        CAPTURE(s);
        const matrix<float> x = load(f, "x_" + s);
        CHECK(test::max_rel_error(ops::exp<B>(x), load(f, "exp_" + s), 1e-30) < 4e-7);
        CHECK(test::max_rel_error(ops::sigmoid<B>(x), load(f, "sigmoid_" + s), 1e-30) < 6e-7);
        CHECK(test::max_rel_error(ops::silu<B>(x), load(f, "silu_" + s), 1e-30) < 6e-7);
        // GELU is ill-conditioned for negative x (relative condition number ~x^2): e.g. at x = -12 the
        // float rounding of x^3 alone moves the result by ~2e-5 relative. PyTorch's float64 formula
        // 1 + erf cancels to 0 below x = -8, so results under 1e-12 are compared absolutely.
        CHECK(test::max_rel_error(ops::gelu<B>(x), load(f, "gelu_" + s), 1e-12) < 5e-5);
        CHECK(test::max_rel_error(ops::gelu_tanh<B>(x), load(f, "gelu_tanh_" + s), 1e-12) < 5e-5);
        const matrix<float> r = ops::relu<B>(x);
        CHECK(r == x.cwiseMax(0.0f));
    }
}

TEST_CASE_TEMPLATE("kernels: softmax_rows matches PyTorch", B, DSKIT_KERNEL_BACKENDS)
{
    const auto f = safetensors_file::open(test::fixture("kernels/softmax.safetensors"));
    for (const auto& s : test::kernel_shapes) {
        CAPTURE(s);
        const matrix<float> x = load(f, "x_" + s);
        const matrix<float> y = ops::softmax_rows<B>(x);
        // x - max rounds to float first (0.5 ulp of |x - max| ~ 5e-7 absolute): ~1e-6 relative from the truth.
        CHECK(test::max_rel_error(y, load(f, "softmax_" + s), 1e-30) < 2e-6);
        CHECK(((y.rowwise().sum().array() - 1.0f).abs() < 1e-5f).all());
    }
}

TEST_CASE_TEMPLATE("kernels: rms_norm and layer_norm match PyTorch", B, DSKIT_KERNEL_BACKENDS)
{
    const auto f = safetensors_file::open(test::fixture("kernels/norm.safetensors"));
    for (const auto& s : test::kernel_shapes) {
        CAPTURE(s);
        const matrix<float> x = load(f, "x_" + s), w = load(f, "w_" + s), b = load(f, "b_" + s);
        // Outputs are O(1); LayerNorm's x - mean loses ~ulp(x) absolutely, so both are compared on a unit scale.
        CHECK(test::max_rel_error(ops::rms_norm<B>(x, test::span_of(w), 1e-6f), load(f, "rms_norm_" + s), 1.0) < 2e-6);
        CHECK(test::max_rel_error(ops::rms_norm<B>(x, {}, 1e-6f), load(f, "rms_norm_noaffine_" + s), 1.0) < 2e-6);
        CHECK(test::max_rel_error(ops::layer_norm<B>(x, test::span_of(w), test::span_of(b), 1e-5f),
                                  load(f, "layer_norm_" + s), 1.0) < 3e-6);
        CHECK(test::max_rel_error(ops::layer_norm<B>(x, {}, {}, 1e-5f), load(f, "layer_norm_noaffine_" + s), 1.0) <
              3e-6);
    }
}

TEST_CASE_TEMPLATE("kernels: matmul_nt and matmul match PyTorch", B, DSKIT_KERNEL_BACKENDS)
{
    const auto f = safetensors_file::open(test::fixture("kernels/matmul.safetensors"));
    for (const std::string tag : {"1x1x1", "3x5x17", "17x9x40", "5x3x1000"}) {
        CAPTURE(tag);
        const matrix<float> a = load(f, "a_" + tag), b = load(f, "b_" + tag), bt = load(f, "bt_" + tag);
        const matrix<float> ref = load(f, "nt_" + tag);
        // Entries are sums of K products of N(0,1) numbers: compare against a sqrt(K)-sized floor. The float
        // sum's rounding grows like sqrt(K) ulps on that scale, and its order (Eigen's blocking) follows the
        // cache sizes of the CPU: K = 1000 stayed under 1e-6 on a Zen 4 and gave 1.03e-6 on an Emerald Rapids Xeon.
        const double floor = std::sqrt(static_cast<double>(a.cols()));
        const double tol = std::max(1e-6, 2.0 * floor * 0x1p-24);
        CHECK(test::max_rel_error(ops::matmul_nt<B>(a, b), ref, floor) < tol);
        CHECK(test::max_rel_error(ops::matmul<B>(a, bt), ref, floor) < tol);
    }
}
