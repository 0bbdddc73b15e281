// The CUDA row softmax against a double-precision loop written here (independent of every dskit backend)
// and against the scalar backend through ops::softmax_rows.
#include "../test_util.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <dskit/backend/cuda/softmax.cuh>
#include <dskit/ops/softmax.hpp>

using namespace dskit;

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

/// softmax in double; a row of -inf gives zeros.
matrix<float> reference_softmax(const_matrix_ref<float> x)
{
    matrix<float> y(x.rows(), x.cols());
    for (index_t r = 0; r < x.rows(); ++r) {
        double m = -INFINITY;
        for (index_t c = 0; c < x.cols(); ++c) m = std::max(m, static_cast<double>(x(r, c)));
        if (m == -INFINITY) {
            y.row(r).setZero();
            continue;
        }
        double s = 0;
        for (index_t c = 0; c < x.cols(); ++c) s += std::exp(static_cast<double>(x(r, c)) - m);
        for (index_t c = 0; c < x.cols(); ++c) y(r, c) = static_cast<float>(std::exp(x(r, c) - m) / s);
    }
    return y;
}

/// Through the kernel table, as ops::softmax_rows<backend::cuda> calls it.
matrix<float> cuda_softmax(const_matrix_ref<float> x)
{
    matrix<float> y(x.rows(), x.cols());
    detail::kernel<ops::tag::softmax, backend::cuda>::run(x, y);
    return y;
}

// A correct kernel is within a few ulp; the bound leaves room for exp2f and float sums over long rows,
// while any indexing or reduction bug gives errors of order 1.
constexpr double tolerance = 2e-5;
constexpr double error_floor = 1e-6; // outputs below this are compared in absolute terms

void check_close(const matrix<float>& got, const matrix<float>& want)
{
    const double err = test::max_rel_error(got, want, error_floor);
    INFO("shape " << got.rows() << "x" << got.cols() << ", max relative error " << err);
    CHECK(err < tolerance);
}

} // namespace

TEST_SUITE("cuda.host")
{
    TEST_CASE("cuda softmax rejects bad shapes before touching the device")
    {
        const matrix<float> x = matrix<float>::Zero(2, 3);
        matrix<float> y(3, 2);
        CHECK_THROWS_WITH_AS((detail::kernel<ops::tag::softmax, backend::cuda>::run(x, y)),
                             "ops::softmax_rows: expected output of shape [2, 3], got [3, 2]", shape_error);
        CHECK_THROWS_WITH_AS(cuda::softmax_rows(nullptr, nullptr, -1, 4, 4, 4),
                             "cuda::softmax_rows: expected non-negative rows and cols, got [-1, 4]", shape_error);
        CHECK_THROWS_WITH_AS(cuda::softmax_rows(nullptr, nullptr, 2, 8, 8, 7),
                             "cuda::softmax_rows: expected ld_in and ld_out >= cols (8), got ld_in 8, ld_out 7",
                             shape_error);
        // Empty work launches nothing.
        CHECK_NOTHROW(cuda::softmax_rows(nullptr, nullptr, 0, 8, 8, 8));
        matrix<float> empty(0, 5);
        CHECK_NOTHROW(cuda_softmax(empty));
    }
}

