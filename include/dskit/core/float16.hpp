// 16-bit floating-point storage types: IEEE binary16 (`float16_t`) and bfloat16 (`bfloat16_t`).
//
// They are storage formats, not arithmetic types: convert to float, compute, convert back.
// float -> 16-bit rounds to nearest, ties to even; NaN stays NaN (quiet) and infinities stay
// infinite; values beyond the finite range become infinity (IEEE overflow), exactly as
// PyTorch's `tensor.to(torch.float16)` / `.to(torch.bfloat16)` do on the CPU.
// 16-bit -> float is exact. Conversions are integer-only and constexpr, so they do not depend on
// the FPU's rounding mode or on -ffast-math.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace dskit {

namespace detail {

constexpr std::uint16_t f32_to_f16_bits(float f) noexcept
{
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) // NaN: keep the top payload bits, force quiet
        return static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u); // >= 65520 rounds to inf
    if (ax >= 0x38800000u) {                                                  // normal half (>= 2^-14)
        std::uint32_t m = ax - (112u << 23);                                  // rebias 127 -> 15
        m += 0xfffu + ((m >> 13) & 1u);                                       // round to nearest even
        return static_cast<std::uint16_t>(sign | (m >> 13));
    }
    if (ax < 0x33000000u) return sign; // below 2^-25 (2^-25 itself ties to zero)
    // Subnormal half: the value in units of 2^-24, rounded to nearest even.
    const std::uint32_t e = ax >> 23;
    const std::uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e; // 14..24
    std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
}

constexpr float f16_bits_to_f32(std::uint16_t h) noexcept
{
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t e = (h >> 10) & 0x1fu;
    std::uint32_t m = h & 0x3ffu;
    std::uint32_t bits = 0;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { // subnormal: normalise
            e = 113;
            while (!(m & 0x400u)) {
                m <<= 1;
                --e;
            }
            bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    }
    return std::bit_cast<float>(bits);
}

constexpr std::uint16_t f32_to_bf16_bits(float f) noexcept
{
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u); // quiet NaN
    return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16); // nearest even; overflow -> inf
}

constexpr float bf16_bits_to_f32(std::uint16_t b) noexcept
{
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

} // namespace detail

/// IEEE 754 binary16: 1 sign, 5 exponent, 10 mantissa bits; max 65504.
struct float16_t {
    std::uint16_t bits;

    float16_t() = default;
    constexpr explicit float16_t(float f) noexcept : bits(detail::f32_to_f16_bits(f)) {}

    static constexpr float16_t from_bits(std::uint16_t b) noexcept
    {
        float16_t h;
        h.bits = b;
        return h;
    }
    constexpr float to_float() const noexcept { return detail::f16_bits_to_f32(bits); }
    constexpr explicit operator float() const noexcept { return to_float(); }
    friend constexpr bool operator==(float16_t a, float16_t b) noexcept { return a.bits == b.bits; } // bitwise
};

/// bfloat16: the top half of a float (1 sign, 8 exponent, 7 mantissa bits).
struct bfloat16_t {
    std::uint16_t bits;

    bfloat16_t() = default;
    constexpr explicit bfloat16_t(float f) noexcept : bits(detail::f32_to_bf16_bits(f)) {}

    static constexpr bfloat16_t from_bits(std::uint16_t b) noexcept
    {
        bfloat16_t h;
        h.bits = b;
        return h;
    }
    constexpr float to_float() const noexcept { return detail::bf16_bits_to_f32(bits); }
    constexpr explicit operator float() const noexcept { return to_float(); }
    friend constexpr bool operator==(bfloat16_t a, bfloat16_t b) noexcept { return a.bits == b.bits; } // bitwise
};

static_assert(sizeof(float16_t) == 2 && std::is_trivially_copyable_v<float16_t>);
static_assert(sizeof(bfloat16_t) == 2 && std::is_trivially_copyable_v<bfloat16_t>);

} // namespace dskit
