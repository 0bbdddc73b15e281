// Principal component projection, used to initialise t-SNE.
//
//   matrix<double> y = pca_project(x, d);   // [N, d]: centred x times the top-d eigenvectors of its covariance
//
// The D x D covariance is accumulated over fixed 1024-row chunks (each chunk's GEMM single-threaded, chunks
// summed in order), so the result is bit-identical for any thread count. Eigenvectors come from Eigen's
// SelfAdjointEigenSolver; each is signed so that its largest-magnitude entry is positive (the first one on
// ties), which makes the projection a deterministic function of x.
#pragma once

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/manifold/knn.hpp" // column_means

namespace dskit {

/// Projection of x onto its first `dims` principal components (largest variance first). Requires
/// 1 <= dims <= D and N >= 2 (value_error otherwise).
inline matrix<double> pca_project(const_matrix_ref<float> x, index_t dims)
{
    const index_t n = x.rows(), d = x.cols();
    if (n < 2) throw value_error(detail::describe("pca_project", "at least 2 points", std::to_string(n) + " points"));
    if (dims < 1 || dims > d)
        throw value_error(detail::describe("pca_project", "dims in [1, D = " + std::to_string(d) + "]",
                                           "dims = " + std::to_string(dims)));
    const Eigen::RowVectorXd mean = detail::column_means(x);
    constexpr index_t chunk = 1024;
    const index_t n_chunks = (n + chunk - 1) / chunk;
    std::vector<Eigen::MatrixXd> partial(static_cast<std::size_t>(n_chunks));
    detail::parallel_blocks(n_chunks, [&](index_t b, int) {
        const index_t r0 = b * chunk, rn = std::min(chunk, n - r0);
        const Eigen::MatrixXd xc = x.middleRows(r0, rn).cast<double>().rowwise() - mean;
        partial[static_cast<std::size_t>(b)].noalias() = xc.transpose() * xc;
    });
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(d, d);
    for (const auto& p : partial) cov += p;
    cov /= static_cast<double>(n - 1);

    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);
    Eigen::MatrixXd v(d, dims);
    for (index_t c = 0; c < dims; ++c) {
        Eigen::VectorXd e = es.eigenvectors().col(d - 1 - c); // eigenvalues come in ascending order
        index_t arg = 0;
        for (index_t r = 1; r < d; ++r)
            if (std::abs(e(r)) > std::abs(e(arg))) arg = r;
        if (e(arg) < 0) e = -e;
        v.col(c) = e;
    }
    matrix<double> y(n, dims);
    for (index_t i = 0; i < n; ++i) y.row(i) = (x.row(i).cast<double>() - mean) * v;
    return y;
}

} // namespace dskit
