// Threading: OpenMP over independent rows or heads. Each index_t is processed by
// exactly one thread with the same arithmetic, so results do not depend on the
// thread count.
#pragma once

#include "dskit/config.hpp"
#include "dskit/core/matrix.hpp"

#include <utility>

#if DSKIT_HAS_OPENMP
#include <omp.h>
#endif

namespace dskit {

/// Threads dskit's parallel loops use (1 without OpenMP).
inline int max_threads() noexcept
{
#if DSKIT_HAS_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Sets the thread count for dskit's (and Eigen's) OpenMP loops; no-op without OpenMP.
inline void set_num_threads([[maybe_unused]] int n) noexcept
{
#if DSKIT_HAS_OPENMP
    if (n > 0) omp_set_num_threads(n);
#endif
}

namespace detail {

/// Calls f(i) for i in [0, n): Dynamic = false in equal static shares, true one index at a time to
/// whichever thread is free (OpenMP's schedule(dynamic, 1)). The work list is the same either way, so
/// results are too. `work_per_item` (roughly flops or bytes per index_t) keeps tiny loops serial.
template <bool Dynamic, class F>
void parallel_for_scheduled(index_t n, F&& f, double work_per_item)
{
#if DSKIT_HAS_OPENMP
    const bool go_parallel = n > 1 && static_cast<double>(n) * work_per_item >= 32768.0 && !omp_in_parallel();
    if constexpr (Dynamic) {
#pragma omp parallel for schedule(dynamic, 1) if (go_parallel)
        for (index_t i = 0; i < n; ++i) f(i);
    } else {
#pragma omp parallel for schedule(static) if (go_parallel)
        for (index_t i = 0; i < n; ++i) f(i);
    }
#else
    (void)work_per_item;
    for (index_t i = 0; i < n; ++i) f(i);
#endif
}

/// Calls f(i) for i in [0, n), in parallel when the work is worth it (equal shares of the indices).
template <class F>
void parallel_for(index_t n, F&& f, double work_per_item = 1e6)
{
    parallel_for_scheduled<false>(n, std::forward<F>(f), work_per_item);
}

/// As parallel_for, but each thread takes the next index when it finishes one: for items of unequal cost,
/// listed largest first, so that the threads finish together. f(i) must give the same result whichever
/// thread runs it (as everywhere in dskit).
template <class F>
void parallel_for_dynamic(index_t n, F&& f, double work_per_item = 1e6)
{
    parallel_for_scheduled<true>(n, std::forward<F>(f), work_per_item);
}

/// Calls f(b, t) for b in [0, n) inside an OpenMP team whenever more than one thread is allowed; t < the
/// number of threads (parallel_threads()) numbers the calling thread, for scratch it owns. Blocks are handed
/// out one at a time. Eigen's GEMM runs single-threaded inside a team, so every block is computed with the
/// same blocking (and the same rounding) whatever the thread count: results stay bit-identical (exact_knn,
/// pca_project).
template <class F>
void parallel_blocks(index_t n, F&& f)
{
#if DSKIT_HAS_OPENMP
    if (n > 1 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1)
        for (index_t b = 0; b < n; ++b) f(b, omp_get_thread_num());
        return;
    }
#endif
    for (index_t b = 0; b < n; ++b) f(b, 0);
}

/// Threads parallel_blocks may use.
inline int parallel_threads()
{
#if DSKIT_HAS_OPENMP
    if (!omp_in_parallel()) return omp_get_max_threads();
#endif
    return 1;
}

/// Runs task() on one thread while the others call f(i) for i in [0, n), handed out a few at a time; the
/// task's thread joins the loop when done. For a serial job independent of an (equally independent per
/// index) loop. task must not throw (inside an OpenMP region an exception would end the program): allocate
/// before.
template <class Task, class F>
void run_beside(Task&& task, index_t n, F&& f)
{
#if DSKIT_HAS_OPENMP
    if (n > 1 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
#pragma omp single nowait
            task();
#pragma omp for schedule(dynamic, 16) nowait
            for (index_t i = 0; i < n; ++i) f(i);
        }
        return;
    }
#endif
    task();
    for (index_t i = 0; i < n; ++i) f(i);
}

} // namespace detail
} // namespace dskit
