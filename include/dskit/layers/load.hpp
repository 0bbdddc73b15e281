// Loading a whole model from a state_dict, and running a model on a batch of sequences.
//
//     auto file = safetensors_file::open("model.safetensors");   // torch: save_file(model.state_dict(), ...)
//     my_model m;
//     load_state_dict(m, file);                 // strict: every tensor in the file must be used
//     batch<float> out = forward(m, inputs);    // inputs: sequences of different lengths
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dskit/core/batch.hpp"
#include "dskit/core/concepts.hpp"
#include "dskit/core/error.hpp"
#include "dskit/core/parallel.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit {

namespace detail {

/// A weight_source that remembers which names were asked for.
class recording_source final : public weight_source {
public:
    explicit recording_source(const weight_source& inner) : inner_(inner) {}

    std::optional<tensor_view> find(std::string_view name) const override
    {
        read_.emplace(name);
        return inner_.find(name);
    }
    std::vector<std::string> names() const override { return inner_.names(); }

    bool was_read(const std::string& name) const { return read_.count(name) != 0; }

private:
    const weight_source& inner_;
    mutable std::set<std::string, std::less<>> read_;
};

} // namespace detail

/// Loads every parameter of `model` from `w` (names prefix + the layer's names, as in a PyTorch
/// state_dict) and returns the unexpected keys: tensors under `prefix` that the model did not read.
///
/// With `strict`, unexpected keys throw missing_weight_error listing them, like PyTorch's
/// load_state_dict(strict=True); tensors outside `prefix` are never unexpected, so one file can feed
/// several models. A missing or mis-shaped tensor always throws (missing_weight_error / shape_error
/// naming it), strict or not: unlike a PyTorch module, a dskit layer has no trained values to fall
/// back on. On any error the model may be partly loaded.
template <loadable L>
std::vector<std::string> load_state_dict(L& model, const weight_source& w, bool strict = true,
                                         std::string_view prefix = "")
{
    detail::recording_source recorder(w);
    model.load(recorder, prefix);
    std::vector<std::string> unexpected;
    for (const auto& name : w.names())
        if (name.starts_with(prefix) && !recorder.was_read(name)) unexpected.push_back(name);
    if (strict && !unexpected.empty()) {
        constexpr std::size_t shown = 10;
        std::string got = std::to_string(unexpected.size()) + " unexpected key" + (unexpected.size() > 1 ? "s" : "");
        for (std::size_t i = 0; i < unexpected.size() && i < shown; ++i)
            got.append(i == 0 ? ": '" : ", '").append(unexpected[i]).append("'");
        if (unexpected.size() > shown) got.append(", ... (" + std::to_string(unexpected.size() - shown) + " more)");
        throw missing_weight_error(detail::describe(
            "load_state_dict",
            "every tensor" + (prefix.empty() ? std::string() : " under '" + std::string(prefix) + "'") +
                " to be a parameter of the model",
            got));
    }
    return unexpected;
}

/// Runs `model` on every sequence of `input`. A row-wise model (is_rowwise_layer) runs once on the packed
/// [total_tokens, features] matrix; any other runs per sequence, sequences spread over the threads.
template <layer L>
batch<float> forward(const L& model, const batch<float>& input)
{
    if (input.offsets().empty()) return {};
    if constexpr (is_rowwise_layer<L>) {
        return batch<float>(model.forward(input.packed()), input.offsets());
    } else {
        const std::size_t n = input.size();
        if (n == 0) return batch<float>(model.forward(input.packed()), input.offsets());
        std::vector<matrix<float>> outputs(n);
        std::vector<std::exception_ptr> errors(n);
        detail::parallel_for(static_cast<index_t>(n), [&](index_t i) {
            // Exceptions must not cross an OpenMP region: keep them and rethrow the first below.
            const auto k = static_cast<std::size_t>(i);
            try {
                outputs[k] = model.forward(input[k]);
            } catch (...) {
                errors[k] = std::current_exception();
            }
        });
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
        return batch<float>(outputs);
    }
}

} // namespace dskit
