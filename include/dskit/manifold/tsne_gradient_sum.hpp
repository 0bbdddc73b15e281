// The last, serial step every t-SNE gradient shares: Z and the gradient from per-point partial results.
#pragma once

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "dskit/core/matrix.hpp"

namespace dskit::detail {

/// In a fixed order (so the result is bit-identical whatever the thread count that produced the parts):
/// Z = sum_i z_i, the sum of p log w, and grad_i = 4 (exaggeration attr_i - rep_i / Z).
/// Returns {Z, sum_i plogw_i}. Serial, once per iteration: the sums run in four interleaved partial sums
/// (one chain of dependent adds was latency-bound, ~2 us of each digits iteration).
template <int Dim>
std::pair<double, double> sum_tsne_gradient(const std::vector<std::array<double, Dim>>& attr,
                                            const std::vector<std::array<double, Dim>>& rep,
                                            const std::vector<double>& zrow, const std::vector<double>& plogw,
                                            double exaggeration, matrix_ref<double>& grad)
{
    const std::size_t n = zrow.size();
    double z4[4] = {}, p4[4] = {};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (std::size_t r = 0; r < 4; ++r) {
            z4[r] += zrow[i + r];
            p4[r] += plogw[i + r];
        }
    for (; i < n; ++i) {
        z4[0] += zrow[i];
        p4[0] += plogw[i];
    }
    const double z = (z4[0] + z4[1]) + (z4[2] + z4[3]), total_plogw = (p4[0] + p4[1]) + (p4[2] + p4[3]);
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
