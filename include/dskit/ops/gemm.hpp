// Matrix products.
//
//   matmul_nt(a, b, out)   out = a * b^T   a: [M, K], b: [N, K] (a PyTorch Linear weight), out: [M, N]
//   matmul(a, b, out)      out = a * b     a: [M, K], b: [K, N], out: [M, N]
//   linear(x, w, b, out)   out = x * w^T + b (b broadcast over rows; empty b: no bias), fused in the GEMM
//
// `out` must not overlap a or b (value_error). The simd backend uses Eigen's GEMM; the scalar
// backend is the plain triple loop (a reference for small shapes).
#pragma once

#include <span>
#include <string>

#include "dskit/backend/scalar/gemm.hpp"
#include "dskit/backend/simd/gemm.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/ops/detail/checks.hpp"

namespace dskit::detail {
inline void require_gemm_out(std::string_view op, const const_matrix_ref<float>& a, const const_matrix_ref<float>& b,
                             const matrix_ref<float>& out, index_t m, index_t n)
{
    if (out.rows() != m || out.cols() != n) throw_shape(op, "out of shape " + shape_string({m, n}), shape_of(out));
    if (overlaps(out, a) || overlaps(out, b))
        throw value_error(describe(op, "out not to overlap the inputs", "an overlap"));
}
} // namespace dskit::detail

namespace dskit::ops {

/// out = a * b^T.
template <class Backend = default_backend>
void matmul_nt(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
{
    if (a.cols() != b.cols())
        detail::throw_shape("ops::matmul_nt",
                            "b with " + std::to_string(a.cols()) + " columns (a is " + detail::shape_of(a) + ")",
                            detail::shape_of(b));
    detail::require_gemm_out("ops::matmul_nt", a, b, out, a.rows(), b.rows());
    detail::kernel<tag::gemm, Backend>::run_nt(a, b, out);
}

template <class Backend = default_backend>
matrix<float> matmul_nt(const_matrix_ref<float> a, const_matrix_ref<float> b)
{
    matrix<float> out(a.rows(), b.rows());
    matmul_nt<Backend>(a, b, out);
    return out;
}

/// out = x * w^T + bias, the bias added inside the GEMM rather than in a second pass over out.
template <class Backend = default_backend>
void linear(const_matrix_ref<float> x, const_matrix_ref<float> w, std::span<const float> bias, matrix_ref<float> out)
{
    if (x.cols() != w.cols())
        detail::throw_shape("ops::linear",
                            "w with " + std::to_string(x.cols()) + " columns (x is " + detail::shape_of(x) + ")",
                            detail::shape_of(w));
    if (!bias.empty() && static_cast<index_t>(bias.size()) != w.rows())
        detail::throw_shape("ops::linear", "bias of size " + std::to_string(w.rows()) + " (or none)",
                            "size " + std::to_string(bias.size()));
    detail::require_gemm_out("ops::linear", x, w, out, x.rows(), w.rows());
    detail::kernel<tag::gemm, Backend>::run_linear(x, w, bias, out);
}

/// out = a * b.
template <class Backend = default_backend>
void matmul(const_matrix_ref<float> a, const_matrix_ref<float> b, matrix_ref<float> out)
{
    if (a.cols() != b.rows())
        detail::throw_shape("ops::matmul",
                            "b with " + std::to_string(a.cols()) + " rows (a is " + detail::shape_of(a) + ")",
                            detail::shape_of(b));
    detail::require_gemm_out("ops::matmul", a, b, out, a.rows(), b.cols());
    detail::kernel<tag::gemm, Backend>::run_nn(a, b, out);
}

template <class Backend = default_backend>
matrix<float> matmul(const_matrix_ref<float> a, const_matrix_ref<float> b)
{
    matrix<float> out(a.rows(), b.cols());
    matmul<Backend>(a, b, out);
    return out;
}

} // namespace dskit::ops
