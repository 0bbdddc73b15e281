// The layer contract, loading rules and errors of dskit's composition layers.
#include <doctest/doctest.h>

#include <cfloat>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include <dskit/io/safetensors.hpp>
#include <dskit/io/weight_map.hpp>
#include <dskit/layers/layers.hpp>

#include "../test_util.hpp"
#include "layer_checks.hpp"

using namespace dskit;

namespace {

// Not a layer: no load().
struct no_load {
    matrix<float> forward(const_matrix_ref<float> x) const { return x; }
    std::size_t parameter_count() const { return 0; }
};

// A layer that promises nothing about rows.
struct per_sequence {
    matrix<float> forward(const_matrix_ref<float> x) const { return x; }
    void load(const weight_source&, std::string_view) {}
    std::size_t parameter_count() const { return 0; }
};

using mlp = sequential<linear<>, silu<>, linear<>>;
using block =
    sequential<residual<rms_norm<>, linear<>, silu<>, linear<>>, residual<layer_norm<>, linear<>, gelu<>, linear<>>>;

// The concept and row-wise promises, checked at compile time.
static_assert(layer<linear<>> && layer<linear<backend::scalar>>);
static_assert(layer<rms_norm<>> && layer<layer_norm<backend::scalar>>);
static_assert(layer<silu<>> && layer<gelu<>> && layer<gelu_tanh<>> && layer<sigmoid<>> && layer<relu<>> &&
              layer<identity>);
static_assert(layer<mlp> && layer<block> && layer<named<"fc1", linear<>>> && layer<sequential<>>);
static_assert(!layer<no_load> && !layer<int> && !layer<matrix<float>>);
static_assert(is_rowwise_layer<linear<>> && is_rowwise_layer<rms_norm<>> && is_rowwise_layer<silu<>>);
static_assert(is_rowwise_layer<mlp> && is_rowwise_layer<block> && is_rowwise_layer<named<"x", relu<>>>);
static_assert(!is_rowwise_layer<per_sequence> && !is_rowwise_layer<sequential<linear<>, per_sequence>>);
static_assert(!is_rowwise_layer<residual<per_sequence>>);
static_assert(named<"layers.0", linear<>>::name == "layers.0");

TEST_CASE("layers: named keeps the wrapped layer's constructors and accessors")
{
    named<"fc1", linear<>> fc(4, 3, false); // linear's constructor
    CHECK(fc.in_features() == 4);
    CHECK_FALSE(fc.has_bias());
    weight_map w;
    w.add("enc.fc1.weight", matrix<float>::Ones(3, 4));
    load_state_dict(fc, w, true, "enc.");
    CHECK(fc.inner().weight() == matrix<float>::Ones(3, 4));
    CHECK(fc.forward(matrix<float>::Ones(2, 4)) == matrix<float>::Constant(2, 3, 4.0f));
}

template <class Ex, class F>
std::string message_of(F&& f)
{
    try {
        f();
    } catch (const Ex& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("unexpected exception type: " << e.what());
    }
    FAIL("no exception thrown");
    return {};
}

// A state_dict for mlp (in -> hidden -> out) under `prefix`.
weight_map mlp_weights(index_t in, index_t hidden, index_t out, const std::string& prefix = "")
{
    weight_map w;
    w.add(prefix + "0.weight", test::random_matrix(hidden, in, 1, 0.3f));
    w.add(prefix + "0.bias", vector<float>(test::random_matrix(hidden, 1, 2).col(0)));
    w.add(prefix + "2.weight", test::random_matrix(out, hidden, 3, 0.3f));
    w.add(prefix + "2.bias", vector<float>(test::random_matrix(out, 1, 4).col(0)));
    return w;
}

} // namespace

TEST_CASE_TEMPLATE("layers: linear computes x W^T + b", B, backend::scalar, backend::simd<>)
{
    const matrix<float> w = test::random_matrix(7, 13, 5);
    const vector<float> b = test::random_matrix(7, 1, 6).col(0);
    const matrix<float> x = test::random_matrix(11, 13, 7);
    const matrix<float> want = (x * w.transpose()).rowwise() + b.transpose();

    const linear<B> fc(w, b);
    CHECK(fc.in_features() == 13);
    CHECK(fc.out_features() == 7);
    CHECK(fc.parameter_count() == 7 * 13 + 7);
    CHECK(test::scaled_error(fc.forward(x), want) < 1e-5);

    // Into a caller buffer, and on a strided view (every other row).
    matrix<float> out(11, 7);
    fc.forward(x, out);
    CHECK(test::scaled_error(out, want) < 1e-5);
    const auto rows = map_matrix(x.data(), 5, 13, 2 * 13);
    const matrix<float> strided = fc.forward(rows);
    for (index_t i = 0; i < 5; ++i) CHECK(test::scaled_error(strided.row(i), want.row(2 * i)) < 1e-5);

    const linear<B> no_bias(w);
    CHECK_FALSE(no_bias.has_bias());
    CHECK(test::scaled_error(no_bias.forward(x), matrix<float>(x * w.transpose())) < 1e-5);

    // Zero tokens in, zero tokens out.
    CHECK(fc.forward(matrix<float>(0, 13)).rows() == 0);
}

