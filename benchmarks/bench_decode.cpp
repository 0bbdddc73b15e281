// attention/decode/<backend>/L:<len>/d:<d>/H:<h>/kv:<kv_heads>: one new token attending to a cache of
// `len` keys (causal, as in a decoder) through dskit::attention_decode. attention/decode_flash/... runs
// the same call through dskit::attention, the kernel built for many queries, for comparison.
// GFLOPS = 4 len d H per token; GBps = the cache bytes read (K and V, once).
#include "bench_util.hpp"

#include <string>

#include <dskit/attention/decode.hpp>

namespace {

namespace am = dskit::attention_mods;

template <class Backend, bool Decode>
void decode_step(benchmark::State& state)
{
    const auto len = state.range(0), d = state.range(1), h = state.range(2), kv = state.range(3);
    const dskit::matrix<float> q = dskit::bench::random_matrix(1, h * d, 1),
                               k = dskit::bench::random_matrix(len, kv * d, 2),
                               v = dskit::bench::random_matrix(len, kv * d, 3);
    dskit::matrix<float> out(1, h * d);
    const am::causal mod{len - 1};
    for (auto _ : state) {
        if constexpr (Decode)
            dskit::attention_decode<Backend>(q, k, v, h, kv, out, mod);
        else
            dskit::attention<Backend>(q, k, v, h, kv, out, mod);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    const double ld = static_cast<double>(len) * static_cast<double>(d);
    state.counters["GFLOPS"] = dskit::bench::rate(4.0 * ld * static_cast<double>(h) * 1e-9);
    state.counters["GBps"] = dskit::bench::rate(2.0 * ld * static_cast<double>(kv) * sizeof(float) * 1e-9);
}

template <class Backend, bool Decode>
void add(const std::string& name)
{
    auto* b = benchmark::RegisterBenchmark(("attention/" + name + "/" + std::string(Backend::name)).c_str(),
                                           decode_step<Backend, Decode>);
    b->ArgNames({"L", "d", "H", "kv"})->Unit(benchmark::kMicrosecond)->UseRealTime();
    for (long len : {4096L, 32768L})
        for (long d : {64L, 128L}) {
            b->Args({len, d, 8, 8});
            b->Args({len, d, 8, 2});
        }
}

const int registered = [] {
    add<dskit::backend::simd<>, true>("decode");
    add<dskit::backend::simd<>, false>("decode_flash");
    return 0;
}();

} // namespace