TEST_SUITE("cuda.gpu")
{
    TEST_CASE("cuda softmax matches the double-precision reference")
    {
        // 1x1 and 3x17: partial warps; 64x1000: the widest warp-per-row kernel; 257x4099: block per row,
        // odd row length (scalar path); 5x2052: block per row with float4 accesses.
        const index_t shapes[][2] = {{1, 1},    {3, 17},   {2, 33},     {64, 1000},
                                     {7, 1024}, {3, 1025}, {257, 4099}, {5, 2052}};
        unsigned seed = 10;
        for (const auto& shape : shapes) {
            const matrix<float> x = test::random_matrix(shape[0], shape[1], ++seed, 3.0f);
            const matrix<float> y = cuda_softmax(x);
            check_close(y, reference_softmax(x));
            const Eigen::VectorXf sums = y.rowwise().sum();
            CHECK(((sums.array() - 1.0f).abs() < 1e-4f).all());
        }
        const matrix<float> one = cuda_softmax(matrix<float>::Constant(1, 1, 5.0f));
        CHECK(one(0, 0) == 1.0f);
    }

    TEST_CASE("ops::softmax_rows<backend::cuda> agrees with the scalar backend")
    {
        for (const auto& [rows, cols] : {std::pair<index_t, index_t>{4, 7}, {33, 513}, {9, 3001}}) {
            matrix<float> x = test::random_matrix(rows, cols, static_cast<unsigned>(rows * cols), 5.0f);
            x(0, 0) = -inf;
            const matrix<float> want = ops::softmax_rows<backend::scalar>(x);
            check_close(ops::softmax_rows<backend::cuda>(x), want);
            ops::softmax_rows<backend::cuda>(x, x); // in place
            check_close(x, want);
        }
        matrix<float> wrong(2, 2);
        CHECK_THROWS_AS(ops::softmax_rows<backend::cuda>(matrix<float>::Zero(3, 2), wrong), shape_error);
    }

    TEST_CASE("cuda softmax reads and writes strided host views")
    {
        const matrix<float> big = test::random_matrix(12, 3000, 7, 2.0f);
        for (index_t cols : {40, 2500}) { // one per kernel
            const auto in = big.block(2, 7, 9, cols);
            matrix<float> target = matrix<float>::Constant(11, 3100, 42.0f);
            detail::kernel<ops::tag::softmax, backend::cuda>::run(in, target.block(1, 3, 9, cols));
            check_close(matrix<float>(target.block(1, 3, 9, cols)), reference_softmax(in));
            target.block(1, 3, 9, cols).setConstant(42.0f);
            CHECK(target == matrix<float>::Constant(11, 3100, 42.0f)); // nothing written outside the view
        }
    }

    TEST_CASE("cuda softmax: -inf rows give zeros, -inf entries give zero weight")
    {
        for (index_t cols : {300, 3000}) {
            matrix<float> x = test::random_matrix(4, cols, 5);
            x.row(1).setConstant(-inf);
            x(2, 0) = -inf; // a masked entry
            x(2, cols - 1) = -inf;
            const matrix<float> y = cuda_softmax(x);
            CHECK(y.row(1).isZero(0.0f));
            CHECK(y(2, 0) == 0.0f);
            CHECK(y(2, cols - 1) == 0.0f);
            check_close(y, reference_softmax(x));
        }
    }

    TEST_CASE("cuda softmax is stable for large values")
    {
        for (index_t cols : {100, 5000}) {
            matrix<float> x = test::random_matrix(6, cols, 9, 4.0f);
            x.row(0).array() += 1e4f;
            x.row(1).array() -= 1e4f;
            x.row(2).array() += 88.0f; // exp(88+) overflows float without the shift
            x.row(3).setConstant(3e38f);
            x.row(4) *= 100.0f; // one dominant entry per row, most weights underflow to 0
            const matrix<float> y = cuda_softmax(x);
            CHECK(y.allFinite());
            check_close(y, reference_softmax(x));
            CHECK(std::abs(y(3, 0) - 1.0f / static_cast<float>(cols)) < 1e-6f);
        }
    }

    TEST_CASE("cuda softmax: NaN or +inf in a row make that row NaN")
    {
        for (index_t cols : {64, 1500}) {
            matrix<float> x = test::random_matrix(3, cols, 2);
            x(0, cols / 2) = std::numeric_limits<float>::quiet_NaN();
            x(1, 3) = inf;
            const matrix<float> y = cuda_softmax(x);
            CHECK(y.row(0).array().isNaN().all());
            CHECK(y.row(1).array().isNaN().all());
            check_close(matrix<float>(y.row(2)), reference_softmax(x.row(2)));
        }
    }

    TEST_CASE("cuda::softmax_rows on device pointers with padded rows, out of place and in place")
    {
        // ld 2056 keeps rows 16-byte aligned: float4 body plus a 1-column tail; ld 301 is unaligned.
        for (const auto& [cols, ld] : {std::pair<int, int>{2053, 2056}, {2053, 2053}, {300, 301}, {20, 1024}}) {
            const int rows = 6;
            const matrix<float> padded = test::random_matrix(rows, ld, static_cast<unsigned>(cols + ld), 2.0f);
            cuda::device_matrix<float> in(padded);
            cuda::device_buffer<float> out(static_cast<std::size_t>(rows) * (ld + 8));
            out.fill_zero();
            cuda::softmax_rows(in.data(), out.data(), rows, cols, ld, ld + 8);
            DSKIT_CUDA_CHECK(cudaDeviceSynchronize());
            matrix<float> y(rows, ld + 8);
            out.download(std::span<float>(y.data(), static_cast<std::size_t>(y.size())));
            const auto want = reference_softmax(padded.leftCols(cols));
            check_close(matrix<float>(y.leftCols(cols)), want);
            CHECK(y.rightCols(ld + 8 - cols).isZero(0.0f)); // padding untouched

            cuda::softmax_rows(in.data(), in.data(), rows, cols, ld, ld); // in place
            const matrix<float> z = in.download();
            check_close(matrix<float>(z.leftCols(cols)), want);
            CHECK(z.rightCols(ld - cols) == padded.rightCols(ld - cols));
        }
    }
}
