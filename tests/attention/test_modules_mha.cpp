// multi_head_attention, cross_modal_attention, attention_weights and the SVG heat map: both backends
// against PyTorch (tests/reference/make_attention_module_fixtures_mha.py), the materialising path against
// the fused kernel, composition as a layer, and the errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <dskit/attention/attention_map.hpp>
#include <dskit/attention/cross_modal.hpp>
#include <dskit/attention/heatmap_svg.hpp>
#include <dskit/attention/multi_head.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>
#include <dskit/io/weight_map.hpp>
#include <dskit/layers/layers.hpp>

#include "../test_util.hpp"
#include "window_modifier.hpp"

using namespace dskit;
namespace am = dskit::attention_mods;

static_assert(layer<multi_head_attention<>>);
static_assert(layer<multi_head_attention<backend::scalar, am::causal>>);
static_assert(!is_rowwise_layer<multi_head_attention<>>);
static_assert(!layer<cross_modal_attention<>> && loadable<cross_modal_attention<>>);

namespace {

using simd_b = backend::simd<>;

// Normwise relative error: max |a - b| / max |b|.
double normwise(const matrix<float>& a, const matrix<float>& b)
{
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    if (!a.allFinite()) return INFINITY;
    return static_cast<double>((a - b).cwiseAbs().maxCoeff()) / std::max(1e-30, double(b.cwiseAbs().maxCoeff()));
}

const safetensors_file& fixture(int i)
{
    static const safetensors_file files[] = {
        safetensors_file::open(test::fixture("attention/modules_mha.safetensors")),
        safetensors_file::open(test::fixture("attention/modules_mha_e120.safetensors"))};
    return files[i];
}

matrix<float> tensor(const safetensors_file& f, const std::string& name)
{
    return to_matrix(f.at(name), name);
}

// "<model>/<case>" for every multi_head_attention case of both files.
struct mha_case {
    const safetensors_file* file;
    std::string name, model;
};
std::vector<mha_case> mha_cases()
{
    std::vector<mha_case> out;
    for (int i = 0; i < 2; ++i)
        for (const auto& n : fixture(i).names())
            if (n.rfind("e", 0) == 0 && n.size() > 4 && n.compare(n.size() - 4, 4, "/out") == 0) {
                const std::string c = n.substr(0, n.size() - 4);
                out.push_back({&fixture(i), c, c.substr(0, c.find('/'))});
            }
    return out;
}

// Calls fn(modifier) with the modifier a case describes (causal / key keep-mask / both / none).
template <class Fn>
void with_case_modifier(const mha_case& c, Fn fn)
{
    const bool causal = tensor(*c.file, c.name + "/causal")(0, 0) != 0.0f;
    std::vector<std::uint8_t> keep;
    if (c.file->contains(c.name + "/keep")) {
        const matrix<float> k = tensor(*c.file, c.name + "/keep");
        for (index_t j = 0; j < k.size(); ++j) keep.push_back(k.data()[j] != 0.0f ? 1 : 0);
    }
    if (causal && !keep.empty())
        fn(am::combine{am::causal{}, am::key_mask{keep}});
    else if (causal)
        fn(am::causal{});
    else if (!keep.empty())
        fn(am::key_mask{keep});
    else
        fn(am::none{});
}

// w stacked as [H * N, M], PyTorch's [H, N, M] layout.
matrix<float> stack(const std::vector<matrix<float>>& w)
{
    const index_t n = w.empty() ? 0 : w[0].rows();
    matrix<float> s(static_cast<index_t>(w.size()) * n, w.empty() ? 0 : w[0].cols());
    for (std::size_t h = 0; h < w.size(); ++h) s.middleRows(static_cast<index_t>(h) * n, n) = w[h];
    return s;
}

// The module's output recomputed from its attention weights: concat_h(w[h] V_h) W_o^T + b_o.
template <class B, class M>
matrix<float> output_from_weights(const multi_head_attention<B, M>& m, const std::vector<matrix<float>>& w,
                                  const matrix<float>& value)
{
    const index_t e = m.embed_dim(), d = m.head_dim();
    matrix<float> v = value * m.in_proj_weight().middleRows(2 * e, e).transpose();
    if (m.has_bias()) v.rowwise() += m.in_proj_bias().segment(2 * e, e).transpose();
    matrix<float> ctx(w[0].rows(), e);
    for (index_t h = 0; h < m.heads(); ++h)
        ctx.middleCols(h * d, d) = w[static_cast<std::size_t>(h)] * v.middleCols(h * d, d);
    matrix<float> out = ctx * m.out_proj().weight().transpose();
    if (m.has_bias()) out.rowwise() += m.out_proj().bias().transpose();
    return out;
}

std::size_t count(const std::string& s, const std::string& what)
{
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
    return n;
}

} // namespace

