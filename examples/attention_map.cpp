// attention_map: draw the per-head attention weights of a multi_head_attention module as an SVG heat map.
//
//     ./build/examples/attention_map attention_map.svg [--causal]
//
// A 4-head module (embed_dim 64) is given hand-made weights, so that each head does one recognisable
// thing, and loaded through a PyTorch-style state_dict (in_proj_weight, in_proj_bias, out_proj.*):
//   head 0 "previous token"  queries carry their position shifted by one: token i attends to i - 1
//   head 1 "same word"       queries and keys carry the word's identity: repeated words find each other
//   head 2 "nearby"          positions only, no shift: a window around the token itself
//   head 3 "untrained"       random weights, for contrast
// Token embeddings are deterministic: a per-word vector (seeded by the word's FNV-1a hash) followed by
// a sinusoidal position code. The program prints, per head, where each token looks most, checks the
// materialised weights against the fused kernel's output, and writes the heat map.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <dskit/attention/heatmap_svg.hpp>
#include <dskit/attention/multi_head.hpp>
#include <dskit/io/weight_map.hpp>
#include <dskit/layers/load.hpp>

using namespace dskit;

namespace {

constexpr index_t content_dim = 32, position_dim = 32, embed_dim = content_dim + position_dim;
constexpr index_t heads = 4, head_dim = embed_dim / heads;

// Frequency k of the sinusoidal position code (the Transformer's 1 / 10000^(k / K)).
double omega(index_t k)
{
    return std::pow(10000.0, -static_cast<double>(k) / static_cast<double>(position_dim / 2));
}

std::uint32_t fnv1a(std::string_view s)
{
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return h;
}

// Row i: [word vector (unit length on average) | sin, cos of position i at each frequency].
matrix<float> embed(const std::vector<std::string>& tokens)
{
    matrix<float> x(static_cast<index_t>(tokens.size()), embed_dim);
    for (index_t i = 0; i < x.rows(); ++i) {
        std::mt19937 gen(fnv1a(tokens[static_cast<std::size_t>(i)]));
        std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(content_dim)));
        for (index_t c = 0; c < content_dim; ++c) x(i, c) = normal(gen);
        for (index_t k = 0; k < position_dim / 2; ++k) {
            x(i, content_dim + 2 * k) = static_cast<float>(std::sin(omega(k) * static_cast<double>(i)));
            x(i, content_dim + 2 * k + 1) = static_cast<float>(std::cos(omega(k) * static_cast<double>(i)));
        }
    }
    return x;
}

// The state_dict of torch.nn.MultiheadAttention(64, 4) with the heads described above.
weight_map make_weights()
{
    matrix<float> w = matrix<float>::Zero(3 * embed_dim, embed_dim); // rows: W_q, W_k, W_v
    const index_t q0 = 0, k0 = embed_dim, v0 = 2 * embed_dim;
    // Head 0: q_i = 10 p_fast(i - 1) (position rotated back by one step), k_j = p_fast(j); fastest 8 frequencies.
    for (index_t k = 0; k < head_dim / 2; ++k) {
        const float c = static_cast<float>(std::cos(omega(k))), s = static_cast<float>(std::sin(omega(k)));
        const index_t row = 2 * k, col = content_dim + 2 * k;
        w(q0 + row, col) = 10 * c;
        w(q0 + row, col + 1) = -10 * s;
        w(q0 + row + 1, col) = 10 * s;
        w(q0 + row + 1, col + 1) = 10 * c;
        w(k0 + row, col) = 1;
        w(k0 + row + 1, col + 1) = 1;
    }
    // Head 1: q_i = 24 c_i, k_j = c_j on the first 16 word dimensions.
    for (index_t r = 0; r < head_dim; ++r) {
        w(q0 + head_dim + r, r) = 24;
        w(k0 + head_dim + r, r) = 1;
    }
    // Head 2: q_i = 8 p_mid(i), k_j = p_mid(j) on frequencies 1 to 8: the score falls off with |i - j|.
    for (index_t r = 0; r < head_dim; ++r) {
        const index_t col = content_dim + 2 + r;
        w(q0 + 2 * head_dim + r, col) = 8;
        w(k0 + 2 * head_dim + r, col) = 1;
    }
    // Head 3, the values and the output projection: random.
    std::mt19937 gen(20261122);
    std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(embed_dim)));
    for (index_t r = 0; r < head_dim; ++r)
        for (index_t c = 0; c < embed_dim; ++c) {
            w(q0 + 3 * head_dim + r, c) = 2 * normal(gen);
            w(k0 + 3 * head_dim + r, c) = 2 * normal(gen);
        }
    for (index_t r = 0; r < embed_dim; ++r)
        for (index_t c = 0; c < embed_dim; ++c) w(v0 + r, c) = normal(gen);
    matrix<float> out(embed_dim, embed_dim);
    for (index_t i = 0; i < out.size(); ++i) out.data()[i] = normal(gen);
    vector<float> in_bias = vector<float>::Zero(3 * embed_dim), out_bias(embed_dim);
    for (index_t i = 0; i < embed_dim; ++i) {
        in_bias(v0 + i) = 0.1f * normal(gen);
        out_bias(i) = 0.1f * normal(gen);
    }

    weight_map m;
    m.add("in_proj_weight", w).add("in_proj_bias", in_bias).add("out_proj.weight", out).add("out_proj.bias", out_bias);
    return m;
}

