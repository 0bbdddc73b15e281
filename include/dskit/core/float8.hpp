// 8-bit floating-point storage types of the OCP FP8 specification (as used by DeepSeek-V3 weights):
//
//   float8_e4m3_t  E4M3 "fn": 1 sign, 4 exponent (bias 7), 3 mantissa bits. Max 448, no infinity,
//                  NaN is S.1111.111 (0x7f / 0xff). torch.float8_e4m3fn, safetensors "F8_E4M3".
//   float8_e5m2_t  E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits. Max 57344, has +-inf,
//                  NaN is S.11111.{01,10,11}. torch.float8_e5m2, safetensors "F8_E5M2".
//
// fp8 -> float is exact. float -> fp8 rounds to nearest, ties to even, and SATURATES: a finite value
// beyond the largest finite fp8 value becomes +-max (for E4M3 infinity does too, having no encoding;
// E5M2 keeps infinity), and NaN stays NaN. For every value in range the result is bit-identical to
// PyTorch's `tensor.to(torch.float8_e4m3fn / float8_e5m2)`; PyTorch differs only out of range, where
// its cast does not saturate (E4M3 overflow -> NaN, E5M2 overflow -> inf). Saturation is what
// quantisation code wants (a scale slightly off must not create NaN) and matches CUDA's
// __NV_SATFINITE conversions.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace dskit {

namespace detail {

/// Rounds a float to an fp8 format with `Exp` exponent and `Man` mantissa bits (bias 2^(Exp-1)-1),
/// saturating at the encoding `max_bits`; `HasInf` formats map infinity to infinity.
template <int Exp, int Man, std::uint8_t MaxBits, bool HasInf>
constexpr std::uint8_t f32_to_fp8_bits(float f) noexcept
{
    constexpr int bias = (1 << (Exp - 1)) - 1;
    constexpr int min_exp = 1 - bias; // exponent of the smallest normal value
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint8_t>((x >> 24) & 0x80u);
    const std::uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return static_cast<std::uint8_t>(sign | 0x7fu); // NaN
    if (ax == 0x7f800000u)
        return static_cast<std::uint8_t>(sign | (HasInf ? static_cast<std::uint8_t>(MaxBits + 1u) : MaxBits));
    std::uint32_t q = 0;
    if (ax >= static_cast<std::uint32_t>(127 + min_exp) << 23) { // normal in fp8
        constexpr int drop = 23 - Man;
        std::uint32_t m = ax - (static_cast<std::uint32_t>(127 - bias) << 23); // rebias
        m += ((1u << (drop - 1)) - 1u) + ((m >> drop) & 1u);                   // round to nearest even
        q = m >> drop;
    } else {
        // Subnormal (or zero): the value in units of 2^(min_exp - Man), rounded to nearest even.
        const int e = static_cast<int>(ax >> 23);
        const int shift = 150 + min_exp - Man - e; // >= 24 - Man
        if (shift > 24 || e == 0) return sign;     // below half the smallest subnormal
        const std::uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
        q = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1u);
        const std::uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) ++q;
    }
    if (q > MaxBits) q = MaxBits; // saturate finite overflow
    return static_cast<std::uint8_t>(sign | q);
}

template <int Exp, int Man, bool HasInf>
constexpr float fp8_bits_to_f32(std::uint8_t b) noexcept
{
    constexpr int bias = (1 << (Exp - 1)) - 1;
    constexpr std::uint32_t exp_mask = (1u << Exp) - 1u;
    const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
    std::uint32_t e = (b >> Man) & exp_mask;
    std::uint32_t m = b & ((1u << Man) - 1u);
    if (HasInf ? e == exp_mask : (b & 0x7fu) == 0x7fu) // special encodings
        return std::bit_cast<float>(sign | 0x7f800000u | (m == 0 && HasInf ? 0u : 0x400000u));
    if (e == 0) {
        if (m == 0) return std::bit_cast<float>(sign);
        e = 127 - bias + 1; // normalise the subnormal
        while (!(m & (1u << Man))) {
            m <<= 1;
            --e;
        }
        m &= (1u << Man) - 1u;
        return std::bit_cast<float>(sign | (e << 23) | (m << (23 - Man)));
    }
    return std::bit_cast<float>(sign | ((e + 127u - bias) << 23) | (m << (23 - Man)));
}

} // namespace detail

/// OCP FP8 E4M3 ("e4m3fn"): max 448, no infinity, saturating conversion from float.
struct float8_e4m3_t {
    std::uint8_t bits;

    float8_e4m3_t() = default;
    constexpr explicit float8_e4m3_t(float f) noexcept : bits(detail::f32_to_fp8_bits<4, 3, 0x7e, false>(f)) {}

    static constexpr float8_e4m3_t from_bits(std::uint8_t b) noexcept
    {
        float8_e4m3_t v;
        v.bits = b;
        return v;
    }
    constexpr float to_float() const noexcept { return detail::fp8_bits_to_f32<4, 3, false>(bits); }
    constexpr explicit operator float() const noexcept { return to_float(); }
    friend constexpr bool operator==(float8_e4m3_t a, float8_e4m3_t b) noexcept { return a.bits == b.bits; }

    static constexpr float max() noexcept { return 448.0f; }
};
static_assert(sizeof(float8_e4m3_t) == 1 && std::is_trivially_copyable_v<float8_e4m3_t>);

/// OCP FP8 E5M2: max 57344, has infinity, saturating conversion from finite floats.
struct float8_e5m2_t {
    std::uint8_t bits;

    float8_e5m2_t() = default;
    constexpr explicit float8_e5m2_t(float f) noexcept : bits(detail::f32_to_fp8_bits<5, 2, 0x7b, true>(f)) {}

    static constexpr float8_e5m2_t from_bits(std::uint8_t b) noexcept
    {
        float8_e5m2_t v;
        v.bits = b;
        return v;
    }
    constexpr float to_float() const noexcept { return detail::fp8_bits_to_f32<5, 2, true>(bits); }
    constexpr explicit operator float() const noexcept { return to_float(); }
    friend constexpr bool operator==(float8_e5m2_t a, float8_e5m2_t b) noexcept { return a.bits == b.bits; }

    static constexpr float max() noexcept { return 57344.0f; }
};
static_assert(sizeof(float8_e5m2_t) == 1 && std::is_trivially_copyable_v<float8_e5m2_t>);

} // namespace dskit
