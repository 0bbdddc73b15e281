#include "../test_util.hpp"

#include <dskit/core/batch.hpp>

using namespace dskit;

TEST_CASE("batch packs sequences of different lengths without padding")
{
    auto a = test::random_matrix(3, 4, 1);
    auto b = test::random_matrix(1, 4, 2);
    auto c = test::random_matrix(5, 4, 3);
    batch<float> bt{a, b, c};
    CHECK(bt.size() == 3);
    CHECK(bt.total_tokens() == 9);
    CHECK(bt.features() == 4);
    CHECK(bt.length(1) == 1);
    CHECK(bt[0] == a);
    CHECK(bt[1] == b);
    CHECK(bt[2] == c);
    CHECK(bt.offsets() == std::vector<index_t>{0, 3, 4, 9});

    bt.push_back(test::random_matrix(2, 4, 4));
    CHECK(bt.size() == 4);
    CHECK(bt.total_tokens() == 11);
}

TEST_CASE("batch rejects sequences of another width with shape_error")
{
    batch<float> bt(4);
    CHECK_THROWS_AS(bt.push_back(test::random_matrix(2, 5)), shape_error);
    CHECK_THROWS_AS((batch<float>{test::random_matrix(2, 4), test::random_matrix(2, 3)}), shape_error);
    CHECK_THROWS_AS(batch<float>(matrix<float>(4, 2), {0, 3}), shape_error);
    CHECK_THROWS_AS(batch<float>(matrix<float>(4, 2), {0, 3, 2, 4}), shape_error);
    try {
        bt.push_back(test::random_matrix(2, 5));
    } catch (const shape_error& e) {
        const std::string m = e.what();
        CHECK(m.find("batch::push_back") != std::string::npos);
        CHECK(m.find("4 columns") != std::string::npos);
        CHECK(m.find("[2, 5]") != std::string::npos);
    }
}
