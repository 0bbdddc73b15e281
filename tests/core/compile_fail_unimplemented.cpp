// Must NOT compile: no backend implements this made-up operation.
#include <dskit/backend/tags.hpp>

struct my_op {};

int main()
{
    dskit::detail::kernel<my_op, dskit::backend::cuda> k;
    (void)k;
}
