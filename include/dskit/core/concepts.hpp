// The layer contract, written down once.
//
// A layer is a type L with
//   matrix<float> L::forward(const_matrix_ref<float> x) const   one sequence [tokens, features] in, one out
//   void L::load(const weight_source& w, std::string_view prefix) reads its parameters named prefix + "weight", ...
//                                                               (prefix is "" or ends in '.', as in a PyTorch
//                                                               state_dict)
//   std::size_t L::parameter_count() const                     number of scalar parameters
// Optional: `static constexpr bool rowwise = true;` promises that each output row depends only on the
// same input row, so a packed batch can run through forward() in one call.
#pragma once

#include <concepts>
#include <cstddef>
#include <string_view>

#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit {

template <class L>
concept layer = requires(L& l, const L& c, const_matrix_ref<float> x, const weight_source& w, std::string_view prefix)
{
    {
        c.forward(x)
        } -> std::convertible_to<matrix<float>>;
    l.load(w, prefix);
    {
        c.parameter_count()
        } -> std::convertible_to<std::size_t>;
};

/// Anything with parameters to load: every layer, and modules whose forward() takes several inputs
/// (cross_modal_attention). load_state_dict accepts any of them.
template <class M>
concept loadable = requires(M& m, const M& c, const weight_source& w, std::string_view prefix)
{
    m.load(w, prefix);
    {
        c.parameter_count()
        } -> std::convertible_to<std::size_t>;
};

/// True if L declares itself row-wise (see above).
template <class L>
inline constexpr bool is_rowwise_layer = requires
{
    requires L::rowwise;
};

} // namespace dskit
