// The t-SNE gradient: exact O(N²) and Barnes-Hut O(N log N) for 1-, 2- and 3-dimensional embeddings.
//
// With u_ij = (1 + |y_i - y_j|² / a)^-1, w_ij = u_ij^a (a = degrees of freedom; a = 1 is the Cauchy kernel,
// a < 1 gives heavier tails, openTSNE's convention), Z = sum_{k != l} w_kl and q_ij = w_ij / Z:
//
//   KL(P || Q)  = sum p_ij log(p_ij / q_ij)
//   dKL/dy_i    = 4 sum_j (e p_ij - q_ij) u_ij (y_i - y_j)      e: exaggeration (1 for the plain gradient)
//
// This is the exact gradient of KL, the quantity scikit-learn computes (bhtsne, FIt-SNE and openTSNE leave
// out the 4 and fold it into their learning rate). The attractive term runs over P's non-zeros; the
// repulsive term over all pairs (exact) or over a 2^d-tree whose cells are summarised by their centre of
// mass when cell_width / distance < theta (Barnes-Hut, the criterion scikit-learn uses; theta = 0
// opens every cell and is exact). At theta = 0.5 the repulsive force is within about 1-2 % of the exact one.
//
// Every sum has a fixed order and the tree is built serially, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <tuple>
#include <vector>

#include "dskit/backend/tags.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/manifold/affinity.hpp"
#include "dskit/manifold/tsne_gradient_sum.hpp"
#include "dskit/manifold/tsne_exact_simd.hpp"

