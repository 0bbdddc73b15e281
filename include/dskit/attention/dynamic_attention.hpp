// dynamic_attention<Backend, Modifier>: seed 001's DynamicAttention, multi-head attention whose output
// is gated element-wise by the query.
//
//     dynamic_attention<> attn(8);         // 8 heads; the width comes from load()
//     attn.load(weights, "block.dyn.");    // attention.in_proj_weight [3D, D], attention.in_proj_bias [3D],
//                                          // attention.out_proj.weight/bias, gate.0.weight [D, D], gate.0.bias
//     matrix<float> y = attn.forward(x);   // self-attention, x: [N, D] -> [N, D]
//     y = attn.forward(q, k, v);           // q [N, D], k and v [L, D]
//
// The formula (D = embed_dim, H heads of d = D / H; W = in_proj_weight split in row blocks W_q, W_k, W_v):
//
//     Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v
//     A = concat_h softmax(mod(Q_h K_h^T / sqrt(d))) V_h W_o^T + b_o     (nn.MultiheadAttention, out_proj)
//     O = A * sigmoid(query W_g^T + b_g)                                 (element-wise, W_g: [D, D])
//
// The parameter names are the article's module: self.attention = nn.MultiheadAttention(D, H) and
// self.gate = nn.Sequential(nn.Linear(D, D), nn.Sigmoid()); its PyTorch twin is DynamicAttention in
// tests/reference/make_attention_module_fixtures_gated.py. The head count is not in a state_dict, so
// it is a constructor argument. Not supported: bias=False, kdim/vdim != D, add_bias_kv, add_zero_attn,
// dropout.
//
// The attention itself is the fused kernel dskit::attention<Backend>. The gate multiplies the output
// *after* out_proj, so it cannot ride in the kernel (attention_gates::per_element gates the heads'
// output before a projection): it is one element-wise multiply over [N, D] here.
//
// Errors (shape_error naming "dynamic_attention"): heads not dividing D, in_proj_weight not [3D, D],
// an input without D columns, key and value of different lengths.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dskit/attention/flash.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/linear.hpp"
#include "dskit/layers/parameter.hpp"
#include "dskit/ops/activation.hpp"
#include "dskit/ops/gemm.hpp"

namespace dskit {

template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
class dynamic_attention {
public:
    using modifier_type = Modifier;

    /// `heads` heads; the width is taken from load().
    explicit dynamic_attention(index_t heads, Modifier mod = {}) : heads_(heads), mod_(std::move(mod))
    {
        if (heads_ < 1) throw value_error(detail::describe(op, "heads >= 1", std::to_string(heads_)));
    }

    /// A [dim]-wide module with zero parameters; load() requires these shapes.
    dynamic_attention(index_t dim, index_t heads, Modifier mod = {}) : dynamic_attention(heads, std::move(mod))
    {
        check_dim(dim);
        in_proj_ = linear<Backend>(dim, 3 * dim);
        out_proj_ = linear<Backend>(dim, dim);
        gate_ = linear<Backend>(dim, dim);
        fixed_shape_ = loaded_ = true;
    }

    index_t dim() const noexcept { return in_proj_.in_features(); }
    index_t heads() const noexcept { return heads_; }
    const Modifier& modifier() const noexcept { return mod_; }
    /// in_proj_weight [3D, D] and in_proj_bias [3D] as one linear layer.
    const linear<Backend>& in_proj() const noexcept { return in_proj_; }
    const linear<Backend>& out_proj() const noexcept { return out_proj_; }
    const linear<Backend>& gate() const noexcept { return gate_; }

