// Score modifiers for dskit::attention: compile-time policies fused into the attention kernels.
//
// The kernels compute the raw score s = scale * (q_i . k_j) and hand it to the modifier, which may
// multiply it by a per-key factor, add a bias, or mask it (-inf). Masked keys get weight 0; a query
// whose keys are all masked gets an output row of zeros (not NaN).
//
//   attention_mods::none                    plain softmax(Q K^T * scale) V
//   attention_mods::causal{offset}          query i sees keys j <= i + offset (offset 0: PyTorch's is_causal)
//   attention_mods::key_length{n}           only keys j < n count (a padded key sequence)
//   attention_mods::key_mask{mask}          only keys j with mask[j] != 0 count
//   attention_mods::decay_absolute{g}       s * g^j (seed 004 as written: S_ij = (q_i . k_j) g^j / sqrt(d))
//   attention_mods::decay_relative{g...}    s - |i + offset - j| * ln(1/g_h): for j <= i this is SPEC's
//                                           (i - j) ln g_h; combine with causal for SPEC's causal form
//   attention_mods::alibi{slopes}           s - m_h |i + offset - j| (ALiBi; alibi::standard(H) gives the
//                                           paper's slopes 2^(-8 k / H))
//   attention_mods::combine<A, B, ...>      all of them, applied left to right
//
// Put multiplicative modifiers (decay_absolute) first in a combine: a modifier applies to the score
// as the previous ones left it. Masks commute with everything (a masked score stays -inf).
//
// The interface a modifier implements (all const, all positions are 0-based):
//   void validate(index_t heads, index_t queries, index_t keys) const   throw shape_error/value_error
//   key_range keys(index_t h, index_t i0, index_t i1, index_t keys) const
//       keys outside the returned [begin, end) are masked for every query in [i0, i1): the kernels skip them
//   float score(index_t h, index_t i, index_t j, float s) const         one score (the scalar reference)
//   void apply(index_t h, index_t i0, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
//       the same on a block s[r * ld + c] of queries i0 + r and keys j0 + c (plain loops the compiler
//       vectorises; the simd kernel calls it once per query block and key block)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit::attention_mods {

/// Keys [begin, end) that may be unmasked.
struct key_range {
    index_t begin = 0;
    index_t end = 0;
};

namespace detail {
inline constexpr float neg_inf = -std::numeric_limits<float>::infinity();

inline void require_per_head(std::string_view what, std::size_t size, index_t heads)
{
    if (size != 1 && static_cast<index_t>(size) != heads)
        dskit::detail::throw_shape("attention", std::string(what) + " with 1 or " + std::to_string(heads) + " values",
                                   std::to_string(size) + " values");
}
} // namespace detail

/// No modifier: plain scaled dot-product attention.
struct none {
    void validate(index_t, index_t, index_t) const {}
    key_range keys(index_t, index_t, index_t, index_t n) const { return {0, n}; }
    float score(index_t, index_t, index_t, float s) const { return s; }
    void apply(index_t, index_t, index_t, index_t, index_t, float*, index_t) const {}
};

/// Causal mask: query i sees keys j <= i + offset. offset = 0 is PyTorch's is_causal (top-left
/// aligned); offset = keys - queries aligns the last query with the last key (a decoder continuing
/// a cached sequence).
struct causal {
    index_t offset = 0;

    void validate(index_t, index_t, index_t) const {}
    key_range keys(index_t, index_t, index_t i1, index_t n) const
    {
        return {0, std::clamp<index_t>(i1 + offset, 0, n)};
    }
    float score(index_t, index_t i, index_t j, float s) const { return j <= i + offset ? s : detail::neg_inf; }
    void apply(index_t, index_t i0, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        for (index_t r = 0; r < rows; ++r) {
            // Keys from first on are masked for this row.
            const index_t first = std::clamp<index_t>(i0 + r + offset + 1 - j0, 0, cols);
            std::fill(s + r * ld + first, s + r * ld + cols, detail::neg_inf);
        }
    }
};

/// Sequence-length mask: keys j >= length are padding.
struct key_length {
    index_t length = 0;