namespace dskit {

/// What one gradient evaluation also reports.
struct tsne_gradient_stats {
    double z = 0.0;  ///< normalisation sum_{k != l} w_kl (Barnes-Hut: its estimate)
    double kl = 0.0; ///< KL(P || Q) of the un-exaggerated P; only when requested, else 0
};

namespace detail {

inline void require_gradient_args(std::string_view op, const sparse_affinities& p, const const_matrix_ref<double>& y,
                                  const matrix_ref<double>& grad, double dof)
{
    if (y.rows() != p.n)
        throw_shape(op, "embedding with " + std::to_string(p.n) + " rows (one per point)", shape_of(y));
    if (y.cols() < 1 || y.cols() > 3) throw_shape(op, "embedding with 1 to 3 columns", shape_of(y));
    if (grad.rows() != y.rows() || grad.cols() != y.cols())
        throw_shape(op, "grad of shape " + shape_of(y), shape_of(grad));
    if (!(dof > 0.0)) throw value_error(describe(op, "degrees of freedom > 0", std::to_string(dof)));
}

/// u = (1 + d²/a)^-1 and w = u^a, with the a = 1 case kept free of pow().
struct tsne_kernel {
    double dof;
    [[nodiscard]] double u(double d2) const { return 1.0 / (1.0 + d2 / dof); }
    [[nodiscard]] double w(double uu) const { return dof == 1.0 ? uu : std::pow(uu, dof); }
};

inline double sum_p_log_p(const sparse_affinities& p)
{
    double s = 0.0;
    for (double v : p.values)
        if (v > 0.0) s += v * std::log(v);
    return s;
}

template <int Dim>
using point = std::array<double, Dim>;

/// The embedding as packed fixed-size points: the inner loops then index plain arrays, not strided views.
template <int Dim>
std::vector<point<Dim>> pack_points(const const_matrix_ref<double>& y)
{
    std::vector<point<Dim>> pts(static_cast<std::size_t>(y.rows()));
    for (index_t i = 0; i < y.rows(); ++i)
        for (int c = 0; c < Dim; ++c) pts[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)] = y(i, c);
    return pts;
}

/// One pass over the points (one parallel region): attractive force e * sum_j p_ij u_ij (y_i - y_j) and
/// sum_j p_ij log w_ij from P's row i, repulsion f_i and z_i from `repulse(i, f)`; then, serially and in
/// index order, Z = sum z_i and grad_i = 4 (attr_i - f_i / Z).
template <int Dim, class Repulse>
tsne_gradient_stats gradient_pass(const sparse_affinities& p, const std::vector<point<Dim>>& pts,
                                  matrix_ref<double> grad, double exaggeration, const tsne_kernel& kern, bool want_kl,
                                  double work_per_point, const Repulse& repulse)
{
    const index_t n = p.n;
    std::vector<point<Dim>> attr(static_cast<std::size_t>(n)), rep(static_cast<std::size_t>(n));
    std::vector<double> zrow(static_cast<std::size_t>(n)), plogw(static_cast<std::size_t>(n), 0.0);
    parallel_for(
        n,
        [&](index_t i) {
            const auto ui = static_cast<std::size_t>(i);
            const point<Dim>& yi = pts[ui];
            point<Dim> f{};
            double s = 0.0;
            for (auto e = p.indptr[ui]; e < p.indptr[ui + 1]; ++e) {
                const point<Dim>& yj = pts[static_cast<std::size_t>(p.indices[static_cast<std::size_t>(e)])];
                const double pij = p.values[static_cast<std::size_t>(e)];
                point<Dim> diff;
                double d2 = 0.0;
                for (int c = 0; c < Dim; ++c) {
                    diff[c] = yi[c] - yj[c];
                    d2 += diff[c] * diff[c];
                }
                const double u = kern.u(d2);
                for (int c = 0; c < Dim; ++c) f[c] += pij * u * diff[c];
                if (want_kl) s += pij * std::log(kern.w(u));
            }
            attr[ui] = f;
            plogw[ui] = s;
            point<Dim> r{};
            zrow[ui] = repulse(i, r);
            rep[ui] = r;
        },
        work_per_point + 20.0 * static_cast<double>(p.nnz()) / static_cast<double>(std::max<index_t>(n, 1)));
    const auto [z, total_plogw] = sum_tsne_gradient<Dim>(attr, rep, zrow, plogw, exaggeration, grad);
    tsne_gradient_stats st;
    st.z = z;
    if (want_kl) st.kl = sum_p_log_p(p) - total_plogw + std::log(z);
    return st;
}

template <int Dim>
tsne_gradient_stats exact_gradient_impl(const sparse_affinities& p, const const_matrix_ref<double>& y,
                                        matrix_ref<double> grad, double exaggeration, double dof, bool want_kl)
{
    const tsne_kernel kern{dof};
    const std::vector<point<Dim>> pts = pack_points<Dim>(y);
    const auto n = static_cast<std::size_t>(p.n);
    return gradient_pass<Dim>(p, pts, grad, exaggeration, kern, want_kl, 10.0 * static_cast<double>(n),
                              [&](index_t i, point<Dim>& f) {
                                  const point<Dim>& yi = pts[static_cast<std::size_t>(i)];
                                  double z = 0.0;
                                  for (std::size_t j = 0; j < n; ++j) {
                                      if (j == static_cast<std::size_t>(i)) continue;
                                      point<Dim> diff;
                                      double d2 = 0.0;
                                      for (int c = 0; c < Dim; ++c) {
                                          diff[c] = yi[c] - pts[j][c];
                                          d2 += diff[c] * diff[c];
                                      }
                                      const double u = kern.u(d2), w = kern.w(u);
                                      z += w;
                                      for (int c = 0; c < Dim; ++c) f[c] += w * u * diff[c];
                                  }
                                  return z;
                              });
}

/// A 2^Dim-tree over the embedding, built serially by recursive partition of index ranges (no per-point
/// insertion, so duplicates cannot make it recurse forever: a cell stops splitting at depth 48). Empty
/// children are not stored.
template <int Dim>
class bh_tree {
public:
    static constexpr int n_children = 1 << Dim;
    struct node {
        point<Dim> com{};     ///< centre of mass
        double width2 = 0.0;  ///< squared side length of the (cubic) cell
        double count = 0.0;   ///< points below, as a double for the force sums
        index_t first = 0;    ///< leaf: points order_[first, first + n_points)
        index_t n_points = 0; ///< leaf only
        index_t child = -1;   ///< first child (-1 for a leaf); children are consecutive
        int n_child = 0;
    };

