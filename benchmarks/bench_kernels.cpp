// kernels/<op>/<backend>/<rows>x<cols>: element-wise and row-wise kernels, out of place.
// Counter GBps: bytes read + written per second (in + out; norms also read their weight).
#include "bench_util.hpp"

#include <dskit/ops/activation.hpp>
#include <dskit/ops/norm.hpp>
#include <dskit/ops/softmax.hpp>

#include <string>
#include <vector>

namespace {

using dskit::index_t;

template <class Op>
void run_rowwise(benchmark::State& state, index_t rows, index_t cols, Op op)
{
    const dskit::matrix<float> x = dskit::bench::random_matrix(rows, cols, 7, 3.0f);
    dskit::matrix<float> y(rows, cols);
    for (auto _ : state) {
        op(x, y);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.counters["GBps"] = dskit::bench::rate(2.0 * static_cast<double>(x.size()) * sizeof(float) * 1e-9);
}

template <class Backend>
void register_backend()
{
    const std::string b(Backend::name);
    const std::vector<std::pair<index_t, index_t>> shapes = {{4096, 4096}, {512, 1024}};
    auto add = [&](const std::string& op, auto fn) {
        for (auto [r, c] : shapes)
            benchmark::RegisterBenchmark(
                ("kernels/" + op + "/" + b + "/" + std::to_string(r) + "x" + std::to_string(c)).c_str(),
                [fn, r = r, c = c](benchmark::State& s) { run_rowwise(s, r, c, fn); })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
    };
    using dskit::const_matrix_ref;
    using dskit::matrix_ref;
    add("softmax", [](const_matrix_ref<float> x, matrix_ref<float> y) { dskit::ops::softmax_rows<Backend>(x, y); });
    add("exp", [](const_matrix_ref<float> x, matrix_ref<float> y) { dskit::ops::exp<Backend>(x, y); });
    add("sigmoid", [](const_matrix_ref<float> x, matrix_ref<float> y) { dskit::ops::sigmoid<Backend>(x, y); });
    add("silu", [](const_matrix_ref<float> x, matrix_ref<float> y) { dskit::ops::silu<Backend>(x, y); });
    add("gelu", [](const_matrix_ref<float> x, matrix_ref<float> y) { dskit::ops::gelu<Backend>(x, y); });
    add("gelu_tanh", [](const_matrix_ref<float> x, matrix_ref<float> y) { dskit::ops::gelu_tanh<Backend>(x, y); });
    add("rms_norm", [](const_matrix_ref<float> x, matrix_ref<float> y) {
        static const std::vector<float> w(static_cast<std::size_t>(x.cols()), 1.5f);
        dskit::ops::rms_norm<Backend>(x, std::span<const float>(w.data(), static_cast<std::size_t>(x.cols())), 1e-6f,
                                      y);
    });
    add("layer_norm", [](const_matrix_ref<float> x, matrix_ref<float> y) {
        static const std::vector<float> w(static_cast<std::size_t>(8192), 1.5f),
            b(static_cast<std::size_t>(8192), 0.25f);
        const auto n = static_cast<std::size_t>(x.cols());
        dskit::ops::layer_norm<Backend>(x, std::span<const float>(w.data(), n), std::span<const float>(b.data(), n),
                                        1e-5f, y);
    });
}

const int registered = [] {
    register_backend<dskit::backend::scalar>();
    register_backend<dskit::backend::simd<>>();
    return 0;
}();

} // namespace
