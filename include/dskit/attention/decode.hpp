// Attention for decoding: a few new queries against a long key/value cache.
//
//   // cache: k_cache, v_cache [L, kv_heads * d] (the new tokens' keys and values already appended);
//   // q: [T, heads * d] for the T newest tokens
//   dskit::attention_decode(q, k_cache, v_cache, heads, kv_heads, out, attention_mods::causal{L - T});
//
// Same arguments, modifiers and result as dskit::attention (attention/flash.hpp), computed with a
// schedule for T << L: the cache is split into chunks of keys that run in parallel (flash-decoding),
// each chunk of K and V is read once for all T new tokens and all query heads that share it, and the
// chunks' partial softmax results are merged at the end. dskit::attention instead parallelises over
// heads and blocks of queries and packs K and V first, which pays off when there are many queries.
// Memory beyond the output: one partial result (d + 2 floats) per query row, K/V head and 256 keys.
//
// Errors: as dskit::attention (shape_error for mismatched shapes, value_error for overlapping output).
#pragma once

#include <cmath>
#include <optional>

#include "dskit/attention/flash.hpp"
#include "dskit/backend/simd/attention_decode.hpp"

namespace dskit {

namespace detail {
/// The scalar backend's decode is its attention: the reference does not need a second schedule.
template <>
struct kernel<ops::tag::attention_decode, backend::scalar> {
    template <class Mod>
    static void run(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                    index_t kv_heads, matrix_ref<float> out, const Mod& mod, float scale)
    {
        kernel<ops::tag::attention, backend::scalar>::run(q, k, v, heads, kv_heads, out, mod, scale);
    }
};
} // namespace detail

/// out = attention of the new queries q over the cache (k, v); see dskit::attention for the arguments.
template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
void attention_decode(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                      index_t kv_heads, matrix_ref<float> out, const Modifier& mod = {},
                      std::optional<float> scale = std::nullopt)
{
    detail::check_attention(q, k, v, heads, kv_heads, out);
    mod.validate(heads, q.rows(), k.rows());
    const index_t d = q.cols() / heads;
    const float s = scale.value_or(1.0f / std::sqrt(static_cast<float>(d)));
    if (q.rows() == 0) return;
    detail::kernel<ops::tag::attention_decode, Backend>::run(q, k, v, heads, kv_heads, out, mod, s);
}

/// Returns the decode attention output in a new [T, heads * d] matrix.
template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
matrix<float> attention_decode(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v,
                               index_t heads, index_t kv_heads, const Modifier& mod = {},
                               std::optional<float> scale = std::nullopt)
{
    matrix<float> out(q.rows(), q.cols());
    attention_decode<Backend>(q, k, v, heads, kv_heads, out, mod, scale);
    return out;
}

} // namespace dskit