    explicit bh_tree(const std::vector<point<Dim>>& pts) : pts_(pts), order_(pts.size())
    {
        const auto n = static_cast<index_t>(pts.size());
        for (index_t i = 0; i < n; ++i) order_[static_cast<std::size_t>(i)] = i;
        point<Dim> lo{}, hi{};
        if (n > 0) lo = hi = pts[0];
        for (const auto& q : pts)
            for (int c = 0; c < Dim; ++c) {
                lo[c] = std::min(lo[c], q[c]);
                hi[c] = std::max(hi[c], q[c]);
            }
        point<Dim> centre;
        double width = 0.0;
        for (int c = 0; c < Dim; ++c) {
            centre[c] = 0.5 * (lo[c] + hi[c]);
            width = std::max(width, hi[c] - lo[c]);
        }
        width = width * (1.0 + 1e-9) + 1e-300;
        nodes_.reserve(static_cast<std::size_t>(3 * n + 1));
        nodes_.push_back({});
        scratch_.resize(pts.size());
        build(0, 0, n, centre, width, 0);
    }

    /// Repulsion on point i: f += sum over cells count w u (y_i - com); returns sum count w.
    double repulsion(index_t i, double theta2, const tsne_kernel& kern, point<Dim>& f) const
    {
        const point<Dim>& yi = pts_[static_cast<std::size_t>(i)];
        double z = 0.0;
        index_t stack[64 * n_children];
        int top = 0;
        stack[top++] = 0;
        while (top > 0) {
            const node& nd = nodes_[static_cast<std::size_t>(stack[--top])];
            if (nd.child < 0) { // leaf: its points one by one (several only for coincident points)
                for (index_t e = nd.first; e < nd.first + nd.n_points; ++e) {
                    const index_t j = order_[static_cast<std::size_t>(e)];
                    if (j == i) continue;
                    const point<Dim>& yj = pts_[static_cast<std::size_t>(j)];
                    point<Dim> dj;
                    double d2 = 0.0;
                    for (int c = 0; c < Dim; ++c) {
                        dj[c] = yi[c] - yj[c];
                        d2 += dj[c] * dj[c];
                    }
                    const double u = kern.u(d2), w = kern.w(u);
                    z += w;
                    for (int c = 0; c < Dim; ++c) f[c] += w * u * dj[c];
                }
                continue;
            }
            point<Dim> diff;
            double d2 = 0.0;
            for (int c = 0; c < Dim; ++c) {
                diff[c] = yi[c] - nd.com[c];
                d2 += diff[c] * diff[c];
            }
            if (nd.width2 < theta2 * d2) { // far enough: the cell acts as one mass at its centre
                const double u = kern.u(d2), w = nd.count * kern.w(u);
                z += w;
                for (int c = 0; c < Dim; ++c) f[c] += w * u * diff[c];
                continue;
            }
            // Pushed in reverse so children are visited in order: a fixed summation order per point.
            for (int q = nd.n_child - 1; q >= 0; --q) stack[top++] = nd.child + q;
        }
        return z;
    }

private:
    void build(std::size_t at, index_t first, index_t count, const point<Dim>& centre, double width, int depth)
    {
        point<Dim> s{};
        for (index_t e = first; e < first + count; ++e) {
            const point<Dim>& q = pts_[static_cast<std::size_t>(order_[static_cast<std::size_t>(e)])];
            for (int c = 0; c < Dim; ++c) s[c] += q[c];
        }
        node& nd = nodes_[at];
        nd.width2 = width * width;
        nd.count = static_cast<double>(count);
        nd.first = first;
        nd.n_points = count;
        for (int c = 0; c < Dim; ++c) nd.com[c] = s[c] / static_cast<double>(count);
        if (count <= 1 || depth >= 48) return;

        // Stable counting sort of the range by child cell: deterministic and O(count).
        std::array<index_t, n_children + 1> start{};
        for (index_t e = first; e < first + count; ++e) ++start[static_cast<std::size_t>(cell_of(e, centre)) + 1];
        for (int q = 0; q < n_children; ++q) start[q + 1] += start[q];
        auto pos = start;
        for (index_t e = first; e < first + count; ++e)
            scratch_[static_cast<std::size_t>(first + pos[static_cast<std::size_t>(cell_of(e, centre))]++)] =
                order_[static_cast<std::size_t>(e)];
        std::copy(scratch_.begin() + first, scratch_.begin() + first + count, order_.begin() + first);

        int n_child = 0;
        for (int q = 0; q < n_children; ++q) n_child += start[q + 1] > start[q];
        const auto child = static_cast<index_t>(nodes_.size());
        nodes_[at].child = child;
        nodes_[at].n_child = n_child;
        nodes_[at].n_points = 0;
        nodes_.resize(nodes_.size() + static_cast<std::size_t>(n_child));
        int k = 0;
        for (int q = 0; q < n_children; ++q) {
            if (start[q + 1] == start[q]) continue;
            point<Dim> cc;
            for (int c = 0; c < Dim; ++c) cc[c] = centre[c] + ((q >> c) & 1 ? 0.25 : -0.25) * width;
            build(static_cast<std::size_t>(child + k++), first + start[q], start[q + 1] - start[q], cc, 0.5 * width,
                  depth + 1);
        }
    }

