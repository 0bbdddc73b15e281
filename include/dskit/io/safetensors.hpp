// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//
//   [u64 little-endian N][N bytes of JSON header][data region]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data region) plus an optional "__metadata__" object of string -> string.
//
// Reading validates everything before handing out a single view: header length (<= 100 MB, inside
// the file), JSON syntax, no duplicate keys, exactly the three fields per tensor, a known dtype,
// non-negative dimensions, end - begin == numel * dtype size (overflow-checked), and tensors that
// tile the data region exactly (no overlap, no hole, nothing after the last one), as the reference
// implementation requires. Any violation throws dskit::format_error, whose message starts with
// "safetensors: ", names the file (or <memory>) and the tensor, and says what was expected and got.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/io/dtype.hpp"
#include "dskit/io/mapped_file.hpp"
#include "dskit/io/tensor_convert.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit {

namespace detail {

inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

struct safetensors_entry {
    dtype type;
    std::vector<std::int64_t> shape;
    std::uint64_t begin;
    std::uint64_t end;
};

struct safetensors_parser {
    std::string where; // "safetensors: 'path'" or "safetensors: <memory>"

    [[noreturn]] void fail(std::string_view expected, std::string_view got) const
    {
        throw format_error(describe(where, expected, got));
    }
    [[noreturn]] void fail(std::string_view tensor, std::string_view expected, std::string_view got) const
    {
        throw format_error(describe(where + ", tensor '" + std::string(tensor) + "'", expected, got));
    }

    static std::string show(const nlohmann::json& j)
    {
        std::string s = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
        if (s.size() > 60) s = s.substr(0, 57) + "...";
        return s;
    }

    /// A non-negative JSON integer (up to INT64_MAX), or a format_error naming `what`.
    std::uint64_t non_negative(const nlohmann::json& j, std::string_view tensor, std::string_view what) const
    {
        if (j.is_number_unsigned()) {
            const auto v = j.get<std::uint64_t>();
            if (v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return v;
        } else if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
            return static_cast<std::uint64_t>(j.get<std::int64_t>());
        }
        fail(tensor, std::string(what) + " as a non-negative integer", show(j));
    }

    /// Parses the JSON text; rejects duplicate keys at any depth (nlohmann would keep the last one).
    nlohmann::json parse_json(std::string_view text) const
    {
        std::vector<std::set<std::string>> keys; // one set per open object
        std::string top_key;                     // the tensor whose entry is being read
        auto callback = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
            using ev_t = nlohmann::json::parse_event_t;
            if (ev == ev_t::object_start) {
                keys.emplace_back();
            } else if (ev == ev_t::object_end) {
                if (!keys.empty()) keys.pop_back();
            } else if (ev == ev_t::key && !keys.empty()) {
                auto k = parsed.get<std::string>();
                if (depth == 1) top_key = k;
                if (!keys.back().insert(k).second) {
                    if (depth == 1) fail(k, "unique tensor names", "a second entry of that name");
                    fail(top_key, "unique keys in its entry", "'" + k + "' twice");
                }
            }
            return true;
        };
        try {
            return nlohmann::json::parse(text.begin(), text.end(), callback);
        } catch (const nlohmann::json::exception& e) {
            fail("a valid JSON header", e.what());
        }
    }

    /// Validates the header of `file`; fills `entries` and `metadata`; returns the data region's offset.
    std::size_t parse(std::span<const std::byte> file, std::map<std::string, safetensors_entry, std::less<>>& entries,
                      std::map<std::string, std::string>& metadata) const
    {
        if (file.size() < 8) fail("at least 8 bytes (the header length)", std::to_string(file.size()) + " bytes");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(file[static_cast<std::size_t>(i)]);
        if (n > safetensors_max_header)
            fail("a header length of at most " + std::to_string(safetensors_max_header) + " bytes", std::to_string(n));
        if (n > file.size() - 8)
            fail("a header of " + std::to_string(n) + " bytes inside the file",
                 "only " + std::to_string(file.size() - 8) + " bytes after the length field");
        const std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, static_cast<std::size_t>(n));
        if (text.empty() || text.front() != '{')
            fail("a JSON object header starting with '{'",
                 text.empty() ? std::string("an empty header") : "'" + std::string(text.substr(0, 1)) + "'");
        const nlohmann::json header = parse_json(text);
        if (!header.is_object()) fail("a JSON object header", header.type_name());

