// t-SNE: a 1-, 2- or 3-D map of [N, D] embeddings that keeps each point's neighbourhood.
//
//   dskit::tsne_options opt;               // perplexity 30, 2-D, PCA init, 250 + 500 iterations
//   opt.seed = 7;
//   dskit::tsne_result r = dskit::tsne(x, opt);   // x: [N, D] float (dskit::matrix, Eigen matrix or map)
//   r.embedding;                           // [N, 2] float
//
// Pipeline (openTSNE / FIt-SNE defaults): exact kNN (k = 3 perplexity) -> perplexity-calibrated, symmetrised
// sparse P -> PCA initialisation scaled to standard deviation 1e-4 -> gradient descent with momentum and
// delta-bar-delta gains: early exaggeration 12 for 250 iterations at momentum 0.5, then 500 iterations at
// momentum 0.8 (optionally with late exaggeration), each point's step clipped to norm 5 and the embedding
// re-centred after every step.
//
// Learning rate: the default max(N / 12, 200) is in openTSNE / FIt-SNE / bhtsne units, where the gradient
// is written without its factor 4. dskit's gradient functions return the exact KL gradient (with the 4, as
// scikit-learn does), so tsne() steps by learning_rate * gradient / 4. scikit-learn's learning_rate is
// therefore 4x smaller for the same step: its 'auto' value N / 48 (= N / early_exaggeration / 4) is the same
// step as our N / 12.
//
// Determinism: the same input and seed give bit-identical embeddings whatever the thread count (all sums run
// in a fixed order; threads only split per-point work).
#pragma once

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/manifold/affinity.hpp"
#include "dskit/manifold/pca.hpp"
#include "dskit/manifold/tsne_fft.hpp"
#include "dskit/manifold/tsne_gradient.hpp"
#include "dskit/manifold/tsne_step.hpp"

