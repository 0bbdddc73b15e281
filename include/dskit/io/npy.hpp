// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
//   "\x93NUMPY" major minor | header length (u16 LE for 1.0, u32 LE for 2.0/3.0) | header | data
//
// The header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// It is read by a small strict parser (not eval, not JSON): exactly those three keys, each once;
// descr one of f2 f4 f8 i1 i2 i4 i8 u1 b1 with byte order '<', '>', '|' or '='; shape a tuple of
// non-negative integers; the data exactly numel * itemsize bytes. Big-endian data is byte-swapped and
// Fortran-order data transposed, so an npy_array always holds little-endian, C-order (row-major) bytes.
// Malformed input throws dskit::format_error ("npy: <source>: expected ..., got ...").
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/io/dtype.hpp"
#include "dskit/io/mapped_file.hpp"
#include "dskit/io/tensor_convert.hpp"
#include "dskit/io/weight_source.hpp"

namespace dskit {

/// An n-dimensional array read from or written to .npy: little-endian, C-order bytes.
struct npy_array {
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> data;

    std::int64_t numel() const noexcept
    {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
    /// A view for to_matrix / to_vector / as_span (valid while this array lives).
    tensor_view view() const { return {type, shape, data}; }
};

namespace detail {

struct npy_header_parser {
    std::string_view s;
    const std::string& where;
    std::size_t i = 0;

    [[noreturn]] void fail(std::string_view expected) const
    {
        std::string got =
            i < s.size() ? "'" + std::string(s.substr(i, 20)) + "'" : std::string("the end of the header");
        for (auto& c : got)
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
        throw format_error(describe(where, std::string(expected) + " in the header at byte " + std::to_string(i), got));
    }
    void skip_ws()
    {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    }
    bool eat(char c)
    {
        skip_ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    void expect(char c)
    {
        if (!eat(c)) fail(std::string("'") + c + "'");
    }
    std::string_view string()
    {
        skip_ws();
        if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail("a quoted string");
        const char q = s[i++];
        const std::size_t start = i;
        while (i < s.size() && s[i] != q) {
            if (s[i] == '\\' || s[i] == '\n') fail("a plain string");
            ++i;
        }
        if (i >= s.size()) fail("a closing quote");
        return s.substr(start, i++ - start);
    }
    bool boolean()
    {
        skip_ws();
        if (s.substr(i, 4) == "True") {
            i += 4;
            return true;
        }
        if (s.substr(i, 5) == "False") {
            i += 5;
            return false;
        }
        fail("True or False");
    }
    std::int64_t integer()
    {
        skip_ws();
        if (i >= s.size() || s[i] < '0' || s[i] > '9') fail("a non-negative integer");
        std::int64_t v = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            const int digit = s[i] - '0';
            if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) fail("a dimension that fits in 64 bits");
            v = v * 10 + digit;
            ++i;
        }
        return v;
    }
    std::vector<std::int64_t> tuple()
    {
        expect('(');
        std::vector<std::int64_t> dims;
        if (eat(')')) return dims;
        for (;;) {
            dims.push_back(integer());
            if (dims.size() == 1) { // Python needs the comma to make (3,) a tuple
                expect(',');
                if (eat(')')) return dims;
                continue;
            }
            if (eat(')')) return dims;
            expect(',');
            if (eat(')')) return dims;
        }
    }
};

struct npy_descr {
    dtype type;
    bool big_endian;
};

inline npy_descr parse_npy_descr(std::string_view d, const std::string& where)
{
    auto bad = [&]() -> npy_descr {
        throw format_error(describe(where,
                                    "a descr of f2, f4, f8, i1, i2, i4, i8, u1 or b1 with byte order <, >, | or =",
                                    "'" + std::string(d.substr(0, 20)) + "'"));
    };
    if (d.size() != 3 || (d[0] != '<' && d[0] != '>' && d[0] != '|' && d[0] != '=')) return bad();
    const std::string_view kind = d.substr(1);
    dtype t{};
    if (kind == "f2")
        t = dtype::f16;
    else if (kind == "f4")
        t = dtype::f32;
    else if (kind == "f8")
        t = dtype::f64;
    else if (kind == "i1")
        t = dtype::i8;
    else if (kind == "i2")
        t = dtype::i16;
    else if (kind == "i4")
        t = dtype::i32;
    else if (kind == "i8")
        t = dtype::i64;
    else if (kind == "u1")
        t = dtype::u8;
    else if (kind == "b1")
        t = dtype::boolean;
    else
        return bad();
    return {t, d[0] == '>' && dtype_size(t) > 1};
}

/// Reorders a Fortran-order (column-major) n-d array into C order.
inline std::vector<std::byte> fortran_to_c(const std::vector<std::byte>& src, const std::vector<std::int64_t>& shape,
                                           std::size_t elem)
{
    std::vector<std::byte> dst(src.size());
    const std::size_t rank = shape.size();
    const std::size_t n = src.size() / elem;
    if (rank < 2 || n == 0) return src;
    std::vector<std::size_t> fstride(rank), idx(rank, 0);
    std::size_t st = 1;
    for (std::size_t k = 0; k < rank; ++k) {
        fstride[k] = st;
        st *= static_cast<std::size_t>(shape[k]);
    }
    std::size_t off = 0; // Fortran offset of the C-order index idx
    for (std::size_t c = 0; c < n; ++c) {
        std::memcpy(dst.data() + c * elem, src.data() + off * elem, elem);
        for (std::size_t k = rank; k-- > 0;) { // increment the C-order index (last dimension fastest)
            if (++idx[k] < static_cast<std::size_t>(shape[k])) {
                off += fstride[k];
                break;
            }
            off -= fstride[k] * (idx[k] - 1);
            idx[k] = 0;
        }
    }
    return dst;
}

inline std::string npy_descr_of(dtype t, std::string_view op)
{
    switch (t) {
    case dtype::f16:
        return "<f2";
    case dtype::f32:
        return "<f4";
    case dtype::f64:
        return "<f8";
    case dtype::i8:
        return "|i1";
    case dtype::i16:
        return "<i2";
    case dtype::i32:
        return "<i4";
    case dtype::i64:
        return "<i8";
    case dtype::u8:
        return "|u1";
    case dtype::boolean:
        return "|b1";
    default:
        throw value_error(
            describe(op, "a dtype NumPy can store (F16, F32, F64, I8, I16, I32, I64, U8, BOOL)", dtype_name(t)));
    }
}

inline void write_whole_file(const std::string& path, std::span<const std::byte> bytes, std::string_view op)
{
    auto fail = [&](const char* what, int err) {
        throw io_error(std::string(op) + ": cannot " + what + " '" + path + "': " + std::strerror(err));
    };
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) fail("open", errno);
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
        const int err = errno;
        std::fclose(f);
        fail("write", err);
    }
    if (std::fclose(f) != 0) fail("close", errno);
}

} // namespace detail

