// An in-memory, owning weight_source: build state dicts in code (tests, conversions), then load
// layers from it or save it with save_safetensors.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/io/dtype.hpp"
#include "dskit/io/tensor_convert.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit {

class weight_map : public weight_source {
public:
    /// Stores `m` as an F32 tensor of shape [rows, cols], or [size] when `m` is a vector at compile
    /// time (dskit::vector, Eigen::VectorXf, row vectors). Element order is row-major whatever
    /// `m`'s storage order. Throws value_error if `name` is already present.
    template <class Derived>
    weight_map& add(std::string name, const Eigen::MatrixBase<Derived>& m)
    {
        std::vector<std::int64_t> shape;
        if constexpr (Derived::IsVectorAtCompileTime)
            shape = {static_cast<std::int64_t>(m.size())};
        else
            shape = {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())};
        std::vector<std::byte> bytes(static_cast<std::size_t>(m.size()) * sizeof(float));
        std::size_t k = 0;
        for (Eigen::Index i = 0; i < m.rows(); ++i)
            for (Eigen::Index j = 0; j < m.cols(); ++j, ++k) {
                const float v = static_cast<float>(m(i, j));
                std::memcpy(bytes.data() + k * sizeof(float), &v, sizeof(float));
            }
        insert(std::move(name), dtype::f32, std::move(shape), std::move(bytes));
        return *this;
    }

    /// Stores a copy of `bytes` (little-endian, row-major) as a tensor of `type` and `shape`.
    /// Throws format_error if the byte count does not match, value_error if `name` is present.
    weight_map& add_raw(std::string name, dtype type, std::vector<std::int64_t> shape, std::span<const std::byte> bytes)
    {
        tensor_view probe{type, shape, bytes};
        detail::checked_numel(probe, "weight_map::add_raw", name);
        insert(std::move(name), type, std::move(shape), std::vector<std::byte>(bytes.begin(), bytes.end()));
        return *this;
    }

    /// Copies every tensor of another source (e.g. to edit a loaded checkpoint).
    weight_map& add_all(const weight_source& src)
    {
        for (const auto& n : src.names()) {
            auto t = src.at(n);
            add_raw(n, t.type, t.shape, t.bytes);
        }
        return *this;
    }

    /// Removes `name`; returns whether it was present.
    bool erase(std::string_view name)
    {
        auto it = entries_.find(name);
        if (it == entries_.end()) return false;
        entries_.erase(it);
        return true;
    }

    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }

    std::optional<tensor_view> find(std::string_view name) const override
    {
        auto it = entries_.find(name);
        if (it == entries_.end()) return std::nullopt;
        return tensor_view{it->second.type, it->second.shape, it->second.bytes};
    }

    std::vector<std::string> names() const override { return detail::map_keys(entries_); }

private:
    struct entry {
        dtype type;
        std::vector<std::int64_t> shape;
        std::vector<std::byte> bytes; // heap storage: aligned for every dtype, stable when the map moves
    };

    void insert(std::string name, dtype type, std::vector<std::int64_t> shape, std::vector<std::byte> bytes)
    {
        if (entries_.count(name) != 0)
            throw value_error(
                detail::describe("weight_map::add", "a new tensor name", "'" + name + "', already present"));
        entries_.emplace(std::move(name), entry{type, std::move(shape), std::move(bytes)});
    }

    std::map<std::string, entry, std::less<>> entries_;
};

} // namespace dskit
