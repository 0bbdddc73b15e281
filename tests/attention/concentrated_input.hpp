// An attention input whose attention is concentrated, for sparse attention's quality checks (tests and
// dskit_bench's attention/block_sparse and attention/topk entries).
//
// The tokens come in segments of `segment` consecutive tokens; each segment is about one of `topics` random
// directions u_t (||u_t||^2 ~ d), every topic covering the same number of segments (a seeded shuffle), and
// its tokens' queries and keys point that way: q_i = u_t + e_i, k_i = u_t + e'_i, e ~ N(0, noise^2 I). Then
// q . k / sqrt(d) is about sqrt(d) for a key of the query's topic and about 0 otherwise, so each query's
// weight sits on the 1/topics of the segments that share its segment's topic (a document whose tokens
// attend to the passages on the same subject). Values are N(0, 1). One seeded std::mt19937 draws all.
#pragma once

#include <algorithm>
#include <random>
#include <vector>

#include <dskit/core/matrix.hpp>

namespace dskit::test {

struct concentrated_input {
    matrix<float> q, k, v;
};

inline concentrated_input make_concentrated_input(index_t n, index_t d, index_t heads, unsigned seed = 1,
                                                  index_t segment = 128, index_t topics = 8, float noise = 0.5f)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    concentrated_input in{matrix<float>(n, heads * d), matrix<float>(n, heads * d), matrix<float>(n, heads * d)};
    for (index_t h = 0; h < heads; ++h) {
        matrix<float> u(topics, d);
        for (index_t i = 0; i < u.size(); ++i) u.data()[i] = normal(gen);
        std::vector<index_t> seg_topic(static_cast<std::size_t>((n + segment - 1) / segment));
        for (std::size_t s = 0; s < seg_topic.size(); ++s) seg_topic[s] = static_cast<index_t>(s) % topics;
        std::shuffle(seg_topic.begin(), seg_topic.end(), gen);
        for (index_t i = 0; i < n; ++i) {
            const index_t tq = seg_topic[static_cast<std::size_t>(i / segment)], tk = tq;
            for (index_t x = 0; x < d; ++x) {
                in.q(i, h * d + x) = u(tq, x) + noise * normal(gen);
                in.k(i, h * d + x) = u(tk, x) + noise * normal(gen);
                in.v(i, h * d + x) = normal(gen);
            }
        }
    }
    return in;
}

/// Mean and minimum over rows and heads of the cosine similarity between a's and b's head rows.
struct cosine_report {
    double mean = 0.0, min = 1.0;
};

inline cosine_report cosine_similarity(const matrix<float>& a, const matrix<float>& b, index_t heads)
{
    cosine_report rep;
    const index_t d = a.cols() / heads;
    double total = 0.0;
    for (index_t i = 0; i < a.rows(); ++i)
        for (index_t h = 0; h < heads; ++h) {
            const auto x = a.row(i).segment(h * d, d).cast<double>(), y = b.row(i).segment(h * d, d).cast<double>();
            const double c = x.dot(y) / std::max(1e-300, x.norm() * y.norm());
            total += c;
            rep.min = std::min(rep.min, c);
        }
    rep.mean = total / static_cast<double>(a.rows() * heads);
    return rep;
}

} // namespace dskit::test