/// Parses an .npy image; `source` names it in error messages.
inline npy_array parse_npy(std::span<const std::byte> bytes, std::string_view source = "<memory>")
{
    const std::string where = "npy: " + std::string(source);
    auto fail = [&](std::string_view expected, std::string_view got) -> void {
        throw format_error(detail::describe(where, expected, got));
    };
    auto u8 = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[k])); };

    static constexpr unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (bytes.size() < 10)
        fail("at least 10 bytes (magic, version, header length)", std::to_string(bytes.size()) + " bytes");
    for (std::size_t k = 0; k < 6; ++k)
        if (u8(k) != magic[k]) fail("the magic string \\x93NUMPY", "other bytes");
    const std::uint32_t major = u8(6), minor = u8(7);
    if (major < 1 || major > 3 || minor != 0)
        fail("format version 1.0, 2.0 or 3.0", std::to_string(major) + "." + std::to_string(minor));
    std::size_t prefix = 10;
    std::uint64_t header_len = u8(8) | (u8(9) << 8);
    if (major >= 2) {
        if (bytes.size() < 12)
            fail("at least 12 bytes for a version 2/3 prefix", std::to_string(bytes.size()) + " bytes");
        header_len |= (static_cast<std::uint64_t>(u8(10)) << 16) | (static_cast<std::uint64_t>(u8(11)) << 24);
        prefix = 12;
    }
    if (header_len > bytes.size() - prefix)
        fail("a header of " + std::to_string(header_len) + " bytes inside the file",
             std::to_string(bytes.size() - prefix) + " bytes after the prefix");

    detail::npy_header_parser p{
        std::string_view(reinterpret_cast<const char*>(bytes.data()) + prefix, static_cast<std::size_t>(header_len)),
        where};
    std::string_view descr;
    bool fortran = false;
    std::vector<std::int64_t> shape;
    bool seen[3] = {false, false, false};
    p.expect('{');
    while (!p.eat('}')) {
        const std::string_view key = p.string();
        p.expect(':');
        int k = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
        if (k < 0) p.fail("one of the keys 'descr', 'fortran_order', 'shape'");
        if (seen[k]) p.fail("each key once");
        seen[k] = true;
        if (k == 0)
            descr = p.string();
        else if (k == 1)
            fortran = p.boolean();
        else
            shape = p.tuple();
        if (!p.eat(',')) {
            p.expect('}');
            break;
        }
    }
    p.skip_ws();
    if (p.i != p.s.size()) p.fail("only whitespace after the dict");
    if (!seen[0] || !seen[1] || !seen[2]) fail("the keys 'descr', 'fortran_order' and 'shape'", "a header missing one");

    const auto d = detail::parse_npy_descr(descr, where);
    const std::size_t elem = dtype_size(d.type);
    std::uint64_t numel = 1;
    bool zero = false, overflow = false;
    for (auto x : shape) {
        const auto ux = static_cast<std::uint64_t>(x);
        if (ux == 0)
            zero = true;
        else if (numel > std::numeric_limits<std::uint64_t>::max() / elem / ux)
            overflow = true;
        else
            numel *= ux;
    }
    const std::uint64_t avail = bytes.size() - prefix - header_len;
    if (zero)
        numel = 0;
    else if (overflow || numel * elem != avail)
        fail(overflow ? std::string("a shape whose byte size fits in 64 bits")
                      : std::to_string(numel * elem) + " bytes of data for shape " + detail::shape_string(shape) +
                            " and descr '" + std::string(descr) + "'",
             std::to_string(avail) + " bytes");
    if (numel == 0 && avail != 0) fail("no data for an empty array", std::to_string(avail) + " bytes");

    npy_array a;
    a.type = d.type;
    a.shape = std::move(shape);
    const auto* data = bytes.data() + prefix + header_len;
    a.data.assign(data, data + avail);
    if (d.big_endian)
        for (std::size_t k = 0; k + elem <= a.data.size(); k += elem) std::reverse(&a.data[k], &a.data[k] + elem);
    if (fortran) a.data = detail::fortran_to_c(a.data, a.shape, elem);
    return a;
}