TEST_CASE("layers: linear errors name the operation, what was expected and what came")
{
    linear<> fc(4, 3);
    CHECK(message_of<shape_error>([&] { (void)fc.forward(matrix<float>::Zero(2, 5)); }) ==
          "linear: expected input with 4 columns, got [2, 5]");
    matrix<float> small(2, 2);
    CHECK(message_of<shape_error>([&] { fc.forward(matrix<float>::Zero(2, 4), small); }) ==
          "linear: expected output of shape [2, 3], got [2, 2]");

    weight_map transposed;
    transposed.add("fc.weight", matrix<float>::Zero(4, 3)).add("fc.bias", vector<float>::Zero(3));
    CHECK(message_of<shape_error>([&] { fc.load(transposed, "fc."); }) ==
          "linear: expected tensor 'fc.weight' of shape [3, 4], got [4, 3]");

    weight_map bad_bias;
    bad_bias.add("weight", matrix<float>::Zero(3, 4)).add("bias", matrix<float>::Zero(1, 3));
    CHECK(message_of<shape_error>([&] { fc.load(bad_bias, ""); }) ==
          "linear: expected tensor 'bias' of shape [3], got [1, 3]");

    weight_map no_bias;
    no_bias.add("fc.weight", matrix<float>::Ones(3, 4));
    CHECK(message_of<missing_weight_error>([&] { fc.load(no_bias, "fc."); }).find("'fc.bias'") != std::string::npos);
    CHECK(fc.weight().isZero()); // a failed load leaves the layer unchanged

    weight_map ints;
    const std::int32_t raw[12] = {};
    ints.add_raw("weight", dtype::i32, {3, 4}, std::as_bytes(std::span(raw)));
    ints.add("bias", vector<float>::Zero(3));
    const std::string m = message_of<format_error>([&] { fc.load(ints, ""); });
    CHECK(m.find("'weight'") != std::string::npos);
    CHECK(m.find("I32") != std::string::npos);

    CHECK(message_of<value_error>([] { (void)linear<>().forward(matrix<float>::Zero(1, 1)); }).starts_with("linear: "));
    CHECK_THROWS_AS(linear<>(-1, 3), value_error);
}

TEST_CASE("layers: linear bias flag and shapes at load")
{
    weight_map with_bias = mlp_weights(5, 8, 5);
    weight_map without_bias;
    without_bias.add("0.weight", test::random_matrix(8, 5));

    SUBCASE("default-constructed adopts what the file has")
    {
        linear<> a;
        a.load(with_bias, "0.");
        CHECK(a.has_bias());
        CHECK(a.in_features() == 5);
        CHECK(a.out_features() == 8);
        CHECK(a.parameter_count() == 48);
        a.load(without_bias, "0.");
        CHECK_FALSE(a.has_bias());
        CHECK(a.bias().size() == 0);
        CHECK(a.parameter_count() == 40);
    }
    SUBCASE("bias=false leaves a file's bias unread: strict loading reports it")
    {
        sequential<named<"0", linear<>>> m{linear<>(5, 8, false)};
        const std::string msg = message_of<missing_weight_error>([&] { load_state_dict(m, with_bias); });
        CHECK(msg.starts_with("load_state_dict: expected every tensor to be a parameter of the model, got 3 "
                              "unexpected keys: '0.bias', '2.bias', '2.weight'"));
        const auto unexpected = load_state_dict(m, with_bias, false);
        CHECK(unexpected == std::vector<std::string>{"0.bias", "2.bias", "2.weight"});
        CHECK(m.get<0>().weight() == to_matrix(with_bias.at("0.weight"), "0.weight")); // loaded all the same
    }
    SUBCASE("bias=true requires the bias")
    {
        linear<> c(5, 8, true);
        CHECK_THROWS_AS(c.load(without_bias, "0."), missing_weight_error);
    }
}

