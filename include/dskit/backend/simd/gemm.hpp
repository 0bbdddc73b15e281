// Matrix products on the simd backend: Eigen's blocked GEMM (its own vector kernels for the
// architecture the translation unit is compiled for; OpenMP-parallel when dskit links OpenMP).
#pragma once

#include <span>

#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"

namespace dskit::detail {

template <class Arch>
struct kernel<ops::tag::gemm, backend::simd<Arch>> {
    /// out = a * b^T (b stored [out_features, in_features], like a PyTorch weight).
    static void run_nt(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
    {
        out.noalias() = a * b.transpose();
    }
    /// out = x * w^T + bias: out starts as the broadcast bias and the GEMM accumulates into it, which
    /// costs Eigen nothing extra (its kernel always updates C), unlike a second pass over out.
    static void run_linear(const_matrix_ref<float> x, const_matrix_ref<float> w, std::span<const float> bias,
                           matrix_ref<float> out)
    {
        if (bias.empty()) {
            out.noalias() = x * w.transpose();
            return;
        }
        const Eigen::Map<const Eigen::RowVectorXf> b(bias.data(), static_cast<index_t>(bias.size()));
        parallel_for(
            out.rows(), [&](index_t i) { out.row(i) = b; }, static_cast<double>(out.cols()));
        out.noalias() += x * w.transpose();
    }
    /// out = a * b.
    static void run_nn(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
    {
        out.noalias() = a * b;
    }
};

} // namespace dskit::detail
