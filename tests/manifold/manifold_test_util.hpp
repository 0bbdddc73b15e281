// Helpers shared by the manifold tests.
#pragma once

#include <string>

#include <dskit/core/error.hpp>
#include <dskit/core/matrix.hpp>

#include "../test_util.hpp"

namespace dskit::test {

/// The message of the value_error f throws, or "(no value_error)".
template <class F>
std::string error_message(F&& f)
{
    try {
        f();
    } catch (const value_error& e) {
        return e.what();
    }
    return "(no value_error)";
}

/// Small clustered data: `n` points in `d` dimensions around 4 centres.
inline matrix<float> clusters(index_t n, index_t d, unsigned seed)
{
    matrix<float> x = random_matrix(n, d, seed);
    const matrix<float> c = random_matrix(4, d, seed + 1, 5.0f);
    for (index_t i = 0; i < n; ++i) x.row(i) += c.row(i % 4);
    return x;
}

} // namespace dskit::test
