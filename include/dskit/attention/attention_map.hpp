// Attention maps: the per-head weight matrices, materialised for inspection (heat maps, probing).
//
//   std::vector<matrix<float>> w = attention_weights(q, k, 4, 4);                       // w[h]: [N, L]
//   auto wc = attention_weights<backend::scalar>(q, k, 8, 2, attention_mods::causal{}); // GQA, causal
//
// Same layout, modifiers and defaults as dskit::attention (attention/flash.hpp): q is [N, heads * d],
// k is [L, kv_heads * d], query head h reads key head h / (heads / kv_heads), and
//
//   w[h] = softmax(mod(scale * Q_h K_g^T))      (softmax over keys; scale defaults to 1/sqrt(d))
//
// so attention(q, k, v, ...) equals, head by head, w[h] * V_g. A query whose keys are all masked
// gets a row of zeros, as in the fused kernel. This path stores heads * N * L floats: it is for
// looking at the weights, not for running a model (dskit::attention never stores them).
//
// One matrix per head rather than a [heads * N, L] block: each is ready for write_attention_svg
// (attention/heatmap_svg.hpp) or for Eigen expressions; torch's [H, N, L] weights (need_weights=True,
// average_attn_weights=False) are w[0], ..., w[H - 1].
//
// Errors: shape_error naming "attention_weights" when heads does not divide q's columns, k does not
// have kv_heads * d columns or kv_heads does not divide heads; the modifier's own checks as in attention().
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "dskit/attention/flash.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/ops/gemm.hpp"
#include "dskit/ops/softmax.hpp"

namespace dskit {

namespace detail {
inline void check_attention_weights(const const_matrix_ref<float>& q, const const_matrix_ref<float>& k, index_t heads,
                                    index_t kv_heads)
{
    check_attention_heads("attention_weights", q, k, heads, kv_heads);
}
} // namespace detail

/// The attention weights of every query head: result[h] is [q.rows(), k.rows()], rows summing to 1
/// (0 for a fully masked query). Scores on Backend's GEMM, the modifier applied as the kernels do.
template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
std::vector<matrix<float>> attention_weights(const_matrix_ref<float> q, const_matrix_ref<float> k, index_t heads,
                                             index_t kv_heads, const Modifier& mod = {},
                                             std::optional<float> scale = std::nullopt)
{
    detail::check_attention_weights(q, k, heads, kv_heads);
    mod.validate(heads, q.rows(), k.rows());
    const index_t n = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
    const float s = scale.value_or(1.0f / std::sqrt(static_cast<float>(d)));
    constexpr float neg_inf = -std::numeric_limits<float>::infinity();
    std::vector<matrix<float>> w(static_cast<std::size_t>(heads));
    for (index_t h = 0; h < heads; ++h) {
        matrix<float>& p = w[static_cast<std::size_t>(h)];
        p.resize(n, len);
        if (n == 0 || len == 0) continue;
        ops::matmul_nt<Backend>(q.middleCols(h * d, d), k.middleCols((h / group) * d, d), p);
        p *= s;
        // The kernels hand the modifier scale * (q . k), then treat keys outside keys() as masked.
        mod.apply(h, 0, 0, n, len, p.data(), len);
        for (index_t i = 0; i < n; ++i) {
            const attention_mods::key_range r = mod.keys(h, i, i + 1, len);
            const index_t b = std::clamp<index_t>(r.begin, 0, len), e = std::clamp<index_t>(r.end, b, len);
            p.row(i).head(b).setConstant(neg_inf);
            p.row(i).tail(len - e).setConstant(neg_inf);
        }
        ops::softmax_rows<Backend>(p, p);
    }
    return w;
}

} // namespace dskit
