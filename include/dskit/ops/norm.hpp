// Row normalisations with PyTorch's semantics.
//
//   rms_norm:   out = x / sqrt(mean(x^2) + eps) * weight
//   layer_norm: out = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias     (biased variance)
//
// Statistics are per row. An empty weight or bias span means "no affine parameter"; otherwise it
// has one entry per column. eps must be > 0 (value_error otherwise). `out` may be `x` itself.
#pragma once

#include <span>

#include "dskit/backend/scalar/norm.hpp"
#include "dskit/backend/simd/norm.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/ops/detail/checks.hpp"

namespace dskit::ops {

template <class Backend = default_backend>
void rms_norm(const_matrix_ref<float> x, std::span<const float> weight, float eps, matrix_ref<float> out)
{
    detail::require_elementwise("ops::rms_norm", x, out);
    detail::require_param("ops::rms_norm", "weight", weight, x.cols());
    detail::require_eps("ops::rms_norm", eps);
    detail::kernel<tag::rms_norm, Backend>::run(x, weight, eps, out);
}

template <class Backend = default_backend>
matrix<float> rms_norm(const_matrix_ref<float> x, std::span<const float> weight, float eps)
{
    matrix<float> out(x.rows(), x.cols());
    rms_norm<Backend>(x, weight, eps, out);
    return out;
}

template <class Backend = default_backend>
void layer_norm(const_matrix_ref<float> x, std::span<const float> weight, std::span<const float> bias, float eps,
                matrix_ref<float> out)
{
    detail::require_elementwise("ops::layer_norm", x, out);
    detail::require_param("ops::layer_norm", "weight", weight, x.cols());
    detail::require_param("ops::layer_norm", "bias", bias, x.cols());
    detail::require_eps("ops::layer_norm", eps);
    detail::kernel<tag::layer_norm, Backend>::run(x, weight, bias, eps, out);
}

template <class Backend = default_backend>
matrix<float> layer_norm(const_matrix_ref<float> x, std::span<const float> weight, std::span<const float> bias,
                         float eps)
{
    matrix<float> out(x.rows(), x.cols());
    layer_norm<Backend>(x, weight, bias, eps, out);
    return out;
}

} // namespace dskit::ops
