// Backends, chosen at compile time by a tag type.
//
//   dskit::backend::scalar        plain loops: the readable reference every other backend is tested against
//   dskit::backend::simd<Arch>    xsimd vectors for architecture Arch (default: the best one the compiler
//                                 flags allow, e.g. sse2 without -m flags, avx2 with -march=haswell)
//   dskit::backend::cuda          NVIDIA GPUs; its kernels exist only in translation units compiled by nvcc
//
// `dskit::default_backend` is simd<> unless the user defines DSKIT_DEFAULT_BACKEND
// (e.g. -DDSKIT_DEFAULT_BACKEND=dskit::backend::scalar) before including dskit.
#pragma once

#include <string_view>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace dskit::backend {

struct scalar {
    static constexpr std::string_view name = "scalar";
};

template <class Arch = xsimd::default_arch>
struct simd {
    using arch = Arch;
    static constexpr std::string_view name = "simd";
    /// Floats per vector register for this architecture.
    static constexpr std::size_t lanes = xsimd::batch<float, Arch>::size;
};

struct cuda {
    static constexpr std::string_view name = "cuda";
};

template <class T>
struct is_simd : std::false_type {
};
template <class Arch>
struct is_simd<simd<Arch>> : std::true_type {
};

} // namespace dskit::backend

#ifndef DSKIT_DEFAULT_BACKEND
#define DSKIT_DEFAULT_BACKEND ::dskit::backend::simd<>
#endif

namespace dskit {

using default_backend = DSKIT_DEFAULT_BACKEND;

/// A type usable as a backend tag.
template <class B>
concept backend_tag =
    std::is_same_v<B, backend::scalar> || std::is_same_v<B, backend::cuda> || backend::is_simd<B>::value;

static_assert(backend_tag<default_backend>, "DSKIT_DEFAULT_BACKEND must name a dskit::backend tag");

/// Operation tags: the first key of the kernel table. The functions themselves are in dskit::ops.
namespace ops::tag {
struct gemm {};
struct softmax {};
struct exp {};
struct sigmoid {};
struct silu {};
struct gelu {};
struct gelu_tanh {};
struct relu {};
struct rms_norm {};
struct layer_norm {};
} // namespace ops::tag

namespace detail {

template <class...>
inline constexpr bool always_false = false;

/// The kernel table: kernel<Op, Backend> is specialised by each backend for each operation it
/// implements. An (operation, backend) pair that nobody implemented lands here and fails to
/// compile with one message; the compiler's "in instantiation of kernel<Op, Backend>" line
/// names both.
template <class Op, class Backend>
struct kernel {
    static_assert(always_false<Op, Backend>,
                  "dskit: no kernel for this (operation, backend) pair; see kernel<Op, Backend> in the "
                  "instantiation note below (CUDA kernels exist only in files compiled by nvcc)");
};

} // namespace detail
} // namespace dskit
