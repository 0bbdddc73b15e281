// Element-wise activations on the scalar backend: one plain loop over rows and columns.
#pragma once

#include <cmath>

#include "dskit/backend/scalar/math.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail {

namespace scalar {
template <float (*Fn)(float)>
struct elementwise_kernel {
    static void run(const_matrix_ref<float> in, matrix_ref<float> out)
    {
        parallel_for(
            in.rows(),
            [&](index_t i) {
                for (index_t j = 0; j < in.cols(); ++j) out(i, j) = Fn(in(i, j));
            },
            static_cast<double>(in.cols()) * 20.0);
    }
};
inline float exp(float x) noexcept
{
    return std::exp(x);
}
} // namespace scalar

template <>
struct kernel<ops::tag::exp, backend::scalar> : scalar::elementwise_kernel<scalar::exp> {
};
template <>
struct kernel<ops::tag::sigmoid, backend::scalar> : scalar::elementwise_kernel<scalar::sigmoid> {
};
template <>
struct kernel<ops::tag::silu, backend::scalar> : scalar::elementwise_kernel<scalar::silu> {
};
template <>
struct kernel<ops::tag::gelu, backend::scalar> : scalar::elementwise_kernel<scalar::gelu> {
};
template <>
struct kernel<ops::tag::gelu_tanh, backend::scalar> : scalar::elementwise_kernel<scalar::gelu_tanh> {
};
template <>
struct kernel<ops::tag::relu, backend::scalar> : scalar::elementwise_kernel<scalar::relu> {
};

} // namespace dskit::detail
