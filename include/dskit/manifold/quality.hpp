// How good is an embedding? Three measures used to judge t-SNE maps.
//
//   kl_divergence(p, y, dof)      KL(P || Q) with the exact (O(N²)) Q of embedding y
//   trustworthiness(x, y, k)      1 - 2 / (N k (2N - 3k - 1)) * sum_i sum_{j in U_i} (r(i, j) - k), where U_i are
//                                 y's k nearest neighbours of i that are not among x's, and r(i, j) is j's rank
//                                 among i's neighbours in x (1 = nearest). Same definition and value as
//                                 sklearn.manifold.trustworthiness; requires k < N / 2. O(N² (D + log N)).
//   knn_accuracy(y, labels, k)    leave-one-out k-NN classification accuracy in y: each point gets the most
//                                 frequent label among its k nearest other points (ties: the smallest label).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/manifold/affinity.hpp"
#include "dskit/manifold/knn.hpp"
#include "dskit/manifold/tsne_gradient.hpp"

namespace dskit {

/// KL(P || Q) for embedding y ([N, 1..3]), Q with the exact normalisation (double-precision reference).
inline double kl_divergence(const sparse_affinities& p, const_matrix_ref<double> y, double dof = 1.0)
{
    matrix<double> grad(y.rows(), y.cols());
    return tsne_gradient_exact<backend::scalar>(p, y, grad, 1.0, dof, true).kl;
}

/// Trustworthiness of embedding y of x at k neighbours (sklearn's definition; Euclidean in both spaces).
inline double trustworthiness(const_matrix_ref<float> x, const_matrix_ref<float> y, index_t k)
{
    const index_t n = x.rows();
    if (y.rows() != n)
        detail::throw_shape("trustworthiness", "y with " + std::to_string(n) + " rows (one per row of x)",
                            detail::shape_of(y));
    if (k < 1 || 2 * k >= n)
        throw value_error(detail::describe("trustworthiness", "k in [1, N / 2) with N = " + std::to_string(n),
                                           "k = " + std::to_string(k)));
    const knn_graph gy = exact_knn(y, k);
    detail::require_finite("trustworthiness", x);
    std::vector<double> penalty(static_cast<std::size_t>(n), 0.0);
    detail::parallel_for(
        n,
        [&](index_t i) {
            std::vector<detail::knn_entry> all;
            all.reserve(static_cast<std::size_t>(n));
            for (index_t j = 0; j < n; ++j)
                if (j != i) all.push_back({detail::exact_sq_distance(x, i, j), j});
            std::sort(all.begin(), all.end());
            std::vector<index_t> rank(static_cast<std::size_t>(n), 0);
            for (std::size_t r = 0; r < all.size(); ++r)
                rank[static_cast<std::size_t>(all[r].j)] = static_cast<index_t>(r) + 1;
            double s = 0.0;
            for (index_t c = 0; c < k; ++c) {
                const index_t r = rank[static_cast<std::size_t>(gy.indices(i, c))];
                if (r > k) s += static_cast<double>(r - k);
            }
            penalty[static_cast<std::size_t>(i)] = s;
        },
        static_cast<double>(n) * static_cast<double>(x.cols() + 20));
    double t = 0.0;
    for (double v : penalty) t += v;
    const double nd = static_cast<double>(n), kd = static_cast<double>(k);
    return 1.0 - t * (2.0 / (nd * kd * (2.0 * nd - 3.0 * kd - 1.0)));
}

/// Leave-one-out k-NN classification accuracy of labels in embedding y.
inline double knn_accuracy(const_matrix_ref<float> y, std::span<const std::int64_t> labels, index_t k)
{
    const index_t n = y.rows();
    if (static_cast<index_t>(labels.size()) != n)
        detail::throw_shape("knn_accuracy", "labels of size " + std::to_string(n) + " (one per row of y)",
                            "size " + std::to_string(labels.size()));
    const knn_graph g = exact_knn(y, k);
    index_t correct = 0;
    std::vector<std::int64_t> votes(static_cast<std::size_t>(k));
    for (index_t i = 0; i < n; ++i) {
        for (index_t c = 0; c < k; ++c)
            votes[static_cast<std::size_t>(c)] = labels[static_cast<std::size_t>(g.indices(i, c))];
        std::sort(votes.begin(), votes.end());
        std::int64_t best = votes[0];
        index_t best_count = 0;
        for (std::size_t a = 0; a < votes.size();) {
            std::size_t b = a;
            while (b < votes.size() && votes[b] == votes[a]) ++b;
            if (static_cast<index_t>(b - a) > best_count) {
                best_count = static_cast<index_t>(b - a);
                best = votes[a];
            }
            a = b;
        }
        if (best == labels[static_cast<std::size_t>(i)]) ++correct;
    }
    return static_cast<double>(correct) / static_cast<double>(n);
}

} // namespace dskit