/// Reads an .npy file. Throws io_error if it cannot be read, format_error if malformed.
inline npy_array read_npy(const std::string& path)
{
    mapped_file f(path);
    return parse_npy(f.bytes(), "'" + path + "'");
}

/// Reads a rank-0, 1 or 2 floating-point .npy file as a float matrix (see to_matrix).
inline matrix<float> load_npy_matrix(const std::string& path)
{
    const auto a = read_npy(path);
    return to_matrix(a.view(), path);
}

/// The .npy image of `a`: version 1.0 (2.0 if the header needs more than 65535 bytes), little-endian,
/// C order, header padded to a multiple of 64 bytes as NumPy does.
inline std::vector<std::byte> serialize_npy(const npy_array& a)
{
    constexpr std::string_view op = "write_npy";
    const std::string descr = detail::npy_descr_of(a.type, op);
    detail::checked_numel(a.view(), op, "npy array");
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
    for (std::size_t k = 0; k < a.shape.size(); ++k) {
        if (k) dict += ", ";
        dict += std::to_string(a.shape[k]);
    }
    dict += a.shape.size() == 1 ? ",), }" : "), }";
    std::size_t prefix = 10;
    std::size_t total = prefix + dict.size() + 1; // + '\n'
    if ((total + 63) / 64 * 64 - prefix > 65535) prefix = 12;
    total = (prefix + dict.size() + 1 + 63) / 64 * 64;
    const std::size_t header_len = total - prefix;
    dict.append(header_len - dict.size() - 1, ' ').push_back('\n');

    std::vector<std::byte> out;
    out.reserve(total + a.data.size());
    for (char c : std::string_view("\x93NUMPY")) out.push_back(static_cast<std::byte>(c));
    out.push_back(static_cast<std::byte>(prefix == 10 ? 1 : 2));
    out.push_back(std::byte{0});
    for (std::size_t k = 0; k < prefix - 8; ++k) out.push_back(static_cast<std::byte>((header_len >> (8 * k)) & 0xffu));
    for (char c : dict) out.push_back(static_cast<std::byte>(c));
    out.insert(out.end(), a.data.begin(), a.data.end());
    return out;
}

/// Writes `a` to `path` (see serialize_npy). Throws io_error if the file cannot be written.
inline void write_npy(const std::string& path, const npy_array& a)
{
    detail::write_whole_file(path, serialize_npy(a), "write_npy");
}

/// Writes a float matrix as a 2-D '<f4' array.
inline void save_npy(const std::string& path, const_matrix_ref<float> m)
{
    npy_array a;
    a.type = dtype::f32;
    a.shape = {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())};
    a.data.resize(static_cast<std::size_t>(m.size()) * sizeof(float));
    for (index_t r = 0; r < m.rows(); ++r)
        if (m.cols() != 0)
            std::memcpy(a.data.data() + static_cast<std::size_t>(r * m.cols()) * sizeof(float), m.row(r).data(),
                        static_cast<std::size_t>(m.cols()) * sizeof(float));
    write_npy(path, a);
}

} // namespace dskit
