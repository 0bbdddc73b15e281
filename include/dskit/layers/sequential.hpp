// sequential<L...>: layers applied one after the other, like torch.nn.Sequential.
//
//     sequential<linear<>, silu<>, linear<>> mlp{linear<>(64, 256), silu<>{}, linear<>(256, 64)};
//     sequential<linear<>, silu<>, linear<>> same_from_file;   // shapes come from load()
//     mlp.load(weights, "mlp.");   // child i reads "mlp.<i>.weight", ...; a named<"fc1", L> child "mlp.fc1.weight"
//     mlp.get<0>().weight();       // a child
//
// Element-wise layers and norms after the first layer run in place on the running output
// (they provide forward_inplace), so a chain allocates one matrix per layer that changes the width.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "dskit/core/concepts.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/named.hpp"

namespace dskit {

namespace detail {

/// A layer that can overwrite its input with its output.
template <class L>
concept inplace_layer = requires(const L& l, matrix_ref<float> x)
{
    l.forward_inplace(x);
};

/// Runs `l` on the running output `y`, in place when it can.
template <class L>
void forward_into(const L& l, matrix<float>& y)
{
    if constexpr (inplace_layer<L>)
        l.forward_inplace(y);
    else
        y = l.forward(y);
}

/// Loads child `index` of a sequential container: named children under their own name, others under "<index>.".
template <class L>
void load_child(L& child, const weight_source& w, std::string_view prefix, std::size_t index)
{
    if constexpr (is_named<L>) {
        child.load(w, prefix);
    } else {
        std::string p(prefix);
        p.append(std::to_string(index)).push_back('.');
        child.load(w, p);
    }
}

} // namespace detail

template <layer... Layers>
class sequential {
public:
    /// Row-wise iff every child is.
    static constexpr bool rowwise = (is_rowwise_layer<Layers> && ...);

    sequential() = default;

    /// From child instances, in order.
    sequential(Layers... layers) requires(sizeof...(Layers) > 0) : layers_(std::move(layers)...) {}

    static constexpr std::size_t size() noexcept { return sizeof...(Layers); }

    /// Child I.
    template <std::size_t I>
    auto& get() noexcept
    {
        return std::get<I>(layers_);
    }
    template <std::size_t I>
    const auto& get() const noexcept
    {
        return std::get<I>(layers_);
    }

    /// Child i reads prefix + "<i>." (or prefix + "<name>." for named<"name", L>).
    void load(const weight_source& w, std::string_view prefix)
    {
        [&]<std::size_t... I>(std::index_sequence<I...>)
        {
            (detail::load_child(std::get<I>(layers_), w, prefix, I), ...);
        }
        (std::index_sequence_for<Layers...>{});
    }

    std::size_t parameter_count() const
    {
        return std::apply([](const auto&... l) { return (std::size_t{0} + ... + l.parameter_count()); }, layers_);
    }

    matrix<float> forward(const_matrix_ref<float> x) const
    {
        if constexpr (sizeof...(Layers) == 0) {
            return x;
        } else {
            matrix<float> y = std::get<0>(layers_).forward(x);
            [&]<std::size_t... I>(std::index_sequence<I...>)
            {
                (detail::forward_into(std::get<I + 1>(layers_), y), ...);
            }
            (std::make_index_sequence<sizeof...(Layers) - 1>{});
            return y;
        }
    }

private:
    std::tuple<Layers...> layers_;
};

} // namespace dskit
