// Output gates for dskit::attention: compile-time policies fused into the kernels' last step.
//
// The kernels end every (query, head) row by dividing the accumulated sum of weighted values by the
// softmax sum; a gate multiplies that same row by its factor there, so gating costs no extra pass over
// the output (and attention_gates::none, the default, costs nothing at all).
//
//   attention_gates::none                     no gate
//   attention_gates::per_head{g}              g: [N, H]; out_h(i, :) *= g(i, h)  (GAU, seed 000)
//   attention_gates::per_element{g}           g: [N, H * d]; out(i, c) *= g(i, c) (element-wise, on the heads'
//                                             output before any output projection)
//   attention_gates::per_sequence{s}          out *= s, one scalar (DynamicGate, seed 002)
//
//   attention(q, k, v, heads, kv_heads, out, attention_mods::causal{}, attention_gates::per_head{g});
//
// The gates view the caller's memory (like attention_mods::key_mask): keep it alive while the gate is
// used, and pass row-major data (a column-major matrix would be copied into the view). The output
// must not overlap a gate's values. A query whose keys are all masked keeps its row of zeros whatever
// the gate.
//
// The interface a gate implements (all const):
//   static constexpr bool has_row_factor, has_element_factors   which of the factors below the kernels apply
//   void validate(index_t heads, index_t queries, index_t head_dim) const   throw shape_error/value_error
//   float row(index_t h, index_t i) const            the factor of query i's head-h row (used if has_row_factor)
//   const float* elements(index_t h, index_t i, index_t d) const
//       d factors for query i's head-h row (used if has_element_factors)
#pragma once

#include <cmath>
#include <concepts>
#include <string>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit {

namespace attention_gates {

/// No gate: the plain attention output.
struct none {
    static constexpr bool has_row_factor = false;
    static constexpr bool has_element_factors = false;
    void validate(index_t, index_t, index_t) const {}
    float row(index_t, index_t) const { return 1.0f; }
    const float* elements(index_t, index_t, index_t) const { return nullptr; }
};

/// One factor per query and head: out_h(i, :) *= values(i, h); values is [queries, heads].
struct per_head {
    static constexpr bool has_row_factor = true;
    static constexpr bool has_element_factors = false;
    const_matrix_ref<float> values;

    void validate(index_t heads, index_t n, index_t) const
    {
        if (values.rows() != n || values.cols() != heads)
            dskit::detail::throw_shape(
                "attention", "per-head gate of shape " + dskit::detail::shape_string({n, heads}) + " (queries, heads)",
                dskit::detail::shape_of(values));
    }
    float row(index_t h, index_t i) const { return values(i, h); }
    const float* elements(index_t, index_t, index_t) const { return nullptr; }
};

/// One factor per output element: out(i, c) *= values(i, c); values is [queries, heads * d].
struct per_element {
    static constexpr bool has_row_factor = false;
    static constexpr bool has_element_factors = true;
    const_matrix_ref<float> values;

    void validate(index_t heads, index_t n, index_t d) const
    {
        if (values.rows() != n || values.cols() != heads * d)
            dskit::detail::throw_shape(
                "attention", "element-wise gate of shape " + dskit::detail::shape_string({n, heads * d}) + " (q's)",
                dskit::detail::shape_of(values));
    }
    float row(index_t, index_t) const { return 1.0f; }
    const float* elements(index_t h, index_t i, index_t d) const
    {
        return values.data() + i * values.outerStride() + h * d;
    }
};

/// One factor for the whole sequence: out *= value.
struct per_sequence {
    static constexpr bool has_row_factor = true;
    static constexpr bool has_element_factors = false;
    float value = 1.0f;

    void validate(index_t, index_t, index_t) const
    {
        if (!std::isfinite(value))
            throw value_error(dskit::detail::describe("attention", "a finite sequence gate", std::to_string(value)));
    }
    float row(index_t, index_t) const { return value; }
    const float* elements(index_t, index_t, index_t) const { return nullptr; }
};

} // namespace attention_gates

/// What an output gate must provide (see above).
template <class G>
concept output_gate = requires(const G& g, index_t i)
{
    g.validate(i, i, i);
    {
        g.row(i, i)
        } -> std::convertible_to<float>;
    {
        g.elements(i, i, i)
        } -> std::convertible_to<const float*>;
    {
        G::has_row_factor
        } -> std::convertible_to<bool>;
    {
        G::has_element_factors
        } -> std::convertible_to<bool>;
};

} // namespace dskit