TEST_CASE_TEMPLATE("layers: sequential chains its children and names them like nn.Sequential", B, backend::scalar,
                   backend::simd<>)
{
    const weight_map w = mlp_weights(6, 10, 4, "mlp.");
    sequential<linear<B>, silu<B>, linear<B>> m{linear<B>(6, 10), silu<B>{}, linear<B>(10, 4)};
    CHECK(m.size() == 3);
    CHECK(m.parameter_count() == 6 * 10 + 10 + 10 * 4 + 4);
    CHECK(load_state_dict(m, w, true, "mlp.").empty());

    const matrix<float> x = test::random_matrix(9, 6, 8);
    const matrix<float> w0 = to_matrix(w.at("mlp.0.weight"), "");
    const matrix<float> b0 = to_matrix(w.at("mlp.0.bias"), "");
    const matrix<float> w2 = to_matrix(w.at("mlp.2.weight"), "");
    const matrix<float> b2 = to_matrix(w.at("mlp.2.bias"), "");
    matrix<float> h = (x * w0.transpose()).rowwise() + b0.row(0);
    h = h.array() / (1.0f + (-h.array()).exp());
    const matrix<float> want = (h * w2.transpose()).rowwise() + b2.row(0);
    CHECK(test::scaled_error(m.forward(x), want) < 1e-5);
    CHECK(m.template get<2>().out_features() == 4);

    // The same with class template argument deduction, and with a second prefix in the same file.
    sequential deduced{linear<B>(6, 10), silu<B>{}, linear<B>(10, 4)};
    static_assert(std::is_same_v<decltype(deduced), sequential<linear<B>, silu<B>, linear<B>>>);
    weight_map two = mlp_weights(6, 10, 4, "a.");
    two.add_all(mlp_weights(6, 10, 4, "b."));
    CHECK(load_state_dict(deduced, two, true, "b.").empty()); // "a." tensors are outside the prefix
    CHECK(test::scaled_error(deduced.forward(x), want) < 1e-5);

    // An empty sequential is the identity.
    CHECK(sequential<>{}.forward(x) == x);
}

TEST_CASE("layers: residual adds its input and checks the shape")
{
    using block_t = residual<named<"norm", rms_norm<>>, named<"fc", linear<>>>;
    weight_map w;
    w.add("blk.norm.weight", vector<float>::Constant(4, 2.0f));
    w.add("blk.fc.weight", matrix<float>::Identity(4, 4));
    w.add("blk.fc.bias", vector<float>::Constant(4, 1.0f));
    block_t r;
    load_state_dict(r, w, true, "blk.");
    CHECK(r.parameter_count() == 4 + 16 + 4);
    CHECK(r.get<1>().bias()(0) == 1.0f);

    matrix<float> x(1, 4);
    x << 1, -1, 1, -1; // rms 1: norm gives 2 * x; + bias 1; + x
    matrix<float> want(1, 4);
    want << 4, -2, 4, -2;
    CHECK(test::scaled_error(r.forward(x), want) < 1e-5);

    residual<linear<>> widening{linear<>(4, 3)};
    CHECK(message_of<shape_error>([&] { (void)widening.forward(matrix<float>::Zero(2, 4)); }) ==
          "residual: expected inner output of shape [2, 4] (the input's), got [2, 3]");
}

TEST_CASE("layers: strict loading reports unexpected keys, missing ones always throw")
{
    weight_map w = mlp_weights(3, 5, 3);
    w.add("2.extra", vector<float>::Zero(2));
    w.add("head.weight", matrix<float>::Zero(2, 3));
    mlp m;
    const std::string msg = message_of<missing_weight_error>([&] { load_state_dict(m, w); });
    CHECK(msg == "load_state_dict: expected every tensor to be a parameter of the model, got 2 unexpected keys: "
                 "'2.extra', 'head.weight'");
    CHECK(load_state_dict(m, w, false) == std::vector<std::string>{"2.extra", "head.weight"});
    CHECK(m.get<2>().out_features() == 3);

    w.erase("2.bias");
    mlp fixed{linear<>(3, 5), silu<>{}, linear<>(5, 3)};
    const std::string missing = message_of<missing_weight_error>([&] { load_state_dict(fixed, w, false); });
    CHECK(missing.find("'2.bias'") != std::string::npos);

    // Shape errors deep in a model name the full tensor name.
    weight_map wrong = mlp_weights(3, 6, 3);
    const std::string shape = message_of<shape_error>([&] { load_state_dict(fixed, wrong); });
    CHECK(shape == "linear: expected tensor '0.weight' of shape [5, 3], got [6, 3]");
}

