// Helpers shared by dskit's tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include <dskit/core/matrix.hpp>

namespace dskit::test {

/// Path of a committed fixture file (tests/fixtures/<name>).
inline std::string fixture(const std::string& name)
{
    return std::string(DSKIT_FIXTURE_DIR) + "/" + name;
}

/// Deterministic normal(0, scale) matrix.
inline matrix<float> random_matrix(index_t rows, index_t cols, unsigned seed = 1, float scale = 1.0f)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    matrix<float> m(rows, cols);
    for (index_t i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
    return m;
}

/// max |a - b| / max(|b|, floor): relative error with a floor for values near zero.
template <class A, class B>
double max_rel_error(const A& a, const B& b, double floor = 1e-3)
{
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    double worst = 0;
    for (index_t i = 0; i < a.rows(); ++i)
        for (index_t j = 0; j < a.cols(); ++j) {
            const double x = a(i, j), y = b(i, j);
            if (!std::isfinite(x) || !std::isfinite(y)) return INFINITY;
            worst = std::max(worst, std::abs(x - y) / std::max(std::abs(y), floor));
        }
    return worst;
}

} // namespace dskit::test
