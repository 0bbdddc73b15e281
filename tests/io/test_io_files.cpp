// safetensors, .npy, weight_map and mapped_file: fixtures written by the Python `safetensors` package and
// NumPy (tests/reference/make_io_fixtures.py), round trips of every dtype, and malformed inputs.
#include "../test_util.hpp"

#include <dskit/io/mapped_file.hpp>
#include <dskit/io/npy.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>
#include <dskit/io/weight_map.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

using namespace dskit;

namespace {

// The values make_io_fixtures.py stores at C-order flat index k.
float value_f(std::int64_t k)
{
    return static_cast<float>((7 * k) % 11 - 5) / 2.0f;
}
std::int64_t value_i(std::int64_t k)
{
    return (7 * k) % 11 - 5;
}
std::int64_t value_u(std::int64_t k)
{
    return (7 * k) % 11;
}
bool value_b(std::int64_t k)
{
    return k % 3 == 0;
}

void check_values_f(const matrix<float>& m)
{
    for (index_t k = 0; k < m.size(); ++k) CHECK(m.data()[k] == value_f(k));
}

std::vector<std::byte> to_bytes(std::string_view s)
{
    std::vector<std::byte> b(s.size());
    if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
    return b;
}

/// A safetensors image with the given header text (length field = its size) and `data` zero bytes.
std::vector<std::byte> st_image(std::string_view header, std::size_t data = 0)
{
    std::vector<std::byte> b(8);
    std::uint64_t n = header.size();
    for (auto& x : b) {
        x = static_cast<std::byte>(n & 0xff);
        n >>= 8;
    }
    auto h = to_bytes(header);
    b.insert(b.end(), h.begin(), h.end());
    b.resize(b.size() + data, std::byte{0});
    return b;
}

/// An .npy image (version 1.0 unless told) with the given dict text and data.
std::vector<std::byte> npy_image(std::string_view dict, std::size_t data, int version = 1)
{
    std::string s = "\x93NUMPY";
    s += static_cast<char>(version);
    s += '\0';
    const std::size_t len = dict.size() + 1;
    s += static_cast<char>(len & 0xff);
    s += static_cast<char>((len >> 8) & 0xff);
    if (version >= 2) s += std::string(2, '\0');
    s.append(dict);
    s += '\n';
    s.append(data, '\0');
    return to_bytes(s);
}

std::string error_of_st(const std::vector<std::byte>& bytes)
{
    try {
        safetensors_file::from_bytes(bytes);
    } catch (const format_error& e) {
        return e.what();
    }
    return "(no error)";
}

std::string error_of_npy(const std::vector<std::byte>& bytes)
{
    try {
        parse_npy(bytes);
    } catch (const format_error& e) {
        return e.what();
    }
    return "(no error)";
}

bool contains(const std::string& s, std::string_view part)
{
    return s.find(part) != std::string::npos;
}

/// A file path in the temp directory, removed when the object dies.
struct temp_path {
    std::string path;
    explicit temp_path(const std::string& name)
        : path((std::filesystem::temp_directory_path() / ("dskit_io_" + std::to_string(::getpid()) + "_" + name))
                   .string())
    {
    }
    ~temp_path() { std::filesystem::remove(path); }
};

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed)
{
    std::mt19937 gen(seed);
    std::vector<std::byte> b(n);
    for (auto& x : b) x = static_cast<std::byte>(gen() & 0xff);
    return b;
}

} // namespace

// ---------------------------------------------------------------- safetensors: fixture and round trips

