#include "../test_util.hpp"

#include <dskit/backend/tags.hpp>
#include <dskit/core/parallel.hpp>

using namespace dskit;

TEST_CASE("backend tags")
{
    static_assert(backend_tag<backend::scalar>);
    static_assert(backend_tag<backend::simd<>>);
    static_assert(backend_tag<backend::cuda>);
    static_assert(!backend_tag<int>);
    static_assert(std::is_same_v<default_backend, backend::simd<>>);
    CHECK(backend::simd<>::lanes >= 4);
    CHECK(backend::scalar::name == "scalar");
}

TEST_CASE("parallel_for visits every index_t once")
{
    std::vector<int> hits(1000, 0);
    detail::parallel_for(static_cast<index_t>(hits.size()), [&](index_t i) { hits[static_cast<std::size_t>(i)] += 1; });
    CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
    CHECK(max_threads() >= 1);
}
