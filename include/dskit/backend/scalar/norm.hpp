// RMSNorm and LayerNorm on the scalar backend; row statistics are summed in double.
#pragma once

#include <cmath>
#include <span>

#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail {

template <>
struct kernel<ops::tag::rms_norm, backend::scalar> {
    static void run(const_matrix_ref<float> in, std::span<const float> weight, float eps, matrix_ref<float> out)
    {
        const index_t n = in.cols();
        parallel_for(
            in.rows(),
            [&](index_t i) {
                double ss = 0.0;
                for (index_t j = 0; j < n; ++j) ss += static_cast<double>(in(i, j)) * in(i, j);
                const float r = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
                for (index_t j = 0; j < n; ++j) {
                    const float w = weight.empty() ? 1.0f : weight[static_cast<std::size_t>(j)];
                    out(i, j) = in(i, j) * r * w;
                }
            },
            static_cast<double>(n) * 4.0);
    }
};

template <>
struct kernel<ops::tag::layer_norm, backend::scalar> {
    static void run(const_matrix_ref<float> in, std::span<const float> weight, std::span<const float> bias, float eps,
                    matrix_ref<float> out)
    {
        const index_t n = in.cols();
        parallel_for(
            in.rows(),
            [&](index_t i) {
                double sum = 0.0;
                for (index_t j = 0; j < n; ++j) sum += in(i, j);
                const auto mean = static_cast<float>(sum / static_cast<double>(n));
                double ss = 0.0; // biased variance, as PyTorch
                for (index_t j = 0; j < n; ++j) {
                    const double d = static_cast<double>(in(i, j)) - mean;
                    ss += d * d;
                }
                const float r = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
                for (index_t j = 0; j < n; ++j) {
                    const auto k = static_cast<std::size_t>(j);
                    float v = (in(i, j) - mean) * r;
                    if (!weight.empty()) v *= weight[k];
                    if (!bias.empty()) v += bias[k];
                    out(i, j) = v;
                }
            },
            static_cast<double>(n) * 6.0);
    }
};

} // namespace dskit::detail