TEST_CASE_TEMPLATE("multi_head_attention: both backends reproduce torch.nn.MultiheadAttention", B, backend::scalar,
                   simd_b)
{
    const auto cases = mha_cases();
    REQUIRE(cases.size() == 14);
    double worst_out = 0, worst_w = 0, worst_consistency = 0;
    int with_weights = 0;
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const safetensors_file& f = *c.file;
        const auto heads = static_cast<index_t>(tensor(f, c.name + "/heads")(0, 0));
        multi_head_attention<B> m(heads);
        load_state_dict(m, f, true, c.model + ".model.");
        CHECK(m.parameter_count() ==
              static_cast<std::size_t>(4 * m.embed_dim() * m.embed_dim() + (m.has_bias() ? 4 * m.embed_dim() : 0)));
        CHECK(m.has_bias() == (c.model != "e24nb"));
        const matrix<float> query = tensor(f, c.name + "/query");
        const bool self = !f.contains(c.name + "/key");
        const matrix<float> key = self ? query : tensor(f, c.name + "/key");
        const matrix<float> value = f.contains(c.name + "/value") ? tensor(f, c.name + "/value") : key;
        const matrix<float> expected = tensor(f, c.name + "/out");
        with_case_modifier(c, [&](const auto& mod) {
            // Self-attention goes through forward(x) / forward(x, mod) (one fused projection), key == value
            // through forward(q, kv, kv) (two), the rest through three projections.
            matrix<float> out;
            std::vector<matrix<float>> w;
            if (self) {
                if constexpr (std::is_same_v<std::decay_t<decltype(mod)>, am::none>)
                    out = m.forward(query);
                else
                    out = m.forward(query, mod);
                w = m.attention_weights(query, mod);
            } else {
                out =
                    f.contains(c.name + "/value") ? m.forward(query, key, value, mod) : m.forward(query, key, key, mod);
                w = m.attention_weights(query, key, mod);
            }
            const double e = normwise(out, expected);
            CHECK(e < 1e-4);
            worst_out = std::max(worst_out, e);
            REQUIRE(static_cast<index_t>(w.size()) == heads);
            if (f.contains(c.name + "/weights")) {
                const double ew = normwise(stack(w), tensor(f, c.name + "/weights"));
                CHECK(ew < 1e-4);
                worst_w = std::max(worst_w, ew);
                ++with_weights;
            }
            // The materialising path and the fused kernel agree.
            const double ec = normwise(output_from_weights(m, w, value), out);
            CHECK(ec < 1e-5);
            worst_consistency = std::max(worst_consistency, ec);
        });
    }
    CHECK(with_weights == 12);
    MESSAGE(B::name << ": max normwise error vs PyTorch: outputs " << worst_out << ", weights " << worst_w
                    << "; weights path vs fused kernel " << worst_consistency);
}

