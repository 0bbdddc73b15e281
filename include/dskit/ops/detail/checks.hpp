// Argument checks shared by the ops:: functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit::detail {

/// Whether the memory spans of two strided views intersect.
template <class A, class B>
bool overlaps(const A& a, const B& b) noexcept
{
    if (a.size() == 0 || b.size() == 0) return false;
    const auto lo_a = reinterpret_cast<std::uintptr_t>(a.data());
    const auto hi_a = reinterpret_cast<std::uintptr_t>(a.data() + (a.rows() - 1) * a.outerStride() + a.cols());
    const auto lo_b = reinterpret_cast<std::uintptr_t>(b.data());
    const auto hi_b = reinterpret_cast<std::uintptr_t>(b.data() + (b.rows() - 1) * b.outerStride() + b.cols());
    return lo_a < hi_b && lo_b < hi_a;
}

/// An element-wise or row-wise op: out has in's shape and is either in itself or disjoint from it.
inline void require_elementwise(std::string_view op, const const_matrix_ref<float>& in, const matrix_ref<float>& out)
{
    require_same_shape(op, in, out);
    if (overlaps(in, out) && (in.data() != out.data() || in.outerStride() != out.outerStride()))
        throw value_error(describe(op, "out to be the input itself or not to overlap it", "a partial overlap"));
}

/// A per-feature parameter: empty (absent) or one entry per column.
inline void require_param(std::string_view op, std::string_view what, std::span<const float> p, index_t cols)
{
    if (!p.empty() && static_cast<index_t>(p.size()) != cols)
        throw_shape(op, std::string(what) + " of size " + std::to_string(cols) + " (or empty)",
                    "size " + std::to_string(p.size()));
}

inline void require_eps(std::string_view op, float eps)
{
    if (!(eps > 0.0f) || !std::isfinite(eps))
        throw value_error(describe(op, "eps > 0 and finite", "eps = " + std::to_string(eps)));
}

} // namespace dskit::detail