    /// Reads prefix + "attention.in_proj_weight", "attention.in_proj_bias", "attention.out_proj.weight",
    /// "attention.out_proj.bias", "gate.0.weight", "gate.0.bias". On error the module is left unchanged.
    void load(const weight_source& w, std::string_view prefix)
    {
        const std::string wname = detail::join_name(prefix, "attention.in_proj_weight");
        const index_t fixed = fixed_shape_ ? dim() : -1;
        matrix<float> weight = detail::load_matrix(op, w, wname, fixed < 0 ? -1 : 3 * fixed, fixed);
        const index_t dim = weight.cols();
        if (weight.rows() != 3 * dim || dim == 0)
            detail::throw_shape(op, "tensor '" + wname + "' of shape [3D, D]", detail::shape_of(weight));
        check_dim(dim);
        vector<float> bias = detail::load_vector(op, w, detail::join_name(prefix, "attention.in_proj_bias"), 3 * dim);
        linear<Backend> out(dim, dim), gate(dim, dim);
        out.load(w, detail::join_name(prefix, "attention.out_proj."));
        gate.load(w, detail::join_name(prefix, "gate.0."));
        in_proj_ = linear<Backend>(std::move(weight), std::move(bias));
        out_proj_ = std::move(out);
        gate_ = std::move(gate);
        loaded_ = true;
    }

    std::size_t parameter_count() const noexcept
    {
        return in_proj_.parameter_count() + out_proj_.parameter_count() + gate_.parameter_count();
    }

    /// Self-attention: x [N, D] -> [N, D].
    matrix<float> forward(const_matrix_ref<float> x) const
    {
        require_loaded();
        detail::require_cols(op, "input", x, dim());
        const index_t d = dim();
        const matrix<float> qkv = in_proj_.forward(x); // one [N, 3D] GEMM; Q, K, V are column views
        matrix<float> a(x.rows(), d);
        dskit::attention<Backend>(qkv.leftCols(d), qkv.middleCols(d, d), qkv.rightCols(d), heads_, heads_, a, mod_);
        return gated_output(a, x);
    }

    /// query [N, D] attends over key and value [L, D] -> [N, D]; the gate reads the query.
    matrix<float> forward(const_matrix_ref<float> query, const_matrix_ref<float> key,
                          const_matrix_ref<float> value) const
    {
        require_loaded();
        const index_t d = dim();
        detail::require_cols(op, "query", query, d);
        detail::require_cols(op, "key", key, d);
        detail::require_cols(op, "value", value, d);
        if (key.rows() != value.rows())
            detail::throw_shape(op, "value with key's " + std::to_string(key.rows()) + " rows",
                                detail::shape_of(value));
        const matrix<float> q = project(query, 0), k = project(key, 1), v = project(value, 2);
        matrix<float> a(query.rows(), d);
        dskit::attention<Backend>(q, k, v, heads_, heads_, a, mod_);
        return gated_output(a, query);
    }

private:
    static constexpr std::string_view op = "dynamic_attention";

    void check_dim(index_t dim) const
    {
        if (dim < 1 || dim % heads_ != 0)
            detail::throw_shape(op, "embed_dim divisible by heads = " + std::to_string(heads_),
                                "embed_dim = " + std::to_string(dim));
    }

    void require_loaded() const
    {
        if (!loaded_) throw value_error(detail::describe(op, "loaded weights (or a constructor with shapes)", "none"));
    }

    /// x W_part^T + b_part for part 0 (q), 1 (k) or 2 (v) of the packed in_proj.
    matrix<float> project(const_matrix_ref<float> x, index_t part) const
    {
        const index_t d = dim();
        matrix<float> y(x.rows(), d);
        ops::linear<Backend>(x, in_proj_.weight().middleRows(part * d, d),
                             std::span<const float>(in_proj_.bias().data() + part * d, static_cast<std::size_t>(d)), y);
        return y;
    }

    /// out_proj(a) * sigmoid(query W_g^T + b_g): after the projection, so a separate element-wise pass.
    matrix<float> gated_output(const matrix<float>& a, const_matrix_ref<float> query) const
    {
        matrix<float> y = out_proj_.forward(a);
        matrix<float> g = gate_.forward(query);
        ops::sigmoid<Backend>(g, g);
        y.array() *= g.array();
        return y;
    }

    index_t heads_;
    Modifier mod_;
    linear<Backend> in_proj_, out_proj_, gate_;
    bool fixed_shape_ = false;
    bool loaded_ = false;
};

} // namespace dskit
