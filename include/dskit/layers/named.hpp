// named<"fc1", L>: a layer with a name of its own, like an attribute of a torch.nn.Module.
//
// Inside sequential<> and residual<>, child i normally loads its parameters under prefix + "i."
// (the names torch.nn.Sequential gives). A child wrapped in named<"fc1", L> loads them under
// prefix + "fc1." instead, so models whose PyTorch modules use attribute names (self.fc1 = ...)
// or nn.Sequential(OrderedDict(...)) load unchanged:
//
//     using mlp = sequential<named<"fc1", linear<>>, named<"act", gelu<>>, named<"fc2", linear<>>>;
//     // reads "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"
//
// named<Name, L> derives from L: it has L's constructors, accessors and `rowwise` promise, and only
// changes where load() looks. A name may contain dots ("layers.0").
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "dskit/core/concepts.hpp"

namespace dskit {

/// A string usable as a template argument: named<"fc1", L>.
template <std::size_t N>
struct fixed_string {
    char value[N]{};

    constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, value); } // NOLINT: implicit by design

    constexpr std::string_view view() const noexcept { return {value, N - 1}; }
    constexpr std::size_t size() const noexcept { return N - 1; }
};

template <fixed_string Name, layer L>
class named : public L {
public:
    static_assert(Name.size() > 0, "dskit::named: the name must not be empty");

    /// The name this layer's parameters live under.
    static constexpr std::string_view name = Name.view();

    using L::L;
    named() = default;
    named(L inner) : L(std::move(inner)) {} // NOLINT: implicit, so sequential{...} accepts a bare L

    /// Loads the wrapped layer from prefix + name + ".".
    void load(const weight_source& w, std::string_view prefix)
    {
        std::string p(prefix);
        p.append(name).push_back('.');
        L::load(w, p);
    }

    L& inner() noexcept { return *this; }
    const L& inner() const noexcept { return *this; }
};

namespace detail {
template <class L>
inline constexpr bool is_named = false;
template <fixed_string Name, class L>
inline constexpr bool is_named<named<Name, L>> = true;
} // namespace detail

} // namespace dskit
