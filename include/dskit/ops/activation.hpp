// Element-wise activations: out = f(in), each also as `matrix<float> f(in)`.
//
//   exp        e^x
//   sigmoid    1 / (1 + e^-x), stable for any |x|
//   silu       x sigmoid(x)
//   gelu       0.5 x (1 + erf(x / sqrt 2))                   (PyTorch's default GELU)
//   gelu_tanh  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (PyTorch approximate='tanh')
//   relu       max(x, 0)
//
// `out` has in's shape and may be `in` itself. Finite input never gives NaN; +-inf and NaN follow
// PyTorch (e.g. silu(-inf) is NaN). Rows run in parallel (OpenMP).
#pragma once

#include "dskit/backend/scalar/activation.hpp"
#include "dskit/backend/simd/activation.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/ops/detail/checks.hpp"

#define DSKIT_DEFINE_ELEMENTWISE_OP(name)                                                                              \
    template <class Backend = default_backend>                                                                         \
    void name(const_matrix_ref<float> in, matrix_ref<float> out)                                                       \
    {                                                                                                                  \
        detail::require_elementwise("ops::" #name, in, out);                                                           \
        detail::kernel<tag::name, Backend>::run(in, out);                                                              \
    }                                                                                                                  \
    template <class Backend = default_backend>                                                                         \
    matrix<float> name(const_matrix_ref<float> in)                                                                     \
    {                                                                                                                  \
        matrix<float> out(in.rows(), in.cols());                                                                       \
        name<Backend>(in, out);                                                                                        \
        return out;                                                                                                    \
    }

namespace dskit::ops {

DSKIT_DEFINE_ELEMENTWISE_OP(exp)
DSKIT_DEFINE_ELEMENTWISE_OP(sigmoid)
DSKIT_DEFINE_ELEMENTWISE_OP(silu)
DSKIT_DEFINE_ELEMENTWISE_OP(gelu)
DSKIT_DEFINE_ELEMENTWISE_OP(gelu_tanh)
DSKIT_DEFINE_ELEMENTWISE_OP(relu)

} // namespace dskit::ops

#undef DSKIT_DEFINE_ELEMENTWISE_OP
