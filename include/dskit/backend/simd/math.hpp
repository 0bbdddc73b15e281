// Vector math for the simd backend: exp, sigmoid and the GELU helpers on xsimd batches.
//
// Everything is templated on the xsimd architecture tag, so translation units compiled with
// different -m flags never share a definition (no ODR clash between, say, sse2 and avx2 code).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "dskit/config.hpp"

namespace dskit::detail::simd {

/// The core of exp for |x| <= 89: x = n ln2 + r, e^r by a polynomial. Returns k, which holds n in its
/// low mantissa bits (n = bits(k) - bits(magic)), and p = e^r in [0.7, 1.42].
template <class Arch>
DSKIT_FORCE_INLINE std::pair<xsimd::batch<float, Arch>, xsimd::batch<float, Arch>>
exp_reduced(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    // x = n ln2 + r with |r| <= ln2/2. Adding 1.5 * 2^23 rounds x log2(e) to the nearest integer n and
    // leaves n in the low mantissa bits, which saves a round and a float-to-int conversion.
    const F magic(12582912.0f);
    const F k = xsimd::fma(x, F(1.44269504088896341f), magic);
    const F n = k - magic;
    // Cody-Waite: ln2 split in a part with few mantissa bits (n * hi is exact) and the remainder.
    F r = xsimd::fnma(n, F(0.693359375f), x);
    r = xsimd::fnma(n, F(-2.12194440e-4f), r);
    // e^r = 1 + r + r^2 P(r) on [-ln2/2, ln2/2], P of degree 4 fitted for relative error (3.4e-9, far
    // below float rounding; the float evaluation stays within 8e-8).
    // Estrin's scheme rather than Horner's: the same polynomial with a dependency chain of three
    // multiply-adds instead of seven, so consecutive batches overlap (Horner's chain made this
    // function latency-bound, ~9 cycles a batch on Zen 3 instead of ~6).
    const F r2 = r * r;
    const F r4 = r2 * r2;
    const F p01 = r + F(1.0f);
    const F p23 = xsimd::fma(r, F(1.666651964187622e-1f), F(4.999999105930328e-1f));
    const F p45 = xsimd::fma(r, F(8.368870243430138e-3f), F(4.166906699538231e-2f));
    const F q = xsimd::fma(r2, F(1.377709791995585e-3f), p45);
    const F t = xsimd::fma(r2, p23, p01);
    return {k, xsimd::fma(r4, q, t)};
}

/// The n of exp_reduced's k, as integers.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<std::int32_t, Arch> exp_exponent(const xsimd::batch<float, Arch>& k) noexcept
{
    using I = xsimd::batch<std::int32_t, Arch>;
    return xsimd::bitwise_cast<I>(k) - xsimd::bitwise_cast<I>(xsimd::batch<float, Arch>(12582912.0f));
}

/// e^x for every lane, any input: the general path of exp() below.
template <class Arch>
xsimd::batch<float, Arch> exp_any(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    // Outside [-104, 89] the result is 0 or inf anyway; clamping keeps the exponent arithmetic in
    // range. The constant is the first operand on purpose: x86 min/max return the second operand
    // when one is NaN (and NEON returns NaN), so NaN flows through to the result without a blend.
    const auto [k, p] = simd::exp_reduced(xsimd::min(F(89.0f), xsimd::max(F(-104.0f), x)));
    // 2^n as two powers of two (n = n1 + n2), both normal numbers: p * 2^n1 is exact and the second
    // product rounds once, so subnormal results and results near FLT_MAX are right too.
    const I ni = simd::exp_exponent(k);
    const I n1 = ni >> 1;
    const I n2 = ni - n1;
    const F s1 = xsimd::bitwise_cast<F>((n1 + I(127)) << 23);
    const F s2 = xsimd::bitwise_cast<F>((n2 + I(127)) << 23);
    return (p * s1) * s2;
}

/// e^x for lanes the caller knows to satisfy |x| < 87 (no NaN): exp()'s fast path without its test.
/// Other lanes give garbage, not NaN or inf, so only use it after checking the whole input.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> exp_in_range(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    const auto [k, p] = simd::exp_reduced(x);
    // p is in [0.7, 1.42] and n in [-126, 126]: p 2^n is normal, so the exponent add is exact.
    return xsimd::bitwise_cast<F>(xsimd::bitwise_cast<I>(p) + (simd::exp_exponent(k) << 23));
}