        const std::uint64_t data_size = file.size() - 8 - n;
        for (const auto& [name, value] : header.items()) {
            if (name == "__metadata__") {
                if (!value.is_object()) fail(name, "an object of string -> string", value.type_name());
                for (const auto& [k, v] : value.items()) {
                    if (!v.is_string()) fail(name, "a string value for key '" + k + "'", show(v));
                    metadata.emplace(k, v.get<std::string>());
                }
                continue;
            }
            entries.emplace(name, parse_entry(name, value, data_size));
        }
        check_tiling(entries, data_size);
        return static_cast<std::size_t>(8 + n);
    }

    safetensors_entry parse_entry(const std::string& name, const nlohmann::json& v, std::uint64_t data_size) const
    {
        if (!v.is_object()) fail(name, "an object with dtype, shape and data_offsets", v.type_name());
        for (const auto& [k, _] : v.items())
            if (k != "dtype" && k != "shape" && k != "data_offsets")
                fail(name, "only the keys dtype, shape and data_offsets", "key '" + k + "'");
        for (const char* k : {"dtype", "shape", "data_offsets"})
            if (!v.contains(k)) fail(name, std::string("a '") + k + "' key", "none");

        safetensors_entry e{};
        const auto& dt = v["dtype"];
        if (!dt.is_string()) fail(name, "dtype as a string", show(dt));
        const auto type = dtype_from_name(dt.get_ref<const std::string&>());
        if (!type)
            fail(name, "a known dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2)", show(dt));
        e.type = *type;

        const auto& shape = v["shape"];
        if (!shape.is_array()) fail(name, "shape as an array of integers", show(shape));
        std::uint64_t numel = 1;
        bool overflow = false;
        for (const auto& d : shape) {
            const std::uint64_t x = non_negative(d, name, "each shape dimension");
            e.shape.push_back(static_cast<std::int64_t>(x));
            if (x != 0 && numel > std::numeric_limits<std::uint64_t>::max() / x) overflow = true;
            numel *= x;
        }

        const auto& off = v["data_offsets"];
        if (!off.is_array() || off.size() != 2) fail(name, "data_offsets as [begin, end]", show(off));
        e.begin = non_negative(off[0], name, "data_offsets begin");
        e.end = non_negative(off[1], name, "data_offsets end");
        if (e.begin > e.end)
            fail(name, "data_offsets begin <= end", "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]");
        if (e.end > data_size)
            fail(name, "data_offsets end <= " + std::to_string(data_size) + " (the data region's size)",
                 std::to_string(e.end));

        // numel is 0 whenever any dimension is 0, so a product that overflowed before a zero is harmless.
        bool zero = false;
        for (auto d : e.shape) zero = zero || d == 0;
        const std::uint64_t elem = dtype_size(e.type);
        if (!zero && (overflow || numel > std::numeric_limits<std::uint64_t>::max() / elem))
            fail(name, std::to_string(e.end - e.begin) + " bytes of data",
                 "shape " + shape_string(e.shape) + " whose size overflows 64 bits");
        const std::uint64_t want = zero ? 0 : numel * elem;
        if (want != e.end - e.begin)
            fail(name,
                 std::to_string(want) + " bytes for " + std::string(dtype_name(e.type)) + " of shape " +
                     shape_string(e.shape),
                 std::to_string(e.end - e.begin) + " bytes in data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "]");
        return e;
    }

    /// Tensors must cover the data region exactly once: sorted by offset, each starts where the last ended.
    void check_tiling(const std::map<std::string, safetensors_entry, std::less<>>& entries,
                      std::uint64_t data_size) const
    {
        std::vector<std::pair<const std::string*, const safetensors_entry*>> order;
        order.reserve(entries.size());
        for (const auto& [k, e] : entries) order.emplace_back(&k, &e);
        std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
            return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
        });
        std::uint64_t pos = 0;
        const std::string* prev = nullptr;
        for (const auto& [name, e] : order) {
            if (e->begin < pos)
                fail(*name, "data not overlapping tensor '" + *prev + "' (which ends at " + std::to_string(pos) + ")",
                     "data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) + "]");
            if (e->begin > pos)
                fail(*name, "data starting at offset " + std::to_string(pos) + " (no unused bytes between tensors)",
                     "data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) + "]");
            pos = e->end;
            prev = name;
        }
        if (pos != data_size)
            fail("tensors covering the whole data region of " + std::to_string(data_size) + " bytes",
                 std::to_string(data_size - pos) + " unused bytes after the last tensor");
    }
};

} // namespace detail

/// A safetensors file, validated on opening. Views returned by find()/at() point into the file's
/// bytes and stay valid while this object (or the object it was moved to) lives.
class safetensors_file : public weight_source {
public:
    /// Memory-maps and validates `path`. Throws io_error if it cannot be read, format_error if malformed.
    static safetensors_file open(const std::string& path)
    {
        safetensors_file f;
        f.map_.emplace(path);
        f.source_ = path;
        f.parse("safetensors: '" + path + "'");
        return f;
    }

    /// Validates an in-memory safetensors image and takes ownership of it.
    static safetensors_file from_bytes(std::vector<std::byte> bytes)
    {
        safetensors_file f;
        f.owned_ = std::move(bytes);
        f.source_ = "<memory>";
        f.parse("safetensors: <memory>");
        return f;
    }

    /// The "__metadata__" entries (empty if the file has none).
    const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

    /// The path given to open(), or "<memory>".
    const std::string& source() const noexcept { return source_; }

    /// Number of tensors.
    std::size_t size() const noexcept { return entries_.size(); }

