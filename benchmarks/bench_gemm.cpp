// gemm/matmul_nt/<backend>/M:..../N:..../K:....: out[M, N] = a[M, K] * b[N, K]^T. GFLOPS = 2 M N K / time.
#include "bench_util.hpp"

#include <dskit/ops/gemm.hpp>

namespace {

template <class Backend>
void matmul_nt(benchmark::State& state)
{
    const auto m = state.range(0), n = state.range(1), k = state.range(2);
    const dskit::matrix<float> a = dskit::bench::random_matrix(m, k, 1);
    const dskit::matrix<float> b = dskit::bench::random_matrix(n, k, 2);
    dskit::matrix<float> out(m, n);
    for (auto _ : state) {
        dskit::ops::matmul_nt<Backend>(a, b, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["GFLOPS"] =
        dskit::bench::rate(2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) * 1e-9);
}

} // namespace

// The scalar triple loop is a reference: small shapes only.
BENCHMARK(matmul_nt<dskit::backend::scalar>)
    ->Name("gemm/matmul_nt/scalar")
    ->ArgNames({"M", "N", "K"})
    ->Args({128, 256, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(matmul_nt<dskit::backend::simd<>>)
    ->Name("gemm/matmul_nt/simd")
    ->ArgNames({"M", "N", "K"})
    ->Args({128, 256, 256})
    ->Args({1024, 4096, 1024})
    ->Args({1024, 1024, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
