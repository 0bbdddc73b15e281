// Output gates fused into dskit::attention (attention/gates.hpp) and the gated modules of seeds 000-002
// (gated_attention_unit, dynamic_attention, dynamic_gate): both backends against PyTorch
// (tests/reference/make_attention_module_fixtures_gated.py), simd against scalar, errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <dskit/attention/dynamic_attention.hpp>
#include <dskit/attention/dynamic_gate.hpp>
#include <dskit/attention/flash.hpp>
#include <dskit/attention/gates.hpp>
#include <dskit/attention/gau.hpp>
#include <dskit/core/batch.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>
#include <dskit/io/weight_map.hpp>
#include <dskit/layers/named.hpp>
#include <dskit/layers/residual.hpp>
#include <dskit/layers/load.hpp>

#include "../test_util.hpp"

using namespace dskit;
namespace am = dskit::attention_mods;
namespace ag = dskit::attention_gates;

namespace {

using simd_b = backend::simd<>;

static_assert(output_gate<ag::none> && output_gate<ag::per_head> && output_gate<ag::per_element> &&
              output_gate<ag::per_sequence>);
static_assert(!output_gate<am::causal> && !score_modifier<ag::per_head>);
static_assert(layer<gated_attention_unit<>> && layer<dynamic_attention<>> && layer<dynamic_gate<>>);

// Normwise relative error: max |a - b| / max |b|.
double normwise(const matrix<float>& a, const matrix<float>& b)
{
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    if (a.size() == 0) return 0.0;
    if (!a.allFinite()) return INFINITY;
    return static_cast<double>((a - b).cwiseAbs().maxCoeff()) / std::max(1e-30, double(b.cwiseAbs().maxCoeff()));
}

const safetensors_file& kernel_fixture()
{
    static const safetensors_file f = safetensors_file::open(test::fixture("attention/gated_kernel.safetensors"));
    return f;
}

const safetensors_file& module_fixture()
{
    static const safetensors_file f = safetensors_file::open(test::fixture("attention/gated_modules.safetensors"));
    return f;
}

matrix<float> tensor(const safetensors_file& f, const std::string& name)
{
    return to_matrix(f.at(name), name);
}

// Cases of a fixture file: the names <c> of its "<c>/out" tensors, those starting with `prefix`.
std::vector<std::string> cases(const safetensors_file& f, const std::string& prefix)
{
    std::vector<std::string> out;
    for (const auto& name : f.names())
        if (name.rfind(prefix, 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, "/out") == 0)
            out.push_back(name.substr(0, name.size() - 4));
    return out;
}

// Number of scalars in the tensors under `prefix` (a case's state_dict).
std::size_t state_dict_size(const safetensors_file& f, const std::string& prefix)
{
    std::size_t n = 0;
    for (const auto& name : f.names())
        if (name.rfind(prefix, 0) == 0) n += static_cast<std::size_t>(tensor(f, name).size());
    return n;
}

std::string message_of(const std::function<void()>& f)
{
    try {
        f();
    } catch (const shape_error& e) {
        return e.what();
    }
    return "no shape_error";
}

// Runs a module fixture case: loads the state_dict under "<c>.", checks the parameter count and
// returns the error of forward(x) against PyTorch's output.
template <class Module>
double module_case_error(Module m, const std::string& c)
{
    const safetensors_file& f = module_fixture();
    load_state_dict(m, f, true, c + ".");
    CHECK(m.parameter_count() == state_dict_size(f, c + "."));
    return normwise(m.forward(tensor(f, c + "/x")), tensor(f, c + "/out"));
}

} // namespace

