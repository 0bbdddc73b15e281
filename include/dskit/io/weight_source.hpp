// Where layers load their parameters from: anything that maps a name to a
// typed, shaped block of bytes (a safetensors file, an in-memory map).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/io/dtype.hpp"

namespace dskit {

/// A typed, shaped, read-only view of one tensor's bytes (little-endian, row-major).
struct tensor_view {
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;
    std::span<const std::byte> bytes;

    std::int64_t numel() const noexcept
    {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
};

/// The interface layers load from. Implementations: safetensors_file, weight_map.
class weight_source {
public:
    virtual ~weight_source() = default;

    /// The tensor called `name`, or nothing.
    virtual std::optional<tensor_view> find(std::string_view name) const = 0;

    /// Every tensor name, sorted.
    virtual std::vector<std::string> names() const = 0;

    bool contains(std::string_view name) const { return find(name).has_value(); }

    /// The tensor called `name`; throws missing_weight_error naming it otherwise.
    tensor_view at(std::string_view name) const
    {
        if (auto t = find(name)) return *t;
        throw missing_weight_error("load weights: expected a tensor named '" + std::string(name) +
                                   "', got none of that name");
    }
};

namespace detail {
/// The keys of an ordered map of tensors: what names() returns for map-backed sources.
template <class Map>
std::vector<std::string> map_keys(const Map& entries)
{
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (const auto& kv : entries) out.push_back(kv.first);
    return out;
}

/// "prefix" + "name", where a non-empty prefix already ends with '.'.
inline std::string join_name(std::string_view prefix, std::string_view name)
{
    std::string s(prefix);
    s.append(name);
    return s;
}
} // namespace detail

} // namespace dskit
