// residual<L...>: y = x + (L_1 -> L_2 -> ... -> L_n)(x), the skip connection of a pre-norm block.
//
// The children are named as in torch.nn.Sequential (prefix + "<i>.", or a named<> child's own name),
// so the matching PyTorch module is
//
//     class Residual(nn.Sequential):
//         def forward(self, x):
//             return x + super().forward(x)
//
// and a pre-norm MLP block reads like the model:
//
//     using mlp_block = residual<rms_norm<>, linear<>, silu<>, linear<>>;
//     using block = sequential<mlp_block, mlp_block>;
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

#include "dskit/core/concepts.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/layers/sequential.hpp"

namespace dskit {

template <layer... Layers>
class residual {
public:
    static_assert(sizeof...(Layers) > 0, "dskit::residual needs at least one layer");

    using body_type = sequential<Layers...>;
    static constexpr bool rowwise = is_rowwise_layer<body_type>;

    residual() = default;
    residual(Layers... layers) : body_(std::move(layers)...) {}

    /// The layers inside the skip connection.
    body_type& body() noexcept { return body_; }
    const body_type& body() const noexcept { return body_; }

    template <std::size_t I>
    auto& get() noexcept
    {
        return body_.template get<I>();
    }
    template <std::size_t I>
    const auto& get() const noexcept
    {
        return body_.template get<I>();
    }

    void load(const weight_source& w, std::string_view prefix) { body_.load(w, prefix); }

    std::size_t parameter_count() const { return body_.parameter_count(); }

    /// x + body(x); shape_error if body changes the shape.
    matrix<float> forward(const_matrix_ref<float> x) const
    {
        matrix<float> y = body_.forward(x);
        if (y.rows() != x.rows() || y.cols() != x.cols())
            detail::throw_shape("residual", "inner output of shape " + detail::shape_of(x) + " (the input's)",
                                detail::shape_of(y));
        y += x;
        return y;
    }

private:
    body_type body_;
};

} // namespace dskit
