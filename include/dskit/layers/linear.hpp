// linear<Backend>: y = x W^T + b, PyTorch's nn.Linear.
//
// The weight is stored [out_features, in_features] exactly as in a PyTorch state_dict, so
// "fc.weight" and "fc.bias" load unchanged. The product runs on ops::matmul_nt<Backend>; the bias
// is added in one extra pass over the output (no temporaries).
//
//     linear<> fc(512, 2048);          // shapes fixed: load() checks them, bias required
//     linear<> any;                    // shapes and bias taken from whatever load() finds
//     fc.load(weights, "mlp.up.");     // reads "mlp.up.weight" [2048, 512] and "mlp.up.bias" [2048]
//     matrix<float> y = fc.forward(x); // x: [tokens, 512] -> y: [tokens, 2048]
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/parameter.hpp"
#include "dskit/ops/gemm.hpp"

namespace dskit {

template <class Backend = default_backend>
class linear {
public:
    /// Each output row depends only on its input row.
    static constexpr bool rowwise = true;

    /// Shape and bias unknown until load(), which adopts the shape of "weight" and uses "bias" if present.
    linear() = default;

    /// A [out_features, in_features] layer with zero-initialised parameters; load() requires these shapes,
    /// and requires "bias" when `bias` is true (when false, a "bias" in the weights is left unread, so
    /// load_state_dict(strict) reports it as unexpected, like PyTorch).
    linear(index_t in_features, index_t out_features, bool bias = true)
        : weight_(zero_weight(in_features, out_features)),
          bias_(bias ? vector<float>::Zero(out_features) : vector<float>()), has_bias_(bias), fixed_shape_(true),
          ready_(true)
    {
    }

    /// A layer with the given parameters: weight [out, in] and, optionally, bias [out].
    explicit linear(matrix<float> weight) : weight_(std::move(weight)), fixed_shape_(true), ready_(true) {}
    linear(matrix<float> weight, vector<float> bias)
        : weight_(std::move(weight)), bias_(std::move(bias)), has_bias_(true), fixed_shape_(true), ready_(true)
    {
        detail::require_size("linear", "bias", bias_, weight_.rows());
    }

    index_t in_features() const noexcept { return weight_.cols(); }
    index_t out_features() const noexcept { return weight_.rows(); }
    bool has_bias() const noexcept { return has_bias_; }

    /// [out_features, in_features].
    const matrix<float>& weight() const noexcept { return weight_; }
    /// [out_features], or empty without a bias.
    const vector<float>& bias() const noexcept { return bias_; }

    /// Reads prefix + "weight" and prefix + "bias". On error (missing_weight_error, shape_error naming the
    /// tensor, format_error for an unsupported dtype) the layer is left unchanged.
    void load(const weight_source& w, std::string_view prefix)
    {
        const std::string wname = detail::join_name(prefix, "weight");
        const std::string bname = detail::join_name(prefix, "bias");
        if (fixed_shape_) {
            matrix<float> weight = detail::load_matrix("linear", w, wname, out_features(), in_features());
            vector<float> bias;
            if (has_bias_) bias = detail::load_vector("linear", w, bname, out_features());
            weight_ = std::move(weight);
            bias_ = std::move(bias);
        } else {
            matrix<float> weight = detail::load_matrix("linear", w, wname, -1, -1);
            bool found = false;
            vector<float> bias = detail::load_optional_vector("linear", w, bname, weight.rows(), found);
            weight_ = std::move(weight);
            bias_ = std::move(bias);
            has_bias_ = found;
        }
        ready_ = true;
    }

    std::size_t parameter_count() const noexcept { return static_cast<std::size_t>(weight_.size() + bias_.size()); }

    /// out = x W^T + b, into the caller's [tokens, out_features] buffer.
    void forward(const_matrix_ref<float> x, matrix_ref<float> out) const
    {
        require_ready();
        detail::require_cols("linear", "input", x, in_features());
        if (out.rows() != x.rows() || out.cols() != out_features())
            detail::throw_shape("linear", "output of shape " + detail::shape_string({x.rows(), out_features()}),
                                detail::shape_of(out));
        ops::linear<Backend>(x, weight_, bias_span(), out);
    }

    /// x: [tokens, in_features] -> [tokens, out_features].
    matrix<float> forward(const_matrix_ref<float> x) const
    {
        require_ready();
        detail::require_cols("linear", "input", x, in_features());
        matrix<float> y(x.rows(), out_features());
        ops::linear<Backend>(x, weight_, bias_span(), y);
        return y;
    }

private:
    std::span<const float> bias_span() const noexcept
    {
        return has_bias_ ? std::span<const float>(bias_.data(), static_cast<std::size_t>(bias_.size()))
                         : std::span<const float>();
    }

    static matrix<float> zero_weight(index_t in_features, index_t out_features)
    {
        detail::require_non_negative("linear", "in_features", in_features);
        detail::require_non_negative("linear", "out_features", out_features);
        return matrix<float>::Zero(out_features, in_features);
    }

    void require_ready() const
    {
        if (!ready_)
            throw value_error(detail::describe(
                "linear", "loaded weights (a default-constructed linear takes its shape from load())", "none"));
    }

    matrix<float> weight_;
    vector<float> bias_;
    bool has_bias_ = false;
    bool fixed_shape_ = false;
    bool ready_ = false;
};

} // namespace dskit
