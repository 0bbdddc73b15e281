// Matrix products on the simd backend: Eigen's blocked GEMM (its own vector kernels for the
// architecture the translation unit is compiled for; OpenMP-parallel when dskit links OpenMP).
#pragma once

#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit::detail {

template <class Arch>
struct kernel<ops::tag::gemm, backend::simd<Arch>> {
    /// out = a * b^T (b stored [out_features, in_features], like a PyTorch weight).
    static void run_nt(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
    {
        out.noalias() = a * b.transpose();
    }
    /// out = a * b.
    static void run_nn(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
    {
        out.noalias() = a * b;
    }
};

} // namespace dskit::detail
