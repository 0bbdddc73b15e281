// cross_modal_attention<Backend>: the bidirectional text <-> vision bridge of seed 004 (SPEC section 1).
//
//     cross_modal_attention<> bridge;                    // heads = 1: SPEC's formula; shapes from load()
//     load_state_dict(bridge, file);                     // text_proj.weight [Dv, Dt], text_proj.bias [Dv],
//                                                        // vision_proj.weight [Dt, Dv], vision_proj.bias [Dt]
//     auto [a_tv, a_vt] = bridge.affinities(t, v);       // the article's forward(): [Nt, Nv], [Nv, Nt]
//     auto [o_t, o_v] = bridge.forward(t, v);            // attended outputs: [Nt, Dv], [Nv, Dt]
//
// Text T is [Nt, Dt], vision V is [Nv, Dv]; the parameters are the article's two nn.Linear layers
// text_proj = Linear(Dt, Dv) and vision_proj = Linear(Dv, Dt), so its state_dict loads unchanged:
//
//     Tp = T W_t^T + b_t  [Nt, Dv],   Vp = V W_v^T + b_v  [Nv, Dt]
//     A_tv = Tp V^T  [Nt, Nv],        A_vt = Vp T^T  [Nv, Nt]                  (affinities(), as the article)
//
// forward() returns what the article's raw affinities are for, the attended outputs. With H heads (H
// dividing Dt and Dv), head h takes columns [h Dv/H, (h+1) Dv/H) of Tp and V (text side) and
// [h Dt/H, (h+1) Dt/H) of Vp and T (vision side):
//
//     O_t[:, head h] = softmax(Tp_h V_h^T / sqrt(Dv / H)) V_h     [Nt, Dv]  text tokens read vision
//     O_v[:, head h] = softmax(Vp_h T_h^T / sqrt(Dt / H)) T_h     [Nv, Dt]  vision tokens read text
//
// For H = 1 this is SPEC's O_t = softmax(A_tv / sqrt(Dv)) V and O_v = softmax(A_vt / sqrt(Dt)) T.
// Both run on the fused kernel dskit::attention<Backend> (no Nt x Nv matrix), with optional score
// modifiers for each direction (e.g. attention_mods::key_mask over padded vision tokens).
//
// The article's own code is a sketch: its newlines are lost (it does not parse), it works on batches
// through torch.bmm, and it stops at the unscaled affinities; here one (text, vision) pair is one call,
// and the scaling and softmax are SPEC's. attention_weights() gives the per-head softmax matrices.
//
// Not a dskit::layer (forward takes two inputs), but loadable: load_state_dict(bridge, weights) works.
// Errors (shape_error naming "cross_modal_attention"): T without Dt or V without Dv columns; heads not
// dividing Dt and Dv; projections whose shapes do not match each other ([Dv, Dt] and [Dt, Dv]).
#pragma once

#include <cstddef>
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
#include "dskit/ops/gemm.hpp"

namespace dskit {

/// The article's two affinity matrices.
struct cross_modal_affinities {
    matrix<float> text_vision; ///< A_tv = (T W_t^T + b_t) V^T  [Nt, Nv]
    matrix<float> vision_text; ///< A_vt = (V W_v^T + b_v) T^T  [Nv, Nt]
};

/// The attended outputs.
struct cross_modal_outputs {
    matrix<float> text;   ///< O_t [Nt, Dv]: each text token's mix of vision tokens
    matrix<float> vision; ///< O_v [Nv, Dt]: each vision token's mix of text tokens
};

/// Per-head attention weights of both directions.
struct cross_modal_weights {
    std::vector<matrix<float>> text_vision; ///< [h]: [Nt, Nv]
    std::vector<matrix<float>> vision_text; ///< [h]: [Nv, Nt]
};

template <class Backend = default_backend>
class cross_modal_attention {
public:
    /// `heads` heads; Dt, Dv and the biases are taken from load().
    explicit cross_modal_attention(index_t heads = 1) : heads_(heads) { check_heads(); }

    /// Fixed dimensions, zero parameters (with biases, like nn.Linear); load() requires these shapes.
    cross_modal_attention(index_t text_dim, index_t vision_dim, index_t heads)
        : heads_(heads), text_proj_(text_dim, vision_dim), vision_proj_(vision_dim, text_dim)
    {
        check_heads();
        check_dims(text_dim, vision_dim);
    }

