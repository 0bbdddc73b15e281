// CUDA kernels, timed on the GPU with events (kernel time only: no host copies, no launch queueing on the host).
// Part of dskit_bench when CUDA is enabled; without a device each benchmark reports "no CUDA device".
#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>
#include <vector>

#include <dskit/backend/cuda/check.cuh>
#include <dskit/backend/cuda/device_buffer.cuh>
#include <dskit/backend/cuda/softmax.cuh>

namespace {

/// Frees the two events on every exit path, including a thrown cuda_error.
struct event_pair {
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    event_pair()
    {
        DSKIT_CUDA_CHECK(cudaEventCreate(&start));
        DSKIT_CUDA_CHECK(cudaEventCreate(&stop));
    }
    event_pair(const event_pair&) = delete;
    event_pair& operator=(const event_pair&) = delete;
    ~event_pair()
    {
        (void)cudaEventDestroy(start);
        (void)cudaEventDestroy(stop);
    }
};

void bm_softmax_cuda(benchmark::State& state, int rows, int cols)
{
    if (!dskit::cuda::has_device()) {
        state.SkipWithError("no CUDA device");
        return;
    }
    const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    std::vector<float> host(n);
    std::mt19937 gen(1);
    std::normal_distribution<float> dist(0.0f, 2.0f);
    for (auto& v : host) v = dist(gen);
    const dskit::cuda::device_buffer<float> in{std::span<const float>(host)};
    dskit::cuda::device_buffer<float> out(n);
    event_pair events;

    // One untimed call: module loading and first-touch costs stay out of the numbers.
    dskit::cuda::softmax_rows(in.data(), out.data(), rows, cols, cols, cols);
    DSKIT_CUDA_CHECK(cudaDeviceSynchronize());

    double seconds = 0;
    for (auto _ : state) {
        DSKIT_CUDA_CHECK(cudaEventRecord(events.start));
        dskit::cuda::softmax_rows(in.data(), out.data(), rows, cols, cols, cols);
        DSKIT_CUDA_CHECK(cudaEventRecord(events.stop));
        DSKIT_CUDA_CHECK(cudaEventSynchronize(events.stop));
        float ms = 0;
        DSKIT_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
        state.SetIterationTime(ms * 1e-3);
        seconds += ms * 1e-3;
    }
    // Minimum traffic: every input read once and every output written once.
    const double bytes = 2.0 * static_cast<double>(n) * sizeof(float) * static_cast<double>(state.iterations());
    state.counters["GBps"] = seconds > 0 ? bytes / seconds * 1e-9 : 0.0;
}

const auto* registered = benchmark::RegisterBenchmark("kernels/softmax/cuda/4096x4096", bm_softmax_cuda, 4096, 4096)
                             -> UseManualTime() -> Unit(benchmark::kMicrosecond);

} // namespace
