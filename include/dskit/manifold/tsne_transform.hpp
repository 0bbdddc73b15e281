// Adding new points to an existing t-SNE map (openTSNE's TSNEEmbedding.transform), leaving the map fixed.
//
//   dskit::tsne_result fit = dskit::tsne(x_ref, opt);                       // the reference map
//   dskit::matrix<float> y_new = dskit::tsne_transform(x_ref, fit.embedding, x_new);
//
// Each new point i gets conditional affinities p_{j|i} to its k = 3 * perplexity nearest reference points
// (perplexity-calibrated as in affinity.hpp, rows summing to 1, not symmetrised), starts at the per-
// coordinate median of the map positions of its `init_neighbors` nearest reference points, and then moves
// by gradient descent on KL(p_{.|i} || q_{.|i}) with q_{j|i} = w_ij / sum_l w_il over the reference points
// only. The reference points do not move and the new points do not interact, so each new point is an
// independent problem: threads split the points and results are bit-identical for any thread count.
//
// Defaults are openTSNE's for transform: perplexity 5, 25 neighbours for the start, learning rate 0.1,
// 250 iterations at exaggeration 1.5 and momentum 0.8, no early-exaggeration phase (4x if enabled), the
// gradient clipped to norm 0.25 per point (keeps points that start on top of reference points from
// shooting off). Gradients and the learning rate are in openTSNE's units (no factor 4).
// Cost: O(M N D) for the neighbour search and O(M N) per iteration (M new points, N reference points).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/manifold/affinity.hpp"
#include "dskit/manifold/knn.hpp"