TEST_CASE_TEMPLATE("gates: the gated kernel reproduces PyTorch (head and element gates, causal, GQA)", B,
                   backend::scalar, simd_b)
{
    const auto all = cases(kernel_fixture(), "");
    REQUIRE(all.size() == 8);
    for (const auto& c : all) {
        CAPTURE(c);
        const auto t = [&](const std::string& s) { return tensor(kernel_fixture(), c + "/" + s); };
        const matrix<float> heads = t("heads"), q = t("q"), k = t("k"), v = t("v"), g = t("gate");
        const auto h = static_cast<index_t>(heads(0, 0)), hkv = static_cast<index_t>(heads(0, 1));
        const bool causal = t("causal")(0, 0) != 0.0f;
        matrix<float> out(q.rows(), q.cols());
        const auto run = [&](const auto& gate) {
            if (causal)
                attention<B>(q, k, v, h, hkv, out, am::causal{}, gate);
            else
                attention<B>(q, k, v, h, hkv, out, am::none{}, gate);
        };
        if (c.rfind("head", 0) == 0)
            run(ag::per_head{g});
        else
            run(ag::per_element{g});
        const double err = normwise(out, t("out"));
        CHECK(err < 1e-4);
    }
}

TEST_CASE_TEMPLATE("gates: gated_attention_unit reproduces seed 000's GAU (fixed) in PyTorch", B, backend::scalar,
                   simd_b)
{
    const auto all = cases(module_fixture(), "gau_");
    REQUIRE(all.size() == 4);
    for (const auto& c : all) {
        CAPTURE(c);
        const bool causal = tensor(module_fixture(), c + "/config")(0, 1) != 0.0f;
        const double err = causal ? module_case_error(gated_attention_unit<B, am::causal>{}, c)
                                  : module_case_error(gated_attention_unit<B>{}, c);
        CHECK(err < 1e-4);
    }
}

TEST_CASE_TEMPLATE("gates: dynamic_attention reproduces seed 001's DynamicAttention in PyTorch", B, backend::scalar,
                   simd_b)
{
    const safetensors_file& f = module_fixture();
    const auto all = cases(f, "dynattn_");
    REQUIRE(all.size() == 5);
    for (const auto& c : all) {
        CAPTURE(c);
        const matrix<float> config = tensor(f, c + "/config");
        const auto heads = static_cast<index_t>(config(0, 0));
        if (c == "dynattn_cross") {
            // Cross-attention: forward(query, key, value) projects each with its block of in_proj.
            dynamic_attention<B> m(heads);
            load_state_dict(m, f, true, c + ".");
            CHECK(m.parameter_count() == state_dict_size(f, c + "."));
            const matrix<float> out = m.forward(tensor(f, c + "/x"), tensor(f, c + "/key"), tensor(f, c + "/value"));
            CHECK(normwise(out, tensor(f, c + "/out")) < 1e-4);
            continue;
        }
        const bool causal = config(0, 1) != 0.0f;
        const double err = causal ? module_case_error(dynamic_attention<B, am::causal>(heads), c)
                                  : module_case_error(dynamic_attention<B>(heads), c);
        CHECK(err < 1e-4);
    }
}

TEST_CASE_TEMPLATE("gates: dynamic_gate reproduces seed 002's DynamicGate (fixed) in PyTorch", B, backend::scalar,
                   simd_b)
{
    const auto all = cases(module_fixture(), "dyngate_");
    REQUIRE(all.size() == 3);
    for (const auto& c : all) {
        CAPTURE(c);
        const double err = module_case_error(dynamic_gate<B>{}, c);
        CHECK(err < 1e-4);
    }

    // A batch: each sequence gets the gate of its own mean (no padding in it).
    dynamic_gate<B> m;
    load_state_dict(m, module_fixture(), true, "dyngate_n17.");
    const matrix<float> a = test::random_matrix(5, 42, 1), b = test::random_matrix(9, 42, 2, 3.0f);
    const batch<float> out = forward(m, batch<float>(std::vector<matrix<float>>{a, b}));
    CHECK(normwise(matrix<float>(out[0]), m.forward(a)) == 0.0);
    CHECK(normwise(matrix<float>(out[1]), m.forward(b)) == 0.0);
    CHECK(m.value(a) != m.value(b));
    CHECK(m.forward(matrix<float>(0, 42)).rows() == 0);
}

