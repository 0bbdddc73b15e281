// Shared by the kernel tests: fixture loading and the backends every test body runs on.
#pragma once

#include "../test_util.hpp"

#include <span>
#include <string>

#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>
#include <dskit/ops/activation.hpp>
#include <dskit/ops/gemm.hpp>
#include <dskit/ops/norm.hpp>
#include <dskit/ops/softmax.hpp>

namespace dskit::test {

inline const std::string kernel_shapes[] = {"1x1", "3x17", "17x40", "5x1000"};

/// A tensor of a kernel fixture file as a float matrix.
inline matrix<float> load(const safetensors_file& f, const std::string& name)
{
    return to_matrix(f.at(name), name);
}

inline std::span<const float> span_of(const matrix<float>& m)
{
    return {m.data(), static_cast<std::size_t>(m.size())};
}

} // namespace dskit::test