    index_t text_dim() const noexcept { return text_proj_.in_features(); }
    index_t vision_dim() const noexcept { return vision_proj_.in_features(); }
    index_t heads() const noexcept { return heads_; }
    const linear<Backend>& text_proj() const noexcept { return text_proj_; }
    const linear<Backend>& vision_proj() const noexcept { return vision_proj_; }

    /// Reads prefix + "text_proj.weight", "text_proj.bias", "vision_proj.weight", "vision_proj.bias"
    /// (the biases are optional unless the dimensions were fixed). On error the module is unchanged.
    void load(const weight_source& w, std::string_view prefix)
    {
        linear<Backend> t = text_proj_, v = vision_proj_;
        t.load(w, detail::join_name(prefix, "text_proj."));
        v.load(w, detail::join_name(prefix, "vision_proj."));
        if (v.in_features() != t.out_features() || v.out_features() != t.in_features())
            detail::throw_shape(op,
                                "vision_proj.weight of shape " +
                                    detail::shape_string({t.in_features(), t.out_features()}) +
                                    " (text_proj.weight transposed)",
                                detail::shape_string({v.out_features(), v.in_features()}));
        check_dims(t.in_features(), v.in_features());
        text_proj_ = std::move(t);
        vision_proj_ = std::move(v);
    }

    std::size_t parameter_count() const noexcept
    {
        return text_proj_.parameter_count() + vision_proj_.parameter_count();
    }

    /// The article's forward(): A_tv = (T W_t^T + b_t) V^T and A_vt = (V W_v^T + b_v) T^T.
    cross_modal_affinities affinities(const_matrix_ref<float> text, const_matrix_ref<float> vision) const
    {
        check_inputs(text, vision);
        const matrix<float> tp = text_proj_.forward(text), vp = vision_proj_.forward(vision);
        return {ops::matmul_nt<Backend>(tp, vision), ops::matmul_nt<Backend>(vp, text)};
    }

    /// The attended outputs O_t [Nt, Dv] and O_v [Nv, Dt]; text_mod modifies the text -> vision scores
    /// (queries: text tokens, keys: vision tokens), vision_mod the vision -> text ones.
    template <score_modifier TextMod = attention_mods::none, score_modifier VisionMod = attention_mods::none>
    cross_modal_outputs forward(const_matrix_ref<float> text, const_matrix_ref<float> vision,
                                const TextMod& text_mod = {}, const VisionMod& vision_mod = {}) const
    {
        check_inputs(text, vision);
        const matrix<float> tp = text_proj_.forward(text), vp = vision_proj_.forward(vision);
        return {dskit::attention<Backend>(tp, vision, vision, heads_, heads_, text_mod),
                dskit::attention<Backend>(vp, text, text, heads_, heads_, vision_mod)};
    }

    /// Per-head weights of both directions: text_vision[h] [Nt, Nv], vision_text[h] [Nv, Nt].
    template <score_modifier TextMod = attention_mods::none, score_modifier VisionMod = attention_mods::none>
    cross_modal_weights attention_weights(const_matrix_ref<float> text, const_matrix_ref<float> vision,
                                          const TextMod& text_mod = {}, const VisionMod& vision_mod = {}) const
    {
        check_inputs(text, vision);
        const matrix<float> tp = text_proj_.forward(text), vp = vision_proj_.forward(vision);
        return {dskit::attention_weights<Backend>(tp, vision, heads_, heads_, text_mod),
                dskit::attention_weights<Backend>(vp, text, heads_, heads_, vision_mod)};
    }

private:
    static constexpr std::string_view op = "cross_modal_attention";

    void check_heads() const
    {
        if (heads_ < 1) throw value_error(detail::describe(op, "heads >= 1", std::to_string(heads_)));
    }

    void check_dims(index_t dt, index_t dv) const
    {
        if (dt % heads_ != 0 || dv % heads_ != 0 || dt == 0 || dv == 0)
            detail::throw_shape(op, "text and vision dimensions divisible by heads = " + std::to_string(heads_),
                                "Dt = " + std::to_string(dt) + ", Dv = " + std::to_string(dv));
    }

    void check_inputs(const const_matrix_ref<float>& text, const const_matrix_ref<float>& vision) const
    {
        if (text_dim() == 0)
            throw value_error(detail::describe(
                op, "loaded weights (a module built from a head count takes its shape from load())", "none"));
        detail::require_cols(op, "text", text, text_dim());
        detail::require_cols(op, "vision", vision, vision_dim());
    }

    index_t heads_ = 1;
    linear<Backend> text_proj_, vision_proj_;
};

} // namespace dskit
