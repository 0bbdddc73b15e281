// Normalisation layers, PyTorch's nn.RMSNorm and nn.LayerNorm, over the last (feature) axis.
//
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * weight                       parameter "weight" [dim]
//   layer_norm: y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias      parameters "weight", "bias" [dim]
//               (biased variance, as PyTorch)
//
// Epsilon defaults follow PyTorch: nn.LayerNorm uses 1e-5; nn.RMSNorm's default eps=None means
// torch.finfo(float32).eps = FLT_EPSILON (1.1920929e-07), which is rms_norm's default here. Pass the
// eps your model was built with (DeepSeek's configs use 1e-6) explicitly.
//
// dim = 0 in the constructor means "take the size from the weights at load()"; a layer built with
// elementwise_affine = false has no parameters and accepts any width.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/parameter.hpp"
#include "dskit/ops/norm.hpp"

namespace dskit {

namespace detail {
/// A norm's input must have as many columns as its loaded weight.
template <class M>
void check_norm_input(std::string_view op, const vector<float>& weight, const M& x)
{
    if (weight.size() == 0)
        throw value_error(describe(
            op, std::string("loaded weights (") + std::string(op) + " with dim 0 takes its size from load())", "none"));
    require_cols(op, "input", x, weight.size());
}
} // namespace detail

namespace detail {

inline void require_layer_eps(std::string_view op, float eps)
{
    if (!(eps > 0.0f) || !std::isfinite(eps)) throw value_error(describe(op, "a finite eps > 0", std::to_string(eps)));
}

inline std::span<const float> param_span(const vector<float>& v) noexcept
{
    return {v.data(), static_cast<std::size_t>(v.size())};
}

} // namespace detail

template <class Backend = default_backend>
class rms_norm {
public:
    static constexpr bool rowwise = true;
    /// torch.nn.RMSNorm's default (eps=None) for float32 inputs.
    static constexpr float default_eps = std::numeric_limits<float>::epsilon();

    /// Size taken from "weight" at load(); eps = default_eps.
    rms_norm() = default;

    /// `dim` features (0: from the weights), weight initialised to ones like PyTorch.
    explicit rms_norm(index_t dim, float eps = default_eps, bool elementwise_affine = true)
        : eps_(eps), affine_(elementwise_affine), dim_(dim)
    {
        detail::require_non_negative("rms_norm", "dim", dim);
        detail::require_layer_eps("rms_norm", eps);
        if (affine_ && dim_ > 0) weight_ = vector<float>::Ones(dim_);
    }

    float eps() const noexcept { return eps_; }
    bool elementwise_affine() const noexcept { return affine_; }
    /// Number of features (0 while unknown).
    index_t dim() const noexcept { return affine_ ? weight_.size() : dim_; }
    /// [dim], or empty without elementwise_affine.
    const vector<float>& weight() const noexcept { return weight_; }

    /// Reads prefix + "weight" (nothing without elementwise_affine); the layer is unchanged on error.
    void load(const weight_source& w, std::string_view prefix)
    {
        if (!affine_) return;
        weight_ = detail::load_vector("rms_norm", w, detail::join_name(prefix, "weight"), dim_ > 0 ? dim_ : -1);
    }

    std::size_t parameter_count() const noexcept { return static_cast<std::size_t>(weight_.size()); }

    matrix<float> forward(const_matrix_ref<float> x) const
    {
        check(x);
        matrix<float> y(x.rows(), x.cols());
        ops::rms_norm<Backend>(x, detail::param_span(weight_), eps_, y);
        return y;
    }

    /// Normalises x in place (sequential<> uses this to skip an allocation).
    void forward_inplace(matrix_ref<float> x) const
    {
        check(x);
        ops::rms_norm<Backend>(x, detail::param_span(weight_), eps_, x);
    }

private:
    template <class M>
    void check(const M& x) const
    {
        if (affine_) detail::check_norm_input("rms_norm", weight_, x);
    }

    float eps_ = default_eps;
    bool affine_ = true;
    index_t dim_ = 0; // fixed by the constructor (0: adopt from the weights)
    vector<float> weight_;
};

template <class Backend = default_backend>
class layer_norm {
public:
    static constexpr bool rowwise = true;
    /// torch.nn.LayerNorm's default.
    static constexpr float default_eps = 1e-5f;

    /// Size taken from "weight" at load(), which also adopts "bias" if present; eps = 1e-5.
    layer_norm() = default;

    /// `dim` features (0: from the weights); weight ones and bias zeros like PyTorch. With dim > 0, load()
    /// requires "weight" (if elementwise_affine) and "bias" (if also bias).
    explicit layer_norm(index_t dim, float eps = default_eps, bool elementwise_affine = true, bool bias = true)
        : eps_(eps), affine_(elementwise_affine), bias_flag_(elementwise_affine && bias), dim_(dim)
    {
        detail::require_non_negative("layer_norm", "dim", dim);
        detail::require_layer_eps("layer_norm", eps);
        if (affine_ && dim_ > 0) weight_ = vector<float>::Ones(dim_);
        if (bias_flag_ && dim_ > 0) bias_ = vector<float>::Zero(dim_);
    }

    float eps() const noexcept { return eps_; }
    bool elementwise_affine() const noexcept { return affine_; }
    bool has_bias() const noexcept { return bias_flag_; }
    /// Number of features (0 while unknown).
    index_t dim() const noexcept { return affine_ ? weight_.size() : dim_; }
    const vector<float>& weight() const noexcept { return weight_; }
    const vector<float>& bias() const noexcept { return bias_; }

    /// Reads prefix + "weight" and prefix + "bias"; the layer is unchanged on error.
    void load(const weight_source& w, std::string_view prefix)
    {
        if (!affine_) return;
        const std::string bname = detail::join_name(prefix, "bias");
        if (dim_ > 0) {
            vector<float> weight = detail::load_vector("layer_norm", w, detail::join_name(prefix, "weight"), dim_);
            vector<float> bias;
            if (bias_flag_) bias = detail::load_vector("layer_norm", w, bname, dim_);
            weight_ = std::move(weight);
            bias_ = std::move(bias);
        } else {
            vector<float> weight = detail::load_vector("layer_norm", w, detail::join_name(prefix, "weight"), -1);
            bool found = false;
            vector<float> bias = detail::load_optional_vector("layer_norm", w, bname, weight.size(), found);
            weight_ = std::move(weight);
            bias_ = std::move(bias);
            bias_flag_ = found;
        }
    }

    std::size_t parameter_count() const noexcept { return static_cast<std::size_t>(weight_.size() + bias_.size()); }

    matrix<float> forward(const_matrix_ref<float> x) const
    {
        check(x);
        matrix<float> y(x.rows(), x.cols());
        ops::layer_norm<Backend>(x, detail::param_span(weight_), detail::param_span(bias_), eps_, y);
        return y;
    }

    void forward_inplace(matrix_ref<float> x) const
    {
        check(x);
        ops::layer_norm<Backend>(x, detail::param_span(weight_), detail::param_span(bias_), eps_, x);
    }

private:
    template <class M>
    void check(const M& x) const
    {
        if (affine_) detail::check_norm_input("layer_norm", weight_, x);
    }

    float eps_ = default_eps;
    bool affine_ = true;
    bool bias_flag_ = true;
    index_t dim_ = 0; // fixed by the constructor (0: adopt from the weights)
    vector<float> weight_;
    vector<float> bias_;
};

} // namespace dskit