TEST_CASE_TEMPLATE("cross_modal_attention: the article's module (seed 004) and its attended outputs", B,
                   backend::scalar, simd_b)
{
    const safetensors_file& f = fixture(0);
    int cases = 0;
    double worst_aff = 0, worst_out = 0, worst_w = 0;
    for (const auto& n : f.names()) {
        if (n.rfind("cma_", 0) != 0 || n.size() < 9 || n.compare(n.size() - 9, 9, "/text_out") != 0) continue;
        const std::string c = n.substr(0, n.size() - 9);
        CAPTURE(c);
        ++cases;
        const auto heads = static_cast<index_t>(tensor(f, c + "/heads")(0, 0));
        cross_modal_attention<B> m(heads);
        load_state_dict(m, f, true, c + ".model.");
        const matrix<float> t = tensor(f, c + "/text"), v = tensor(f, c + "/vision");
        CHECK(m.text_dim() == t.cols());
        CHECK(m.vision_dim() == v.cols());
        CHECK(m.parameter_count() == static_cast<std::size_t>(2 * t.cols() * v.cols() + t.cols() + v.cols()));

        const auto [o_t, o_v] = m.forward(t, v);
        const double e =
            std::max(normwise(o_t, tensor(f, c + "/text_out")), normwise(o_v, tensor(f, c + "/vision_out")));
        CHECK(e < 1e-4);
        worst_out = std::max(worst_out, e);

        const cross_modal_weights w = m.attention_weights(t, v);
        REQUIRE(static_cast<index_t>(w.text_vision.size()) == heads);
        // Heads split Dv (text side) and Dt (vision side): O_t head h = w_tv[h] V_h.
        const index_t dv = v.cols() / heads, dt = t.cols() / heads;
        matrix<float> rt(t.rows(), v.cols()), rv(v.rows(), t.cols());
        for (index_t h = 0; h < heads; ++h) {
            rt.middleCols(h * dv, dv) = w.text_vision[static_cast<std::size_t>(h)] * v.middleCols(h * dv, dv);
            rv.middleCols(h * dt, dt) = w.vision_text[static_cast<std::size_t>(h)] * t.middleCols(h * dt, dt);
        }
        CHECK(normwise(rt, o_t) < 1e-5);
        CHECK(normwise(rv, o_v) < 1e-5);

        if (f.contains(c + "/cross_text")) {
            const matrix<float> ct = tensor(f, c + "/cross_text"), cv = tensor(f, c + "/cross_vision");
            const auto [a_tv, a_vt] = m.affinities(t, v);
            const double ea = std::max(normwise(a_tv, ct), normwise(a_vt, cv));
            CHECK(ea < 1e-4);
            worst_aff = std::max(worst_aff, ea);
            if (heads == 1) { // SPEC: O_t = softmax(A_tv / sqrt(Dv)) V, O_v = softmax(A_vt / sqrt(Dt)) T
                const matrix<float> st = ops::softmax_rows<backend::scalar>(ct / std::sqrt(float(v.cols())));
                const matrix<float> sv = ops::softmax_rows<backend::scalar>(cv / std::sqrt(float(t.cols())));
                const double ew = std::max(normwise(w.text_vision[0], st), normwise(w.vision_text[0], sv));
                CHECK(ew < 1e-4);
                worst_w = std::max(worst_w, ew);
                CHECK(normwise(o_t, st * v) < 1e-4);
                CHECK(normwise(o_v, sv * t) < 1e-4);
            }
        }
    }
    CHECK(cases == 4);
    MESSAGE(B::name << ": cross_modal_attention max normwise error vs PyTorch: affinities " << worst_aff << ", outputs "
                    << worst_out << ", weights (heads = 1) " << worst_w);
}

TEST_CASE_TEMPLATE("cross_modal_attention: per-direction modifiers mask vision and text tokens", B, backend::scalar,
                   simd_b)
{
    const safetensors_file& f = fixture(0);
    cross_modal_attention<B> m;
    load_state_dict(m, f, true, "cma_h1.model.");
    const matrix<float> t = tensor(f, "cma_h1/text"), v = tensor(f, "cma_h1/vision");
    // Masking the last 4 vision tokens equals dropping them; likewise the last 2 text tokens.
    const index_t nv = v.rows() - 4, nt = t.rows() - 2;
    const auto [o_t, o_v] = m.forward(t, v, am::key_length{nv}, am::key_length{nt});
    const auto [r_t, r_v_short] = m.forward(t, v.topRows(nv));
    const auto [r_t_short, r_v] = m.forward(t.topRows(nt), v);
    CHECK(normwise(o_t, r_t) < 1e-6);
    CHECK(normwise(o_v, r_v) < 1e-6);
}

