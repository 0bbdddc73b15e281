// Multi-head attention over one sequence, fused: the N x L score matrix is never stored.
//
//   out = dskit::attention(q, k, v, heads, kv_heads);                                 // plain
//   dskit::attention(q, k, v, 8, 2, out, attention_mods::causal{});                   // GQA, causal
//   auto o = dskit::attention<backend::scalar>(q, k, v, 8, 8,
//                attention_mods::combine{attention_mods::causal{}, attention_mods::decay_relative{0.9f}});
//
// Layout (PyTorch's): q is [N, heads * d], k and v are [L, kv_heads * d], row-major; head h is
// columns [h d, (h + 1) d). Query head h reads key/value head h / (heads / kv_heads), so
// kv_heads == heads is multi-head, 1 < kv_heads < heads grouped-query, kv_heads == 1 multi-query
// attention. out is [N, heads * d]:
//
//   out_h = softmax(mod(scale * Q_h K_g^T)) V_g          (softmax over keys; scale defaults to 1/sqrt(d))
//
// mod is a score modifier from dskit/attention/policy.hpp (masks, decays, ALiBi and their combine),
// fused into the kernel. A query whose keys are all masked gets zeros. Any view works (strided
// row blocks, maps over the caller's memory); out must not overlap the inputs.
//
// An output gate from dskit/attention/gates.hpp (per head, per element, per sequence) multiplies each
// output row in the kernel's final normalisation, with no extra pass over the output:
//
//   dskit::attention(q, k, v, heads, heads, out, attention_mods::none{}, attention_gates::per_head{g});
//
// Performance (simd backend): K and V are packed once per call, then tasks of (head, 64 queries) run in
// parallel, each streaming 128-key blocks through register-tiled Q K^T and P V kernels with an online
// softmax in between; key blocks a mask hides entirely (causal, key_length) are skipped, so causal
// attention costs about half. Memory beyond the output: the packed copy of K and V, at most 32 MiB
// (long sequences are done a few K/V heads at a time; at least one head), plus per-thread tiles.
// For a few new tokens against a long cache see attention/decode.hpp; for sparse attention,
// attention/sparse.hpp.
//
// Errors: shape_error (naming "attention", the expected and the actual shape) when heads does not
// divide q's columns, k or v do not have kv_heads * d columns, k and v differ in length, kv_heads does
// not divide heads, out has the wrong shape, or the gate has the wrong shape; value_error when out
// overlaps an input.
#pragma once

#include <cmath>
#include <concepts>
#include <optional>
#include <string>

#include "dskit/attention/gates.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/scalar/attention.hpp"
#include "dskit/backend/simd/attention.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/ops/detail/checks.hpp"

namespace dskit {

/// What a score modifier must provide (see attention/policy.hpp).
template <class M>
concept score_modifier = requires(const M& m, index_t i, float s, float* p)
{
    m.validate(i, i, i);
    {
        m.keys(i, i, i, i)
        } -> std::same_as<attention_mods::key_range>;
    {
        m.score(i, i, i, s)
        } -> std::convertible_to<float>;
    m.apply(i, i, i, i, i, p, i);
};

namespace detail {
/// The head counts and q/k widths, for `op` (attention, attention_weights, ...).
inline void check_attention_heads(std::string_view op, const const_matrix_ref<float>& q,
                                  const const_matrix_ref<float>& k, index_t heads, index_t kv_heads)
{
    const auto str = [](index_t x) { return std::to_string(x); };
    if (heads < 1 || kv_heads < 1)
        throw_shape(op, "heads >= 1 and kv_heads >= 1", "heads = " + str(heads) + ", kv_heads = " + str(kv_heads));
    if (heads % kv_heads != 0)
        throw_shape(op, "kv_heads dividing heads = " + str(heads), "kv_heads = " + str(kv_heads));
    if (q.cols() % heads != 0 || q.cols() == 0)
        throw_shape(op, "q with a positive multiple of heads = " + str(heads) + " columns", shape_of(q));
    const index_t d = q.cols() / heads;
    if (k.cols() != kv_heads * d)
        throw_shape(op, "k with kv_heads * d = " + str(kv_heads * d) + " columns (q is " + shape_of(q) + ")",
                    shape_of(k));
}

inline void check_attention(const const_matrix_ref<float>& q, const const_matrix_ref<float>& k,
                            const const_matrix_ref<float>& v, index_t heads, index_t kv_heads,
                            const matrix_ref<float>& out)
{
    constexpr std::string_view op = "attention";
    check_attention_heads(op, q, k, heads, kv_heads);
    if (v.rows() != k.rows() || v.cols() != k.cols()) throw_shape(op, "v of k's shape " + shape_of(k), shape_of(v));
    if (out.rows() != q.rows() || out.cols() != q.cols())
        throw_shape(op, "out of q's shape " + shape_of(q), shape_of(out));
    if (overlaps(out, q) || overlaps(out, k) || overlaps(out, v))
        throw value_error(describe(op, "out not to overlap q, k or v", "an overlap"));
}
} // namespace detail

/// out = gate * multi-head attention of q over (k, v) with score modifier `mod`; scale defaults to 1/sqrt(d).
template <class Backend = default_backend, score_modifier Modifier, output_gate Gate>
void attention(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
               index_t kv_heads, matrix_ref<float> out, const Modifier& mod, const Gate& gate,
               std::optional<float> scale = std::nullopt)
{
    detail::check_attention(q, k, v, heads, kv_heads, out);
    mod.validate(heads, q.rows(), k.rows());
    const index_t d = q.cols() / heads;
    gate.validate(heads, q.rows(), d);
    const float s = scale.value_or(1.0f / std::sqrt(static_cast<float>(d)));
    if (q.rows() == 0) return;
    detail::kernel<ops::tag::attention, Backend>::run(q, k, v, heads, kv_heads, out, mod, s, gate);
}

/// out = multi-head attention of q over (k, v) with score modifier `mod`; scale defaults to 1/sqrt(d).
template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
void attention(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
               index_t kv_heads, matrix_ref<float> out, const Modifier& mod = {},
               std::optional<float> scale = std::nullopt)
{
    attention<Backend>(q, k, v, heads, kv_heads, out, mod, attention_gates::none{}, scale);
}

/// Returns the gated attention output in a new [N, heads * d] matrix.
template <class Backend = default_backend, score_modifier Modifier, output_gate Gate>
matrix<float> attention(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                        index_t kv_heads, const Modifier& mod, const Gate& gate,
                        std::optional<float> scale = std::nullopt)
{
    matrix<float> out(q.rows(), q.cols());
    attention<Backend>(q, k, v, heads, kv_heads, out, mod, gate, scale);
    return out;
}

/// Returns the attention output in a new [N, heads * d] matrix.
template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
matrix<float> attention(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                        index_t kv_heads, const Modifier& mod = {}, std::optional<float> scale = std::nullopt)
{
    matrix<float> out(q.rows(), q.cols());
    attention<Backend>(q, k, v, heads, kv_heads, out, mod, scale);
    return out;
}

} // namespace dskit
