// multi_head_attention<Backend, Modifier>: PyTorch's nn.MultiheadAttention (batch_first, one sequence).
//
//     multi_head_attention<> attn(8);                 // 8 heads; embed_dim and bias come from load()
//     attn.load(weights, "layers.0.attn.");           // in_proj_weight [3E, E], in_proj_bias [3E],
//                                                     // out_proj.weight [E, E], out_proj.bias [E]
//     matrix<float> y = attn.forward(x);              // self-attention, x: [N, E] -> [N, E]
//     y = attn.forward(q, kv, kv);                    // cross-attention: q [N, E], kv [L, E]
//     y = attn.forward(x, attention_mods::causal{});  // any score modifier (attention/policy.hpp)
//     auto w = attn.attention_weights(x);             // w[h]: [N, N], for heat maps
//
//     // A causal pre-norm block; forward(x) uses the modifier given at construction:
//     using block = residual<layer_norm<>, multi_head_attention<default_backend, attention_mods::causal>>;
//
// The formula (E = embed_dim, H = heads, d = E / H; W = in_proj_weight split in row blocks W_q, W_k, W_v):
//
//     Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v
//     head_h = softmax(mod(Q_h K_h^T / sqrt(d))) V_h          (columns [h d, (h + 1) d))
//     out = concat(head_0, ..., head_{H-1}) W_o^T + b_o         (out_proj)
//
// which is torch.nn.MultiheadAttention(E, H, bias=..., batch_first=True) in eval mode: PyTorch's
// key_padding_mask (True = ignore) is attention_mods::key_mask with the opposite convention (nonzero =
// attend), its causal attn_mask is attention_mods::causal{}. A query whose keys are all masked gets the
// output projection of zeros (b_o) where PyTorch gives NaN. Not supported: kdim/vdim != embed_dim
// (separate q/k/v_proj_weight), add_bias_kv, add_zero_attn, dropout (inference only).
//
// The projections run on Backend's GEMM (self-attention: one [N, E] x [E, 3E] product; key == value:
// two), the attention on the fused kernel dskit::attention<Backend> (no N x L matrix). The number of
// heads is not stored in a state_dict, so it is a constructor argument; there is no default constructor.
//
// Errors (shape_error naming "multi_head_attention"): heads not dividing E; an input without E columns;
// key and value of different lengths; in_proj_weight not [3E, E]. A missing tensor: missing_weight_error.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dskit/attention/attention_map.hpp"
#include "dskit/attention/flash.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/linear.hpp"
#include "dskit/layers/parameter.hpp"
#include "dskit/ops/gemm.hpp"

namespace dskit {

template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
class multi_head_attention {
public:
    using modifier_type = Modifier;

    /// `heads` heads; embed_dim and bias are taken from load() (bias iff "in_proj_bias" is present).
    explicit multi_head_attention(index_t heads, Modifier mod = {}) : heads_(heads), mod_(std::move(mod))
    {
        check_heads();
    }

    /// A fixed [embed_dim] module with zero parameters; load() requires these shapes (and the biases
    /// when `bias`, like nn.MultiheadAttention(embed_dim, heads, bias=bias)).
    multi_head_attention(index_t embed_dim, index_t heads, bool bias = true, Modifier mod = {})
        : heads_(heads), mod_(std::move(mod)), in_proj_weight_(zero_in_proj(embed_dim)),
          out_proj_(embed_dim, embed_dim, bias), has_bias_(bias), fixed_shape_(true), ready_(true)
    {
        if (bias) in_proj_bias_ = vector<float>::Zero(3 * embed_dim);
    }

    index_t embed_dim() const noexcept { return in_proj_weight_.cols(); }
    index_t heads() const noexcept { return heads_; }
    index_t head_dim() const noexcept { return embed_dim() / heads_; }
    bool has_bias() const noexcept { return has_bias_; }
    const Modifier& modifier() const noexcept { return mod_; }

