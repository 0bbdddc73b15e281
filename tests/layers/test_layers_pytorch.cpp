// A model assembled from dskit's layers loads a PyTorch state_dict (tests/reference/make_layer_fixtures.py)
// and reproduces PyTorch's outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <dskit/core/float16.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/weight_map.hpp>
#include <dskit/layers/layers.hpp>

#include "../test_util.hpp"
#include "layer_checks.hpp"

namespace {

using namespace dskit;

// nn.Sequential(Residual(LayerNorm, Linear, GELU, Linear), Residual(RMSNorm, Linear, SiLU, Linear(bias=False)),
//               LayerNorm, Linear)
template <class B>
using pytorch_model = sequential<residual<layer_norm<B>, linear<B>, gelu<B>, linear<B>>,
                                 residual<rms_norm<B>, linear<B>, silu<B>, linear<B>>, layer_norm<B>, linear<B>>;

// nn.Sequential(OrderedDict(fc1=Linear(24, 48), act=SiLU(), fc2=Linear(48, 24)))
template <class B>
using named_mlp = sequential<named<"fc1", linear<B>>, named<"act", silu<B>>, named<"fc2", linear<B>>>;

constexpr int token_counts[] = {1, 17, 64};

const safetensors_file& io_fixture()
{
    static const safetensors_file f = safetensors_file::open(test::fixture("layers/io.safetensors"));
    return f;
}

matrix<float> io_tensor(const std::string& name)
{
    return to_matrix(io_fixture().at(name), name);
}

// Relative error of the whole output (Frobenius), the measure that does not blow up near zeros.
double rel_frobenius(const matrix<float>& a, const matrix<float>& b)
{
    return static_cast<double>((a - b).norm()) / static_cast<double>(b.norm());
}

} // namespace

TEST_CASE_TEMPLATE("layers: PyTorch model loads its state_dict and reproduces its output", B, backend::scalar,
                   backend::simd<>)
{
    const auto file = safetensors_file::open(test::fixture("layers/model.safetensors"));
    pytorch_model<B> model;
    CHECK(load_state_dict(model, file).empty()); // strict: every tensor used

    // Shapes and bias flags adopted from the file.
    CHECK(model.template get<0>().template get<1>().in_features() == 40);
    CHECK(model.template get<0>().template get<1>().out_features() == 160);
    CHECK(model.template get<1>().template get<3>().has_bias() == false);
    CHECK(model.template get<1>().template get<0>().eps() == doctest::Approx(1.1920929e-07));

    for (int n : token_counts) {
        CAPTURE(n);
        const matrix<float> x = io_tensor("x." + std::to_string(n));
        const matrix<float> want = io_tensor("y." + std::to_string(n));
        const matrix<float> got = model.forward(x);
        REQUIRE(got.rows() == n);
        REQUIRE(got.cols() == 24);
        CHECK(test::scaled_error(got, want) < 1e-5);
        CHECK(rel_frobenius(got, want) < 1e-6);
    }
}

TEST_CASE_TEMPLATE("layers: bf16 state_dict is converted on load", B, backend::scalar, backend::simd<>)
{
    const auto file = safetensors_file::open(test::fixture("layers/model_bf16.safetensors"));
    REQUIRE(file.at("0.1.weight").type == dtype::bf16);
    pytorch_model<B> model;
    load_state_dict(model, file);
    for (int n : token_counts) {
        CAPTURE(n);
        const matrix<float> got = model.forward(io_tensor("x." + std::to_string(n)));
        CHECK(test::scaled_error(got, io_tensor("y_bf16." + std::to_string(n))) < 1e-5);
    }
}

TEST_CASE_TEMPLATE("layers: a model built with explicit shapes validates them against the state_dict", B,
                   backend::scalar, backend::simd<>)
{
    using block1 = residual<layer_norm<B>, linear<B>, gelu<B>, linear<B>>;
    using block2 = residual<rms_norm<B>, linear<B>, silu<B>, linear<B>>;
    auto make = [](bool last_bias) {
        return pytorch_model<B>{block1{layer_norm<B>(40), linear<B>(40, 160), gelu<B>{}, linear<B>(160, 40)},
                                block2{rms_norm<B>(40), linear<B>(40, 160), silu<B>{}, linear<B>(160, 40, last_bias)},
                                layer_norm<B>(40), linear<B>(40, 24)};
    };
    const auto file = safetensors_file::open(test::fixture("layers/model.safetensors"));

    pytorch_model<B> model = make(false);
    CHECK(model.parameter_count() == 27144); // before loading: same shapes as PyTorch's
    CHECK(load_state_dict(model, file).empty());
    CHECK(test::scaled_error(model.forward(io_tensor("x.17")), io_tensor("y.17")) < 1e-5);

    pytorch_model<B> wrong = make(true); // nn.Linear(H, D, bias=False) in the file
    bool threw = false;
    try {
        load_state_dict(wrong, file);
    } catch (const missing_weight_error& e) {
        threw = true;
        CHECK(std::string(e.what()).find("'1.3.bias'") != std::string::npos);
    }
    CHECK(threw);
}

