// Core tensor types. A sequence is a row-major [tokens, features] matrix.
//
// Public functions take `const_matrix_ref<T>` (read) and `matrix_ref<T>`
// (write): Eigen::Ref views that bind without a copy to dskit::matrix,
// row-major Eigen matrices, Eigen::Map over the caller's memory and row blocks
// with any row stride. A column-major argument to a const_matrix_ref is copied
// into a temporary by Eigen (correct, but not free): prefer row-major data.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <string>

#include "dskit/core/error.hpp"

namespace dskit {

using index_t = Eigen::Index;

/// Owning row-major matrix: the type dskit returns.
template <class T = float>
using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Owning column vector (bias, norm weights, per-head parameters).
template <class T = float>
using vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// Writable strided view of row-major data (unit stride inside a row).
template <class T = float>
using matrix_ref = Eigen::Ref<matrix<T>, 0, Eigen::OuterStride<>>;

/// Read-only strided view of row-major data.
template <class T = float>
using const_matrix_ref = Eigen::Ref<const matrix<T>, 0, Eigen::OuterStride<>>;

/// Read-only view of a contiguous vector.
template <class T = float>
using const_vector_ref = Eigen::Ref<const vector<T>>;

/// Zero-copy view over caller memory: `rows` x `cols`, `row_stride` elements between rows.
template <class T>
Eigen::Map<matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>> map_matrix(T* data, index_t rows, index_t cols,
                                                                         index_t row_stride = -1)
{
    return {data, rows, cols, Eigen::OuterStride<>(row_stride < 0 ? cols : row_stride)};
}

template <class T>
Eigen::Map<const matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>> map_matrix(const T* data, index_t rows,
                                                                               index_t cols, index_t row_stride = -1)
{
    return {data, rows, cols, Eigen::OuterStride<>(row_stride < 0 ? cols : row_stride)};
}

namespace detail {

template <class M>
std::string shape_of(const M& m)
{
    return shape_string({static_cast<std::ptrdiff_t>(m.rows()), static_cast<std::ptrdiff_t>(m.cols())});
}

/// Throws shape_error unless `a` and `b` have the same shape.
template <class A, class B>
void require_same_shape(std::string_view op, const A& a, const B& b)
{
    if (a.rows() != b.rows() || a.cols() != b.cols()) throw_shape(op, "output of shape " + shape_of(a), shape_of(b));
}

/// Throws shape_error unless `m` has `cols` columns.
template <class M>
void require_cols(std::string_view op, std::string_view what, const M& m, index_t cols)
{
    if (m.cols() != cols)
        throw_shape(op, std::string(what) + " with " + std::to_string(cols) + " columns", shape_of(m));
}

/// Throws shape_error unless vector `v` has `n` entries.
template <class V>
void require_size(std::string_view op, std::string_view what, const V& v, index_t n)
{
    if (v.size() != n)
        throw_shape(op, std::string(what) + " of size " + std::to_string(n), "size " + std::to_string(v.size()));
}

} // namespace detail
} // namespace dskit
