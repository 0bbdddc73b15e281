// The last, serial step every t-SNE gradient shares: Z and the gradient from per-point partial results.
#pragma once

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "dskit/core/matrix.hpp"

namespace dskit::detail {

/// x[0] + x[stride] + ... (count terms) in four interleaved partial sums, combined as (0 + 1) + (2 + 3):
/// a fixed order, and not one latency-bound chain of dependent adds.
inline double strided_sum4(const double* x, std::size_t count, std::size_t stride) noexcept
{
    double s[4] = {};
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4)
        for (std::size_t r = 0; r < 4; ++r) s[r] += x[(i + r) * stride];
    for (; i < count; ++i) s[0] += x[i * stride];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/// In a fixed order (so the result is bit-identical whatever the thread count that produced the parts):
/// Z = sum_i z_i, the sum of p log w, and grad_i = 4 (exaggeration attr_i - rep_i / Z).
/// Returns {Z, sum_i plogw_i}. Serial, once per iteration; the sums by strided_sum4 (one chain of dependent
/// adds was ~2 us of each digits iteration).
template <int Dim>
std::pair<double, double> sum_tsne_gradient(const std::vector<std::array<double, Dim>>& attr,
                                            const std::vector<std::array<double, Dim>>& rep,
                                            const std::vector<double>& zrow, const std::vector<double>& plogw,
                                            double exaggeration, matrix_ref<double>& grad)
{
    const double z = strided_sum4(zrow.data(), zrow.size(), 1);
    const double total_plogw = strided_sum4(plogw.data(), plogw.size(), 1);
    const double inv_z = z > 0.0 ? 1.0 / z : 0.0;
    const index_t stride = grad.outerStride();
    double* g = grad.data();
    for (std::size_t k = 0; k < attr.size(); ++k)
        for (std::size_t c = 0; c < static_cast<std::size_t>(Dim); ++c)
            g[static_cast<index_t>(k) * stride + static_cast<index_t>(c)] =
                4.0 * (exaggeration * attr[k][c] - rep[k][c] * inv_z);
    return {z, total_plogw};
}

} // namespace dskit::detail
