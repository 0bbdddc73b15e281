// All of dskit's composition layers: linear, norms, activations, sequential, residual, named,
// load_state_dict and forward on a batch.
#pragma once

#include "dskit/core/batch.hpp"
#include "dskit/core/concepts.hpp"
#include "dskit/layers/activation.hpp"
#include "dskit/layers/linear.hpp"
#include "dskit/layers/load.hpp"
#include "dskit/layers/named.hpp"
#include "dskit/layers/norm.hpp"
#include "dskit/layers/residual.hpp"
#include "dskit/layers/sequential.hpp"