namespace dskit {

/// How a new point starts: the per-coordinate median of its neighbours' positions (openTSNE's default)
/// or their mean weighted by the point's affinities.
enum class tsne_transform_init { median, weighted };

struct tsne_transform_options {
    double perplexity = 5.0;     ///< of each new point's affinities to the reference points
    index_t init_neighbors = 25; ///< reference neighbours whose positions give the starting point
    tsne_transform_init init = tsne_transform_init::median;
    double learning_rate = 0.1;
    int early_exaggeration_iter = 0;
    double early_exaggeration = 4.0;
    double early_momentum = 0.8;
    int n_iter = 250;
    double exaggeration = 1.5;
    double momentum = 0.8;
    double max_grad_norm = 0.25; ///< per-point gradient clipping; <= 0 disables it
    double max_step_norm = 0.0;  ///< per-point step clipping; <= 0 disables it
    double dof = 1.0;            ///< must match the reference map's
    double min_gain = 0.01;
};

namespace detail {

/// The k nearest reference rows of each query row (squared Euclidean, nearest first, ties by index),
/// distances exact in double. O(M N D).
inline knn_graph knn_query(const const_matrix_ref<float>& ref, const const_matrix_ref<float>& queries, index_t k)
{
    const index_t n = ref.rows(), m = queries.rows();
    knn_graph g{index_matrix(m, k), matrix<float>(m, k)};
    parallel_for(
        m,
        [&](index_t i) {
            std::vector<knn_entry> all(static_cast<std::size_t>(n));
            for (index_t j = 0; j < n; ++j) {
                double s = 0.0;
                for (index_t c = 0; c < ref.cols(); ++c) {
                    const double t = static_cast<double>(queries(i, c)) - static_cast<double>(ref(j, c));
                    s += t * t;
                }
                all[static_cast<std::size_t>(j)] = {s, j};
            }
            std::partial_sort(all.begin(), all.begin() + k, all.end());
            for (index_t c = 0; c < k; ++c) {
                g.indices(i, c) = all[static_cast<std::size_t>(c)].j;
                g.sq_distances(i, c) = static_cast<float>(all[static_cast<std::size_t>(c)].d);
            }
        },
        3.0 * static_cast<double>(n) * static_cast<double>(ref.cols()));
    return g;
}

/// Optimises one new point y (Dim coordinates) against the fixed reference map.
template <int Dim>
void transform_point(const const_matrix_ref<float>& ref_y, const index_t* nbr, const double* p, index_t k,
                     const tsne_transform_options& o, double* y)
{
    const index_t n = ref_y.rows();
    std::array<double, Dim> yi, update{}, gains;
    for (int c = 0; c < Dim; ++c) {
        yi[static_cast<std::size_t>(c)] = y[c];
        gains[static_cast<std::size_t>(c)] = 1.0;
    }
    const double a = o.dof;
    const auto kernel_u = [a](double d2) { return 1.0 / (1.0 + d2 / a); };
    const auto kernel_w = [a](double u) { return a == 1.0 ? u : std::pow(u, a); };
    const int total = o.early_exaggeration_iter + o.n_iter;
    for (int it = 0; it < total; ++it) {
        const bool early = it < o.early_exaggeration_iter;
        const double exaggeration = early ? o.early_exaggeration : o.exaggeration;
        const double momentum = early ? o.early_momentum : o.momentum;
        std::array<double, Dim> attr{}, rep{};
        for (index_t e = 0; e < k; ++e) {
            const index_t j = nbr[e];
            std::array<double, Dim> diff;
            double d2 = 0.0;
            for (int c = 0; c < Dim; ++c) {
                diff[static_cast<std::size_t>(c)] = yi[static_cast<std::size_t>(c)] - static_cast<double>(ref_y(j, c));
                d2 += diff[static_cast<std::size_t>(c)] * diff[static_cast<std::size_t>(c)];
            }
            const double pu = p[e] * kernel_u(d2);
            for (int c = 0; c < Dim; ++c) attr[static_cast<std::size_t>(c)] += pu * diff[static_cast<std::size_t>(c)];
        }
        double z = 0.0;
        for (index_t j = 0; j < n; ++j) {
            std::array<double, Dim> diff;
            double d2 = 0.0;
            for (int c = 0; c < Dim; ++c) {
                diff[static_cast<std::size_t>(c)] = yi[static_cast<std::size_t>(c)] - static_cast<double>(ref_y(j, c));
                d2 += diff[static_cast<std::size_t>(c)] * diff[static_cast<std::size_t>(c)];
            }
            const double u = kernel_u(d2), w = kernel_w(u);
            z += w;
            for (int c = 0; c < Dim; ++c) rep[static_cast<std::size_t>(c)] += w * u * diff[static_cast<std::size_t>(c)];
        }
        std::array<double, Dim> g;
        double g2 = 0.0;
        for (int c = 0; c < Dim; ++c) {
            const auto uc = static_cast<std::size_t>(c);
            g[uc] = exaggeration * attr[uc] - (z > 0.0 ? rep[uc] / z : 0.0);
            g2 += g[uc] * g[uc];
        }
        if (o.max_grad_norm > 0.0) {
            const double coeff = o.max_grad_norm / (std::sqrt(g2) + 1e-6);
            if (coeff < 1.0)
                for (auto& v : g) v *= coeff;
        }
        double step2 = 0.0;
        for (int c = 0; c < Dim; ++c) {
            const auto uc = static_cast<std::size_t>(c);
            gains[uc] = (g[uc] > 0.0) != (update[uc] > 0.0) ? gains[uc] + 0.2 : std::max(gains[uc] * 0.8, o.min_gain);
            update[uc] = momentum * update[uc] - o.learning_rate * gains[uc] * g[uc];
            step2 += update[uc] * update[uc];
        }
        if (o.max_step_norm > 0.0 && step2 > o.max_step_norm * o.max_step_norm)
            for (auto& v : update) v *= o.max_step_norm / std::sqrt(step2);
        for (int c = 0; c < Dim; ++c) yi[static_cast<std::size_t>(c)] += update[static_cast<std::size_t>(c)];
    }
    for (int c = 0; c < Dim; ++c) y[c] = yi[static_cast<std::size_t>(c)];
}

} // namespace detail

/// Positions of the rows of x_new ([M, D]) in the map ref_embedding ([N, 1..3]) of ref_data ([N, D]).
/// Throws shape_error if the shapes disagree and value_error for non-finite input, a perplexity above the
/// number of neighbours (min(N, 3 perplexity)), init_neighbors outside [1, N] or invalid options.
inline matrix<float> tsne_transform(const_matrix_ref<float> ref_data, const_matrix_ref<float> ref_embedding,
                                    const_matrix_ref<float> x_new, const tsne_transform_options& o = {})
{
    constexpr std::string_view op = "tsne_transform";
    const index_t n = ref_data.rows(), m = x_new.rows(), dims = ref_embedding.cols();
    if (ref_embedding.rows() != n)
        detail::throw_shape(op, "ref_embedding with " + std::to_string(n) + " rows (one per row of ref_data)",
                            detail::shape_of(ref_embedding));
    if (dims < 1 || dims > 3)
        detail::throw_shape(op, "ref_embedding with 1 to 3 columns", detail::shape_of(ref_embedding));
    if (x_new.cols() != ref_data.cols())
        detail::throw_shape(op, "x_new with " + std::to_string(ref_data.cols()) + " columns (as ref_data)",
                            detail::shape_of(x_new));
    if (n < 2) throw value_error(detail::describe(op, "at least 2 reference points", std::to_string(n) + " points"));
    detail::require_finite(op, ref_data);
    detail::require_finite(op, ref_embedding);
    detail::require_finite(op, x_new);
    if (o.init_neighbors < 1 || o.init_neighbors > n)
        throw value_error(detail::describe(op, "init_neighbors in [1, N = " + std::to_string(n) + "]",
                                           std::to_string(o.init_neighbors)));
    if (o.early_exaggeration_iter < 0 || o.n_iter < 0)
        throw value_error(detail::describe(op, "iteration counts >= 0", "a negative count"));
    if (!(o.dof > 0.0)) throw value_error(detail::describe(op, "dof > 0", std::to_string(o.dof)));
    if (!(o.learning_rate > 0.0))
        throw value_error(detail::describe(op, "learning_rate > 0", std::to_string(o.learning_rate)));
    const index_t k = std::max<index_t>(1, std::min<index_t>(n, static_cast<index_t>(std::floor(3.0 * o.perplexity))));
    detail::require_perplexity(op, o.perplexity, k);
    matrix<float> y_new(m, dims);
    if (m == 0) return y_new;

    const index_t k_all = std::max(k, o.init_neighbors);
    const knn_graph g = detail::knn_query(ref_data, x_new, k_all);
    matrix<double> p(m, k), y(m, dims);
    detail::parallel_for(
        m,
        [&](index_t i) {
            detail::calibrate_row(&g.sq_distances(i, 0), k, o.perplexity, &p(i, 0));
            for (index_t c = 0; c < dims; ++c) {
                if (o.init == tsne_transform_init::median) {
                    std::vector<double> v(static_cast<std::size_t>(o.init_neighbors));
                    for (index_t e = 0; e < o.init_neighbors; ++e)
                        v[static_cast<std::size_t>(e)] = static_cast<double>(ref_embedding(g.indices(i, e), c));
                    std::sort(v.begin(), v.end());
                    const std::size_t h = v.size() / 2;
                    y(i, c) = v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
                } else {
                    double s = 0.0;
                    for (index_t e = 0; e < k; ++e)
                        s += p(i, e) * static_cast<double>(ref_embedding(g.indices(i, e), c));
                    y(i, c) = s;
                }
            }
            switch (dims) {
            case 1:
                detail::transform_point<1>(ref_embedding, &g.indices(i, 0), &p(i, 0), k, o, &y(i, 0));
                break;
            case 2:
                detail::transform_point<2>(ref_embedding, &g.indices(i, 0), &p(i, 0), k, o, &y(i, 0));
                break;
            default:
                detail::transform_point<3>(ref_embedding, &g.indices(i, 0), &p(i, 0), k, o, &y(i, 0));
            }
        },
        1e6);
    y_new = y.cast<float>();
    return y_new;
}

} // namespace dskit