TEST_CASE("io: reads a safetensors file written by the Python safetensors package")
{
    const auto f = safetensors_file::open(test::fixture("io/reference.safetensors"));
    CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "dskit fixture"}});
    CHECK(f.size() == 15);
    CHECK(f.names().front() == "bf16");
    CHECK(f.contains("layers.0.weight"));
    CHECK_FALSE(f.contains("missing"));
    CHECK_THROWS_AS(f.at("missing"), missing_weight_error);

    for (const char* name : {"f32", "f64", "f16", "bf16", "f8_e4m3", "f8_e5m2", "layers.0.weight"}) {
        INFO(name);
        const auto t = f.at(name);
        const auto m = to_matrix(t, name);
        if (t.shape.size() == 2) {
            CHECK(m.rows() == t.shape[0]);
            CHECK(m.cols() == t.shape[1]);
        } else {
            CHECK(m.rows() == 1);
            CHECK(m.cols() == t.shape[0]);
        }
        check_values_f(m);
    }
    CHECK(f.at("f16").type == dtype::f16);
    CHECK(f.at("f8_e4m3").type == dtype::f8_e4m3);
    CHECK(to_vector(f.at("f64"), "f64").size() == 3);

    const auto i8 = as_span<std::int8_t>(f.at("i8"), "i8");
    const auto i16 = as_span<std::int16_t>(f.at("i16"), "i16");
    const auto i32 = as_span<std::int32_t>(f.at("i32"), "i32");
    const auto i64 = as_span<std::int64_t>(f.at("i64"), "i64");
    const auto u8 = as_span<std::uint8_t>(f.at("u8"), "u8");
    const auto b = as_span<bool>(f.at("bool"), "bool");
    REQUIRE(i8.size() == 5);
    REQUIRE(i32.size() == 4);
    REQUIRE(b.size() == 3);
    for (std::size_t k = 0; k < i8.size(); ++k) CHECK(i8[k] == value_i(static_cast<std::int64_t>(k)));
    for (std::size_t k = 0; k < i16.size(); ++k) CHECK(i16[k] == value_i(static_cast<std::int64_t>(k)));
    for (std::size_t k = 0; k < i32.size(); ++k) CHECK(i32[k] == value_i(static_cast<std::int64_t>(k)));
    for (std::size_t k = 0; k < i64.size(); ++k) CHECK(i64[k] == value_i(static_cast<std::int64_t>(k)));
    for (std::size_t k = 0; k < u8.size(); ++k) CHECK(u8[k] == value_u(static_cast<std::int64_t>(k)));
    for (std::size_t k = 0; k < b.size(); ++k) CHECK(b[k] == value_b(static_cast<std::int64_t>(k)));

    const auto scalar = to_matrix(f.at("scalar"), "scalar");
    CHECK(scalar.rows() == 1);
    CHECK(scalar.cols() == 1);
    CHECK(scalar(0, 0) == -2.5f);
    const auto empty = to_matrix(f.at("empty"), "empty");
    CHECK(empty.rows() == 0);
    CHECK(empty.cols() == 3);
    CHECK(as_span<float>(f.at("empty"), "empty").empty());
}

TEST_CASE("io: asking for the wrong dtype or rank throws, naming the tensor")
{
    const auto f = safetensors_file::open(test::fixture("io/reference.safetensors"));
    CHECK_THROWS_AS(as_span<float>(f.at("f16"), "f16"), format_error);
    CHECK_THROWS_AS(as_span<float16_t>(f.at("bf16"), "bf16"), format_error);
    CHECK_THROWS_AS(as_span<std::uint8_t>(f.at("i8"), "i8"), format_error);
    CHECK_THROWS_AS(to_matrix(f.at("i32"), "i32"), format_error);
    CHECK_THROWS_AS(to_vector(f.at("f32"), "f32"), shape_error);
    try {
        (void)as_span<float>(f.at("f16"), "model.f16");
        FAIL("no exception");
    } catch (const format_error& e) {
        CHECK(std::string(e.what()) == "as_span: tensor 'model.f16': expected dtype F32, got F16");
    }
    try {
        (void)to_matrix(f.at("u8"), "u8");
        FAIL("no exception");
    } catch (const format_error& e) {
        CHECK(contains(e.what(), "to_matrix: tensor 'u8': expected a floating-point dtype"));
        CHECK(contains(e.what(), "got U8"));
    }

    const std::vector<float> data(24, 1.0f);
    tensor_view rank3{dtype::f32, {2, 3, 4}, std::as_bytes(std::span(data))};
    CHECK_THROWS_AS(to_matrix(rank3, "x"), shape_error);
    tensor_view short_view{dtype::f32, {5, 5}, std::as_bytes(std::span(data))};
    CHECK_THROWS_AS(to_matrix(short_view, "x"), format_error);
    tensor_view negative{dtype::f32, {-1, 4}, std::as_bytes(std::span(data))};
    CHECK_THROWS_AS(to_matrix(negative, "x"), format_error);
}

