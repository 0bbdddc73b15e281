// Element-wise activation layers: PyTorch's nn.SiLU, nn.GELU() (erf), nn.GELU(approximate="tanh"),
// nn.Sigmoid, nn.ReLU and nn.Identity. They have no parameters; load() reads nothing.
//
// The computations are dskit::ops::silu and friends; these class templates in namespace dskit are the
// layers that wrap them (dskit::silu<> is a layer, dskit::ops::silu<>(x) a function).
#pragma once

#include <cstddef>
#include <string_view>

#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/ops/activation.hpp"

namespace dskit {

namespace detail {
/// What every parameter-free, row-wise layer shares.
struct parameter_free_layer {
    static constexpr bool rowwise = true;
    void load(const weight_source&, std::string_view) noexcept {}
    std::size_t parameter_count() const noexcept { return 0; }
};
} // namespace detail

/// x * sigmoid(x).
template <class Backend = default_backend>
class silu : public detail::parameter_free_layer {
public:
    matrix<float> forward(const_matrix_ref<float> x) const { return ops::silu<Backend>(x); }
    void forward_inplace(matrix_ref<float> x) const { ops::silu<Backend>(x, x); }
};

/// x * Phi(x), with the exact (erf) normal CDF: nn.GELU().
template <class Backend = default_backend>
class gelu : public detail::parameter_free_layer {
public:
    matrix<float> forward(const_matrix_ref<float> x) const { return ops::gelu<Backend>(x); }
    void forward_inplace(matrix_ref<float> x) const { ops::gelu<Backend>(x, x); }
};

/// The tanh approximation of GELU: nn.GELU(approximate="tanh").
template <class Backend = default_backend>
class gelu_tanh : public detail::parameter_free_layer {
public:
    matrix<float> forward(const_matrix_ref<float> x) const { return ops::gelu_tanh<Backend>(x); }
    void forward_inplace(matrix_ref<float> x) const { ops::gelu_tanh<Backend>(x, x); }
};

/// 1 / (1 + exp(-x)).
template <class Backend = default_backend>
class sigmoid : public detail::parameter_free_layer {
public:
    matrix<float> forward(const_matrix_ref<float> x) const { return ops::sigmoid<Backend>(x); }
    void forward_inplace(matrix_ref<float> x) const { ops::sigmoid<Backend>(x, x); }
};

/// max(x, 0).
template <class Backend = default_backend>
class relu : public detail::parameter_free_layer {
public:
    matrix<float> forward(const_matrix_ref<float> x) const { return ops::relu<Backend>(x); }
    void forward_inplace(matrix_ref<float> x) const { ops::relu<Backend>(x, x); }
};

/// Returns its input (a placeholder, like nn.Identity).
class identity : public detail::parameter_free_layer {
public:
    matrix<float> forward(const_matrix_ref<float> x) const { return x; }
    void forward_inplace(matrix_ref<float>) const noexcept {}
};

} // namespace dskit
