// Turning stored tensors (tensor_view: dtype + shape + bytes) into dskit matrices and typed spans.
//
// to_matrix / to_vector copy and convert any floating-point dtype (F64, F32, F16, BF16, F8_E4M3,
// F8_E5M2) to float; they read element by element with memcpy, so the bytes may sit at any address
// (tensors inside a mapped safetensors file need not be aligned). as_span gives a zero-copy typed view
// and needs the exact dtype and an address aligned for the element type.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "dskit/core/error.hpp"
#include "dskit/core/float16.hpp"
#include "dskit/core/float8.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/dtype.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit {

static_assert(std::endian::native == std::endian::little, "dskit's file formats assume a little-endian host");

namespace detail {

template <class T>
inline constexpr bool dependent_false = false;

/// The dtype whose elements are stored as T (for as_span).
template <class T>
constexpr dtype dtype_of() noexcept
{
    if constexpr (std::is_same_v<T, double>)
        return dtype::f64;
    else if constexpr (std::is_same_v<T, float>)
        return dtype::f32;
    else if constexpr (std::is_same_v<T, float16_t>)
        return dtype::f16;
    else if constexpr (std::is_same_v<T, bfloat16_t>)
        return dtype::bf16;
    else if constexpr (std::is_same_v<T, std::int64_t>)
        return dtype::i64;
    else if constexpr (std::is_same_v<T, std::int32_t>)
        return dtype::i32;
    else if constexpr (std::is_same_v<T, std::int16_t>)
        return dtype::i16;
    else if constexpr (std::is_same_v<T, std::int8_t>)
        return dtype::i8;
    else if constexpr (std::is_same_v<T, std::uint8_t>)
        return dtype::u8;
    else if constexpr (std::is_same_v<T, bool>)
        return dtype::boolean;
    else if constexpr (std::is_same_v<T, float8_e4m3_t>)
        return dtype::f8_e4m3;
    else if constexpr (std::is_same_v<T, float8_e5m2_t>)
        return dtype::f8_e5m2;
    else
        static_assert(dependent_false<T>, "as_span: no stored dtype has this element type");
}

inline std::string tensor_op(std::string_view op, std::string_view name)
{
    return std::string(op) + ": tensor '" + std::string(name) + "'";
}

/// Checks that the view's shape is sane and its byte count matches shape x dtype; returns numel.
inline std::int64_t checked_numel(const tensor_view& t, std::string_view op, std::string_view name)
{
    std::uint64_t n = 1;
    for (auto d : t.shape) {
        if (d < 0) throw format_error(describe(tensor_op(op, name), "non-negative dimensions", shape_string(t.shape)));
        if (d != 0 &&
            n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / static_cast<std::uint64_t>(d))
            throw format_error(
                describe(tensor_op(op, name), "a shape whose size fits in 64 bits", shape_string(t.shape)));
        n *= static_cast<std::uint64_t>(d);
    }
    const std::size_t size = dtype_size(t.type);
    if (n > std::numeric_limits<std::size_t>::max() / size || n * size != t.bytes.size())
        throw format_error(describe(tensor_op(op, name),
                                    std::to_string(n) + " elements of " + std::string(dtype_name(t.type)) +
                                        " for shape " + shape_string(t.shape),
                                    std::to_string(t.bytes.size()) + " bytes"));
    return static_cast<std::int64_t>(n);
}

template <class Stored>
void convert_to_float(const std::byte* src, std::size_t n, float* dst) noexcept
{
    for (std::size_t i = 0; i < n; ++i) {
        Stored v;
        std::memcpy(&v, src + i * sizeof(Stored), sizeof(Stored));
        dst[i] = static_cast<float>(v);
    }
}

/// Converts `n` elements of a floating-point dtype to float; throws format_error for other dtypes.
inline void to_float(const tensor_view& t, std::string_view op, std::string_view name, float* dst)
{
    const std::byte* src = t.bytes.data();
    const std::size_t n = t.bytes.size() / dtype_size(t.type);
    switch (t.type) {
    case dtype::f32:
        if (n != 0) std::memcpy(dst, src, n * sizeof(float));
        return;
    case dtype::f64:
        return convert_to_float<double>(src, n, dst);
    case dtype::f16:
        return convert_to_float<float16_t>(src, n, dst);
    case dtype::bf16:
        return convert_to_float<bfloat16_t>(src, n, dst);
    case dtype::f8_e4m3:
        return convert_to_float<float8_e4m3_t>(src, n, dst);
    case dtype::f8_e5m2:
        return convert_to_float<float8_e5m2_t>(src, n, dst);
    default:
        throw format_error(describe(
            tensor_op(op, name), "a floating-point dtype (F64, F32, F16, BF16, F8_E4M3, F8_E5M2)", dtype_name(t.type)));
    }
}

} // namespace detail

