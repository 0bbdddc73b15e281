// gated_attention_unit<Backend, Modifier>: seed 000's GatedAttentionUnit, as SPEC section 1 fixes it.
//
//     gated_attention_unit<> gau;                     // shapes (and the head count) come from load()
//     gau.load(weights, "layers.0.gau.");             // to_qkv.weight [3D, D], to_qkv.bias [3D],
//                                                     // gate.weight [H, D], gate.bias [H]
//     matrix<float> y = gau.forward(x);               // x: [N, D] -> [N, D]
//
// The formula (D = model width, H heads of d = D / H features; W_qkv split in row blocks):
//
//     [Q K V] = X W_qkv^T + b_qkv                         one fused Linear(D, 3D)
//     g = sigmoid(X W_g^T + b_g)                           [N, H], one gate per token and head
//     O_h = g_h * softmax(mod(Q_h K_h^T / sqrt(d))) V_h    columns [h d, (h + 1) d) of O
//
// The article has no output projection, so neither has this module (compose one with sequential<>).
// Its PyTorch twin, with the article's bugs fixed (the einsum that is not an attention product, the
// gate that does not broadcast), is GatedAttentionUnit in tests/reference/make_attention_module_fixtures_gated.py.
//
// The head gate runs inside the fused attention kernel (attention_gates::per_head): it scales each
// output row in the kernel's final normalisation, no extra pass. Q, K and V are column views of the one
// [N, 3D] projection, never copied. The head count is the number of rows of gate.weight.
//
// Errors (shape_error naming "gated_attention_unit"): to_qkv.weight not [3D, D], gate.weight not
// [H, D] with H dividing D, an input without D columns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "dskit/attention/flash.hpp"
#include "dskit/attention/gates.hpp"
#include "dskit/attention/policy.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/linear.hpp"
#include "dskit/ops/activation.hpp"

namespace dskit {

template <class Backend = default_backend, score_modifier Modifier = attention_mods::none>
class gated_attention_unit {
public:
    using modifier_type = Modifier;

    /// Width and head count come from load().
    gated_attention_unit() = default;
    explicit gated_attention_unit(Modifier mod) : mod_(std::move(mod)) {}

    /// A [dim]-wide unit with `heads` heads and zero parameters; load() requires these shapes.
    gated_attention_unit(index_t dim, index_t heads, Modifier mod = {})
        : mod_(std::move(mod)), to_qkv_(dim, 3 * dim), gate_(dim, heads), loaded_(true)
    {
        check(dim, heads);
    }

    index_t dim() const noexcept { return to_qkv_.in_features(); }
    index_t heads() const noexcept { return gate_.out_features(); }
    index_t head_dim() const noexcept { return heads() > 0 ? dim() / heads() : 0; }
    const Modifier& modifier() const noexcept { return mod_; }
    const linear<Backend>& to_qkv() const noexcept { return to_qkv_; }
    const linear<Backend>& gate() const noexcept { return gate_; }

    /// Reads prefix + "to_qkv.weight", "to_qkv.bias", "gate.weight", "gate.bias". On error the unit is
    /// left unchanged.
    void load(const weight_source& w, std::string_view prefix)
    {
        linear<Backend> qkv = to_qkv_, gate = gate_;
        qkv.load(w, detail::join_name(prefix, "to_qkv."));
        gate.load(w, detail::join_name(prefix, "gate."));
        const index_t dim = qkv.in_features();
        if (qkv.out_features() != 3 * dim)
            detail::throw_shape(op, "tensor '" + detail::join_name(prefix, "to_qkv.weight") + "' of shape [3D, D]",
                                detail::shape_of(qkv.weight()));
        if (gate.in_features() != dim)
            detail::throw_shape(op,
                                "tensor '" + detail::join_name(prefix, "gate.weight") + "' of shape [H, " +
                                    std::to_string(dim) + "]",
                                detail::shape_of(gate.weight()));
        check(dim, gate.out_features());
        to_qkv_ = std::move(qkv);
        gate_ = std::move(gate);
        loaded_ = true;
    }

    std::size_t parameter_count() const noexcept { return to_qkv_.parameter_count() + gate_.parameter_count(); }

    /// x [N, D] -> [N, D].
    matrix<float> forward(const_matrix_ref<float> x) const
    {
        if (!loaded_) throw value_error(detail::describe(op, "loaded weights (or a constructor with shapes)", "none"));
        detail::require_cols(op, "input", x, dim());
        const index_t d = dim();
        const matrix<float> qkv = to_qkv_.forward(x);
        matrix<float> g = gate_.forward(x);
        ops::sigmoid<Backend>(g, g);
        matrix<float> out(x.rows(), d);
        dskit::attention<Backend>(qkv.leftCols(d), qkv.middleCols(d, d), qkv.rightCols(d), heads(), heads(), out, mod_,
                                  attention_gates::per_head{g});
        return out;
    }

private:
    static constexpr std::string_view op = "gated_attention_unit";

    static void check(index_t dim, index_t heads)
    {
        if (heads < 1 || dim < 1 || dim % heads != 0)
            detail::throw_shape(op, "heads >= 1 dividing the width",
                                "width " + std::to_string(dim) + ", heads " + std::to_string(heads));
    }

    Modifier mod_{};
    linear<Backend> to_qkv_;
    linear<Backend> gate_;
    bool loaded_ = false;
};

} // namespace dskit
