// Helpers shared by dskit_bench's files.
#pragma once

#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include <dskit/core/matrix.hpp>

namespace dskit::bench {

inline matrix<float> random_matrix(index_t rows, index_t cols, unsigned seed = 42, float scale = 1.0f)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    matrix<float> m(rows, cols);
    for (index_t i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
    return m;
}

/// A rate counter (per second of real time): GFLOPS or GBps.
inline benchmark::Counter rate(double amount_per_iteration)
{
    return benchmark::Counter(amount_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                              benchmark::Counter::kIs1000);
}

} // namespace dskit::bench