TEST_CASE("gates: the modules compose like any layer (named children, residual, strict loading)")
{
    const safetensors_file& f = module_fixture();
    residual<named<"gau_n17_h3", gated_attention_unit<>>> block;
    // The file holds every case: a non-strict load leaves the other cases' tensors unread.
    const auto unexpected = load_state_dict(block, f, false);
    CHECK(std::find(unexpected.begin(), unexpected.end(), "gau_n17_h3.gate.weight") == unexpected.end());
    CHECK(std::find(unexpected.begin(), unexpected.end(), "gau_n1.gate.weight") != unexpected.end());
    const matrix<float> x = tensor(f, "gau_n17_h3/x");
    CHECK(normwise(block.forward(x), matrix<float>(x + tensor(f, "gau_n17_h3/out"))) < 1e-5);
    // Strict loading reports a tensor the module did not read.
    weight_map w;
    w.add_all(f).add("gau_n17_h3.extra", matrix<float>::Ones(1, 1));
    gated_attention_unit<> gau;
    try {
        load_state_dict(gau, w, true, "gau_n17_h3.");
        FAIL("no error");
    } catch (const missing_weight_error& e) {
        CHECK(std::string(e.what()).find("'gau_n17_h3.extra'") != std::string::npos);
    }
}

TEST_CASE("gates: simd agrees with scalar for every gate, with and without modifiers")
{
    // 150 queries x 200 keys: several query and key blocks with ragged tails; GQA 4 / 2 heads.
    const index_t n = 150, l = 200, h = 4, hkv = 2, d = 24;
    const matrix<float> q = test::random_matrix(n, h * d, 11), k = test::random_matrix(l, hkv * d, 12),
                        v = test::random_matrix(l, hkv * d, 13);
    // Gates as strided views: column blocks of wider matrices.
    const matrix<float> gh_wide = test::random_matrix(n, h + 3, 14).cwiseAbs();
    const matrix<float> ge_wide = test::random_matrix(n, h * d + 5, 15).cwiseAbs();
    const auto gh = gh_wide.middleCols(1, h);
    const auto ge = ge_wide.middleCols(2, h * d);
    const auto check_all = [&](const char* name, const auto& mod) {
        CAPTURE(name);
        const auto one = [&](const auto& gate) {
            const matrix<float> ref = attention<backend::scalar>(q, k, v, h, hkv, mod, gate);
            const matrix<float> got = attention<simd_b>(q, k, v, h, hkv, mod, gate);
            CHECK(ref.allFinite());
            CHECK(normwise(got, ref) < 2e-6);
        };
        one(ag::per_head{gh});
        one(ag::per_element{ge});
        one(ag::per_sequence{0.3f});
    };
    check_all("none", am::none{});
    check_all("causal", am::causal{});
    check_all("causal + decay_relative", am::combine{am::causal{}, am::decay_relative{0.95f}});
    check_all("key_length", am::key_length{l / 2 + 3});
}

TEST_CASE_TEMPLATE("gates: a gate of ones is no gate; gates scale the ungated output", B, backend::scalar, simd_b)
{
    const index_t n = 70, l = 90, h = 3, d = 40;
    const matrix<float> q = test::random_matrix(n, h * d, 21), k = test::random_matrix(l, h * d, 22),
                        v = test::random_matrix(l, h * d, 23);
    for (const bool causal : {false, true}) {
        CAPTURE(causal);
        const auto run = [&](const auto& gate) {
            return causal ? attention<B>(q, k, v, h, h, am::causal{-3}, gate)
                          : attention<B>(q, k, v, h, h, am::none{}, gate);
        };
        const matrix<float> plain = run(ag::none{});
        const matrix<float> ones_h = matrix<float>::Ones(n, h), ones_e = matrix<float>::Ones(n, h * d);
        CHECK(run(ag::per_head{ones_h}) == plain);
        CHECK(run(ag::per_element{ones_e}) == plain);
        CHECK(run(ag::per_sequence{1.0f}) == plain);
        // The ungated overload is the none gate.
        CHECK((causal ? attention<B>(q, k, v, h, h, am::causal{-3}) : attention<B>(q, k, v, h, h)) == plain);
        if (causal) CHECK(plain.topRows(3).cwiseAbs().maxCoeff() == 0.0f); // rows with no key stay zero

        // Gated = gate * ungated, for each kind.
        const matrix<float> gh = test::random_matrix(n, h, 24), ge = test::random_matrix(n, h * d, 25);
        matrix<float> expect_h = plain, expect_e = plain.cwiseProduct(ge);
        for (index_t i = 0; i < n; ++i)
            for (index_t hh = 0; hh < h; ++hh) expect_h.row(i).segment(hh * d, d) *= gh(i, hh);
        CHECK(normwise(run(ag::per_head{gh}), expect_h) < 1e-6);
        CHECK(normwise(run(ag::per_element{ge}), expect_e) < 1e-6);
        CHECK(normwise(run(ag::per_sequence{-0.7f}), matrix<float>(plain * -0.7f)) < 1e-6);
    }

    // dynamic_gate's scalar fused into attention equals the gate applied after it.
    dynamic_gate<B> dg;
    dg.load(module_fixture(), "dyngate_n40.");
    const matrix<float> x = test::random_matrix(n, 32, 26);
    const matrix<float> q2 = test::random_matrix(n, 32, 27), kv = test::random_matrix(l, 32, 28);
    const matrix<float> a = attention<B>(q2, kv, kv, 4, 4);
    CHECK(normwise(attention<B>(q2, kv, kv, 4, 4, am::none{}, dg.attention_gate(x)), matrix<float>(a * dg.value(x))) <
          1e-6);
}