TEST_CASE_TEMPLATE("attention_weights: the same modifiers as the fused kernel, GQA included", B, backend::scalar,
                   simd_b)
{
    using test::window; // keys() starts after 0 (a sliding window): keys outside it are masked
    const index_t n = 70, len = 150, heads = 6, kv_heads = 2, d = 8;
    const matrix<float> q = test::random_matrix(n, heads * d, 1), k = test::random_matrix(len, kv_heads * d, 2),
                        v = test::random_matrix(len, kv_heads * d, 3);
    double worst = 0;
    const auto check = [&](const char* what, const auto& mod) {
        CAPTURE(what);
        const auto w = attention_weights<B>(q, k, heads, kv_heads, mod);
        REQUIRE(static_cast<index_t>(w.size()) == heads);
        matrix<float> o(n, heads * d);
        for (index_t h = 0; h < heads; ++h) {
            const matrix<float>& wh = w[static_cast<std::size_t>(h)];
            REQUIRE(wh.rows() == n);
            REQUIRE(wh.cols() == len);
            for (index_t i = 0; i < n; ++i) CHECK(std::abs(wh.row(i).sum() - 1.0f) < 1e-5f);
            o.middleCols(h * d, d) = wh * v.middleCols((h / (heads / kv_heads)) * d, d);
        }
        const double e = normwise(o, attention<backend::scalar>(q, k, v, heads, kv_heads, mod));
        CHECK(e < 1e-5);
        worst = std::max(worst, e);
    };
    std::vector<float> gammas{0.9f, 0.92f, 0.94f, 0.96f, 0.98f, 0.99f};
    check("none", am::none{});
    check("causal offset L-N", am::causal{len - n});
    check("decay_absolute + key_length", am::combine{am::decay_absolute{0.97f}, am::key_length{len - 9}});
    check("causal + decay_relative per head", am::combine{am::causal{}, am::decay_relative{gammas}});
    check("alibi", am::alibi::standard(heads));
    check("window (user-defined)", window{37});
    MESSAGE(B::name << ": attention_weights * V vs the fused kernel, max normwise error " << worst);

    // A fully masked query row gets zeros, as in the kernel; an explicit scale is used as given.
    const auto wz = attention_weights<B>(q, k, heads, kv_heads, am::key_length{0});
    CHECK(wz[0].cwiseAbs().maxCoeff() == 0.0f);
    const auto ws = attention_weights<B>(q, k, heads, kv_heads, am::none{}, 0.0f);
    CHECK(std::abs(ws[3](5, 7) - 1.0f / static_cast<float>(len)) < 1e-7f);
}

TEST_CASE_TEMPLATE("multi_head_attention: composes as a layer in residual, sequential and on a batch", B,
                   backend::scalar, simd_b)
{
    const index_t e = 16;
    weight_map w;
    w.add("0.weight", vector<float>(test::random_matrix(e, 1, 7, 0.1f).col(0).array() + 1.0f));
    w.add("0.bias", vector<float>(test::random_matrix(e, 1, 8, 0.1f).col(0)));
    w.add("attn.in_proj_weight", test::random_matrix(3 * e, e, 9, 0.3f));
    w.add("attn.in_proj_bias", vector<float>(test::random_matrix(3 * e, 1, 10, 0.1f).col(0)));
    w.add("attn.out_proj.weight", test::random_matrix(e, e, 11, 0.3f));
    w.add("attn.out_proj.bias", vector<float>(test::random_matrix(e, 1, 12, 0.1f).col(0)));

    using attn = named<"attn", multi_head_attention<B, am::causal>>;
    using block = residual<layer_norm<B>, attn>;
    block model{layer_norm<B>{}, attn(4)};
    load_state_dict(model, w);
    CHECK(model.parameter_count() == static_cast<std::size_t>(2 * e + 4 * e * e + 4 * e));

    multi_head_attention<B> plain(4);
    load_state_dict(plain, w, false, "attn.");
    const matrix<float> x = test::random_matrix(11, e, 13);
    const matrix<float> normed = model.template get<0>().forward(x);
    const matrix<float> expected = x + plain.forward(normed, am::causal{});
    CHECK(normwise(model.forward(x), expected) < 1e-6);

    // Causal: token i's output does not depend on later tokens.
    matrix<float> changed = x;
    changed.bottomRows(3).setRandom();
    CHECK(normwise(model.forward(changed).topRows(8), model.forward(x).topRows(8)) < 1e-6);

    // An empty sequence gives an empty output.
    const matrix<float> none = model.forward(matrix<float>(0, e));
    CHECK(none.rows() == 0);
    CHECK(none.cols() == e);

    // A batch runs per sequence (attention is not row-wise).
    const matrix<float> y = test::random_matrix(5, e, 14);
    const batch<float> out = forward(sequential<block>{model}, batch<float>{x, y});
    CHECK(normwise(out[0], model.forward(x)) < 1e-6);
    CHECK(normwise(out[1], model.forward(y)) < 1e-6);
}