TEST_CASE("io: to_matrix copies unaligned data; as_span refuses it")
{
    std::vector<std::byte> buf(1 + 6 * sizeof(float));
    for (int k = 0; k < 6; ++k) {
        const float v = value_f(k);
        std::memcpy(buf.data() + 1 + k * sizeof(float), &v, sizeof(float));
    }
    tensor_view t{dtype::f32, {2, 3}, std::span<const std::byte>(buf).subspan(1)};
    check_values_f(to_matrix(t, "unaligned"));
    CHECK_THROWS_AS(as_span<float>(t, "unaligned"), format_error);
}

TEST_CASE("io: safetensors round trip of every dtype, in memory and on disk")
{
    weight_map w;
    unsigned seed = 1;
    std::size_t odd = 3; // odd sizes so that, unsorted, later tensors would be misaligned
    for (auto type : {dtype::f64, dtype::f32, dtype::f16, dtype::bf16, dtype::i64, dtype::i32, dtype::i16, dtype::i8,
                      dtype::u8, dtype::f8_e4m3, dtype::f8_e5m2}) {
        auto bytes = random_bytes(odd * dtype_size(type), seed++);
        w.add_raw(std::string("t.") + std::string(dtype_name(type)), type, {static_cast<std::int64_t>(odd)}, bytes);
        odd += 2;
    }
    w.add_raw("flags", dtype::boolean, {2, 2}, to_bytes(std::string("\1\0\0\1", 4)));
    w.add_raw("scalar", dtype::f32, {}, random_bytes(4, 99));
    w.add_raw("empty", dtype::bf16, {0, 7}, {});
    const auto m = test::random_matrix(3, 5, 7);
    w.add("matrix", m);
    w.add("vector", vector<float>::LinSpaced(4, 0.0f, 3.0f));
    w.add("colmajor", Eigen::MatrixXd::Identity(2, 3) * 2.0 + Eigen::MatrixXd::Constant(2, 3, 0.5));
    const std::map<std::string, std::string> meta{{"format", "pt"}, {"ünï", "cödé"}};

    temp_path tmp("roundtrip.safetensors");
    save_safetensors(tmp.path, w, meta);
    const auto image = serialize_safetensors(w, meta);
    {
        std::ifstream in(tmp.path, std::ios::binary);
        std::vector<char> disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        REQUIRE(disk.size() == image.size());
        CHECK(std::memcmp(disk.data(), image.data(), disk.size()) == 0);
    }
    std::uint64_t n = 0;
    std::memcpy(&n, image.data(), 8);
    CHECK(n % 8 == 0);
    CHECK(static_cast<char>(image[8]) == '{');

    for (auto* f : {new safetensors_file(safetensors_file::open(tmp.path)),
                    new safetensors_file(safetensors_file::from_bytes(image))}) {
        std::unique_ptr<safetensors_file> owner(f);
        CHECK(f->metadata() == meta);
        CHECK(f->names() == w.names());
        for (const auto& name : w.names()) {
            INFO(name);
            const auto a = w.at(name), b = f->at(name);
            CHECK(a.type == b.type);
            CHECK(a.shape == b.shape);
            REQUIRE(a.bytes.size() == b.bytes.size());
            CHECK(std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin()));
            // Written ordered by element size, every tensor is aligned for a zero-copy span.
            CHECK(reinterpret_cast<std::uintptr_t>(b.bytes.data()) % dtype_size(b.type) == 0);
        }
        CHECK(to_matrix(f->at("matrix"), "matrix") == m);
        CHECK(f->at("vector").shape == std::vector<std::int64_t>{4});
        CHECK(to_vector(f->at("vector"), "vector")[3] == 3.0f);
        const auto cm = to_matrix(f->at("colmajor"), "colmajor");
        CHECK(cm(0, 0) == 2.5f);
        CHECK(cm(0, 1) == 0.5f);
        CHECK(cm(1, 1) == 2.5f);
        CHECK(as_span<double>(f->at("t.F64"), "t.F64").size() == 3);
        CHECK(as_span<float8_e5m2_t>(f->at("t.F8_E5M2"), "t.F8_E5M2").size() == 23);
    }

    // A moved file keeps its views valid.
    auto a = safetensors_file::from_bytes(image);
    auto b = std::move(a);
    CHECK(to_matrix(b.at("matrix"), "matrix") == m);

    // Metadata is optional; an empty source gives a valid, empty file.
    const auto bare = safetensors_file::from_bytes(serialize_safetensors(weight_map{}));
    CHECK(bare.size() == 0);
    CHECK(bare.metadata().empty());
}

