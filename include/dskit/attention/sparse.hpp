// Dynamic sparse attention: each query attends to a subset of the keys chosen from the input itself.
//
//   // keep the 64 highest-scoring keys of every query (exact top-k, then softmax over those)
//   dskit::sparse_attention(q, k, v, heads, kv_heads, out, dskit::topk_keys{64});
//   // keep a quarter of the 128-key blocks per block of 64 queries, ranked by an upper bound of their scores
//   dskit::sparse_attention(q, k, v, heads, kv_heads, out, dskit::block_sparse{.keep = 0.25});
//
// Layout, score modifiers (applied before the selection: masked keys are never chosen), GQA and the
// all-masked-row rule (zeros) are those of dskit::attention (attention/flash.hpp).
//
// topk_keys: per query, the k largest modified scores (ties: the smaller key index), softmax over
// them. It computes every score (Q K^T for all keys) and skips the P V work of the others, so it
// saves at most about half of the dense time; use it as the quality reference for block_sparse.
//
// block_sparse: keys are split into blocks of `block` keys. For every block the per-feature minimum
// and maximum of its keys give an upper bound of q . k for any key of the block (the Quest bound:
// sum_c max(q_c kmin_c, q_c kmax_c)); a block of 64 queries keeps the ceil(keep * visible) blocks
// (at least min_blocks) with the highest bound over its queries, and attends densely to them. The
// bound ignores additive modifiers (ALiBi, decays): they are applied to the kept blocks' scores.
// Time scales with the kept fraction; quality depends on how concentrated attention is (measured by
// the dskit_bench entries attention/block_sparse/... on a documented concentrated input).
//
// Errors: those of dskit::attention, and value_error for k < 1, block < 1 or keep outside (0, 1].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "dskit/attention/flash.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/ops/gemm.hpp"
#include "dskit/ops/softmax.hpp"

