// layers/linear/<backend>/tokens:../in:../out:..: y = x W^T + b through dskit::linear (forward into a
// caller's buffer, bias included, as gemm/matmul_nt writes into one), to compare with
// gemm/matmul_nt/<backend>/M:tokens/N:out/K:in, the product it runs on. GFLOPS = 2 tokens in out / time.
#include "bench_util.hpp"

#include <dskit/layers/linear.hpp>

namespace {

template <class Backend>
void linear_forward(benchmark::State& state)
{
    const auto tokens = state.range(0), in = state.range(1), out = state.range(2);
    const dskit::linear<Backend> fc(dskit::bench::random_matrix(out, in, 1, 0.05f),
                                    dskit::vector<float>(dskit::bench::random_matrix(out, 1, 2).col(0)));
    const dskit::matrix<float> x = dskit::bench::random_matrix(tokens, in, 3);
    dskit::matrix<float> y(tokens, out);
    for (auto _ : state) {
        fc.forward(x, y);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.counters["GFLOPS"] = dskit::bench::rate(2.0 * static_cast<double>(tokens) * static_cast<double>(in) *
                                                  static_cast<double>(out) * 1e-9);
}

} // namespace

// The scalar backend is a reference: a small shape only (the same as gemm/matmul_nt/scalar's).
BENCHMARK(linear_forward<dskit::backend::scalar>)
    ->Name("layers/linear/scalar")
    ->ArgNames({"tokens", "in", "out"})
    ->Args({128, 256, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(linear_forward<dskit::backend::simd<>>)
    ->Name("layers/linear/simd")
    ->ArgNames({"tokens", "in", "out"})
    ->Args({128, 256, 256})
    ->Args({1024, 1024, 4096})
    ->Args({1024, 4096, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