TEST_CASE("multi_head_attention and cross_modal_attention: bad shapes throw errors naming the module")
{
    const safetensors_file& f = fixture(0);
    const auto throws_shape = [](auto&& fn, const std::string& name) {
        try {
            fn();
            FAIL("no exception");
        } catch (const shape_error& e) {
            CAPTURE(e.what());
            CHECK(std::string(e.what()).find(name) != std::string::npos);
        }
    };
    throws_shape([] { multi_head_attention<> m(40, 3); }, "multi_head_attention");
    throws_shape(
        [&] {
            multi_head_attention<> m(3); // E = 40 is not divisible by 3
            m.load(f, "e40.model.");
        },
        "multi_head_attention");
    throws_shape(
        [&] {
            multi_head_attention<> m(24, 3); // fixed E = 24, the file's model has E = 40
            m.load(f, "e40.model.");
        },
        "in_proj_weight");
    CHECK_THROWS_AS(multi_head_attention<>(0), value_error);
    CHECK_THROWS_AS(multi_head_attention<>(-8, 2), value_error);
    CHECK_THROWS_AS((void)multi_head_attention<>(4).forward(matrix<float>::Zero(3, 40)), value_error);

    multi_head_attention<> m(4);
    load_state_dict(m, f, true, "e40.model.");
    const matrix<float> x = test::random_matrix(5, 40), kv = test::random_matrix(7, 40),
                        bad = test::random_matrix(5, 41);
    throws_shape([&] { (void)m.forward(bad); }, "multi_head_attention");
    throws_shape([&] { (void)m.forward(x, bad, bad); }, "key");
    throws_shape([&] { (void)m.forward(x, kv, kv.topRows(6)); }, "value");
    throws_shape([&] { (void)m.attention_weights(x, bad); }, "multi_head_attention");
    std::vector<std::uint8_t> mask(6, 1);
    throws_shape([&] { (void)m.forward(x, kv, kv, am::key_mask{mask}); }, "key_mask");

    // A state_dict that is not nn.MultiheadAttention's.
    weight_map w;
    w.add("in_proj_weight", test::random_matrix(3 * 8, 9));
    throws_shape([&] { multi_head_attention<>(2).load(w, ""); }, "in_proj_weight");
    weight_map extra;
    extra.add_all(f);
    extra.add("e40.model.extra", test::random_matrix(1, 1));
    CHECK_THROWS_AS(load_state_dict(m, extra, true, "e40.model."), missing_weight_error);
    weight_map no_out;
    no_out.add("in_proj_weight", test::random_matrix(24, 8));
    CHECK_THROWS_AS(multi_head_attention<>(2).load(no_out, ""), missing_weight_error);

    cross_modal_attention<> c;
    load_state_dict(c, f, true, "cma_h1.model.");
    const matrix<float> t = tensor(f, "cma_h1/text"), v = tensor(f, "cma_h1/vision");
    throws_shape([&] { (void)c.forward(v, v); }, "cross_modal_attention");
    throws_shape([&] { (void)c.affinities(t, t); }, "cross_modal_attention");
    throws_shape([&] { cross_modal_attention<>(5).load(f, "cma_h1.model."); }, "cross_modal_attention");
    throws_shape([] { cross_modal_attention<>(24, 16, 5); }, "cross_modal_attention");
    weight_map mismatched;
    mismatched.add("text_proj.weight", test::random_matrix(16, 24));
    mismatched.add("vision_proj.weight", test::random_matrix(24, 15));
    throws_shape([&] { cross_modal_attention<>().load(mismatched, ""); }, "vision_proj");
    CHECK_THROWS_AS((void)cross_modal_attention<>().forward(t, v), value_error);

    throws_shape([&] { (void)attention_weights(x, kv, 3, 3); }, "attention_weights");
    throws_shape([&] { (void)attention_weights(x, kv, 4, 3); }, "attention_weights");
    throws_shape([&] { (void)attention_weights(x, kv.leftCols(20), 4, 4); }, "attention_weights");
}