    int cell_of(index_t e, const point<Dim>& centre) const
    {
        const point<Dim>& q = pts_[static_cast<std::size_t>(order_[static_cast<std::size_t>(e)])];
        int cell = 0;
        for (int c = 0; c < Dim; ++c)
            if (q[c] >= centre[c]) cell |= 1 << c;
        return cell;
    }

    const std::vector<point<Dim>>& pts_;
    std::vector<index_t> order_, scratch_;
    std::vector<node> nodes_;
};

template <int Dim>
tsne_gradient_stats bh_gradient_impl(const sparse_affinities& p, const const_matrix_ref<double>& y,
                                     matrix_ref<double> grad, double exaggeration, double dof, double theta,
                                     bool want_kl)
{
    const tsne_kernel kern{dof};
    const std::vector<point<Dim>> pts = pack_points<Dim>(y);
    const bh_tree<Dim> tree(pts);
    return gradient_pass<Dim>(p, pts, grad, exaggeration, kern, want_kl, 2000.0,
                              [&](index_t i, point<Dim>& f) { return tree.repulsion(i, theta * theta, kern, f); });
}

} // namespace detail

namespace detail {

/// What the exact gradient prepares once per run: nothing on the scalar backend; on the simd backend P in
/// float with padded rows, and the buffers every call reuses (one set per output dimension).
template <class Backend>
struct exact_gradient_plan {
    explicit exact_gradient_plan(const sparse_affinities&) {}
};
template <class Arch>
struct exact_gradient_plan<backend::simd<Arch>> {
    simd::tsne_csr32<Arch> p32;
    std::tuple<simd::exact_workspace<1, Arch>, simd::exact_workspace<2, Arch>, simd::exact_workspace<3, Arch>>
        workspaces; ///< by output dimension
    explicit exact_gradient_plan(const sparse_affinities& p) : p32(p) {}
};

template <int Dim, class Backend>
tsne_gradient_stats exact_gradient_dispatch(const sparse_affinities& p, exact_gradient_plan<Backend>* plan,
                                            const const_matrix_ref<double>& y, matrix_ref<double> grad,
                                            double exaggeration, double dof, bool want_kl)
{
    if constexpr (backend::is_simd<Backend>::value) {
        using arch = typename Backend::arch;
        const simd::tsne_csr32<arch>* p32 = plan != nullptr ? &plan->p32 : nullptr;
        simd::exact_workspace<Dim, arch> local;
        simd::exact_workspace<Dim, arch>& ws = plan != nullptr ? std::get<Dim - 1>(plan->workspaces) : local;
        tsne_gradient_stats st;
        if (dof == 1.0)
            simd::exact_gradient<Dim, arch, true>(p, p32, ws, y, grad, exaggeration, dof, want_kl, st.z, st.kl);
        else
            simd::exact_gradient<Dim, arch, false>(p, p32, ws, y, grad, exaggeration, dof, want_kl, st.z, st.kl);
        return st;
    } else {
        (void)plan;
        return exact_gradient_impl<Dim>(p, y, grad, exaggeration, dof, want_kl);
    }
}

/// The exact gradient with arguments already checked; plan: from the same P, or nullptr.
template <class Backend>
tsne_gradient_stats exact_gradient_planned(const sparse_affinities& p, exact_gradient_plan<Backend>* plan,
                                           const const_matrix_ref<double>& y, matrix_ref<double> grad,
                                           double exaggeration, double dof, bool want_kl)
{
    switch (y.cols()) {
    case 1:
        return exact_gradient_dispatch<1, Backend>(p, plan, y, grad, exaggeration, dof, want_kl);
    case 2:
        return exact_gradient_dispatch<2, Backend>(p, plan, y, grad, exaggeration, dof, want_kl);
    default:
        return exact_gradient_dispatch<3, Backend>(p, plan, y, grad, exaggeration, dof, want_kl);
    }
}

} // namespace detail

