// A user's program: includes the umbrella header and runs a tiny model.
#include <dskit/dskit.hpp>

#include <cstdio>

int main()
{
    dskit::sequential<dskit::linear<>, dskit::silu<>, dskit::linear<>> mlp{dskit::linear<>(8, 16), dskit::silu<>{},
                                                                           dskit::linear<>(16, 4)};
    dskit::matrix<float> x = dskit::matrix<float>::Ones(3, 8);
    auto y = mlp.forward(x);
    std::printf("dskit %d.%d.%d: output %ldx%ld, %zu parameters\n", DSKIT_VERSION_MAJOR, DSKIT_VERSION_MINOR,
                DSKIT_VERSION_PATCH, static_cast<long>(y.rows()), static_cast<long>(y.cols()), mlp.parameter_count());
    return (y.rows() == 3 && y.cols() == 4) ? 0 : 1;
}
