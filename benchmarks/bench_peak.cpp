// peak/fma_f32/<backend>: this core's fp32 fused multiply-add peak, so that other results can be
// read as a fraction of it. Single thread; many independent accumulator chains hide the FMA latency.
#include "bench_util.hpp"

#include <array>
#include <cstring>
#include <vector>
#include <cmath>

#include <dskit/backend/tags.hpp>

namespace {

constexpr int chains = 12;
constexpr std::int64_t steps = 1 << 16;

// Scalar: 12 independent scalar FMA chains (the compiler may not vectorise them: the order of
// every chain is fixed and std::fma is exact per element).
void peak_fma_scalar(benchmark::State& state)
{
    std::array<float, chains> acc{};
    for (int c = 0; c < chains; ++c) acc[static_cast<std::size_t>(c)] = 1.0f + 0.01f * static_cast<float>(c);
    float a = 0.999999f, b = 1e-7f;
    for (auto _ : state) {
        benchmark::DoNotOptimize(a);
        benchmark::DoNotOptimize(b);
        for (std::int64_t s = 0; s < steps; ++s)
            for (auto& x : acc) x = std::fma(x, a, b);
        benchmark::DoNotOptimize(acc);
    }
    state.counters["GFLOPS"] = dskit::bench::rate(2.0 * chains * static_cast<double>(steps) * 1e-9);
}

// simd: 12 independent xsimd batches of the default architecture.
void peak_fma_simd(benchmark::State& state)
{
    using F = xsimd::batch<float, dskit::backend::simd<>::arch>;
    std::array<F, chains> acc;
    for (int c = 0; c < chains; ++c) acc[static_cast<std::size_t>(c)] = F(1.0f + 0.01f * static_cast<float>(c));
    F a(0.999999f), b(1e-7f);
    for (auto _ : state) {
        benchmark::DoNotOptimize(a);
        benchmark::DoNotOptimize(b);
        for (std::int64_t s = 0; s < steps; ++s)
            for (auto& x : acc) x = xsimd::fma(x, a, b);
        benchmark::DoNotOptimize(acc);
    }
    state.counters["GFLOPS"] = dskit::bench::rate(2.0 * chains * static_cast<double>(steps) * F::size * 1e-9);
}

} // namespace

BENCHMARK(peak_fma_scalar)->Name("peak/fma_f32/scalar");
BENCHMARK(peak_fma_simd)->Name("peak/fma_f32/simd");

namespace {

// peak/copy_f32/<n>x<n>: memory bandwidth, for reading element-wise kernels: an out-of-place kernel
// on a matrix this size cannot beat a copy (one read, one write of each element).
void peak_copy(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<float> src(n * n, 1.0f), dst(n * n, 0.0f);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), n * n * sizeof(float));
        benchmark::ClobberMemory();
    }
    state.counters["GBps"] = dskit::bench::rate(2.0 * static_cast<double>(n * n * sizeof(float)) * 1e-9);
}

} // namespace

BENCHMARK(peak_copy)->Name("peak/copy_f32/memcpy/4096x4096")->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
