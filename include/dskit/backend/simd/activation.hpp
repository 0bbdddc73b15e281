// Element-wise activations on the simd backend (vector math in backend/simd/math.hpp).
#pragma once

#include "dskit/backend/simd/math.hpp"
#include "dskit/backend/simd/rows.hpp"
#include "dskit/backend/tags.hpp"

namespace dskit::detail {

namespace simd {
/// One kernel per activation: out = Fn(in) lane by lane; `cost` is a rough cycles-per-element.
template <class Arch, class Fn, int Cost>
struct elementwise_kernel {
    static void run(const_matrix_ref<float> in, matrix_ref<float> out) { map_rows<Arch>(in, out, Fn{}, Cost); }
};
struct exp_fn {
    template <class B>
    DSKIT_FORCE_INLINE B operator()(const B& x) const noexcept
    {
        return simd::exp(x);
    }
};
struct sigmoid_fn {
    template <class B>
    DSKIT_FORCE_INLINE B operator()(const B& x) const noexcept
    {
        return simd::sigmoid(x);
    }
};
struct silu_fn {
    template <class B>
    DSKIT_FORCE_INLINE B operator()(const B& x) const noexcept
    {
        return simd::silu(x);
    }
};
struct gelu_fn {
    template <class B>
    DSKIT_FORCE_INLINE B operator()(const B& x) const noexcept
    {
        return simd::gelu(x);
    }
};
struct gelu_tanh_fn {
    template <class B>
    DSKIT_FORCE_INLINE B operator()(const B& x) const noexcept
    {
        return simd::gelu_tanh(x);
    }
};
struct relu_fn {
    template <class B>
    DSKIT_FORCE_INLINE B operator()(const B& x) const noexcept
    {
        return simd::relu(x);
    }
};
} // namespace simd

template <class Arch>
struct kernel<ops::tag::exp, backend::simd<Arch>> : simd::elementwise_kernel<Arch, simd::exp_fn, 4> {
};
template <class Arch>
struct kernel<ops::tag::sigmoid, backend::simd<Arch>> : simd::elementwise_kernel<Arch, simd::sigmoid_fn, 6> {
};
template <class Arch>
struct kernel<ops::tag::silu, backend::simd<Arch>> : simd::elementwise_kernel<Arch, simd::silu_fn, 6> {
};
template <class Arch>
struct kernel<ops::tag::gelu, backend::simd<Arch>> : simd::elementwise_kernel<Arch, simd::gelu_fn, 10> {
};
template <class Arch>
struct kernel<ops::tag::gelu_tanh, backend::simd<Arch>> : simd::elementwise_kernel<Arch, simd::gelu_tanh_fn, 7> {
};
template <class Arch>
struct kernel<ops::tag::relu, backend::simd<Arch>> : simd::elementwise_kernel<Arch, simd::relu_fn, 1> {
};

} // namespace dskit::detail