    /// [3E, E]: the rows of W_q, W_k, W_v.
    const matrix<float>& in_proj_weight() const noexcept { return in_proj_weight_; }
    /// [3E], or empty without bias.
    const vector<float>& in_proj_bias() const noexcept { return in_proj_bias_; }
    const linear<Backend>& out_proj() const noexcept { return out_proj_; }

    /// Reads prefix + "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias". On error the
    /// module is left unchanged.
    void load(const weight_source& w, std::string_view prefix)
    {
        const std::string wname = detail::join_name(prefix, "in_proj_weight");
        const std::string bname = detail::join_name(prefix, "in_proj_bias");
        const std::string out_prefix = detail::join_name(prefix, "out_proj.");
        matrix<float> weight;
        vector<float> bias;
        bool found = has_bias_;
        if (fixed_shape_) {
            weight = detail::load_matrix(op, w, wname, 3 * embed_dim(), embed_dim());
            if (has_bias_) bias = detail::load_vector(op, w, bname, 3 * embed_dim());
        } else {
            weight = detail::load_matrix(op, w, wname, -1, -1);
            if (weight.rows() != 3 * weight.cols() || weight.cols() == 0)
                detail::throw_shape(op, "tensor '" + wname + "' of shape [3E, E]", detail::shape_of(weight));
            check_embed_dim(weight.cols());
            bias = detail::load_optional_vector(op, w, bname, weight.rows(), found);
        }
        // PyTorch's one `bias` flag covers both projections.
        linear<Backend> out(weight.cols(), weight.cols(), found);
        out.load(w, out_prefix);
        in_proj_weight_ = std::move(weight);
        in_proj_bias_ = std::move(bias);
        out_proj_ = std::move(out);
        has_bias_ = found;
        ready_ = true;
    }

    std::size_t parameter_count() const noexcept
    {
        return static_cast<std::size_t>(in_proj_weight_.size() + in_proj_bias_.size()) + out_proj_.parameter_count();
    }

    /// Self-attention with the module's modifier: x [N, E] -> [N, E].
    matrix<float> forward(const_matrix_ref<float> x) const { return forward(x, x, x, mod_); }

    /// Self-attention with the score modifier `mod` (instead of the module's).
    template <score_modifier Mod>
    matrix<float> forward(const_matrix_ref<float> x, const Mod& mod) const
    {
        return forward(x, x, x, mod);
    }

    /// query [N, E] attends over key and value [L, E] with the module's modifier -> [N, E].
    matrix<float> forward(const_matrix_ref<float> query, const_matrix_ref<float> key,
                          const_matrix_ref<float> value) const
    {
        return forward(query, key, value, mod_);
    }

    /// The same with the score modifier `mod`.
    template <score_modifier Mod>
    matrix<float> forward(const_matrix_ref<float> query, const_matrix_ref<float> key, const_matrix_ref<float> value,
                          const Mod& mod) const
    {
        check_inputs(query, key, &value);
        matrix<float> context(query.rows(), embed_dim());
        with_projections(query, key, value,
                         [&](const_matrix_ref<float> q, const_matrix_ref<float> k, const_matrix_ref<float> v) {
                             dskit::attention<Backend>(q, k, v, heads_, heads_, context, mod);
                         });
        return out_proj_.forward(context);
    }

    /// Per-head self-attention weights with the module's modifier: result[h] is [N, N].
    std::vector<matrix<float>> attention_weights(const_matrix_ref<float> x) const
    {
        return attention_weights(x, x, mod_);
    }

    /// Per-head self-attention weights with the score modifier `mod`.
    template <score_modifier Mod>
    std::vector<matrix<float>> attention_weights(const_matrix_ref<float> x, const Mod& mod) const
    {
        return attention_weights(x, x, mod);
    }

    /// Per-head weights of query [N, E] over key [L, E] (values do not matter): result[h] is [N, L].
    std::vector<matrix<float>> attention_weights(const_matrix_ref<float> query, const_matrix_ref<float> key) const
    {
        return attention_weights(query, key, mod_);
    }