/// Exact t-SNE gradient (O(N²)): grad = dKL/dy with P scaled by `exaggeration` in the attractive term.
/// y: [N, d] with d in 1..3; grad: [N, d]. Returns Z and, if want_kl, KL(P || Q).
/// Backend: backend::scalar is the double-precision reference; backend::simd<Arch> computes the pair terms
/// in float vectors (tsne_exact_simd.hpp; about 1e-5 relative to the reference, 5e-5 on AVX-512; several
/// times faster).
template <class Backend = default_backend>
tsne_gradient_stats tsne_gradient_exact(const sparse_affinities& p, const_matrix_ref<double> y, matrix_ref<double> grad,
                                        double exaggeration = 1.0, double dof = 1.0, bool want_kl = true)
{
    static_assert(std::is_same_v<Backend, backend::scalar> || backend::is_simd<Backend>::value,
                  "tsne_gradient_exact: t-SNE runs on the scalar and simd backends");
    detail::require_gradient_args("tsne_gradient_exact", p, y, grad, dof);
    return detail::exact_gradient_planned<Backend>(p, nullptr, y, grad, exaggeration, dof, want_kl);
}

/// Barnes-Hut t-SNE gradient (O(N log N)) with opening angle theta (0.5 is the usual choice; 0 is exact).
inline tsne_gradient_stats tsne_gradient_bh(const sparse_affinities& p, const_matrix_ref<double> y,
                                            matrix_ref<double> grad, double theta = 0.5, double exaggeration = 1.0,
                                            double dof = 1.0, bool want_kl = true)
{
    detail::require_gradient_args("tsne_gradient_bh", p, y, grad, dof);
    if (!(theta >= 0.0)) throw value_error(detail::describe("tsne_gradient_bh", "theta >= 0", std::to_string(theta)));
    switch (y.cols()) {
    case 1:
        return detail::bh_gradient_impl<1>(p, y, grad, exaggeration, dof, theta, want_kl);
    case 2:
        return detail::bh_gradient_impl<2>(p, y, grad, exaggeration, dof, theta, want_kl);
    default:
        return detail::bh_gradient_impl<3>(p, y, grad, exaggeration, dof, theta, want_kl);
    }
}

} // namespace dskit
