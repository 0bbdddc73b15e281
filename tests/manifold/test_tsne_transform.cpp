// tsne_transform: held-out digits land in their class's region of a fixed reference map, thread-count
// independence, and errors for mismatched shapes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <dskit/manifold/knn.hpp>
#include <dskit/manifold/tsne.hpp>
#include <dskit/manifold/tsne_transform.hpp>

#include "../test_util.hpp"

using namespace dskit;

namespace {

/// The bundled digits (examples/data), one CSV row per point.
std::vector<std::vector<float>> read_csv(const std::string& name)
{
    std::ifstream f(std::string(DSKIT_FIXTURE_DIR) + "/../../examples/data/" + name);
    REQUIRE(f.good());
    std::vector<std::vector<float>> rows;
    std::string line;
    while (std::getline(f, line)) {
        std::replace(line.begin(), line.end(), ',', ' ');
        std::istringstream s(line);
        std::vector<float> r;
        float v = 0;
        while (s >> v) r.push_back(v);
        if (!r.empty()) rows.push_back(std::move(r));
    }
    return rows;
}

struct split {
    matrix<float> x_ref, x_new;
    std::vector<std::int64_t> l_ref, l_new;
};

/// Every 6th digit held out: 1497 reference points, 300 new ones.
split digits_split()
{
    const auto x = read_csv("digits.csv");
    const auto l = read_csv("digits_labels.csv");
    REQUIRE(x.size() == 1797);
    REQUIRE(l.size() == 1797);
    split s;
    s.x_ref.resize(1497, 64);
    s.x_new.resize(300, 64);
    index_t a = 0, b = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const bool held = i % 6 == 0;
        for (index_t c = 0; c < 64; ++c) (held ? s.x_new(b, c) : s.x_ref(a, c)) = x[i][static_cast<std::size_t>(c)];
        (held ? s.l_new : s.l_ref).push_back(static_cast<std::int64_t>(l[i][0]));
        ++(held ? b : a);
    }
    return s;
}

/// Share of new points whose 10 nearest reference points in the map mostly carry the point's label.
double heldout_accuracy(const matrix<float>& y_ref, const std::vector<std::int64_t>& l_ref, const matrix<float>& y_new,
                        const std::vector<std::int64_t>& l_new)
{
    index_t correct = 0;
    for (index_t i = 0; i < y_new.rows(); ++i) {
        std::vector<std::pair<float, index_t>> d;
        for (index_t j = 0; j < y_ref.rows(); ++j) d.push_back({(y_ref.row(j) - y_new.row(i)).squaredNorm(), j});
        std::partial_sort(d.begin(), d.begin() + 10, d.end());
        std::vector<int> votes(10, 0);
        for (int c = 0; c < 10; ++c) ++votes[static_cast<std::size_t>(l_ref[static_cast<std::size_t>(d[c].second)])];
        const auto best = std::max_element(votes.begin(), votes.end()) - votes.begin();
        correct += best == l_new[static_cast<std::size_t>(i)];
    }
    return static_cast<double>(correct) / static_cast<double>(y_new.rows());
}

} // namespace

TEST_CASE("tsne_transform: held-out digits land among their class, bit-identical across threads")
{
    const split s = digits_split();
    tsne_options opt;
    opt.early_exaggeration_iter = 150;
    opt.n_iter = 250;
    opt.method = tsne_method::exact;
    const tsne_result fit = tsne(s.x_ref, opt);
    const matrix<float> y1 = tsne_transform(s.x_ref, fit.embedding, s.x_new);
    const int threads_before = max_threads();
    set_num_threads(1);
    const matrix<float> a1 = tsne_transform(s.x_ref, fit.embedding, s.x_new.topRows(60));
    set_num_threads(2);
    const matrix<float> a2 = tsne_transform(s.x_ref, fit.embedding, s.x_new.topRows(60));
    set_num_threads(threads_before);
    CHECK(a1 == a2);
    CHECK(a1 == y1.topRows(60)); // each new point is its own problem: the others do not change it
    REQUIRE(y1.rows() == 300);
    REQUIRE(y1.cols() == 2);
    CHECK(y1.allFinite());
    const double acc = heldout_accuracy(fit.embedding, s.l_ref, y1, s.l_new);
    MESSAGE("held-out 10-NN accuracy " << acc);
    CHECK(acc >= 0.9);

    // The optimisation moves points off their starting medians, and the weighted start works too.
    tsne_transform_options none;
    none.n_iter = 0;
    const matrix<float> start = tsne_transform(s.x_ref, fit.embedding, s.x_new, none);
    CHECK((start - y1).norm() > 0.0f);
    tsne_transform_options weighted;
    weighted.init = tsne_transform_init::weighted;
    const std::vector<std::int64_t> l100(s.l_new.begin(), s.l_new.begin() + 100);
    CHECK(heldout_accuracy(fit.embedding, s.l_ref,
                           tsne_transform(s.x_ref, fit.embedding, s.x_new.topRows(100), weighted), l100) >= 0.9);
}

TEST_CASE("tsne_transform: 1-D and 3-D maps, and errors naming the mismatch")
{
    const matrix<float> x = test::random_matrix(60, 5, 3), x_new = test::random_matrix(7, 5, 4);
    for (index_t dims : {1, 3}) {
        const matrix<float> y = test::random_matrix(60, dims, 5);
        const matrix<float> out = tsne_transform(x, y, x_new);
        CHECK(out.rows() == 7);
        CHECK(out.cols() == dims);
        CHECK(out.allFinite());
    }
    const matrix<float> y = test::random_matrix(60, 2, 5);
    const auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const error& e) {
            return e.what();
        }
        return "(no error)";
    };
    CHECK_THROWS_AS(tsne_transform(x, y, test::random_matrix(7, 4, 1)), shape_error);
    CHECK(message([&] { tsne_transform(x, y, test::random_matrix(7, 4, 1)); }).find("x_new with 5 columns") !=
          std::string::npos);
    CHECK_THROWS_AS(tsne_transform(x, y.topRows(59), x_new), shape_error);
    CHECK_THROWS_AS(tsne_transform(x, test::random_matrix(60, 4, 1), x_new), shape_error);
    tsne_transform_options o;
    o.perplexity = 30; // k = min(60, 90) = 60 neighbours: fine; 70 is not
    CHECK_NOTHROW(tsne_transform(x, y, x_new, o));
    o.perplexity = 70;
    CHECK(message([&] { tsne_transform(x, y, x_new, o); }).find("perplexity <= number of neighbours = 60") !=
          std::string::npos);
    matrix<float> bad = x_new;
    bad(2, 3) = std::nanf("");
    CHECK_THROWS_AS(tsne_transform(x, y, bad), value_error);
    CHECK(tsne_transform(x, y, x_new.topRows(0)).rows() == 0);
}