    std::optional<tensor_view> find(std::string_view name) const override
    {
        auto it = entries_.find(name);
        if (it == entries_.end()) return std::nullopt;
        const auto& e = it->second;
        return tensor_view{e.type, e.shape,
                           file_bytes().subspan(data_start_ + static_cast<std::size_t>(e.begin),
                                                static_cast<std::size_t>(e.end - e.begin))};
    }

    std::vector<std::string> names() const override { return detail::map_keys(entries_); }

private:
    safetensors_file() = default;

    std::span<const std::byte> file_bytes() const noexcept
    {
        return map_ ? map_->bytes() : std::span<const std::byte>(owned_);
    }

    void parse(std::string where)
    {
        detail::safetensors_parser p{std::move(where)};
        data_start_ = p.parse(file_bytes(), entries_, metadata_);
    }

    std::optional<mapped_file> map_;
    std::vector<std::byte> owned_;
    std::string source_;
    std::size_t data_start_ = 0;
    std::map<std::string, detail::safetensors_entry, std::less<>> entries_;
    std::map<std::string, std::string> metadata_;
};

namespace detail {

/// Header text (padded so the data region starts 8-byte aligned) and the tensors in file order.
struct safetensors_plan {
    std::string header;
    std::vector<tensor_view> tensors;
};

inline safetensors_plan plan_safetensors(const weight_source& src, const std::map<std::string, std::string>& metadata,
                                         std::string_view op)
{
    std::vector<std::pair<std::string, tensor_view>> items;
    for (auto& name : src.names()) {
        if (name == "__metadata__")
            throw value_error(describe(op, "tensor names other than '__metadata__'", "a tensor of that name"));
        auto t = src.at(name);
        checked_numel(t, op, name);
        items.emplace_back(std::move(name), std::move(t));
    }
    // Largest elements first, then by name (as the reference writer does): with an 8-byte-aligned data
    // region every tensor then starts at a multiple of its element size, so as_span works on the result.
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
        const auto sa = dtype_size(a.second.type), sb = dtype_size(b.second.type);
        return sa != sb ? sa > sb : a.first < b.first;
    });

    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) {
        auto& m = header["__metadata__"] = nlohmann::json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
    }
    safetensors_plan plan;
    std::uint64_t offset = 0;
    for (auto& [name, t] : items) {
        const std::uint64_t end = offset + t.bytes.size();
        header[name] = {{"dtype", dtype_name(t.type)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
        offset = end;
        plan.tensors.push_back(std::move(t));
    }
    try {
        plan.header = header.dump();
    } catch (const nlohmann::json::exception& e) {
        throw value_error(describe(op, "UTF-8 tensor names and metadata", e.what()));
    }
    plan.header.append((8 - plan.header.size() % 8) % 8, ' ');
    return plan;
}

inline std::array<std::byte, 8> le_u64(std::uint64_t v)
{
    std::array<std::byte, 8> b{};
    for (auto& x : b) {
        x = static_cast<std::byte>(v & 0xffu);
        v >>= 8;
    }
    return b;
}

} // namespace detail

/// The safetensors image of `tensors` (plus optional metadata) as bytes.
inline std::vector<std::byte> serialize_safetensors(const weight_source& tensors,
                                                    const std::map<std::string, std::string>& metadata = {})
{
    const auto plan = detail::plan_safetensors(tensors, metadata, "serialize_safetensors");
    std::size_t total = 8 + plan.header.size();
    for (const auto& t : plan.tensors) total += t.bytes.size();
    std::vector<std::byte> out(total);
    const auto len = detail::le_u64(plan.header.size());
    std::memcpy(out.data(), len.data(), len.size());
    std::memcpy(out.data() + 8, plan.header.data(), plan.header.size());
    std::size_t pos = 8 + plan.header.size();
    for (const auto& t : plan.tensors) {
        if (!t.bytes.empty()) std::memcpy(out.data() + pos, t.bytes.data(), t.bytes.size());
        pos += t.bytes.size();
    }
    return out;
}

/// Writes `tensors` (plus optional metadata) to `path` as safetensors: 8-byte-aligned header padded
/// with spaces, tensors ordered by element size then name. Throws io_error if the file cannot be written.
inline void save_safetensors(const std::string& path, const weight_source& tensors,
                             const std::map<std::string, std::string>& metadata = {})
{
    const auto plan = detail::plan_safetensors(tensors, metadata, "save_safetensors");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    auto fail = [&](const char* what, int err) {
        throw io_error("save_safetensors: cannot " + std::string(what) + " '" + path + "': " + std::strerror(err));
    };
    if (f == nullptr) fail("open", errno);
    auto put = [&](const void* p, std::size_t n) {
        if (n != 0 && std::fwrite(p, 1, n, f) != n) {
            const int err = errno;
            std::fclose(f);
            fail("write", err);
        }
    };
    const auto len = detail::le_u64(plan.header.size());
    put(len.data(), len.size());
    put(plan.header.data(), plan.header.size());
    for (const auto& t : plan.tensors) put(t.bytes.data(), t.bytes.size());
    if (std::fclose(f) != 0) fail("close", errno);
}

} // namespace dskit