    void validate(index_t, index_t, index_t) const
    {
        if (length < 0)
            throw value_error(dskit::detail::describe("attention", "key_length >= 0", std::to_string(length)));
    }
    key_range keys(index_t, index_t, index_t, index_t n) const { return {0, std::min(length, n)}; }
    float score(index_t, index_t, index_t j, float s) const { return j < length ? s : detail::neg_inf; }
    // The kernels never pass masked key blocks (keys() excludes them), but a block may straddle `length`.
    void apply(index_t, index_t, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        const index_t first = std::clamp<index_t>(length - j0, 0, cols);
        for (index_t r = 0; r < rows; ++r) std::fill(s + r * ld + first, s + r * ld + cols, detail::neg_inf);
    }
};

/// Key-padding mask: key j counts where mask[j] != 0 (one entry per key; the caller's memory).
struct key_mask {
    std::span<const std::uint8_t> mask;

    void validate(index_t, index_t, index_t n) const
    {
        if (static_cast<index_t>(mask.size()) != n)
            dskit::detail::throw_shape("attention", "key_mask of size " + std::to_string(n),
                                       "size " + std::to_string(mask.size()));
    }
    key_range keys(index_t, index_t, index_t, index_t n) const { return {0, n}; }
    float score(index_t, index_t, index_t j, float s) const
    {
        return mask[static_cast<std::size_t>(j)] ? s : detail::neg_inf;
    }
    void apply(index_t, index_t, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        const std::uint8_t* m = mask.data() + j0;
        for (index_t r = 0; r < rows; ++r)
            for (index_t c = 0; c < cols; ++c) s[r * ld + c] = m[c] ? s[r * ld + c] : detail::neg_inf;
    }
};

/// Seed 004's decay as written: the score of key j is multiplied by gamma^j (j from 0). Note that this
/// shrinks the scores of *later* keys (towards 0, not towards -inf); decay_relative is the reading that
/// down-weights older tokens.
struct decay_absolute {
    float gamma = 0.95f;

    void validate(index_t, index_t, index_t) const
    {
        if (!(gamma > 0.0f) || !std::isfinite(gamma))
            throw value_error(
                dskit::detail::describe("attention", "decay gamma > 0 and finite", std::to_string(gamma)));
    }
    key_range keys(index_t, index_t, index_t, index_t n) const { return {0, n}; }
    /// gamma^j, computed in double and rounded once; at least FLT_MIN, so that a masked score stays -inf
    /// (-inf * 0 would be NaN) while a finite one still becomes ~0.
    static float factor(double log_gamma, index_t j)
    {
        return std::max(static_cast<float>(std::exp(static_cast<double>(j) * log_gamma)),
                        std::numeric_limits<float>::min());
    }
    float score(index_t, index_t, index_t j, float s) const
    {
        return s * factor(std::log(static_cast<double>(gamma)), j);
    }
    void apply(index_t, index_t, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        constexpr index_t max_cols = 256;
        const double lg = std::log(static_cast<double>(gamma));
        float f[max_cols];
        for (index_t c0 = 0; c0 < cols; c0 += max_cols) {
            const index_t w = std::min(max_cols, cols - c0);
            for (index_t c = 0; c < w; ++c) f[c] = factor(lg, j0 + c0 + c);
            for (index_t r = 0; r < rows; ++r) {
                float* row = s + r * ld + c0;
                for (index_t c = 0; c < w; ++c) row[c] *= f[c];
            }
        }
    }
};

namespace detail {
/// Shared by decay_relative and alibi: s - slope_h * |i + offset - j|.
struct distance_bias {
    std::vector<float> slopes; // one value, or one per head; >= 0
    index_t offset = 0;

    float slope(index_t h) const { return slopes.size() == 1 ? slopes[0] : slopes[static_cast<std::size_t>(h)]; }
    key_range keys(index_t, index_t, index_t, index_t n) const { return {0, n}; }
    float score(index_t h, index_t i, index_t j, float s) const
    {
        return s - slope(h) * static_cast<float>(std::abs(i + offset - j));
    }
    void apply(index_t h, index_t i0, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        const float m = slope(h);
        for (index_t r = 0; r < rows; ++r) {
            // Distances fit in int32 for any sequence that fits in memory; int32 keeps the loop vectorised.
            const auto d0 = static_cast<std::int32_t>(i0 + r + offset - j0);
            float* row = s + r * ld;
            for (std::int32_t c = 0; c < static_cast<std::int32_t>(cols); ++c)
                row[c] -= m * static_cast<float>(d0 - c < 0 ? c - d0 : d0 - c);
        }
    }
};
} // namespace detail