TEST_CASE("io: converting dtypes through a weight_map matches the scalar conversions")
{
    const auto m = test::random_matrix(4, 6, 3, 10.0f);
    std::vector<std::byte> f16(m.size() * 2), bf16(m.size() * 2), e4(m.size()), e5(m.size());
    for (index_t k = 0; k < m.size(); ++k) {
        const auto h = float16_t(m.data()[k]);
        const auto b = bfloat16_t(m.data()[k]);
        std::memcpy(&f16[static_cast<std::size_t>(k) * 2], &h, 2);
        std::memcpy(&bf16[static_cast<std::size_t>(k) * 2], &b, 2);
        e4[static_cast<std::size_t>(k)] = static_cast<std::byte>(float8_e4m3_t(m.data()[k]).bits);
        e5[static_cast<std::size_t>(k)] = static_cast<std::byte>(float8_e5m2_t(m.data()[k]).bits);
    }
    weight_map w;
    w.add_raw("f16", dtype::f16, {4, 6}, f16).add_raw("bf16", dtype::bf16, {4, 6}, bf16);
    w.add_raw("e4", dtype::f8_e4m3, {4, 6}, e4).add_raw("e5", dtype::f8_e5m2, {4, 6}, e5);
    const auto r16 = to_matrix(w.at("f16"), "f16"), rbf = to_matrix(w.at("bf16"), "bf16");
    const auto r4 = to_matrix(w.at("e4"), "e4"), r5 = to_matrix(w.at("e5"), "e5");
    for (index_t k = 0; k < m.size(); ++k) {
        CHECK(r16.data()[k] == float16_t(m.data()[k]).to_float());
        CHECK(rbf.data()[k] == bfloat16_t(m.data()[k]).to_float());
        CHECK(r4.data()[k] == float8_e4m3_t(m.data()[k]).to_float());
        CHECK(r5.data()[k] == float8_e5m2_t(m.data()[k]).to_float());
    }
    CHECK(test::max_rel_error(r16, m) < 1e-3);
    CHECK(test::max_rel_error(r4, m, 1.0) < 0.07);
}

TEST_CASE("io: weight_map rejects duplicates and byte counts that do not match")
{
    weight_map w;
    w.add("a", matrix<float>::Zero(2, 2));
    CHECK_THROWS_AS(w.add("a", matrix<float>::Zero(2, 2)), value_error);
    CHECK_THROWS_AS(w.add_raw("b", dtype::f32, {3}, random_bytes(8, 1)), format_error);
    CHECK_THROWS_AS(w.add_raw("b", dtype::f32, {-2}, random_bytes(8, 1)), format_error);
    CHECK(w.erase("a"));
    CHECK_FALSE(w.erase("a"));
    CHECK(w.empty());
    weight_map bad;
    bad.add("__metadata__", matrix<float>::Zero(1, 1));
    CHECK_THROWS_AS(serialize_safetensors(bad), value_error);
}

TEST_CASE("io: mapped_file maps files, empty files, and names the path on failure")
{
    temp_path empty("empty.bin");
    {
        std::ofstream(empty.path, std::ios::binary);
    }
    mapped_file e(empty.path);
    CHECK(e.size() == 0);
    CHECK(e.bytes().empty());

    const auto f = mapped_file(test::fixture("io/f4.npy"));
    CHECK(f.size() == std::filesystem::file_size(test::fixture("io/f4.npy")));
    mapped_file moved = std::move(const_cast<mapped_file&>(f));
    CHECK(static_cast<char>(moved.data()[1]) == 'N');

    try {
        mapped_file missing("/nonexistent/dskit.safetensors");
        FAIL("no exception");
    } catch (const io_error& err) {
        CHECK(contains(err.what(), "'/nonexistent/dskit.safetensors'"));
        CHECK(contains(err.what(), "No such file"));
    }
    CHECK_THROWS_AS(mapped_file(std::filesystem::temp_directory_path().string()), io_error);
    CHECK_THROWS_AS(safetensors_file::open("/nonexistent/x.safetensors"), io_error);
    CHECK_THROWS_AS(read_npy("/nonexistent/x.npy"), io_error);
    CHECK_THROWS_AS(safetensors_file::open(empty.path), format_error);
}

