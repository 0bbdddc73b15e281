// dskit: header-only C++20 building blocks for DeepSeek-style models.
//
//   #include <dskit/dskit.hpp>
//
//   using block = dskit::residual<dskit::rms_norm<>, dskit::linear<>, dskit::silu<>, dskit::linear<>>;
//   dskit::sequential<block, block, dskit::rms_norm<>, dskit::linear<>> model;
//   dskit::load_state_dict(model, dskit::safetensors_file::open("model.safetensors"));
//   dskit::matrix<float> y = model.forward(x);   // x: [tokens, features], row-major
//
// Every kernel runs on a backend chosen at compile time (dskit::backend::scalar,
// dskit::backend::simd<Arch>, dskit::backend::cuda); layers and ops take it as their
// first template argument and default to dskit::default_backend.
#pragma once

#include "dskit/version.hpp"
#include "dskit/config.hpp"

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/core/batch.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/core/concepts.hpp"
#include "dskit/core/float16.hpp"
#include "dskit/core/float8.hpp"

#include "dskit/backend/tags.hpp"

#include "dskit/ops/gemm.hpp"
#include "dskit/ops/softmax.hpp"
#include "dskit/ops/activation.hpp"
#include "dskit/ops/norm.hpp"

#include "dskit/io/dtype.hpp"
#include "dskit/io/weight_source.hpp"
#include "dskit/io/weight_map.hpp"
#include "dskit/io/tensor_convert.hpp"
#include "dskit/io/safetensors.hpp"
#include "dskit/io/npy.hpp"

#include "dskit/layers/layers.hpp"

#include "dskit/attention/flash.hpp"
#include "dskit/attention/decode.hpp"
#include "dskit/attention/sparse.hpp"
#include "dskit/attention/attention_map.hpp"
#include "dskit/attention/multi_head.hpp"
#include "dskit/attention/cross_modal.hpp"
#include "dskit/attention/heatmap_svg.hpp"
#include "dskit/attention/gates.hpp"
#include "dskit/attention/gau.hpp"
#include "dskit/attention/dynamic_attention.hpp"
#include "dskit/attention/dynamic_gate.hpp"

#include "dskit/manifold/tsne.hpp"
#include "dskit/manifold/tsne_transform.hpp"
#include "dskit/manifold/quality.hpp"
#include "dskit/manifold/svg_scatter.hpp"