TEST_CASE("gates: bad gate shapes and module inputs throw shape_error naming the op, expected and actual")
{
    const matrix<float> q = test::random_matrix(5, 24), k = test::random_matrix(7, 24), v = test::random_matrix(7, 24);
    const matrix<float> g53 = matrix<float>::Ones(5, 3), g424 = matrix<float>::Ones(4, 24);
    matrix<float> out(5, 24);
    CHECK(message_of([&] { attention(q, k, v, 4, 4, out, am::none{}, ag::per_head{g53}); }) ==
          "attention: expected per-head gate of shape [5, 4] (queries, heads), got [5, 3]");
    CHECK(message_of([&] { (void)attention(q, k, v, 4, 4, am::causal{}, ag::per_element{g424}); }) ==
          "attention: expected element-wise gate of shape [5, 24] (q's), got [4, 24]");
    CHECK_THROWS_AS((void)attention(q, k, v, 4, 4, am::none{}, ag::per_sequence{NAN}), value_error);

    // Modules: wrong input width, and state_dicts of the wrong shape.
    gated_attention_unit<> gau;
    load_state_dict(gau, module_fixture(), true, "gau_n17_h3.");
    CHECK(gau.heads() == 3);
    CHECK(message_of([&] { (void)gau.forward(q); }) ==
          "gated_attention_unit: expected input with 36 columns, got [5, 24]");
    gated_attention_unit<> fixed(24, 3);
    CHECK(message_of([&] { load_state_dict(fixed, module_fixture(), true, "gau_n17_h3."); }) ==
          "linear: expected tensor 'gau_n17_h3.to_qkv.weight' of shape [72, 24], got [108, 36]");
    dynamic_attention<> da(3);
    CHECK(message_of([&] { load_state_dict(da, module_fixture(), true, "dynattn_n17_d40."); }) ==
          "dynamic_attention: expected embed_dim divisible by heads = 3, got embed_dim = 40");
    load_state_dict(da, module_fixture(), true, "dynattn_n17_h3.");
    const matrix<float> x30 = test::random_matrix(5, 30);
    CHECK(message_of([&] { (void)da.forward(x30, x30, matrix<float>(test::random_matrix(4, 30))); }) ==
          "dynamic_attention: expected value with key's 5 rows, got [4, 30]");
    CHECK(message_of([&] { (void)da.forward(q); }) == "dynamic_attention: expected input with 30 columns, got [5, 24]");
    dynamic_gate<> dg;
    CHECK_THROWS_AS(dg.forward(q), value_error); // not loaded
    load_state_dict(dg, module_fixture(), true, "dyngate_n17.");
    CHECK(message_of([&] { (void)dg.forward(q); }) == "dynamic_gate: expected input with 42 columns, got [5, 24]");
}
