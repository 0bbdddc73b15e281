// Scalar math shared by the reference kernels: written for clarity, in the textbook form
// wherever that form is accurate in float.
#pragma once

#include <cmath>

namespace dskit::detail::scalar {

/// 1 / (1 + e^-x), stable for any |x| (e^-|x| never overflows).
inline float sigmoid(float x) noexcept
{
    const float t = std::exp(-std::abs(x));
    return x >= 0.0f ? 1.0f / (1.0f + t) : t / (1.0f + t);
}

inline float silu(float x) noexcept
{
    return x * sigmoid(x);
}

/// 0.5 x (1 + erf(x / sqrt 2)), written with erfc so that negative x keeps its accuracy.
inline float gelu(float x) noexcept
{
    return 0.5f * x * std::erfc(-x * 0.70710678118654752f);
}

/// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written as x sigmoid(2u) (the same number,
/// without the cancellation of 1 + tanh for negative x).
inline float gelu_tanh(float x) noexcept
{
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x * sigmoid(2.0f * u);
}

inline float relu(float x) noexcept
{
    return x < 0.0f ? 0.0f : x;
}

} // namespace dskit::detail::scalar
