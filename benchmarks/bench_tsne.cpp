// t-SNE benchmarks.
//
// tsne/gradient_<method>/simd/N:<n>: one gradient evaluation (exact, bh = Barnes-Hut at theta 0.5, fft = FFT
// interpolation with openTSNE's grid) on a fixed 2-D layout like one in mid-optimisation: 12 Gaussian clusters
// (sd 3) with centres spread over a disc of radius 40, so the map spans about 90 units, whatever N. P is
// perplexity-calibrated over 30 neighbours (perplexity 10) taken along each cluster: realistic sparsity and
// locality for the attractive term, which all three methods share; setting it up stays cheap at N = 100000.
// The exact method runs up to N = 5000 only. Mpoints/s = N / time.
//
// tsne/<method>/simd/N:1797: a whole dskit::tsne run (250 + 500 iterations, defaults otherwise) on
// digits-sized data: 1797 points in 64 dimensions around 10 centres. One iteration each.
#include "bench_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <dskit/manifold/affinity.hpp>
#include <dskit/manifold/tsne.hpp>
#include <dskit/manifold/tsne_fft.hpp>
#include <dskit/manifold/tsne_gradient.hpp>

namespace {

struct gradient_problem {
    dskit::matrix<double> y;
    dskit::sparse_affinities p;
};

gradient_problem make_problem(dskit::index_t n)
{
    constexpr int clusters = 12;
    constexpr dskit::index_t k = 30;
    std::mt19937 gen(7);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<std::pair<double, double>> centres;
    for (int c = 0; c < clusters; ++c) {
        const double r = 40.0 * std::sqrt(unit(gen)), a = 6.283185307179586 * unit(gen);
        centres.emplace_back(r * std::cos(a), r * std::sin(a));
    }
    // Points cluster by cluster, each cluster sorted along x: neighbours are then nearby indices.
    gradient_problem g;
    g.y.resize(n, 2);
    std::vector<dskit::index_t> first(clusters + 1);
    for (int c = 0; c <= clusters; ++c) first[static_cast<std::size_t>(c)] = n * c / clusters;
    for (int c = 0; c < clusters; ++c) {
        std::vector<std::pair<double, double>> pts;
        for (dskit::index_t i = first[static_cast<std::size_t>(c)]; i < first[static_cast<std::size_t>(c) + 1]; ++i)
            pts.emplace_back(centres[static_cast<std::size_t>(c)].first + 3.0 * normal(gen),
                             centres[static_cast<std::size_t>(c)].second + 3.0 * normal(gen));
        std::sort(pts.begin(), pts.end());
        for (std::size_t j = 0; j < pts.size(); ++j) {
            const auto i = first[static_cast<std::size_t>(c)] + static_cast<dskit::index_t>(j);
            g.y(i, 0) = pts[j].first;
            g.y(i, 1) = pts[j].second;
        }
    }
    dskit::knn_graph knn;
    knn.indices.resize(n, k);
    knn.sq_distances.resize(n, k);
    for (int c = 0; c < clusters; ++c) {
        const dskit::index_t lo = first[static_cast<std::size_t>(c)], hi = first[static_cast<std::size_t>(c) + 1];
        for (dskit::index_t i = lo; i < hi; ++i) {
            const dskit::index_t start = std::clamp<dskit::index_t>(i - k / 2, lo, hi - k - 1);
            std::vector<std::pair<float, dskit::index_t>> row;
            for (dskit::index_t j = start; static_cast<dskit::index_t>(row.size()) < k; ++j)
                if (j != i) row.emplace_back(static_cast<float>((g.y.row(i) - g.y.row(j)).squaredNorm()), j);
            std::sort(row.begin(), row.end()); // knn_graph rows are ascending
            for (dskit::index_t c = 0; c < k; ++c) {
                knn.sq_distances(i, c) = row[static_cast<std::size_t>(c)].first;
                knn.indices(i, c) = row[static_cast<std::size_t>(c)].second;
            }
        }
    }
    g.p = dskit::perplexity_affinities(knn, 10.0);
    return g;
}

const gradient_problem& problem(dskit::index_t n)
{
    static std::map<dskit::index_t, gradient_problem> cache;
    auto it = cache.find(n);
    if (it == cache.end()) it = cache.emplace(n, make_problem(n)).first;
    return it->second;
}

void gradient(benchmark::State& state, const std::string& method)
{
    const auto n = static_cast<dskit::index_t>(state.range(0));
    const gradient_problem& g = problem(n);
    dskit::matrix<double> grad(n, 2);
    dskit::tsne_fft_workspace ws;
    for (auto _ : state) {
        if (method == "exact")
            dskit::tsne_gradient_exact(g.p, g.y, grad, 1.0, 1.0, false);
        else if (method == "exact_scalar")
            dskit::tsne_gradient_exact<dskit::backend::scalar>(g.p, g.y, grad, 1.0, 1.0, false);
        else if (method == "bh")
            dskit::tsne_gradient_bh(g.p, g.y, grad, 0.5, 1.0, 1.0, false);
        else
            dskit::tsne_gradient_fft(g.p, g.y, grad, 1.0, 1.0, false, {}, ws);
        benchmark::DoNotOptimize(grad.data());
        benchmark::ClobberMemory();
    }
    state.counters["Mpoints/s"] = dskit::bench::rate(static_cast<double>(n) * 1e-6);
}

template <class Backend>
void full_run(benchmark::State& state, dskit::tsne_method method)
{
    const auto n = static_cast<dskit::index_t>(state.range(0));
    static const dskit::matrix<float> x = [n] {
        dskit::matrix<float> d = dskit::bench::random_matrix(n, 64, 11);
        const dskit::matrix<float> c = dskit::bench::random_matrix(10, 64, 12, 4.0f);
        for (dskit::index_t i = 0; i < n; ++i) d.row(i) += c.row(i % 10);
        return d;
    }();
    dskit::tsne_options opt;
    opt.method = method;
    double kl = 0.0;
    for (auto _ : state) {
        const dskit::tsne_result r = dskit::tsne<Backend>(x, opt);
        kl = r.kl;
        benchmark::DoNotOptimize(r.embedding.data());
    }
    state.counters["KL"] = kl;
}

const bool registered = [] {
    for (const std::string method : {"exact", "bh", "fft"}) {
        auto* b = benchmark::RegisterBenchmark(("tsne/gradient_" + method + "/simd").c_str(),
                                               [method](benchmark::State& s) { gradient(s, method); });
        b->ArgNames({"N"})->Unit(benchmark::kMillisecond)->UseRealTime();
        for (const std::int64_t n : {1000, 10000, 100000})
            if (method != "exact" || n <= 5000) b->Arg(n);
    }
    // The scalar reference of the exact gradient, for the simd speed-up.
    benchmark::RegisterBenchmark("tsne/gradient_exact/scalar", [](benchmark::State& s) { gradient(s, "exact_scalar"); })
        ->ArgNames({"N"})
        ->Arg(1000)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    const std::pair<const char*, dskit::tsne_method> methods[] = {
        {"exact", dskit::tsne_method::exact}, {"bh", dskit::tsne_method::barnes_hut}, {"fft", dskit::tsne_method::fft}};
    for (const auto& entry : methods) {
        const dskit::tsne_method method = entry.second;
        auto* b = benchmark::RegisterBenchmark(
            (std::string("tsne/") + entry.first + "/simd").c_str(),
            [method](benchmark::State& s) { full_run<dskit::backend::simd<>>(s, method); });
        b->ArgNames({"N"})->Arg(1797)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    return true;
}();

} // namespace