namespace dskit {

/// How the gradient is computed. `automatic` uses exact below 10000 points on the simd backend (below 1000 on
/// the scalar one; detail::resolve_method), FFT interpolation (tsne_fft.hpp)
/// from 10000 points in 1-D and 2-D (openTSNE's switch; below it Barnes-Hut was faster here), Barnes-Hut
/// otherwise. `fft` handles 1-D and 2-D only.
enum class tsne_method { automatic, exact, barnes_hut, fft };

/// How the embedding starts. `pca` needs raw data; with precomputed affinities it falls back to `random`.
enum class tsne_init { pca, random };

/// What the progress callback receives.
struct tsne_progress {
    int iteration;          ///< iterations done so far (1-based count)
    double kl;              ///< KL(P || Q) of the current embedding (Barnes-Hut: with Z estimated)
    double elapsed_seconds; ///< since tsne() started, affinities included
};

struct tsne_options {
    int dims = 2;             ///< output dimension, 1 to 3
    double perplexity = 30.0; ///< effective number of neighbours (10-50 is typical); at most N - 1
    tsne_method method = tsne_method::automatic;
    double theta = 0.5;   ///< Barnes-Hut opening angle
    tsne_fft_options fft; ///< FFT interpolation grid (method fft; openTSNE's defaults)
    tsne_init init = tsne_init::pca;
    std::uint64_t seed = 0;     ///< random initialisation only (PCA init is deterministic)
    double learning_rate = 0.0; ///< 0: max(N / 12, 200) in openTSNE units (see the header comment)
    int early_exaggeration_iter = 250;
    double early_exaggeration = 12.0;
    double early_momentum = 0.5;
    int n_iter = 500; ///< iterations after the early-exaggeration phase
    double momentum = 0.8;
    double late_exaggeration = 1.0; ///< exaggeration during the last late_exaggeration_iter iterations
    int late_exaggeration_iter = 0;
    double dof = 1.0;           ///< degrees of freedom of the output kernel; < 1 = heavier tails
    double max_step_norm = 5.0; ///< per-point step clipping (FIt-SNE); <= 0 disables it
    double min_gain = 0.01;
    int callback_every = 50; ///< call `callback` every this many iterations (and at the end)
    /// Progress callback: return false to stop early (the result then holds the embedding so far).
    std::function<bool(const tsne_progress&)> callback;
};

struct tsne_result {
    matrix<float> embedding; ///< [N, dims]
    double kl = 0.0;         ///< final KL(P || Q) (exact for method exact, with Z estimated otherwise)
    int iterations = 0;      ///< gradient steps taken
    double elapsed_seconds = 0.0;
    tsne_method method = tsne_method::automatic; ///< the method actually used
};

namespace detail {

/// splitmix64 + Box-Muller: a portable normal generator (std:: distributions differ between libraries).
struct tsne_rng {
    std::uint64_t s;
    std::uint64_t next()
    {
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
    double normal() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }
};

inline void validate_tsne_options(const tsne_options& o)
{
    constexpr std::string_view op = "tsne";
    if (o.dims < 1 || o.dims > 3) throw value_error(describe(op, "dims in [1, 3]", std::to_string(o.dims)));
    if (o.early_exaggeration_iter < 0 || o.n_iter < 0 || o.late_exaggeration_iter < 0)
        throw value_error(describe(op, "iteration counts >= 0", "a negative count"));
    if (o.late_exaggeration_iter > o.n_iter)
        throw value_error(describe(op, "late_exaggeration_iter <= n_iter = " + std::to_string(o.n_iter),
                                   std::to_string(o.late_exaggeration_iter)));
    if (!(o.dof > 0.0)) throw value_error(describe(op, "dof > 0", std::to_string(o.dof)));
    if (!(o.theta >= 0.0)) throw value_error(describe(op, "theta >= 0", std::to_string(o.theta)));
    if (!(o.learning_rate >= 0.0))
        throw value_error(describe(op, "learning_rate >= 0", std::to_string(o.learning_rate)));
    if (o.callback_every < 1) throw value_error(describe(op, "callback_every >= 1", std::to_string(o.callback_every)));
    if (o.method == tsne_method::fft && o.dims > 2)
        throw value_error(
            describe(op, "dims <= 2 for method fft (barnes_hut or exact for 3-D)", std::to_string(o.dims)));
}

/// Below this many points `automatic` uses the simd backend's exact gradient (see resolve_method).
inline constexpr index_t exact_simd_below = 10000;

/// exact_below: where the exact gradient stops being the fastest (1000 for the double scalar one; 10000
/// for the simd one, which beats Barnes-Hut up to ~16000 points and FFT below ~9000, 2-D, 2 threads here).
inline tsne_method resolve_method(tsne_method m, index_t n, index_t dims = 2, index_t exact_below = 1000)
{
    if (m != tsne_method::automatic) return m;
    if (n < exact_below) return tsne_method::exact;
    return dims <= 2 && n >= 10000 ? tsne_method::fft : tsne_method::barnes_hut;
}

/// The optimisation loop on a given P and initial embedding y (modified in place). Backend: the exact
/// gradient's backend (scalar: double reference; simd: float vectors).
template <class Backend = default_backend>
tsne_result optimise_tsne(const sparse_affinities& p, matrix<double>& y, const tsne_options& o,
                          std::chrono::steady_clock::time_point t0)
{
    const index_t n = p.n, d = y.cols();
    const tsne_method method =
        resolve_method(o.method, n, y.cols(), backend::is_simd<Backend>::value ? exact_simd_below : 1000);
    const double lr = o.learning_rate > 0.0 ? o.learning_rate : std::max(static_cast<double>(n) / 12.0, 200.0);
    matrix<double> grad(n, d), update = matrix<double>::Zero(n, d), gains = matrix<double>::Ones(n, d);
    const int total = o.early_exaggeration_iter + o.n_iter;
    const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    // The exact gradient's per-run preparation of P (the simd backend's float copy), made once.
    std::optional<exact_gradient_plan<Backend>> plan;
    if (method == tsne_method::exact) plan.emplace(p);
    const auto exact = [&](double exaggeration, bool want_kl) {
        return exact_gradient_planned<Backend>(p, &*plan, y, grad, exaggeration, o.dof, want_kl);
    };
    // The approximate gradients; the FFT method keeps its grids for the whole run.
    tsne_fft_workspace fft_ws;
    const auto approx = [&](double exaggeration, bool want_kl) {
        return method == tsne_method::fft ? tsne_gradient_fft(p, y, grad, exaggeration, o.dof, want_kl, o.fft, fft_ws)
                                          : tsne_gradient_bh(p, y, grad, o.theta, exaggeration, o.dof, want_kl);
    };

    tsne_result r;
    r.method = method;
    double kl = 0.0;
    for (int it = 0; it < total; ++it) {
        const bool early = it < o.early_exaggeration_iter;
        const bool late = it >= total - o.late_exaggeration_iter;
        const double exaggeration = early ? o.early_exaggeration : late ? o.late_exaggeration : 1.0;
        const double momentum = early ? o.early_momentum : o.momentum;
        const bool report = (it + 1) % o.callback_every == 0 || it + 1 == total;
        const bool want_kl = report;
        const tsne_gradient_stats st =
            method == tsne_method::exact ? exact(exaggeration, want_kl) : approx(exaggeration, want_kl);
        if (want_kl) kl = st.kl;

        const auto step = d == 1 ? tsne_step<1> : d == 2 ? tsne_step<2> : tsne_step<3>;
        step(grad.data(), update.data(), gains.data(), y.data(), n, momentum, lr * 0.25, o.min_gain, o.max_step_norm);

        r.iterations = it + 1;
        if (report && o.callback && !o.callback(tsne_progress{it + 1, kl, seconds()})) break;
    }
    if (r.iterations == 0 || (r.iterations % o.callback_every != 0 && r.iterations != total)) {
        // Stopped between reports or ran no iteration: measure KL of the embedding returned.
        kl = method == tsne_method::exact ? exact(1.0, true).kl : approx(1.0, true).kl;
    }
    r.kl = kl;
    r.embedding = y.cast<float>();
    r.elapsed_seconds = seconds();
    return r;
}

inline matrix<double> random_init(index_t n, index_t d, std::uint64_t seed)
{
    tsne_rng rng{seed};
    matrix<double> y(n, d);
    for (index_t i = 0; i < y.size(); ++i) y.data()[i] = 1e-4 * rng.normal();
    return y;
}

} // namespace detail

/// t-SNE on precomputed affinities (from tsne_affinities, perplexity_affinities or your own symmetric,
/// sum-1 CSR matrix). Initialisation is random (seeded) here: PCA needs the raw data.
template <class Backend = default_backend>
tsne_result tsne(const sparse_affinities& p, const tsne_options& options)
{
    const auto t0 = std::chrono::steady_clock::now();
    detail::validate_tsne_options(options);
    if (p.n < 2) throw value_error(detail::describe("tsne", "at least 2 points", std::to_string(p.n) + " points"));
    if (static_cast<index_t>(p.indptr.size()) != p.n + 1 || p.indices.size() != p.values.size())
        throw value_error(detail::describe("tsne", "a CSR matrix with N + 1 row pointers", "inconsistent arrays"));
    for (std::size_t e = 0; e < p.values.size(); ++e)
        if (p.indices[e] < 0 || p.indices[e] >= p.n || !std::isfinite(p.values[e]) || p.values[e] < 0.0)
            throw value_error(detail::describe("tsne", "column indices in [0, N) and finite values >= 0",
                                               "entry " + std::to_string(e) + " out of range"));
    matrix<double> y = detail::random_init(p.n, options.dims, options.seed);
    return detail::optimise_tsne<Backend>(p, y, options, t0);
}

/// t-SNE of the rows of x ([N, D], finite). Throws value_error for N < 2, NaN/Inf input, a perplexity
/// larger than N - 1, or invalid options; each message names the limit. Backend: see optimise_tsne.
template <class Backend = default_backend>
tsne_result tsne(const_matrix_ref<float> x, const tsne_options& options = {})
{
    const auto t0 = std::chrono::steady_clock::now();
    detail::validate_tsne_options(options);
    const index_t n = x.rows();
    if (n < 2) throw value_error(detail::describe("tsne", "at least 2 points", std::to_string(n) + " points"));
    detail::require_finite("tsne", x);
    const index_t k = tsne_neighbors_for(options.perplexity, n);
    detail::require_perplexity("tsne", options.perplexity, k);
    const sparse_affinities p = perplexity_affinities(exact_knn(x, k), options.perplexity);

    matrix<double> y;
    if (options.init == tsne_init::pca && x.cols() >= options.dims) {
        y = pca_project(x, options.dims);
        double mean = 0.0, var = 0.0;
        for (index_t i = 0; i < n; ++i) mean += y(i, 0);
        mean /= static_cast<double>(n);
        for (index_t i = 0; i < n; ++i) var += (y(i, 0) - mean) * (y(i, 0) - mean);
        const double sd = std::sqrt(var / static_cast<double>(n));
        // Constant data has no principal direction: fall back to the seeded random start.
        if (sd > 1e-12 * (1.0 + std::abs(mean)))
            y *= 1e-4 / sd;
        else
            y = detail::random_init(n, options.dims, options.seed);
    } else {
        y = detail::random_init(n, options.dims, options.seed);
    }
    return detail::optimise_tsne<Backend>(p, y, options, t0);
}

} // namespace dskit