// ---------------------------------------------------------------- safetensors: malformed input

TEST_CASE("io: a safetensors file truncated at any byte is a format_error")
{
    weight_map w;
    w.add("b", test::random_matrix(2, 3));
    w.add_raw("a", dtype::u8, {3}, random_bytes(3, 5));
    w.add_raw("c", dtype::bf16, {2}, random_bytes(4, 6));
    const auto image = serialize_safetensors(w, {{"k", "v"}});
    CHECK_NOTHROW(safetensors_file::from_bytes(image));
    for (std::size_t n = 0; n < image.size(); ++n) {
        INFO("truncated to " << n << " of " << image.size() << " bytes");
        CHECK_THROWS_AS(safetensors_file::from_bytes(std::vector<std::byte>(image.begin(), image.begin() + n)),
                        format_error);
    }
    auto longer = image;
    longer.push_back(std::byte{0});
    CHECK_THROWS_AS(safetensors_file::from_bytes(longer), format_error);
}

TEST_CASE("io: malformed safetensors headers give format_error with a precise message")
{
    const std::string ok = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    CHECK_NOTHROW(safetensors_file::from_bytes(st_image("{" + ok + "}", 8)));

    auto expect = [](const std::vector<std::byte>& image, std::initializer_list<std::string_view> parts) {
        const auto msg = error_of_st(image);
        CHECK(msg.rfind("safetensors: <memory>", 0) == 0);
        for (auto p : parts) CHECK_MESSAGE(contains(msg, p), msg);
    };

    // Header length.
    {
        auto image = st_image("{}");
        const std::uint64_t big = 200'000'000;
        std::memcpy(image.data(), &big, 8);
        expect(image, {"at most 100000000", "200000000"});
        const std::uint64_t past = 3;
        std::memcpy(image.data(), &past, 8);
        image.resize(9);
        expect(image, {"header of 3 bytes", "only 1 bytes"});
    }
    expect(std::vector<std::byte>(5), {"at least 8 bytes", "got 5 bytes"});
    expect(st_image(""), {"starting with '{'", "empty header"});
    expect(st_image("[1, 2]"), {"starting with '{'"});
    expect(st_image("{\"a\": "), {"valid JSON"});
    expect(st_image("{\"a\": 1} x"), {"valid JSON"});
    expect(st_image("{\"a\": \"\xff\"}"), {"valid JSON"});

    // Entries.
    expect(st_image(R"({"a":[1]})"), {"tensor 'a'", "an object with dtype"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2]}})", 8), {"tensor 'a'", "'data_offsets' key"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), {"key 'x'"});
    expect(st_image(R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", 8),
           {"tensor 'a'", "known dtype", "\"F12\""});
    expect(st_image(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8), {"dtype as a string"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), {"non-negative", "-2"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8), {"non-negative"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8), {"shape as an array"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", 8), {"[begin, end]"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), {"begin <= end"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}})", 8),
           {"tensor 'a'", "end <= 8", "got 80"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
           {"tensor 'a'", "expected 12 bytes for F32 of shape [3]", "got 8 bytes"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8),
           {"overflows 64 bits"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", 8),
           {"non-negative"});

    // Layout of the data region.
    expect(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                    12),
           {"tensor 'b'", "not overlapping tensor 'a'"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                    12),
           {"tensor 'b'", "starting at offset 4"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), {"starting at offset 0"});
    expect(st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8), {"4 unused bytes"});
    CHECK_NOTHROW(safetensors_file::from_bytes(
        st_image(R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)" + ok + "}", 8)));

    // Duplicates and metadata.
    expect(st_image("{" + ok + "," + ok + "}", 8), {"tensor 'a'", "unique tensor names"});
    expect(st_image(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), {"'dtype' twice"});
    expect(st_image(R"({"__metadata__":{"k":1},)" + ok + "}", 8), {"'__metadata__'", "string value for key 'k'"});
    expect(st_image(R"({"__metadata__":[],)" + ok + "}", 8), {"'__metadata__'", "object of string"});
    CHECK(safetensors_file::from_bytes(st_image(R"({"__metadata__":{"k":"v"},)" + ok + "}", 8)).metadata().at("k") ==
          "v");

    // open() names the file.
    temp_path tmp("bad.safetensors");
    {
        const auto image = st_image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
        std::ofstream out(tmp.path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(image.data()), static_cast<std::streamsize>(image.size()));
    }
    try {
        safetensors_file::open(tmp.path);
        FAIL("no exception");
    } catch (const format_error& e) {
        CHECK(std::string(e.what()).rfind("safetensors: '" + tmp.path + "', tensor 'a': expected 12 bytes", 0) == 0);
    }
}

// ---------------------------------------------------------------- npy

TEST_CASE("io: reads .npy files written by NumPy: every descr, Fortran order, big-endian, versions 2 and 3")
{
    for (const char* name : {"f4.npy", "f4_fortran.npy", "f4_be.npy", "f4_v2.npy", "f4_v3.npy"}) {
        INFO(name);
        const auto a = read_npy(test::fixture(std::string("io/") + name));
        CHECK(a.type == dtype::f32);
        CHECK(a.shape == std::vector<std::int64_t>{3, 4});
        const auto m = load_npy_matrix(test::fixture(std::string("io/") + name));
        CHECK(m.rows() == 3);
        CHECK(m.cols() == 4);
        check_values_f(m);
    }
    {
        const auto a = read_npy(test::fixture("io/f4_fortran_3d.npy"));
        CHECK(a.shape == std::vector<std::int64_t>{2, 3, 4});
        const auto s = as_span<float>(a.view(), "f4_fortran_3d");
        REQUIRE(s.size() == 24);
        for (std::size_t k = 0; k < s.size(); ++k) CHECK(s[k] == value_f(static_cast<std::int64_t>(k)));
    }
    {
        const auto a = read_npy(test::fixture("io/f8_be_fortran.npy"));
        CHECK(a.type == dtype::f64);
        check_values_f(to_matrix(a.view(), "f8_be_fortran"));
    }
    check_values_f(load_npy_matrix(test::fixture("io/f8.npy")));
    check_values_f(load_npy_matrix(test::fixture("io/f2.npy")));
    CHECK(read_npy(test::fixture("io/f2.npy")).shape == std::vector<std::int64_t>{2, 3});

    auto check_ints = [](const char* file, auto tag, auto value) {
        using T = decltype(tag);
        INFO(file);
        const auto a = read_npy(test::fixture(std::string("io/") + file));
        const auto s = as_span<T>(a.view(), file);
        REQUIRE(!s.empty());
        for (std::size_t k = 0; k < s.size(); ++k) CHECK(s[k] == static_cast<T>(value(static_cast<std::int64_t>(k))));
    };
    check_ints("i1.npy", std::int8_t{}, value_i);
    check_ints("i2.npy", std::int16_t{}, value_i);
    check_ints("i4.npy", std::int32_t{}, value_i);
    check_ints("i4_be.npy", std::int32_t{}, value_i);
    check_ints("i8.npy", std::int64_t{}, value_i);
    check_ints("u1.npy", std::uint8_t{}, value_u);
    check_ints("b1.npy", bool{}, value_b);
    CHECK(read_npy(test::fixture("io/i4_be.npy")).shape == std::vector<std::int64_t>{2, 3});

    const auto scalar = read_npy(test::fixture("io/scalar.npy"));
    CHECK(scalar.shape.empty());
    CHECK(to_matrix(scalar.view(), "scalar")(0, 0) == -2.5f);
    const auto empty = read_npy(test::fixture("io/empty.npy"));
    CHECK(empty.shape == std::vector<std::int64_t>{0, 3});
    CHECK(empty.data.empty());
    CHECK_THROWS_AS(load_npy_matrix(test::fixture("io/i4.npy")), format_error);
}

TEST_CASE("io: npy round trip of every NumPy dtype, strided matrices and long headers")
{
    unsigned seed = 10;
    for (auto type : {dtype::f64, dtype::f32, dtype::f16, dtype::i64, dtype::i32, dtype::i16, dtype::i8, dtype::u8}) {
        INFO(dtype_name(type));
        npy_array a{type, {3, 1, 2}, random_bytes(6 * dtype_size(type), seed++)};
        const auto b = parse_npy(serialize_npy(a));
        CHECK(b.type == a.type);
        CHECK(b.shape == a.shape);
        CHECK(b.data == a.data);
    }
    npy_array flags{dtype::boolean, {3}, to_bytes(std::string("\1\0\1", 3))};
    CHECK(parse_npy(serialize_npy(flags)).data == flags.data);
    npy_array scalar{dtype::f32, {}, random_bytes(4, 3)};
    CHECK(parse_npy(serialize_npy(scalar)).shape.empty());
    const auto image = serialize_npy(npy_array{dtype::f32, {5}, random_bytes(20, 4)});
    CHECK((image.size() - 20) % 64 == 0);
    CHECK(static_cast<int>(image[6]) == 1);

    // A header longer than 65535 bytes needs format version 2.0.
    npy_array tall{dtype::u8, std::vector<std::int64_t>(22000, 1), random_bytes(1, 5)};
    const auto v2 = serialize_npy(tall);
    CHECK(static_cast<int>(v2[6]) == 2);
    CHECK(parse_npy(v2).shape.size() == 22000);

    const auto big = test::random_matrix(5, 7, 11);
    temp_path tmp("strided.npy");
    save_npy(tmp.path, big.block(1, 2, 3, 4));
    CHECK(load_npy_matrix(tmp.path) == matrix<float>(big.block(1, 2, 3, 4)));
    write_npy(tmp.path, npy_array{dtype::i32, {2}, random_bytes(8, 6)});
    CHECK(read_npy(tmp.path).type == dtype::i32);

    CHECK_THROWS_AS(serialize_npy(npy_array{dtype::bf16, {1}, random_bytes(2, 1)}), value_error);
    CHECK_THROWS_AS(serialize_npy(npy_array{dtype::f32, {3}, random_bytes(8, 1)}), format_error);
    CHECK_THROWS_AS(write_npy("/nonexistent/dir/x.npy", flags), io_error);
}

TEST_CASE("io: malformed .npy input gives format_error")
{
    const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    CHECK_NOTHROW(parse_npy(npy_image(good, 8)));
    CHECK_NOTHROW(parse_npy(npy_image("{\"descr\":\"<f4\",\"shape\":(2,),\"fortran_order\":True}", 8, 2)));

    // Truncated at every byte of a NumPy-written file.
    mapped_file f(test::fixture("io/f4_fortran.npy"));
    const std::vector<std::byte> file(f.bytes().begin(), f.bytes().end());
    for (std::size_t n = 0; n < file.size(); ++n) {
        INFO("truncated to " << n);
        CHECK_THROWS_AS(parse_npy(std::span(file).first(n)), format_error);
    }

    auto expect = [](const std::vector<std::byte>& image, std::string_view part) {
        const auto msg = error_of_npy(image);
        CHECK(msg.rfind("npy: <memory>: expected", 0) == 0);
        CHECK_MESSAGE(contains(msg, part), msg);
    };
    auto bad_magic = npy_image(good, 8);
    bad_magic[1] = std::byte{'X'};
    expect(bad_magic, "magic");
    expect(npy_image(good, 8, 4), "version 1.0, 2.0 or 3.0");
    expect(npy_image(good, 4), "8 bytes of data for shape [2]");
    expect(npy_image(good, 12), "got 12 bytes");
    expect(npy_image("{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", 8), "descr");
    expect(npy_image("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16), "descr");
    expect(npy_image("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8), "quoted string");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8), "non-negative integer");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8), "','");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8), "'('");
    expect(npy_image("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8), "True or False");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False}", 8), "keys 'descr', 'fortran_order' and 'shape'");
    expect(npy_image("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8), "each key once");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8), "one of the keys");
    expect(npy_image(good + " junk", 8), "only whitespace");
    expect(npy_image("{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8), "'}'");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8),
           "fits in 64 bits");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8),
           "fits in 64 bits");
    expect(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 8), "no data");
}