TEST_CASE_TEMPLATE("layers: norms follow PyTorch's definitions and defaults", B, backend::scalar, backend::simd<>)
{
    CHECK(rms_norm<B>().eps() == FLT_EPSILON);
    CHECK(layer_norm<B>().eps() == 1e-5f);
    const matrix<float> x = test::random_matrix(5, 12, 9, 2.0f);
    const vector<float> g = test::random_matrix(12, 1, 10).col(0);
    const vector<float> b = test::random_matrix(12, 1, 11).col(0);
    weight_map w;
    w.add("n.weight", g).add("n.bias", b);

    rms_norm<B> rms(12, 1e-6f);
    load_state_dict(rms, w, false, "n.");
    layer_norm<B> ln;
    load_state_dict(ln, w, true, "n.");
    CHECK(ln.has_bias());
    CHECK(rms.parameter_count() == 12);
    CHECK(ln.parameter_count() == 24);

    matrix<float> want_rms(5, 12), want_ln(5, 12);
    for (index_t i = 0; i < 5; ++i) {
        const double ms = x.row(i).cast<double>().squaredNorm() / 12;
        const double mean = x.row(i).cast<double>().mean();
        const double var = (x.row(i).cast<double>().array() - mean).square().mean();
        for (index_t j = 0; j < 12; ++j) {
            want_rms(i, j) = static_cast<float>(x(i, j) / std::sqrt(ms + 1e-6) * g(j));
            want_ln(i, j) = static_cast<float>((x(i, j) - mean) / std::sqrt(var + 1e-5) * g(j) + b(j));
        }
    }
    CHECK(test::scaled_error(rms.forward(x), want_rms) < 1e-5);
    CHECK(test::scaled_error(ln.forward(x), want_ln) < 1e-5);

    // Without affine parameters: nothing to load, any width.
    layer_norm<B> plain(0, 1e-5f, false);
    CHECK(plain.parameter_count() == 0);
    CHECK(load_state_dict(plain, weight_map{}).empty());
    CHECK(plain.forward(x).rows() == 5);

    CHECK(message_of<shape_error>([&] { (void)rms.forward(matrix<float>::Zero(1, 3)); }) ==
          "rms_norm: expected input with 12 columns, got [1, 3]");
    CHECK_THROWS_AS(rms_norm<B>(4, -1.0f), value_error);
    rms_norm<B> fixed(7);
    CHECK(message_of<shape_error>([&] { fixed.load(w, "n."); }) ==
          "rms_norm: expected tensor 'n.weight' of shape [7], got [12]");
}

TEST_CASE_TEMPLATE("layers: activations match their formulas and run in place inside sequential", B, backend::scalar,
                   backend::simd<>)
{
    const matrix<float> x = test::random_matrix(4, 9, 12, 3.0f);
    const auto a = x.array();
    const matrix<float> sig = 1.0f / (1.0f + (-a).exp());
    CHECK(test::scaled_error(sigmoid<B>{}.forward(x), sig) < 1e-5);
    CHECK(test::scaled_error(silu<B>{}.forward(x), matrix<float>(a * sig.array())) < 1e-5);
    CHECK(test::scaled_error(relu<B>{}.forward(x), matrix<float>(a.max(0.0f))) < 1e-6);
    matrix<float> ge(4, 9), gt(4, 9);
    for (index_t i = 0; i < x.size(); ++i) {
        const double v = x.data()[i];
        ge.data()[i] = static_cast<float>(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
        gt.data()[i] =
            static_cast<float>(0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v))));
    }
    CHECK(test::scaled_error(gelu<B>{}.forward(x), ge) < 1e-5);
    CHECK(test::scaled_error(gelu_tanh<B>{}.forward(x), gt) < 1e-5);
    CHECK(identity{}.forward(x) == x);

    // After a first layer, sequential applies these in place; the result is the same.
    const sequential<identity, relu<B>, sigmoid<B>> chain;
    CHECK(test::scaled_error(chain.forward(x), matrix<float>(1.0f / (1.0f + (-a.max(0.0f)).exp()))) < 1e-5);
    CHECK(chain.parameter_count() == 0);
}

TEST_CASE("layers: a model survives a save_safetensors / safetensors_file round trip")
{
    const weight_map w = mlp_weights(8, 16, 8, "model.");
    const auto path = (std::filesystem::temp_directory_path() / "dskit_test_layers_roundtrip.safetensors").string();
    save_safetensors(path, w);
    const auto file = safetensors_file::open(path);
    mlp from_file, from_map;
    load_state_dict(from_file, file, true, "model.");
    load_state_dict(from_map, w, true, "model.");
    const matrix<float> x = test::random_matrix(3, 8, 13);
    CHECK(from_file.forward(x) == from_map.forward(x));
    std::filesystem::remove(path);
}