TEST_CASE("write_attention_svg: one panel per head, a cell per weight, labels, a legend")
{
    const safetensors_file& f = fixture(0);
    multi_head_attention<> m(4);
    load_state_dict(m, f, true, "e40.model.");
    const matrix<float> x = test::random_matrix(6, 40, 21);
    const auto w = m.attention_weights(x, am::causal{});
    const std::vector<std::string> tokens{"<s>", "the", "cat", "sat", "&", "slept"};
    attention_svg_options titled;
    titled.title = "layer 0 \"self\"";
    const std::string svg = attention_svg(w, tokens, {}, titled);
    CHECK(count(svg, "<g class=\"panel\"") == 4);
    CHECK(count(svg, "<rect class=\"cell\"") == 4 * 6 * 6);
    CHECK(count(svg, "<g class=\"legend\"") == 1);
    CHECK(count(svg, "<svg") == 1);
    CHECK(count(svg, "</svg>") == 1);
    CHECK(count(svg, "</g>") == 5);
    CHECK(count(svg, ">&lt;s&gt;</text>") == 2 * 4); // escaped, on both axes of every panel
    CHECK(count(svg, ">&amp;</text>") == 2 * 4);
    CHECK(svg.find("layer 0 &quot;self&quot;") != std::string::npos);
    CHECK(svg.find("head 3") != std::string::npos);
    // Masked (zero) weights are drawn white, and the darkest colour is the largest weight's.
    CHECK(count(svg, "fill=\"#f7fbff\"><title>") >= 4 * 15);
    CHECK(count(svg, "fill=\"#08306b\"") >= 1);

    // Cross-attention: different labels per axis, given columns, no tooltips; into a file.
    const auto wc = m.attention_weights(x, test::random_matrix(3, 40, 22));
    const std::vector<std::string> keys{"img0", "img1", "img2"};
    const auto path = std::filesystem::temp_directory_path() / "dskit_test_attention_map.svg";
    attention_svg_options plain;
    plain.columns = 2;
    plain.cell_tooltips = false;
    write_attention_svg(path.string(), wc, tokens, keys, plain);
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string file_svg = ss.str();
    std::filesystem::remove(path);
    CHECK(count(file_svg, "<g class=\"panel\"") == 4);
    CHECK(count(file_svg, "<rect class=\"cell\"") == 4 * 6 * 3);
    CHECK(count(file_svg, "<title>") == 0);
    CHECK(count(file_svg, ">img2</text>") == 4);
    CHECK(file_svg == attention_svg(wc, tokens, keys, plain));

    CHECK_THROWS_AS((void)attention_svg(wc, keys, keys), shape_error);
    CHECK_THROWS_AS((void)attention_svg(std::vector<matrix<float>>{w[0], wc[0]}), shape_error);
    attention_svg_options negative;
    negative.cell = -1;
    CHECK_THROWS_AS((void)attention_svg(w, {}, {}, negative), value_error);
    CHECK_THROWS_AS(write_attention_svg("/nonexistent-dir/x.svg", w), io_error);
}