TEST_CASE("layers: an F16 state_dict loads as the same values in float")
{
    // Every tensor of the fixture stored as F16, and the same rounded values stored as F32: the two
    // models must be identical, which shows the conversion happens on load and loses nothing more.
    const auto file = safetensors_file::open(test::fixture("layers/model.safetensors"));
    weight_map f16, rounded;
    for (const auto& name : file.names()) {
        const matrix<float> m = to_matrix(file.at(name), name);
        std::vector<float16_t> half(static_cast<std::size_t>(m.size()));
        matrix<float> back(m.rows(), m.cols());
        for (index_t i = 0; i < m.size(); ++i) {
            half[static_cast<std::size_t>(i)] = float16_t(m.data()[i]);
            back.data()[i] = half[static_cast<std::size_t>(i)].to_float();
        }
        const auto shape = file.at(name).shape;
        f16.add_raw(name, dtype::f16, shape, std::as_bytes(std::span(half)));
        rounded.add_raw(name, dtype::f32, shape,
                        std::as_bytes(std::span(back.data(), static_cast<std::size_t>(back.size()))));
    }
    pytorch_model<backend::scalar> from_f16, from_f32;
    load_state_dict(from_f16, f16);
    load_state_dict(from_f32, rounded);
    const matrix<float> x = io_tensor("x.17");
    CHECK(from_f16.forward(x) == from_f32.forward(x));
    CHECK(test::scaled_error(from_f16.forward(x), io_tensor("y.17")) < 1e-2); // F16 rounding, still the same model
}

TEST_CASE("layers: parameter_count equals PyTorch's sum(p.numel())")
{
    for (const char* name : {"layers/model.safetensors", "layers/named.safetensors"}) {
        CAPTURE(name);
        const auto file = safetensors_file::open(test::fixture(name));
        const std::size_t want = std::stoul(file.metadata().at("parameter_count"));
        if (std::string(name) == "layers/model.safetensors") {
            pytorch_model<default_backend> model;
            load_state_dict(model, file);
            CHECK(model.parameter_count() == want);
            CHECK(want == 27144);
        } else {
            named_mlp<default_backend> model;
            load_state_dict(model, file);
            CHECK(model.parameter_count() == want);
        }
    }
}

TEST_CASE_TEMPLATE("layers: named children load PyTorch attribute names", B, backend::scalar, backend::simd<>)
{
    const auto file = safetensors_file::open(test::fixture("layers/named.safetensors"));
    named_mlp<B> model;
    load_state_dict(model, file);
    CHECK(model.template get<0>().weight().rows() == 48);
    CHECK(test::scaled_error(model.forward(io_tensor("named.x")), io_tensor("named.y")) < 1e-5);
}

namespace {
// A layer that is not row-wise: adds the sequence's mean row to every row.
struct add_sequence_mean {
    matrix<float> forward(const_matrix_ref<float> x) const
    {
        matrix<float> y = x;
        if (x.rows() > 0) y.rowwise() += x.colwise().mean();
        return y;
    }
    void load(const weight_source&, std::string_view) {}
    std::size_t parameter_count() const { return 0; }
};
} // namespace

TEST_CASE_TEMPLATE("layers: batch of sequences of different lengths equals per-sequence forward", B, backend::scalar,
                   backend::simd<>)
{
    const auto file = safetensors_file::open(test::fixture("layers/model.safetensors"));
    pytorch_model<B> model;
    load_state_dict(model, file);

    const batch<float> input{io_tensor("x.17"), io_tensor("x.1"), io_tensor("x.64")};
    REQUIRE(input.size() == 3);

    SUBCASE("row-wise model runs on the packed batch")
    {
        static_assert(is_rowwise_layer<pytorch_model<B>>);
        const batch<float> out = forward(model, input);
        REQUIRE(out.size() == 3);
        CHECK(out.offsets() == input.offsets());
        const int lengths[] = {17, 1, 64};
        for (std::size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            const matrix<float> one = model.forward(input[i]);
            const matrix<float> got = out[i];
            CHECK(test::scaled_error(got, one) < 1e-6);
            CHECK(test::scaled_error(got, io_tensor("y." + std::to_string(lengths[i]))) < 1e-5);
        }
    }
    SUBCASE("a sequence-wise model runs per sequence")
    {
        using mixed = sequential<add_sequence_mean, pytorch_model<B>>;
        static_assert(!is_rowwise_layer<mixed>);
        const mixed m{add_sequence_mean{}, model};
        const batch<float> out = forward(m, input);
        REQUIRE(out.size() == 3);
        CHECK(out.offsets() == input.offsets());
        for (std::size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            const matrix<float> got = out[i];
            CHECK(test::scaled_error(got, m.forward(input[i])) < 1e-6);
        }
        // Running it on the packed matrix would mix the sequences: the per-sequence path matters.
        CHECK(test::scaled_error(m.forward(input.packed()), out.packed()) > 1e-3);
    }
}
