// Matrix products on the scalar backend: the triple loop, summed in double, rows in parallel.
// Meant as the reference and for small shapes; use the simd backend for speed.
#pragma once

#include <span>

#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail {

template <>
struct kernel<ops::tag::gemm, backend::scalar> {
    /// out = a * b^T.
    static void run_nt(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
    {
        parallel_for(
            a.rows(),
            [&](index_t i) {
                for (index_t j = 0; j < b.rows(); ++j) {
                    double acc = 0.0;
                    for (index_t k = 0; k < a.cols(); ++k) acc += static_cast<double>(a(i, k)) * b(j, k);
                    out(i, j) = static_cast<float>(acc);
                }
            },
            2.0 * static_cast<double>(b.rows()) * static_cast<double>(a.cols()));
    }
    /// out = x * w^T + bias (empty bias: none).
    static void run_linear(const_matrix_ref<float> x, const_matrix_ref<float> w, std::span<const float> bias,
                           matrix_ref<float> out)
    {
        parallel_for(
            x.rows(),
            [&](index_t i) {
                for (index_t j = 0; j < w.rows(); ++j) {
                    double acc = bias.empty() ? 0.0 : static_cast<double>(bias[static_cast<std::size_t>(j)]);
                    for (index_t k = 0; k < x.cols(); ++k) acc += static_cast<double>(x(i, k)) * w(j, k);
                    out(i, j) = static_cast<float>(acc);
                }
            },
            2.0 * static_cast<double>(w.rows()) * static_cast<double>(x.cols()));
    }
    /// out = a * b.
    static void run_nn(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
    {
        parallel_for(
            a.rows(),
            [&](index_t i) {
                for (index_t j = 0; j < b.cols(); ++j) {
                    double acc = 0.0;
                    for (index_t k = 0; k < a.cols(); ++k) acc += static_cast<double>(a(i, k)) * b(k, j);
                    out(i, j) = static_cast<float>(acc);
                }
            },
            2.0 * static_cast<double>(b.cols()) * static_cast<double>(a.cols()));
    }
};

} // namespace dskit::detail