int run(int argc, char** argv)
{
    std::string path;
    bool causal = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--causal")
            causal = true;
        else if (path.empty() && !a.starts_with("-"))
            path = a;
        else {
            path.clear(); // unknown option or a second path: print the usage
            break;
        }
    }
    if (path.empty()) {
        std::fprintf(stderr, "usage: %s OUTPUT.svg [--causal]\n", argv[0]);
        return 2;
    }

    const std::vector<std::string> tokens{"the",     "cat", "sat", "on",  "the",  "mat",
                                          "because", "the", "cat", "was", "tired"};
    const matrix<float> x = embed(tokens);
    multi_head_attention<> attn(heads);
    load_state_dict(attn, make_weights());

    // The materialised weights (this path) and the fused kernel (forward) must tell the same story.
    const attention_mods::causal mask{};
    const auto w = causal ? attn.attention_weights(x, mask) : attn.attention_weights(x);
    const matrix<float> y = causal ? attn.forward(x, mask) : attn.forward(x);
    const index_t e = embed_dim;
    matrix<float> v = x * attn.in_proj_weight().middleRows(2 * e, e).transpose();
    v.rowwise() += attn.in_proj_bias().segment(2 * e, e).transpose();
    matrix<float> ctx(x.rows(), e);
    for (index_t h = 0; h < heads; ++h)
        ctx.middleCols(h * head_dim, head_dim) = w[static_cast<std::size_t>(h)] * v.middleCols(h * head_dim, head_dim);
    matrix<float> y_from_w = ctx * attn.out_proj().weight().transpose();
    y_from_w.rowwise() += attn.out_proj().bias().transpose();

    const std::vector<std::string> names{"previous token", "same word", "nearby", "untrained"};
    std::printf("attention_map: %zu tokens, embed_dim %ld, %ld heads of %ld, %s, %zu parameters\n", tokens.size(),
                static_cast<long>(e), static_cast<long>(heads), static_cast<long>(head_dim),
                causal ? "causal" : "bidirectional", attn.parameter_count());
    for (index_t h = 0; h < heads; ++h) {
        std::printf("  head %ld (%s): each token's strongest key\n   ", static_cast<long>(h),
                    names[static_cast<std::size_t>(h)].c_str());
        for (index_t i = 0; i < x.rows(); ++i) {
            index_t j = 0;
            const float wmax = w[static_cast<std::size_t>(h)].row(i).maxCoeff(&j);
            std::printf(" %s>%s(%ld) %.2f", tokens[static_cast<std::size_t>(i)].c_str(),
                        tokens[static_cast<std::size_t>(j)].c_str(), static_cast<long>(j), wmax);
        }
        std::printf("\n");
    }
    std::printf("fused kernel vs weights path: max |output difference| = %.3g (outputs up to %.3g)\n",
                static_cast<double>((y - y_from_w).cwiseAbs().maxCoeff()),
                static_cast<double>(y.cwiseAbs().maxCoeff()));

    attention_svg_options o;
    o.title = std::string("multi_head_attention, 4 heads") + (causal ? ", causal" : "") +
              ": \"the cat sat on the mat because the cat was tired\"";
    for (index_t h = 0; h < heads; ++h)
        o.head_titles.push_back("head " + std::to_string(h) + ": " + names[static_cast<std::size_t>(h)]);
    o.columns = 2;
    write_attention_svg(path, w, tokens, {}, o);
    std::ifstream written(path, std::ios::binary | std::ios::ate);
    std::printf("wrote %s: %ld panels of %ld x %ld cells, %lld bytes\n", path.c_str(), static_cast<long>(heads),
                static_cast<long>(x.rows()), static_cast<long>(x.rows()), static_cast<long long>(written.tellg()));
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "attention_map: %s\n", ex.what());
        return 1;
    }
}
