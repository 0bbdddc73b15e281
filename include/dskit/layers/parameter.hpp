// Shared by the layers: read one named parameter from a weight source, checking its shape before
// converting it (F16/BF16/F8 tensors become float here), so a mis-shaped tensor is reported by name
// and never copied.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/tensor_convert.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit::detail {

/// "[a, b]" or "[a, any]" for an expected shape, where a negative extent means "any".
inline std::string expected_shape(std::initializer_list<index_t> dims)
{
    std::string s = "[";
    bool first = true;
    for (auto d : dims) {
        if (!first) s += ", ";
        s += d < 0 ? std::string("any") : std::to_string(d);
        first = false;
    }
    return s + "]";
}

/// Throws shape_error "op: expected tensor 'name' of shape E, got G" unless the tensor has `dims`
/// (a negative extent matches anything).
inline void require_tensor_shape(std::string_view op, const std::string& name, const tensor_view& t,
                                 std::initializer_list<index_t> dims)
{
    bool ok = t.shape.size() == dims.size();
    if (ok) {
        std::size_t i = 0;
        for (auto d : dims) ok = ok && (d < 0 || t.shape[i++] == static_cast<std::int64_t>(d));
    }
    if (!ok) throw_shape(op, "tensor '" + name + "' of shape " + expected_shape(dims), shape_string(t.shape));
}

/// The rank-2 tensor `name` as a [rows, cols] float matrix (negative extent: any).
inline matrix<float> load_matrix(std::string_view op, const weight_source& w, const std::string& name, index_t rows,
                                 index_t cols)
{
    const tensor_view t = w.at(name);
    require_tensor_shape(op, name, t, {rows, cols});
    return to_matrix(t, name);
}

/// The rank-1 tensor `name` as a float vector of `size` entries (negative: any).
inline vector<float> load_vector(std::string_view op, const weight_source& w, const std::string& name, index_t size)
{
    const tensor_view t = w.at(name);
    require_tensor_shape(op, name, t, {size});
    return to_vector(t, name);
}

/// Like load_vector, but a missing tensor gives an empty vector.
inline vector<float> load_optional_vector(std::string_view op, const weight_source& w, const std::string& name,
                                          index_t size, bool& found)
{
    const auto t = w.find(name);
    found = t.has_value();
    if (!found) return {};
    require_tensor_shape(op, name, *t, {size});
    return to_vector(*t, name);
}

/// Throws value_error for a negative size given to a layer's constructor.
inline void require_non_negative(std::string_view op, std::string_view what, index_t n)
{
    if (n < 0) throw value_error(describe(op, std::string(what) + " >= 0", std::to_string(n)));
}

} // namespace dskit::detail
