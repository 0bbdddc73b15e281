// Error measure for whole outputs of the layer tests.
#pragma once

#include <algorithm>
#include <cmath>

#include <dskit/core/matrix.hpp>

#include "../test_util.hpp"

namespace dskit::test {

/// max |a - b| / max |b|: the error relative to the output's scale. An element-wise relative error
/// is not meaningful for outputs of sums that cancel to near zero (PyTorch's own float32 output of the
/// fixture model is 2e-4 "element-wise relative" away from its float64 output, but 2e-7 by this measure).
template <class A, class B>
double scaled_error(const A& a, const B& b)
{
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    if (a.size() == 0) return 0.0;
    if (!a.allFinite() || !b.allFinite()) return INFINITY;
    const double scale = std::max(static_cast<double>(b.cwiseAbs().maxCoeff()), 1e-30);
    return static_cast<double>((a - b).cwiseAbs().maxCoeff()) / scale;
}

} // namespace dskit::test