namespace dskit {

/// Keep the k highest-scoring keys of every query.
struct topk_keys {
    index_t k = 64;
};

/// Keep, per block of 64 queries, the key blocks with the highest upper bound of their scores.
struct block_sparse {
    index_t block = 128;    ///< keys per block
    double keep = 0.25;     ///< fraction of the visible key blocks kept (rounded up)
    index_t min_blocks = 2; ///< kept at least (when visible)
};

namespace detail {

inline constexpr index_t sparse_query_block = 64;
inline constexpr float sparse_neg_inf = -std::numeric_limits<float>::infinity();

inline void check_sparse(const topk_keys& t)
{
    if (t.k < 1) throw value_error(describe("sparse_attention", "topk_keys.k >= 1", std::to_string(t.k)));
}

inline void check_sparse(const block_sparse& b)
{
    if (b.block < 1)
        throw value_error(describe("sparse_attention", "block_sparse.block >= 1", std::to_string(b.block)));
    if (!(b.keep > 0.0 && b.keep <= 1.0))
        throw value_error(describe("sparse_attention", "block_sparse.keep in (0, 1]", std::to_string(b.keep)));
    if (b.min_blocks < 1)
        throw value_error(describe("sparse_attention", "block_sparse.min_blocks >= 1", std::to_string(b.min_blocks)));
}

/// Per-thread scratch of at least n floats.
inline float* sparse_scratch(std::vector<float>& v, index_t n)
{
    if (v.size() < static_cast<std::size_t>(n)) v.resize(static_cast<std::size_t>(n));
    return v.data();
}

/// Indices of the k largest of x[0, n) (1 <= k <= n; ties: the smaller index) in `idx`, by radix selection:
/// floats map to unsigned keys in the same order, one pass builds a histogram of the top 11 bits and finds
/// the bucket that holds the k-th largest, a second pass takes every index above that bucket and collects
/// the bucket's own entries, and only those (few, for spread-out scores) are ordered with nth_element.
/// `keys` is scratch of n entries.
inline void topk_indices(const float* x, index_t n, index_t k, std::uint32_t* keys, std::vector<index_t>& idx,
                         std::vector<index_t>& cand)
{
    constexpr int shift = 21; // 2^11 buckets
    std::uint32_t hist[1u << (32 - shift)] = {};
    for (index_t i = 0; i < n; ++i) {
        std::uint32_t u;
        std::memcpy(&u, x + i, sizeof u);
        u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); // order-preserving: larger float, larger key
        keys[i] = u;
        ++hist[u >> shift];
    }
    std::uint32_t bucket = (1u << (32 - shift)) - 1;
    index_t above = 0; // entries in buckets above `bucket`
    while (above + static_cast<index_t>(hist[bucket]) < k) above += static_cast<index_t>(hist[bucket--]);
    idx.clear();
    cand.clear();
    for (index_t i = 0; i < n; ++i) {
        const std::uint32_t b = keys[i] >> shift;
        if (b > bucket)
            idx.push_back(i);
        else if (b == bucket)
            cand.push_back(i);
    }
    const auto better = [&](index_t a, index_t b) { return keys[a] > keys[b] || (keys[a] == keys[b] && a < b); };
    const auto need = static_cast<std::ptrdiff_t>(k - above);
    std::nth_element(cand.begin(), cand.begin() + (need - 1), cand.end(), better);
    idx.insert(idx.end(), cand.begin(), cand.begin() + need);
}

template <class Backend, class Mod>
void topk_attention(const const_matrix_ref<float>& q, const const_matrix_ref<float>& k,
                    const const_matrix_ref<float>& v, index_t heads, index_t kv_heads, matrix_ref<float>& out,
                    const topk_keys& sel, const Mod& mod, float scale)
{
    const index_t n = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
    constexpr index_t block = 64; // queries per task (fewer: Eigen repacks K for each task)
    const index_t q_blocks = (n + block - 1) / block;
    parallel_for(
        heads * q_blocks,
        [&](index_t task) {
            // Head by head: consecutive tasks of a thread reuse one head's K/V in cache, and each thread's
            // contiguous share holds whole heads, early and late (causal: short and long) query blocks alike.
            const index_t h = task / q_blocks, g = h / group, i0 = task % q_blocks * block;
            const index_t rows = std::min(block, n - i0);
            const attention_mods::key_range kr = mod.keys(h, i0, i0 + rows, len);
            const index_t j0 = kr.begin, cols = std::max<index_t>(kr.end - kr.begin, 0);
            float* dst = out.data() + i0 * out.outerStride() + h * d;
            if (cols == 0) {
                for (index_t r = 0; r < rows; ++r)
                    std::fill(dst + r * out.outerStride(), dst + r * out.outerStride() + d, 0.0f);
                return;
            }
            thread_local std::vector<float> s_buf, q_buf, acc_buf;
            thread_local std::vector<index_t> idx, cand;
            thread_local std::vector<std::uint32_t> key_buf;
            // Q block scaled once; S = Q K^T for every visible key (the block is small enough for L2).
            float* qs = sparse_scratch(q_buf, rows * d);
            for (index_t r = 0; r < rows; ++r) {
                const float* src = q.data() + (i0 + r) * q.outerStride() + h * d;
                for (index_t x = 0; x < d; ++x) qs[r * d + x] = src[x] * scale;
            }
            float* s = sparse_scratch(s_buf, rows * cols);
            Eigen::Map<matrix<float>> sm(s, rows, cols);
            ops::matmul_nt<Backend>(Eigen::Map<const matrix<float>>(qs, rows, d), k.block(j0, g * d, cols, d), sm);
            mod.apply(h, i0, j0, rows, cols, s, cols);
            const index_t keep = std::min(sel.k, cols);
            float* acc = sparse_scratch(acc_buf, d);
            if (key_buf.size() < static_cast<std::size_t>(cols)) key_buf.resize(static_cast<std::size_t>(cols));
            for (index_t r = 0; r < rows; ++r) {
                const float* row = s + r * cols;
                topk_indices(row, cols, keep, key_buf.data(), idx, cand);
                float* o = dst + r * out.outerStride();
                float m = sparse_neg_inf;
                for (const index_t c : idx) m = std::max(m, row[c]);
                if (m == sparse_neg_inf) { // only masked keys: no weight anywhere (NaN scores: a NaN row)
                    std::fill(o, o + d, any_nan(row, cols) ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
                    continue;
                }
                std::fill(acc, acc + d, 0.0f);
                double sum = 0.0;
                for (const index_t c : idx) {
                    const float w = std::exp(row[c] - m);
                    if (w == 0.0f) continue;
                    sum += w;
                    const float* vr = v.data() + (j0 + c) * v.outerStride() + g * d;
                    for (index_t x = 0; x < d; ++x) acc[x] += w * vr[x]; // vectorised by the compiler
                }
                const auto inv = static_cast<float>(1.0 / sum);
                for (index_t x = 0; x < d; ++x) o[x] = acc[x] * inv;
            }
        },
        static_cast<double>(block) * static_cast<double>(len) * static_cast<double>(d) * 2.0);
}

template <class Backend, class Mod>
void block_sparse_attention(const const_matrix_ref<float>& q, const const_matrix_ref<float>& k,
                            const const_matrix_ref<float>& v, index_t heads, index_t kv_heads, matrix_ref<float>& out,
                            const block_sparse& sel, const Mod& mod, float scale)
{
    const index_t n = q.rows(), len = k.rows(), d = q.cols() / heads, group = heads / kv_heads;
    const index_t kb = sel.block, k_blocks = (len + kb - 1) / kb;
    // Per K/V head and key block: the per-feature minimum and maximum of its keys, [kv_heads][k_blocks][d].
    std::vector<float> kmin(static_cast<std::size_t>(kv_heads * k_blocks * d)), kmax(kmin.size());
    parallel_for(
        kv_heads * k_blocks,
        [&](index_t gb) {
            const index_t g = gb / k_blocks, b = gb % k_blocks;
            float* lo = kmin.data() + gb * d;
            float* hi = kmax.data() + gb * d;
            std::fill(lo, lo + d, std::numeric_limits<float>::infinity());
            std::fill(hi, hi + d, sparse_neg_inf);
            for (index_t j = b * kb; j < std::min(len, (b + 1) * kb); ++j) {
                const float* kr = k.data() + j * k.outerStride() + g * d;
                for (index_t x = 0; x < d; ++x) {
                    lo[x] = std::min(lo[x], kr[x]);
                    hi[x] = std::max(hi[x], kr[x]);
                }
            }
        },
        static_cast<double>(kb * d));

    const index_t q_blocks = (n + sparse_query_block - 1) / sparse_query_block;
    parallel_for(
        heads * q_blocks,
        [&](index_t task) {
            const index_t h = task / q_blocks, g = h / group, i0 = task % q_blocks * sparse_query_block; // as above
            const index_t rows = std::min(sparse_query_block, n - i0);
            const attention_mods::key_range kr = mod.keys(h, i0, i0 + rows, len);
            const index_t b_first = std::max<index_t>(kr.begin, 0) / kb;
            const index_t b_end = kr.end > kr.begin ? (kr.end + kb - 1) / kb : b_first;
            const index_t visible = b_end - b_first;
            float* dst = out.data() + i0 * out.outerStride() + h * d;
            if (visible <= 0) {
                for (index_t r = 0; r < rows; ++r)
                    std::fill(dst + r * out.outerStride(), dst + r * out.outerStride() + d, 0.0f);
                return;
            }
            // Scaled queries of the block, then each visible key block's bound: the largest over the queries.
            thread_local std::vector<float> qs_buf, bound_buf, s_buf, ks_buf, vs_buf;
            float* qs = sparse_scratch(qs_buf, rows * d);
            for (index_t r = 0; r < rows; ++r) {
                const float* src = q.data() + (i0 + r) * q.outerStride() + h * d;
                for (index_t x = 0; x < d; ++x) qs[r * d + x] = src[x] * scale;
            }
            float* bound = sparse_scratch(bound_buf, visible);
            for (index_t b = 0; b < visible; ++b) {
                const float* lo = kmin.data() + (g * k_blocks + b_first + b) * d;
                const float* hi = kmax.data() + (g * k_blocks + b_first + b) * d;
                float best = sparse_neg_inf;
                for (index_t r = 0; r < rows; ++r) {
                    const float* qr = qs + r * d;
                    float u = 0.0f;
                    for (index_t x = 0; x < d; ++x) u += std::max(qr[x] * lo[x], qr[x] * hi[x]);
                    best = std::max(best, u);
                }
                bound[b] = best;
            }
            const auto wanted = static_cast<index_t>(std::ceil(sel.keep * static_cast<double>(visible)));
            const index_t keep = std::min(visible, std::max(wanted, sel.min_blocks));
            thread_local std::vector<index_t> order;
            order.resize(static_cast<std::size_t>(visible));
            std::iota(order.begin(), order.end(), index_t(0));
            // Highest bound first, ties by block index; the kept blocks then go back to key order.
            std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](index_t a, index_t b) {
                return bound[a] > bound[b] || (bound[a] == bound[b] && a < b);
            });
            std::sort(order.begin(), order.begin() + keep);

            // Gather the kept keys and values, then dense attention on them.
            index_t cols = 0;
            for (index_t t = 0; t < keep; ++t) {
                const index_t b = b_first + order[static_cast<std::size_t>(t)];
                cols += std::min(len, (b + 1) * kb) - b * kb;
            }
            float* ks = sparse_scratch(ks_buf, cols * d);
            float* vs = sparse_scratch(vs_buf, cols * d);
            index_t c = 0;
            for (index_t t = 0; t < keep; ++t) {
                const index_t b = b_first + order[static_cast<std::size_t>(t)];
                for (index_t j = b * kb; j < std::min(len, (b + 1) * kb); ++j, ++c) {
                    std::copy_n(k.data() + j * k.outerStride() + g * d, d, ks + c * d);
                    std::copy_n(v.data() + j * v.outerStride() + g * d, d, vs + c * d);
                }
            }
            float* s = sparse_scratch(s_buf, rows * cols);
            Eigen::Map<matrix<float>> sm(s, rows, cols);
            const Eigen::Map<const matrix<float>> qm(qs, rows, d), km(ks, cols, d), vm(vs, cols, d);
            ops::matmul_nt<Backend>(qm, km, sm);
            c = 0;
            for (index_t t = 0; t < keep; ++t) {
                const index_t b = b_first + order[static_cast<std::size_t>(t)];
                const index_t bn = std::min(len, (b + 1) * kb) - b * kb;
                mod.apply(h, i0, b * kb, rows, bn, s + c, cols);
                if (b * kb < kr.begin) // the first visible block may start before the key range
                    for (index_t r = 0; r < rows; ++r)
                        std::fill(s + r * cols + c, s + r * cols + c + (kr.begin - b * kb), sparse_neg_inf);
                if ((b + 1) * kb > kr.end && kr.end > b * kb)
                    for (index_t r = 0; r < rows; ++r)
                        std::fill(s + r * cols + c + (kr.end - b * kb), s + r * cols + c + bn, sparse_neg_inf);
                c += bn;
            }
            ops::softmax_rows<Backend>(sm, sm); // all-masked rows become zeros
            Eigen::Map<matrix<float>, 0, Eigen::OuterStride<>> om(dst, rows, d,
                                                                  Eigen::OuterStride<>(out.outerStride()));
            ops::matmul<Backend>(sm, vm, om);
        },
        static_cast<double>(sparse_query_block) * static_cast<double>(len) * static_cast<double>(d) * 2.0 * sel.keep);
}

} // namespace detail

