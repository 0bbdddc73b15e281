// A user-defined score modifier for the attention tests: query i sees keys [i - width, i]. Its key range
// starts after 0, so the kernels skip leading key blocks and mask the part of the first block before it.
#pragma once

#include <algorithm>
#include <limits>

#include <dskit/attention/policy.hpp>

namespace dskit::test {

struct window {
    index_t width = 0;
    void validate(index_t, index_t, index_t) const {}
    attention_mods::key_range keys(index_t, index_t i0, index_t i1, index_t n) const
    {
        return {std::clamp<index_t>(i0 - width, 0, n), std::clamp<index_t>(i1, 0, n)};
    }
    float score(index_t, index_t i, index_t j, float s) const
    {
        return j <= i && j >= i - width ? s : -std::numeric_limits<float>::infinity();
    }
    void apply(index_t h, index_t i0, index_t j0, index_t rows, index_t cols, float* s, index_t ld) const
    {
        for (index_t r = 0; r < rows; ++r)
            for (index_t c = 0; c < cols; ++c) s[r * ld + c] = score(h, i0 + r, j0 + c, s[r * ld + c]);
    }
};

} // namespace dskit::test