/// e^x for every lane, within 2 ulp of the correctly rounded value (1 ulp typical).
/// Results that underflow are rounded to subnormals or 0 (x < -103.97 gives 0), results that
/// overflow give +inf (x > 88.72), -inf gives 0 and NaN stays NaN.
///
/// When every lane has |x| < 87 (nearly always: softmax's x - max, sigmoid's -|x| of activations)
/// the result is a normal number and 2^n can be added to p's exponent field directly: no clamping,
/// no split scale. Same bits as exp_any, ~40% fewer instructions; any other batch takes exp_any.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> exp(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    if (!xsimd::all(xsimd::abs(x) < F(87.0f))) return simd::exp_any(x); // NaN fails the test too
    return simd::exp_in_range(x);
}

/// e^x for softmax weights, x <= 0: exp()'s fast path for every batch. Below -87 the result is 0 where
/// exp() gives subnormals (at most 1.2e-38, nothing next to the weight 1 of the row's maximum), -inf gives
/// 0 and NaN stays NaN. Attention scores spread far below their maximum (ALiBi and decay biases of
/// hundreds, masked keys) sent whole batches down exp()'s general path.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> exp_nonpositive(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        // Same bits, three instructions after the polynomial where the code below has eight: scalef multiplies by 2^n
        // (exact: the results are normal numbers), the zeroing mask drops lanes below -87 and -inf, and the unordered
        // compare keeps NaN lanes, whose NaN runs through the polynomial (lanes far below -87 compute garbage that the
        // mask discards). Attention, N = 4096, H = 8, d = 64, 2 threads (Xeon): 3% less time.
        const auto [k, p] = simd::exp_reduced(x);
        const __mmask16 keep = _mm512_cmp_ps_mask(x, F(-87.0f), _CMP_NLT_UQ);
        return _mm512_maskz_scalef_ps(keep, p, k - F(12582912.0f));
    }
#endif
    // x - x: 0 for finite x, NaN for NaN (and for -inf, which the select then maps to 0).
    const F r = simd::exp_in_range(xsimd::max(x, F(-87.0f))) + (x - x);
    return xsimd::select(x < F(-87.0f), F(0.0f), r);
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for any |x|: e^-|x| never overflows, and for x < 0
/// the result is e^x / (1 + e^x), so tiny results keep their relative accuracy.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> sigmoid(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    const F t = simd::exp(-xsimd::abs(x));
    const F s = F(1.0f) / (F(1.0f) + t);
    return xsimd::select(x >= F(0.0f), s, t * s);
}

/// SiLU x * sigmoid(x) (like PyTorch, silu(-inf) is NaN).
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> silu(const xsimd::batch<float, Arch>& x) noexcept
{
    return x * simd::sigmoid(x);
}

/// GELU, erf form: 0.5 x (1 + erf(x / sqrt 2)), computed as 0.5 x erfc(-x / sqrt 2), which is the
/// same number without the cancellation of 1 + erf for negative x.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> gelu(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    return F(0.5f) * x * xsimd::erfc(x * F(-0.70710678118654752f));
}

/// GELU, tanh form (PyTorch approximate='tanh'): 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
/// Computed as x sigmoid(2u), the same number without the cancellation of 1 + tanh for negative x.
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> gelu_tanh(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    const F two_u = F(1.5957691216057308f) * x * xsimd::fma(F(0.044715f) * x, x, F(1.0f));
    return x * simd::sigmoid(two_u);
}

/// max(x, 0); NaN stays NaN (as in PyTorch).
template <class Arch>
DSKIT_FORCE_INLINE xsimd::batch<float, Arch> relu(const xsimd::batch<float, Arch>& x) noexcept
{
    using F = xsimd::batch<float, Arch>;
    return xsimd::select(x < F(0.0f), F(0.0f), x);
}

/// Bit l set where lane l of m is true (xsimd 8 has no such call): a loop over the set bits visits only the
/// lanes a test let through.
template <class Arch>
std::uint32_t lane_mask(const xsimd::batch_bool<float, Arch>& m) noexcept
{
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return static_cast<std::uint32_t>(m.data);
#endif
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, Arch>) return static_cast<std::uint32_t>(_mm256_movemask_ps(m));
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) return static_cast<std::uint32_t>(_mm_movemask_ps(m));
#endif
    constexpr std::size_t n = xsimd::batch<float, Arch>::size;
    static_assert(n <= 32);
    alignas(64) std::array<bool, n> lanes{};
    m.store_unaligned(lanes.data());
    std::uint32_t bits = 0;
    for (std::size_t l = 0; l < n; ++l) bits |= static_cast<std::uint32_t>(lanes[l]) << l;
    return bits;
}