/// Copies a rank-0, 1 or 2 floating-point tensor into a float matrix: rank 2 -> [r, c], rank 1 -> [1, n],
/// rank 0 -> [1, 1]. Throws format_error (integer dtype, byte count not matching the shape) or
/// shape_error (rank > 2), naming `name`.
inline matrix<float> to_matrix(const tensor_view& t, std::string_view name)
{
    constexpr std::string_view op = "to_matrix";
    if (t.shape.size() > 2)
        detail::throw_shape(detail::tensor_op(op, name), "rank 0, 1 or 2", "shape " + detail::shape_string(t.shape));
    detail::checked_numel(t, op, name);
    const index_t rows = t.shape.size() == 2 ? static_cast<index_t>(t.shape[0]) : 1;
    const index_t cols = t.shape.empty() ? 1 : static_cast<index_t>(t.shape.back());
    matrix<float> m(rows, cols);
    detail::to_float(t, op, name, m.data());
    return m;
}

/// Copies a rank-1 floating-point tensor into a float vector (biases, norm weights).
inline vector<float> to_vector(const tensor_view& t, std::string_view name)
{
    constexpr std::string_view op = "to_vector";
    if (t.shape.size() != 1)
        detail::throw_shape(detail::tensor_op(op, name), "rank 1", "shape " + detail::shape_string(t.shape));
    detail::checked_numel(t, op, name);
    vector<float> v(static_cast<index_t>(t.shape[0]));
    detail::to_float(t, op, name, v.data());
    return v;
}

/// A zero-copy view of the tensor's elements as T. Throws format_error unless the dtype is exactly
/// T's (float <-> F32, float16_t <-> F16, std::int8_t <-> I8, ...), the byte count matches the shape,
/// and the data is aligned for T. bool views also require every byte to be 0 or 1.
template <class T>
std::span<const T> as_span(const tensor_view& t, std::string_view name)
{
    constexpr std::string_view op = "as_span";
    constexpr dtype want = detail::dtype_of<T>();
    static_assert(sizeof(T) == dtype_size(want));
    if (t.type != want)
        throw format_error(detail::describe(detail::tensor_op(op, name), "dtype " + std::string(dtype_name(want)),
                                            dtype_name(t.type)));
    const auto n = static_cast<std::size_t>(detail::checked_numel(t, op, name));
    if (n == 0) return {};
    if (reinterpret_cast<std::uintptr_t>(t.bytes.data()) % alignof(T) != 0)
        throw format_error(detail::describe(detail::tensor_op(op, name),
                                            "data aligned to " + std::to_string(alignof(T)) + " bytes",
                                            "an unaligned address (use to_matrix, which copies)"));
    if constexpr (std::is_same_v<T, bool>) {
        for (auto b : t.bytes)
            if (static_cast<unsigned char>(b) > 1)
                throw format_error(detail::describe(detail::tensor_op(op, name), "BOOL bytes 0 or 1",
                                                    std::to_string(static_cast<unsigned>(b))));
    }
    return {reinterpret_cast<const T*>(t.bytes.data()), n};
}

} // namespace dskit