/// Relative time decay: the unnormalised weight of key j for query i is multiplied by gamma_h^|i - j|,
/// i.e. the score gets (i - j) ln gamma_h for j <= i (SPEC section 1). One gamma for all heads, or one
/// per head. Positions are i + offset and j, as for causal.
struct decay_relative : detail::distance_bias {
    decay_relative() : decay_relative(0.95f) {}
    explicit decay_relative(float gamma, index_t offset_ = 0) : decay_relative(std::vector<float>{gamma}, offset_) {}
    explicit decay_relative(const std::vector<float>& gammas, index_t offset_ = 0)
    {
        offset = offset_;
        for (float g : gammas) {
            if (!(g > 0.0f && g <= 1.0f))
                throw value_error(dskit::detail::describe("attention", "decay gamma in (0, 1]", std::to_string(g)));
            slopes.push_back(-std::log(g));
        }
    }
    void validate(index_t heads, index_t, index_t) const
    {
        detail::require_per_head("decay gammas", slopes.size(), heads);
    }
};

/// ALiBi (Press et al. 2022): the score gets -m_h |i - j|, one slope m_h >= 0 per head (or one for all).
struct alibi : detail::distance_bias {
    alibi() = default;
    explicit alibi(std::vector<float> slopes_, index_t offset_ = 0)
    {
        slopes = std::move(slopes_);
        offset = offset_;
    }
    /// The paper's slopes: 2^(-8 k / heads) for k = 1..heads (exact for a power-of-two head count,
    /// the geometric sequence with the same ratio otherwise).
    static alibi standard(index_t heads, index_t offset = 0)
    {
        std::vector<float> s;
        for (index_t k = 1; k <= heads; ++k)
            s.push_back(static_cast<float>(std::exp2(-8.0 * static_cast<double>(k) / static_cast<double>(heads))));
        return alibi(std::move(s), offset);
    }
    void validate(index_t heads, index_t, index_t) const
    {
        detail::require_per_head("alibi slopes", slopes.size(), heads);
        for (float m : slopes)
            if (!(m >= 0.0f) || !std::isfinite(m))
                throw value_error(dskit::detail::describe("attention", "alibi slopes >= 0", std::to_string(m)));
    }
};

/// Several modifiers at once, applied left to right; the visible keys are the intersection.
template <class... Mods>
struct combine {
    std::tuple<Mods...> mods;

    combine() = default;
    explicit combine(Mods... m) : mods(std::move(m)...) {}

    void validate(index_t heads, index_t n, index_t l) const
    {
        std::apply([&](const auto&... m) { (m.validate(heads, n, l), ...); }, mods);
    }
    key_range keys(index_t h, index_t i0, index_t i1, index_t n) const
    {
        key_range r{0, n};
        std::apply(
            [&](const auto&... m) {
                (
                    [&] {
                        const key_range k = m.keys(h, i0, i1, n);
                        r.begin = std::max(r.begin, k.begin);
                        r.end = std::min(r.end, k.end);
                    }(),
                    ...);
            },
            mods);
        if (r.end < r.begin) r.end = r.begin;
        return r;
    }
    float score(index_t h, index_t i, index_t j, float s) const
    {
        std::apply([&](const auto&... m) { ((s = m.score(h, i, j, s)), ...); }, mods);
        return s;
    }
    void apply(index_t h, index_t i0, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        std::apply([&](const auto&... m) { (m.apply(h, i0, j0, rows, cols, s, ld), ...); }, mods);
    }
};

template <class... Mods>
combine(Mods...) -> combine<Mods...>;

} // namespace dskit::attention_mods

namespace dskit::detail {
/// Whether a row of scores holds a NaN (NaN in the inputs). Every attention kernel then gives that query
/// a NaN row, where a row with no finite score for other reasons (every key masked) gives zeros.
inline bool any_nan(const float* scores, index_t n)
{
    return std::any_of(scores, scores + n, [](float x) { return x != x; });
}
} // namespace dskit::detail
