// attention/<variant>/<backend>/N:<n>/d:<d>/H:<h>: one forward of dskit::attention on N queries and
// N keys with H heads of size d, into a caller's buffer. GFLOPS = 4 N^2 d H / time (the two products;
// half that for causal, whose kernel skips the masked half), so variants compare by time as well.
// gate_head and gate_elem are plain attention with an output gate fused into the kernel (a [N, H] head
// gate, a [N, H*d] element gate; attention/gates.hpp): their time against plain is the gate's cost.
//
// cross_modal runs both directions of cross_modal_attention with its projections.
//
// The default run is short (N = 128, 512). N = 1024, 2048 and 4096 are registered only when the
// environment variable DSKIT_BENCH_LARGE is set, 8192 and 16384 too when it is 2, e.g.
//   DSKIT_BENCH_LARGE=1 dskit_bench --benchmark_filter='attention/.*/simd/N:2048'
#include "bench_util.hpp"

#include <cstdlib>
#include <string>
#include <vector>

#include <dskit/attention/cross_modal.hpp>
#include <dskit/attention/flash.hpp>
#include <dskit/io/weight_map.hpp>

namespace {

namespace am = dskit::attention_mods;

template <class Backend, class Mod>
void attention_forward(benchmark::State& state, Mod mod, bool causal)
{
    const auto n = state.range(0), d = state.range(1), h = state.range(2);
    const dskit::matrix<float> q = dskit::bench::random_matrix(n, h * d, 1),
                               k = dskit::bench::random_matrix(n, h * d, 2),
                               v = dskit::bench::random_matrix(n, h * d, 3);
    dskit::matrix<float> out(n, h * d);
    for (auto _ : state) {
        dskit::attention<Backend>(q, k, v, h, h, out, mod);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    const double flops = 4.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(d) *
                         static_cast<double>(h) * (causal ? 0.5 : 1.0);
    state.counters["GFLOPS"] = dskit::bench::rate(flops * 1e-9);
}

// Plain attention with an output gate of the given kind ("head" or "elem").
template <class Backend>
void gated_forward(benchmark::State& state, bool element)
{
    const auto n = state.range(0), d = state.range(1), h = state.range(2);
    const dskit::matrix<float> q = dskit::bench::random_matrix(n, h * d, 1),
                               k = dskit::bench::random_matrix(n, h * d, 2),
                               v = dskit::bench::random_matrix(n, h * d, 3),
                               g = dskit::bench::random_matrix(n, element ? h * d : h, 4);
    dskit::matrix<float> out(n, h * d);
    const auto run = [&](const auto& gate) {
        for (auto _ : state) {
            dskit::attention<Backend>(q, k, v, h, h, out, am::none{}, gate);
            benchmark::DoNotOptimize(out.data());
            benchmark::ClobberMemory();
        }
    };
    if (element)
        run(dskit::attention_gates::per_element{g});
    else
        run(dskit::attention_gates::per_head{g});
    const double flops =
        4.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(d) * static_cast<double>(h);
    state.counters["GFLOPS"] = dskit::bench::rate(flops * 1e-9);
}

template <class Backend>
void add_gated(const std::string& variant, bool element, const std::vector<std::int64_t>& sizes)
{
    auto* b = benchmark::RegisterBenchmark(("attention/" + variant + "/" + std::string(Backend::name)).c_str(),
                                           [element](benchmark::State& s) { gated_forward<Backend>(s, element); });
    b->ArgNames({"N", "d", "H"})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (const auto n : sizes)
        for (const std::int64_t d : {64, 128}) b->Args({n, d, 8});
}

template <class Backend, class Mod>
void add(const std::string& variant, Mod mod, bool causal, const std::vector<std::int64_t>& sizes)
{
    auto* b = benchmark::RegisterBenchmark(
        ("attention/" + variant + "/" + std::string(Backend::name)).c_str(),
        [mod, causal](benchmark::State& s) { attention_forward<Backend>(s, mod, causal); });
    b->ArgNames({"N", "d", "H"})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (const auto n : sizes)
        for (const std::int64_t d : {64, 128}) b->Args({n, d, 8});
}

// Cross-modal attention (attention/cross_modal.hpp), both directions: N text and N vision tokens of H d
// features each, H heads. GFLOPS counts the two attentions (2 x 4 N^2 d H) and the two projections.
template <class Backend>
void cross_modal_forward(benchmark::State& state)
{
    const auto n = state.range(0), d = state.range(1), h = state.range(2), e = h * d;
    dskit::weight_map w;
    w.add("text_proj.weight", dskit::bench::random_matrix(e, e, 5, 0.05f))
        .add("text_proj.bias", dskit::vector<float>::Zero(e))
        .add("vision_proj.weight", dskit::bench::random_matrix(e, e, 6, 0.05f))
        .add("vision_proj.bias", dskit::vector<float>::Zero(e));
    dskit::cross_modal_attention<Backend> m(h);
    m.load(w, "");
    const dskit::matrix<float> t = dskit::bench::random_matrix(n, e, 7), v = dskit::bench::random_matrix(n, e, 8);
    for (auto _ : state) {
        auto out = m.forward(t, v);
        benchmark::DoNotOptimize(out.text.data());
        benchmark::ClobberMemory();
    }
    const double nd = static_cast<double>(n), ed = static_cast<double>(e);
    state.counters["GFLOPS"] = dskit::bench::rate((2.0 * 4.0 * nd * nd * ed + 2.0 * 2.0 * nd * ed * ed) * 1e-9);
}

const bool registered = [] {
    using simd = dskit::backend::simd<>;
    // N = 128 and 512 by default; DSKIT_BENCH_LARGE=1 adds 1024 to 4096, DSKIT_BENCH_LARGE=2 also 8192 and 16384
    // (about 4 s per forward at 16384 on two Zen 3 cores).
    std::vector<std::int64_t> sizes{128, 512};
    if (const char* large = std::getenv("DSKIT_BENCH_LARGE")) {
        sizes.insert(sizes.end(), {1024, 2048, 4096});
        if (std::string(large) == "2") sizes.insert(sizes.end(), {8192, 16384});
    }
    add<simd>("plain", am::none{}, false, sizes);
    add<simd>("causal", am::causal{}, true, sizes);
    add<simd>("decay_abs", am::decay_absolute{0.999f}, false, sizes);
    add<simd>("decay_rel", am::combine{am::causal{}, am::decay_relative{0.999f}}, true, sizes);
    add<simd>("alibi", am::alibi::standard(8), false, sizes);
    add_gated<simd>("gate_head", false, sizes);
    add_gated<simd>("gate_elem", true, sizes);
    auto* cm = benchmark::RegisterBenchmark("attention/cross_modal/simd", cross_modal_forward<simd>);
    cm->ArgNames({"N", "d", "H"})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (const auto n : sizes)
        for (const std::int64_t d : {64, 128}) cm->Args({n, d, 8});
    // The scalar reference at the smallest size only.
    auto* b = benchmark::RegisterBenchmark("attention/plain/scalar", [](benchmark::State& s) {
        attention_forward<dskit::backend::scalar>(s, am::none{}, false);
    });
    b->ArgNames({"N", "d", "H"})->Args({256, 64, 8})->Unit(benchmark::kMillisecond)->UseRealTime();
    return true;
}();

} // namespace
