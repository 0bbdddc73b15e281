// CUDA error checking and device memory. Compiled by the host compiler: check.cuh and device_buffer.cuh
// need only the runtime API.
#include "../test_util.hpp"

#include <string>
#include <vector>

#include <dskit/backend/cuda/check.cuh>
#include <dskit/backend/cuda/device_buffer.cuh>

using namespace dskit;

namespace {

bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("cuda.host")
{
    TEST_CASE("DSKIT_CUDA_CHECK names the call, the place and CUDA's message")
    {
        std::string message;
        try {
            DSKIT_CUDA_CHECK(cudaSetDevice(9999));
            FAIL("cudaSetDevice(9999) did not fail");
        } catch (const cuda_error& e) {
            message = e.what();
        }
        INFO(message);
        CHECK(message.rfind("cudaSetDevice(9999) failed at ", 0) == 0);
        CHECK(contains(message, "test_cuda_buffer.cpp:"));
        CHECK(contains(message, ": cudaError")); // cudaErrorInvalidDevice, or cudaErrorInsufficientDriver
        // With a device, the failure (cudaErrorInvalidDevice) must not linger as the runtime's last error and
        // poison the next launch check. Without a driver the runtime keeps its initialisation error for good.
        if (cuda::has_device()) CHECK(cudaPeekAtLastError() == cudaSuccess);
    }

    TEST_CASE("DSKIT_CUDA_CHECK evaluates its argument once and passes on success")
    {
        int calls = 0;
        const auto ok = [&] {
            ++calls;
            return cudaSuccess;
        };
        CHECK_NOTHROW(DSKIT_CUDA_CHECK(ok()));
        CHECK(calls == 1);
        const auto bad = [] { return cudaErrorInvalidValue; };
        CHECK_THROWS_WITH_AS(DSKIT_CUDA_CHECK(bad()), doctest::Contains("bad() failed at"), cuda_error);
        CHECK_THROWS_WITH_AS(DSKIT_CUDA_CHECK(bad()), doctest::Contains("cudaErrorInvalidValue: invalid argument"),
                             cuda_error);
        CHECK_THROWS_AS(DSKIT_CUDA_CHECK(bad()), dskit::error); // one catch clause for every dskit failure
    }

    TEST_CASE("device_count reports instead of throwing")
    {
        int n = -1;
        CHECK_NOTHROW(n = cuda::device_count());
        CHECK(n >= 0);
        CHECK(cuda::has_device() == (n > 0));
    }

    TEST_CASE("empty device buffers need no device and still check sizes")
    {
        cuda::device_buffer<float> empty;
        CHECK(empty.size() == 0);
        CHECK(empty.empty());
        CHECK(empty.data() == nullptr);
        std::vector<float> three(3);
        CHECK_THROWS_WITH_AS(empty.upload(three),
                             "cuda::device_buffer::upload: expected host span of size 0, got size 3", shape_error);
        CHECK_NOTHROW(empty.upload(std::span<const float>{}));

        cuda::device_matrix<float> none;
        matrix<float> m(2, 3);
        CHECK_THROWS_WITH_AS(none.upload(m),
                             "cuda::device_matrix::upload: expected host matrix of shape [0, 0], got [2, 3]",
                             shape_error);
        CHECK_THROWS_WITH_AS(cuda::device_matrix<float>(-1, 2),
                             "cuda::device_matrix: expected non-negative dimensions, got [-1, 2]", shape_error);
    }
}

TEST_SUITE("cuda.gpu")
{
    TEST_CASE("device_buffer round trip, move and zero fill")
    {
        std::vector<float> host(1000);
        for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * 0.5f - 3.0f;
        cuda::device_buffer<float> a{std::span<const float>(host)};
        CHECK(a.size() == 1000);
        CHECK(a.size_bytes() == 4000);
        CHECK(a.data() != nullptr);

        cuda::device_buffer<float> b(std::move(a));
        CHECK(a.data() == nullptr); // NOLINT(bugprone-use-after-move): the moved-from state is specified
        CHECK(a.size() == 0);
        std::vector<float> back(1000, 0.0f);
        b.download(back);
        CHECK(back == host);

        cuda::device_buffer<float> c(10);
        c = std::move(b);
        CHECK(c.size() == 1000);
        c.fill_zero();
        c.download(back);
        CHECK(back == std::vector<float>(1000, 0.0f));

        cuda::device_buffer<std::int32_t> ints(4);
        const std::vector<std::int32_t> v{1, -2, 3, -4};
        ints.upload(v);
        std::vector<std::int32_t> w(4);
        ints.download(w);
        CHECK(w == v);
    }

    TEST_CASE("device_buffer size mismatches throw shape_error")
    {
        cuda::device_buffer<float> buf(8);
        std::vector<float> seven(7), nine(9);
        CHECK_THROWS_WITH_AS(buf.upload(seven), "cuda::device_buffer::upload: expected host span of size 8, got size 7",
                             shape_error);
        CHECK_THROWS_WITH_AS(buf.download(nine),
                             "cuda::device_buffer::download: expected host span of size 8, got size 9", shape_error);
    }

    TEST_CASE("device_matrix copies strided host views both ways")
    {
        const matrix<float> big = test::random_matrix(9, 20, 3);
        const auto view = big.block(2, 5, 4, 11); // outer stride 20
        cuda::device_matrix<float> d(view);
        CHECK(d.rows() == 4);
        CHECK(d.cols() == 11);
        CHECK(d.ld() == 11);
        const matrix<float> packed = d.download();
        CHECK(packed == matrix<float>(view));

        matrix<float> target = matrix<float>::Constant(7, 30, 42.0f);
        d.download(target.block(1, 2, 4, 11));
        CHECK(matrix<float>(target.block(1, 2, 4, 11)) == matrix<float>(view));
        // Nothing outside the block was written.
        matrix<float> outside = target;
        outside.block(1, 2, 4, 11).setConstant(42.0f);
        CHECK(outside == matrix<float>::Constant(7, 30, 42.0f));

        matrix<float> wrong(11, 4);
        CHECK_THROWS_WITH_AS(d.download(wrong),
                             "cuda::device_matrix::download: expected host matrix of shape [4, 11], got [11, 4]",
                             shape_error);
        cuda::device_matrix<float> moved(std::move(d));
        CHECK(moved.rows() == 4);
        CHECK(d.rows() == 0); // NOLINT(bugprone-use-after-move)
        CHECK(d.data() == nullptr);
    }
}
