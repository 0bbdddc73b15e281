// The last, serial step every t-SNE gradient shares: Z and the gradient from per-point partial results.
#pragma once

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "dskit/core/matrix.hpp"

namespace dskit::detail {

/// In index order (so the result is bit-identical whatever the thread count that produced the parts):
/// Z = sum_i z_i, the sum of p log w, and grad_i = 4 (exaggeration attr_i - rep_i / Z).
/// Returns {Z, sum_i plogw_i}.
template <int Dim>
std::pair<double, double> sum_tsne_gradient(const std::vector<std::array<double, Dim>>& attr,
                                            const std::vector<std::array<double, Dim>>& rep,
                                            const std::vector<double>& zrow, const std::vector<double>& plogw,
                                            double exaggeration, matrix_ref<double>& grad)
{
    double z = 0.0, total_plogw = 0.0;
    for (std::size_t i = 0; i < zrow.size(); ++i) {
        z += zrow[i];
        total_plogw += plogw[i];
    }
    const double inv_z = z > 0.0 ? 1.0 / z : 0.0;
    for (std::size_t i = 0; i < attr.size(); ++i)
        for (std::size_t c = 0; c < static_cast<std::size_t>(Dim); ++c)
            grad(static_cast<index_t>(i), static_cast<index_t>(c)) =
                4.0 * (exaggeration * attr[i][c] - rep[i][c] * inv_z);
    return {z, total_plogw};
}

} // namespace dskit::detail
