// dynamic_gate<Backend>: seed 002's DynamicGate, one learned scalar gate per sequence.
//
//     dynamic_gate<> gate;                            // the width comes from load()
//     gate.load(weights, "block.gate.");              // gate.0.weight [D/4, D], gate.0.bias [D/4],
//                                                     // gate.2.weight [1, D/4], gate.2.bias [1]
//     matrix<float> y = gate.forward(x);              // x: [N, D] -> s * x
//     float s = gate.value(x);                        // the gate alone
//     attention(q, k, v, h, h, out, attention_mods::none{}, gate.attention_gate(x));  // fused into attention
//
// The formula (one sequence X: [N, D]; names of the article's nn.Sequential(Linear, SiLU, Linear, Sigmoid)):
//
//     m = mean_i x_i                                  [D]
//     s = sigmoid(w_2 . SiLU(W_1 m + b_1) + b_2)      a scalar; W_1: [D/4, D], w_2: [1, D/4]
//     O = s X
//
// Its PyTorch twin, with the article's broadcasting bug fixed, is DynamicGate in
// tests/reference/make_attention_module_fixtures_gated.py. The mean is over this sequence's own tokens:
// forward(layer, batch) runs each sequence of a batch separately, so no padding enters the mean.
// An empty sequence gives an empty output.
//
// Errors (shape_error naming "dynamic_gate"): gate.0.weight not [H, D], gate.2.weight not [1, H], an
// input without D columns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "dskit/attention/gates.hpp"
#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/layers/linear.hpp"
#include "dskit/ops/activation.hpp"

namespace dskit {

template <class Backend = default_backend>
class dynamic_gate {
public:
    /// The width comes from load().
    dynamic_gate() = default;

    /// A [dim]-wide gate (dim / 4 hidden units, as the article) with zero parameters; load() requires
    /// these shapes.
    explicit dynamic_gate(index_t dim) : fc1_(dim, dim / 4), fc2_(dim / 4, 1), loaded_(true) {}

    index_t dim() const noexcept { return fc1_.in_features(); }
    index_t hidden() const noexcept { return fc1_.out_features(); }
    const linear<Backend>& fc1() const noexcept { return fc1_; }
    const linear<Backend>& fc2() const noexcept { return fc2_; }

    /// Reads prefix + "gate.0.weight", "gate.0.bias", "gate.2.weight", "gate.2.bias". On error the gate is
    /// left unchanged.
    void load(const weight_source& w, std::string_view prefix)
    {
        linear<Backend> fc1 = fc1_, fc2 = fc2_;
        fc1.load(w, detail::join_name(prefix, "gate.0."));
        fc2.load(w, detail::join_name(prefix, "gate.2."));
        if (fc2.in_features() != fc1.out_features() || fc2.out_features() != 1)
            detail::throw_shape(op,
                                "tensor '" + detail::join_name(prefix, "gate.2.weight") + "' of shape [1, " +
                                    std::to_string(fc1.out_features()) + "]",
                                detail::shape_of(fc2.weight()));
        fc1_ = std::move(fc1);
        fc2_ = std::move(fc2);
        loaded_ = true;
    }

    std::size_t parameter_count() const noexcept { return fc1_.parameter_count() + fc2_.parameter_count(); }

    /// s = sigmoid(w_2 . SiLU(W_1 mean(x) + b_1) + b_2) for one sequence x [N >= 1, D].
    float value(const_matrix_ref<float> x) const
    {
        check(x);
        if (x.rows() == 0) throw value_error(detail::describe(op, "a sequence of at least one token", "none"));
        // Mean in double: the gate of a long sequence does not depend on the summation order.
        const matrix<float> m = x.template cast<double>().colwise().mean().template cast<float>();
        matrix<float> hid = fc1_.forward(m);
        ops::silu<Backend>(hid, hid);
        matrix<float> s = fc2_.forward(hid);
        ops::sigmoid<Backend>(s, s);
        return s(0, 0);
    }

    /// The gate of x as an output gate for dskit::attention (attention/gates.hpp), to fuse O = s X into
    /// the attention that produces X.
    attention_gates::per_sequence attention_gate(const_matrix_ref<float> x) const { return {value(x)}; }

    /// x [N, D] -> s x.
    matrix<float> forward(const_matrix_ref<float> x) const
    {
        check(x);
        if (x.rows() == 0) return matrix<float>(0, x.cols());
        return x * value(x);
    }

private:
    static constexpr std::string_view op = "dynamic_gate";

    void check(const const_matrix_ref<float>& x) const
    {
        if (!loaded_) throw value_error(detail::describe(op, "loaded weights (or a constructor with shapes)", "none"));
        detail::require_cols(op, "input", x, dim());
    }

    linear<Backend> fc1_, fc2_;
    bool loaded_ = false;
};

} // namespace dskit