/// Sparse attention: out = softmax over the selected keys of mod(scale Q K^T), times V. `Selection` is
/// topk_keys or block_sparse; see the header comment.
template <class Backend = default_backend, class Selection, score_modifier Modifier = attention_mods::none>
void sparse_attention(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v, index_t heads,
                      index_t kv_heads, matrix_ref<float> out, const Selection& sel, const Modifier& mod = {},
                      std::optional<float> scale = std::nullopt)
{
    detail::check_attention(q, k, v, heads, kv_heads, out);
    detail::check_sparse(sel);
    mod.validate(heads, q.rows(), k.rows());
    const index_t d = q.cols() / heads;
    const float s = scale.value_or(1.0f / std::sqrt(static_cast<float>(d)));
    if (q.rows() == 0) return;
    if (k.rows() == 0) {
        out.setZero();
        return;
    }
    if constexpr (std::is_same_v<Selection, topk_keys>)
        detail::topk_attention<Backend>(q, k, v, heads, kv_heads, out, sel, mod, s);
    else
        detail::block_sparse_attention<Backend>(q, k, v, heads, kv_heads, out, sel, mod, s);
}

/// Returns the sparse attention output in a new [N, heads * d] matrix.
template <class Backend = default_backend, class Selection, score_modifier Modifier = attention_mods::none>
matrix<float> sparse_attention(const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v,
                               index_t heads, index_t kv_heads, const Selection& sel, const Modifier& mod = {},
                               std::optional<float> scale = std::nullopt)
{
    matrix<float> out(q.rows(), q.cols());
    sparse_attention<Backend>(q, k, v, heads, kv_heads, out, sel, mod, scale);
    return out;
}

} // namespace dskit
