// Main of test_cuda. Without a usable GPU it runs only the host-side checks (suite "cuda.host": error
// messages, argument validation) and prints "no CUDA device", which CTest's SKIP_REGULAR_EXPRESSION turns
// into a skipped test; with a GPU it runs everything.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <exception>

#include <dskit/backend/cuda/check.cuh>

int main(int argc, char** argv)
{
    int devices = 0;
    try {
        devices = dskit::cuda::device_count();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "test_cuda: %s\n", e.what());
        return 1;
    }

    doctest::Context context(argc, argv);
    if (devices == 0) context.addFilter("test-suite", "cuda.host");
    const int result = context.run();
    if (context.shouldExit()) return result; // --help, --list-test-cases, ...
    // Printed only after the host-side checks passed, so a failure there still reads as a failure.
    if (devices == 0 && result == 0) std::puts("no CUDA device: ran the host-side checks, skipped the GPU tests");
    return result;
}
