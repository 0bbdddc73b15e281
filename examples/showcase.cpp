// dskit showcase: a small DeepSeek-flavoured model assembled from dskit's composition primitives.
//
// Two pre-norm residual MLP blocks (RMSNorm -> Linear -> SiLU -> Linear), a final RMSNorm and a
// head. The weights are filled deterministically, written to a safetensors file and loaded back
// with load_state_dict, exactly as a PyTorch state_dict would be. Then a batch of sequences of
// different lengths runs on dskit::default_backend and on the scalar reference backend, and the
// program reports what it did, how fast, and how far apart the two backends are.
//
//     cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target dskit_showcase
//     ./build/examples/dskit_showcase
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <dskit/core/parallel.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/weight_map.hpp>
#include <dskit/layers/layers.hpp>
#include <dskit/version.hpp>

using namespace dskit;

namespace {

constexpr index_t d_model = 512;   // width of the residual stream
constexpr index_t d_hidden = 1024; // MLP hidden width
constexpr index_t d_out = 256;     // head outputs
constexpr int n_blocks = 2;

// One pre-norm MLP block: x + down(silu(up(rms_norm(x)))), with DeepSeek-style parameter names.
template <class B>
using mlp_block = residual<named<"norm", rms_norm<B>>, named<"up", linear<B>>, silu<B>, named<"down", linear<B>>>;

// The stack reads like the model: blocks, final norm, head.
template <class B>
using blocks = sequential<mlp_block<B>, mlp_block<B>>;

template <class B>
using model = sequential<named<"layers", blocks<B>>, named<"norm", rms_norm<B>>, named<"head", linear<B>>>;

constexpr float norm_eps = 1e-6f; // DeepSeek's configs use 1e-6 (torch.nn.RMSNorm's default would be FLT_EPSILON)

template <class B>
model<B> make_model()
{
    auto block = [] {
        return mlp_block<B>{rms_norm<B>(d_model, norm_eps), linear<B>(d_model, d_hidden, false), silu<B>{},
                            linear<B>(d_hidden, d_model, false)};
    };
    return model<B>{blocks<B>{block(), block()}, rms_norm<B>(d_model, norm_eps), linear<B>(d_model, d_out, false)};
}

// Deterministic weights: N(0, 1/fan_in) for linears (keeps activations O(1)), 1 +- 0.1 for norms.
weight_map make_weights()
{
    std::mt19937 gen(2024);
    auto normal = [&](index_t rows, index_t cols, float stddev) {
        std::normal_distribution<float> dist(0.0f, stddev);
        matrix<float> m(rows, cols);
        for (index_t i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
        return m;
    };
    auto norm_weight = [&] { return vector<float>((1.0f + normal(d_model, 1, 0.1f).array()).matrix()); };
    weight_map w;
    for (int b = 0; b < n_blocks; ++b) {
        const std::string p = "layers." + std::to_string(b) + ".";
        w.add(p + "norm.weight", norm_weight());
        w.add(p + "up.weight", normal(d_hidden, d_model, 1.0f / std::sqrt(float(d_model))));
        w.add(p + "down.weight", normal(d_model, d_hidden, 1.0f / std::sqrt(float(d_hidden))));
    }
    w.add("norm.weight", norm_weight());
    w.add("head.weight", normal(d_out, d_model, 1.0f / std::sqrt(float(d_model))));
    return w;
}

batch<float> make_input(const std::vector<index_t>& lengths)
{
    std::mt19937 gen(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    batch<float> in(d_model);
    for (index_t n : lengths) {
        matrix<float> seq(n, d_model);
        for (index_t i = 0; i < seq.size(); ++i) seq.data()[i] = dist(gen);
        in.push_back(seq);
    }
    return in;
}

struct timing {
    double best_ms;
    batch<float> output;
};

// Best wall time of `runs` calls of forward(m, input).
template <class M>
timing time_forward(const M& m, const batch<float>& input, int runs)
{
    timing t{1e300, {}};
    for (int r = 0; r < runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        batch<float> out = forward(m, input);
        const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
        t.best_ms = std::min(t.best_ms, ms.count());
        t.output = std::move(out);
    }
    return t;
}

std::string with_commas(std::size_t n)
{
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

template <class B>
std::string backend_label()
{
    if constexpr (backend::is_simd<B>::value)
        return std::string(B::name) + " (" + B::arch::name() + ")";
    else
        return std::string(B::name);
}

template <class B>
std::size_t lanes_of()
{
    if constexpr (backend::is_simd<B>::value)
        return B::lanes;
    else
        return 1;
}

} // namespace

int main()
{
    using fast = default_backend;
    std::printf("dskit %d.%d.%d showcase: a DeepSeek-flavoured MLP stack from composition primitives\n\n",
                version_major, version_minor, version_patch);

    // 1. Weights: fill a state_dict, write it as safetensors, load it back into two models.
    const weight_map weights = make_weights();
    const auto path = (std::filesystem::temp_directory_path() / "dskit_showcase.safetensors").string();
    save_safetensors(path, weights, {{"format", "pt"}});
    const auto file = safetensors_file::open(path);
    model<fast> m_fast = make_model<fast>();
    model<backend::scalar> m_scalar = make_model<backend::scalar>();
    load_state_dict(m_fast, file); // strict: every tensor in the file is used, every parameter found
    load_state_dict(m_scalar, file);
    const std::size_t params = m_fast.parameter_count();

    std::printf("model       %d x residual<rms_norm, linear %td->%td, silu, linear %td->%td>, rms_norm, "
                "linear %td->%td\n",
                n_blocks, d_model, d_hidden, d_hidden, d_model, d_model, d_out);
    std::printf("parameters  %s (%.1f MB as float32)\n", with_commas(params).c_str(),
                static_cast<double>(params) * 4 / 1e6);
    std::printf("weights     %zu tensors -> %s (%.1f MB) -> load_state_dict, strict\n", file.names().size(),
                path.c_str(), static_cast<double>(std::filesystem::file_size(path)) / 1e6);

    // 2. A batch of sequences of different lengths, packed without padding.
    const std::vector<index_t> lengths = {100, 180, 290, 430};
    const batch<float> input = make_input(lengths);
    std::printf("input       %zu sequences of", input.size());
    for (index_t n : lengths) std::printf(" %td", n);
    std::printf(" tokens (%td x %td packed)\n\n", input.total_tokens(), input.features());

    // Matrix products dominate: 2 flops per multiply-add of each linear.
    const double flops = 2.0 * static_cast<double>(input.total_tokens()) *
                         static_cast<double>(n_blocks * 2 * d_model * d_hidden + d_model * d_out);

    // 3. Run on both backends (the fast one: best of several runs after a warm-up).
    (void)forward(m_fast, input);
    const timing t_fast = time_forward(m_fast, input, 5);
    const timing t_scalar = time_forward(m_scalar, input, 1);

    std::printf("%-18s %6s %8s %11s %9s\n", "backend", "lanes", "threads", "time (ms)", "GFLOP/s");
    auto row = [&](const std::string& name, std::size_t lanes, const timing& t) {
        std::printf("%-18s %6zu %8d %11.2f %9.1f\n", name.c_str(), lanes, max_threads(), t.best_ms,
                    flops / (t.best_ms * 1e6));
    };
    row(backend_label<fast>(), lanes_of<fast>(), t_fast);
    row(backend_label<backend::scalar>(), 1, t_scalar);

    const matrix<float>& a = t_fast.output.packed();
    const matrix<float>& b = t_scalar.output.packed();
    const double max_diff = static_cast<double>((a - b).cwiseAbs().maxCoeff());
    const double rel = static_cast<double>((a - b).norm() / b.norm());
    std::printf("\noutput      %td x %td; max |%s - scalar| = %.2e (relative %.2e); speed-up %.1fx\n", a.rows(),
                a.cols(), std::string(fast::name).c_str(), max_diff, rel, t_scalar.best_ms / t_fast.best_ms);

    std::filesystem::remove(path);
    return rel < 1e-4 ? 0 : 1;
}
