// Element types of stored tensors, with their safetensors names and sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace dskit {

enum class dtype : std::uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean, f8_e4m3, f8_e5m2 };

/// Bytes per element.
constexpr std::size_t dtype_size(dtype t) noexcept
{
    switch (t) {
    case dtype::f64:
    case dtype::i64:
        return 8;
    case dtype::f32:
    case dtype::i32:
        return 4;
    case dtype::f16:
    case dtype::bf16:
    case dtype::i16:
        return 2;
    default:
        return 1;
    }
}

/// The safetensors spelling ("F32", "BF16", "F8_E4M3", ...).
constexpr std::string_view dtype_name(dtype t) noexcept
{
    switch (t) {
    case dtype::f64:
        return "F64";
    case dtype::f32:
        return "F32";
    case dtype::f16:
        return "F16";
    case dtype::bf16:
        return "BF16";
    case dtype::i64:
        return "I64";
    case dtype::i32:
        return "I32";
    case dtype::i16:
        return "I16";
    case dtype::i8:
        return "I8";
    case dtype::u8:
        return "U8";
    case dtype::boolean:
        return "BOOL";
    case dtype::f8_e4m3:
        return "F8_E4M3";
    case dtype::f8_e5m2:
        return "F8_E5M2";
    }
    return "?";
}

/// Parses a safetensors dtype name; nothing if unknown.
constexpr std::optional<dtype> dtype_from_name(std::string_view s) noexcept
{
    for (auto t : {dtype::f64, dtype::f32, dtype::f16, dtype::bf16, dtype::i64, dtype::i32, dtype::i16, dtype::i8,
                   dtype::u8, dtype::boolean, dtype::f8_e4m3, dtype::f8_e5m2})
        if (dtype_name(t) == s) return t;
    return std::nullopt;
}

} // namespace dskit