    template <score_modifier Mod>
    std::vector<matrix<float>> attention_weights(const_matrix_ref<float> query, const_matrix_ref<float> key,
                                                 const Mod& mod) const
    {
        check_inputs(query, key, nullptr);
        const index_t e = embed_dim();
        if (same_view(query, key)) {
            const matrix<float> qk = project(query, 0, 2 * e);
            return dskit::attention_weights<Backend>(qk.leftCols(e), qk.rightCols(e), heads_, heads_, mod);
        }
        return dskit::attention_weights<Backend>(project(query, 0, e), project(key, e, e), heads_, heads_, mod);
    }

private:
    static constexpr std::string_view op = "multi_head_attention";

    void check_heads() const
    {
        if (heads_ < 1) throw value_error(detail::describe(op, "heads >= 1", std::to_string(heads_)));
    }

    void check_embed_dim(index_t e) const
    {
        detail::require_non_negative(op, "embed_dim", e);
        if (e % heads_ != 0)
            detail::throw_shape(op, "embed_dim divisible by heads = " + std::to_string(heads_),
                                "embed_dim = " + std::to_string(e));
    }

    /// Checks heads (initialised first) and embed_dim before anything is allocated.
    matrix<float> zero_in_proj(index_t embed_dim) const
    {
        check_heads();
        check_embed_dim(embed_dim);
        return matrix<float>::Zero(3 * embed_dim, embed_dim);
    }

    void check_inputs(const const_matrix_ref<float>& query, const const_matrix_ref<float>& key,
                      const const_matrix_ref<float>* value) const
    {
        if (!ready_)
            throw value_error(detail::describe(
                op, "loaded weights (a module built from a head count takes its shape from load())", "none"));
        const index_t e = embed_dim();
        detail::require_cols(op, "query", query, e);
        detail::require_cols(op, "key", key, e);
        if (value) {
            detail::require_cols(op, "value", *value, e);
            if (value->rows() != key.rows())
                detail::throw_shape(op, "value with key's " + std::to_string(key.rows()) + " rows",
                                    detail::shape_of(*value));
        }
    }

    static bool same_view(const const_matrix_ref<float>& a, const const_matrix_ref<float>& b) noexcept
    {
        return a.data() == b.data() && a.rows() == b.rows() && a.cols() == b.cols() &&
               a.outerStride() == b.outerStride();
    }

    /// x W[r0 : r0 + rows]^T + b[r0 : r0 + rows]: `rows` columns of the fused projection.
    matrix<float> project(const_matrix_ref<float> x, index_t r0, index_t rows) const
    {
        matrix<float> y(x.rows(), rows);
        std::span<const float> b;
        if (has_bias_) b = std::span<const float>(in_proj_bias_.data() + r0, static_cast<std::size_t>(rows));
        ops::linear<Backend>(x, in_proj_weight_.middleRows(r0, rows), b, y);
        return y;
    }

    /// Calls fn(Q, K, V) with the projections, sharing GEMMs between inputs that are the same view.
    template <class Fn>
    void with_projections(const const_matrix_ref<float>& query, const const_matrix_ref<float>& key,
                          const const_matrix_ref<float>& value, Fn&& fn) const
    {
        const index_t e = embed_dim();
        if (same_view(query, key) && same_view(key, value)) {
            const matrix<float> qkv = project(query, 0, 3 * e);
            fn(qkv.leftCols(e), qkv.middleCols(e, e), qkv.rightCols(e));
            return;
        }
        const matrix<float> q = project(query, 0, e);
        if (same_view(key, value)) {
            const matrix<float> kv = project(key, e, 2 * e);
            fn(q, kv.leftCols(e), kv.rightCols(e));
            return;
        }
        fn(q, project(key, e, e), project(value, 2 * e, e));
    }

    index_t heads_ = 1;
    Modifier mod_{};
    matrix<float> in_proj_weight_;
    vector<float> in_proj_bias_;
    linear<Backend> out_proj_;
    bool has_bias_ = false;
    bool fixed_shape_ = false;
    bool ready_ = false;
};

} // namespace dskit
