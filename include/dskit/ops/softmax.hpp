// Row-wise softmax: out(i, j) = exp(in(i, j) - max_k in(i, k)) / sum_k exp(in(i, k) - max_k in(i, k)).
//
//   dskit::ops::softmax_rows(scores, scores);                       // in place, default backend
//   dskit::matrix<float> p = dskit::ops::softmax_rows<dskit::backend::scalar>(scores);
//
// Numerically stable for any finite input (no NaN, no overflow). A row whose entries are all
// -inf (a fully masked row) gives zeros; a row with NaN or +inf gives NaN, as in PyTorch.
// Rows run in parallel (OpenMP); each row's result does not depend on the thread count.
#pragma once

#include "dskit/backend/scalar/softmax.hpp"
#include "dskit/backend/simd/softmax.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/ops/detail/checks.hpp"

#if defined(__CUDACC__)
#include "dskit/backend/cuda/softmax.cuh"
#endif

namespace dskit::ops {

/// out = softmax of each row of `in`. `out` has in's shape; it may be `in` itself (in place), but
/// must not partially overlap it.
template <class Backend = default_backend>
void softmax_rows(const_matrix_ref<float> in, matrix_ref<float> out)
{
    detail::require_elementwise("ops::softmax_rows", in, out);
    detail::kernel<tag::softmax, Backend>::run(in, out);
}

/// Returns the row softmax of `in` in a new matrix.
template <class Backend = default_backend>
matrix<float> softmax_rows(const_matrix_ref<float> in)
{
    matrix<float> out(in.rows(), in.cols());
    softmax_rows<Backend>(in, out);
    return out;
}

} // namespace dskit::ops
