// attention/{block_sparse,topk,concentrated_dense}/<backend>/N:<n>/d:<d>/H:<h>: sparse attention against
// the dense fused kernel on the same input, one whose attention is concentrated
// (tests/attention/concentrated_input.hpp: segments of 128 tokens, 8 topics, so each query's weight sits
// on the 1/8 of the key blocks that share its segment's topic).
// GFLOPS counts the dense work (4 N^2 d H) for every entry, so the entries compare by time. Counter
// cos_mean / cos_min: cosine similarity of the output rows against dense attention (computed once).
//
// block_sparse keeps a quarter of the 128-key blocks per 64 queries, block_sparse_eighth an eighth (what the
// input's topics need); topk keeps N/8 keys per query.
// N = 512 by default, 2048 and 4096 with DSKIT_BENCH_LARGE set.
#include "bench_util.hpp"

#include <cstdlib>
#include <string>

#include <dskit/attention/sparse.hpp>

#include "../tests/attention/concentrated_input.hpp"

namespace {

enum class kind { dense, block, block_eighth, topk };

template <class Backend>
void sparse_forward(benchmark::State& state, kind which)
{
    const auto n = state.range(0), d = state.range(1), h = state.range(2);
    const dskit::test::concentrated_input in = dskit::test::make_concentrated_input(n, d, h, 1, 128, 8);
    dskit::matrix<float> out(n, h * d);
    const auto run = [&] {
        switch (which) {
        case kind::dense:
            dskit::attention<Backend>(in.q, in.k, in.v, h, h, out);
            break;
        case kind::block:
            dskit::sparse_attention<Backend>(in.q, in.k, in.v, h, h, out, dskit::block_sparse{.keep = 0.25});
            break;
        case kind::block_eighth:
            dskit::sparse_attention<Backend>(in.q, in.k, in.v, h, h, out, dskit::block_sparse{.keep = 0.125});
            break;
        case kind::topk:
            dskit::sparse_attention<Backend>(in.q, in.k, in.v, h, h, out, dskit::topk_keys{n / 8});
            break;
        }
    };
    run();
    const dskit::test::cosine_report cos =
        dskit::test::cosine_similarity(out, dskit::attention<Backend>(in.q, in.k, in.v, h, h), h);
    for (auto _ : state) {
        run();
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    const double flops =
        4.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(d) * static_cast<double>(h);
    state.counters["GFLOPS"] = dskit::bench::rate(flops * 1e-9);
    state.counters["cos_mean"] = cos.mean;
    state.counters["cos_min"] = cos.min;
}

const int registered = [] {
    const bool large = std::getenv("DSKIT_BENCH_LARGE") != nullptr;
    for (auto [name, which] : {std::pair{"concentrated_dense", kind::dense}, std::pair{"block_sparse", kind::block},
                               std::pair{"block_sparse_eighth", kind::block_eighth}, std::pair{"topk", kind::topk}}) {
        auto* b = benchmark::RegisterBenchmark(
            ("attention/" + std::string(name) + "/simd").c_str(),
            [which = which](benchmark::State& s) { sparse_forward<dskit::backend::simd<>>(s, which); });
        b->ArgNames({"N", "d", "H"})->Unit(benchmark::kMillisecond)->UseRealTime();
        b->Args({512, 64, 8});
        if (large)
            for (long n : {2048L, 4096L}) b->Args({n, 64, 8});
    }
    return 0;
}();

} // namespace
