// Attention on the scalar backend: the readable reference. Per head and query: all scores, their
// maximum, the weights and the weighted sum of values, accumulated in double; the output gate (see
// attention/gates.hpp) multiplies the normalised row.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dskit/attention/gates.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::ops::tag {
struct attention {};
} // namespace dskit::ops::tag

namespace dskit::detail {

template <>
struct kernel<ops::tag::attention, backend::scalar> {
    /// out[:, h d : (h+1) d] = gate * softmax(mod(scale Q_h K_g^T)) V_g with g = h / (heads / kv_heads).
    template <class Mod, class Gate = attention_gates::none>
    static void run(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                    index_t kv_heads, matrix_ref<float> out, const Mod& mod, float scale, const Gate& gate = {})
    {
        const index_t n = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
        parallel_for(
            heads,
            [&](index_t h) {
                const index_t g = h / group;
                std::vector<float> s(static_cast<std::size_t>(len));
                std::vector<double> acc(static_cast<std::size_t>(d));
                for (index_t i = 0; i < n; ++i) {
                    const attention_mods::key_range r = mod.keys(h, i, i + 1, len);
                    float m = -std::numeric_limits<float>::infinity();
                    bool nan = false; // a NaN score (NaN in the inputs) makes the row NaN, not zeros
                    for (index_t j = r.begin; j < r.end; ++j) {
                        double dot = 0;
                        for (index_t c = 0; c < d; ++c)
                            dot += static_cast<double>(q(i, h * d + c)) * static_cast<double>(k(j, g * d + c));
                        const float x = mod.score(h, i, j, static_cast<float>(dot) * scale);
                        s[static_cast<std::size_t>(j)] = x;
                        m = x > m ? x : m;
                        nan = nan || x != x;
                    }
                    if (nan) {
                        for (index_t c = 0; c < d; ++c) out(i, h * d + c) = std::numeric_limits<float>::quiet_NaN();
                        continue;
                    }
                    std::fill(acc.begin(), acc.end(), 0.0);
                    double sum = 0;
                    // No finite score: every key masked, the row is zeros.
                    if (m != -std::numeric_limits<float>::infinity()) {
                        for (index_t j = r.begin; j < r.end; ++j) {
                            const double w = std::exp(static_cast<double>(s[static_cast<std::size_t>(j)]) - m);
                            sum += w;
                            for (index_t c = 0; c < d; ++c)
                                acc[static_cast<std::size_t>(c)] += w * static_cast<double>(v(j, g * d + c));
                        }
                    }
                    if (!(sum > 0)) {
                        for (index_t c = 0; c < d; ++c) out(i, h * d + c) = 0.0f;
                        continue;
                    }
                    const double row = static_cast<double>(gate.row(h, i));
                    const float* elem = gate.elements(h, i, d);
                    for (index_t c = 0; c < d; ++c) {
                        double o = acc[static_cast<std::size_t>(c)] / sum * row;
                        if constexpr (Gate::has_element_factors) o *= static_cast<double>(elem[c]);
                        out(i, h * d + c) = static_cast<float>(o);
                    }
                }
            },
            static_cast<double>(n) * static_cast<double>(len) * static_cast<double>(d) * 4.0);
    }
};

} // namespace dskit::detail