#if XSIMD_WITH_AVX512F
/// The low and high 8 lanes of a 16-lane vector (AVX512F alone has no float extract of 8 lanes).
inline __m256 low_half(__m512 a) noexcept
{
    return _mm512_castps512_ps256(a);
}
inline __m256 high_half(__m512 a) noexcept
{
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
}
#endif

/// The sums of L batches (L = lanes), sum t in lane t: xsimd::haddp, except on AVX-512, where xsimd 8.1
/// returns them in the wrong lanes (2-3 swapped with 4-5, 10-11 with 12-13; Debian 12's version). There
/// each batch is folded to its 8-lane sum and AVX's haddp, which is right, does the rest.
template <class Arch>
xsimd::batch<float, Arch> haddp(const xsimd::batch<float, Arch>* rows) noexcept
{
#if XSIMD_WITH_AVX512F && XSIMD_WITH_AVX2
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        using H = xsimd::batch<float, xsimd::avx2>;
        const auto fold = [](__m512 a) { return H(_mm256_add_ps(low_half(a), high_half(a))); };
        H lo[8], hi[8];
        for (int t = 0; t < 8; ++t) {
            lo[t] = fold(rows[t]);
            hi[t] = fold(rows[t + 8]);
        }
        const __m256 l = xsimd::haddp(lo), h = xsimd::haddp(hi);
        return _mm512_castpd_ps(
            _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(l)), _mm256_castps_pd(h), 1));
    }
#endif
    return xsimd::haddp(rows);
}

namespace reduce_detail {
/// max (Max) or min of two floats or two x86 vectors.
template <bool Max>
struct extremum {
    template <class T>
    T operator()(T a, T b) const noexcept
    {
        return Max ? (b > a ? b : a) : (b < a ? b : a);
    }
#if XSIMD_WITH_SSE2
    __m128 operator()(__m128 a, __m128 b) const noexcept
    {
        return Max ? _mm_max_ps(a, b) : _mm_min_ps(a, b);
    }
#endif
#if XSIMD_WITH_AVX
    __m256 operator()(__m256 a, __m256 b) const noexcept
    {
        return Max ? _mm256_max_ps(a, b) : _mm256_min_ps(a, b);
    }
#endif
};

/// Folds v's lanes with op: halving shuffles on x86 (a few instructions, where a lane-by-lane loop
/// cost a store and 15 dependent compares per AVX-512 batch, once per row in attention's online
/// softmax), lane by lane elsewhere.
template <class Arch, class Op>
float reduce(const xsimd::batch<float, Arch>& v, Op op) noexcept
{
#if XSIMD_WITH_SSE2
    const auto finish = [&](__m128 x) {
        x = op(x, _mm_movehl_ps(x, x));
        x = op(x, _mm_shuffle_ps(x, x, 1));
        return _mm_cvtss_f32(x);
    };
#endif
#if XSIMD_WITH_AVX512F && XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        const __m512 x = v;
        const __m256 y = op(low_half(x), high_half(x));
        return finish(op(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1)));
    }
#endif
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
        const __m256 y = v;
        return finish(op(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1)));
    }
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) return finish(v);
#endif
    alignas(64) float lanes[xsimd::batch<float, Arch>::size];
    v.store_aligned(lanes);
    float m = lanes[0];
    for (std::size_t i = 1; i < xsimd::batch<float, Arch>::size; ++i) m = op(m, lanes[i]);
    return m;
}
} // namespace reduce_detail

/// Largest lane (NaN lanes may or may not win; callers that care check for NaN separately).
template <class Arch>
float reduce_max(const xsimd::batch<float, Arch>& v) noexcept
{
    return reduce_detail::reduce(v, reduce_detail::extremum<true>{});
}

/// Smallest lane (NaN lanes may or may not win).
template <class Arch>
float reduce_min(const xsimd::batch<float, Arch>& v) noexcept
{
    return reduce_detail::reduce(v, reduce_detail::extremum<false>{});
}

} // namespace dskit::detail::simd
