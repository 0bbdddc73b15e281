// Row softmax on the scalar backend: the textbook stable form, exp(x - max) / sum.
#pragma once

#include <cmath>
#include <limits>

#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail {

template <>
struct kernel<ops::tag::softmax, backend::scalar> {
    static void run(const_matrix_ref<float> in, matrix_ref<float> out)
    {
        const index_t n = in.cols();
        parallel_for(
            in.rows(),
            [&](index_t i) {
                float m = -std::numeric_limits<float>::infinity();
                bool nan = false;
                for (index_t j = 0; j < n; ++j) {
                    m = in(i, j) > m ? in(i, j) : m;
                    nan = nan || std::isnan(in(i, j));
                }
                if (m == -std::numeric_limits<float>::infinity()) {
                    // Every entry is -inf: no weight anywhere. Zeros (NaN if a NaN is there).
                    for (index_t j = 0; j < n; ++j) out(i, j) = nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
                    return;
                }
                double sum = 0.0; // the reference sums in double: it is the accurate side of every comparison
                for (index_t j = 0; j < n; ++j) {
                    const float e = std::exp(in(i, j) - m);
                    out(i, j) = e;
                    sum += e;
                }
                const auto s = static_cast<float>(sum);
                for (index_t j = 0; j < n; ++j) out(i, j) = out(i, j) / s;
            },
            static_cast<double>(n) * 30.0);
    }
};

} // namespace dskit::detail
