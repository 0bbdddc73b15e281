// float16 / bfloat16 / float8 conversions: bit-exact against PyTorch's .to() (fixture made by
// tests/reference/make_io_fixtures.py), plus exhaustive round trips and the saturation rules.
#include "../test_util.hpp"

#include <dskit/core/float16.hpp>
#include <dskit/core/float8.hpp>
#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

using namespace dskit;

namespace {

const safetensors_file& conversions()
{
    static const safetensors_file f = safetensors_file::open(test::fixture("io/conversions.safetensors"));
    return f;
}

template <class T>
std::span<const T> span_of(const char* name)
{
    return as_span<T>(conversions().at(name), name);
}

bool same_float(float a, float b)
{
    return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

template <class F8>
void check_fp8_against_torch(const char* prefix)
{
    const std::string p = prefix;
    const auto table = span_of<float>((p + ".all_bits_to_f32").c_str());
    REQUIRE(table.size() == 256);
    int mismatches = 0;
    for (unsigned b = 0; b < 256; ++b) {
        const float ours = F8::from_bits(static_cast<std::uint8_t>(b)).to_float();
        if (!same_float(ours, table[b])) {
            if (++mismatches < 5) FAIL_CHECK("bits " << b << ": ours " << ours << ", torch " << table[b]);
        }
    }
    CHECK(mismatches == 0);

    const auto in = span_of<float>((p + ".from_f32.input").c_str());
    const auto bits = span_of<std::uint8_t>((p + ".from_f32.bits").c_str());
    REQUIRE(in.size() == bits.size());
    REQUIRE(in.size() > 2000);
    mismatches = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto ours = F8(in[i]).bits;
        if (ours != bits[i]) {
            if (++mismatches < 5)
                FAIL_CHECK("input " << in[i] << ": ours 0x" << std::hex << unsigned(ours) << ", torch 0x"
                                    << unsigned(bits[i]));
        }
    }
    CHECK(mismatches == 0);
}

template <class H>
void check_16_against_torch(const char* prefix)
{
    const std::string p = prefix;
    const auto in = span_of<float>((p + ".from_f32.input").c_str());
    const auto bits = span_of<std::int16_t>((p + ".from_f32.bits").c_str());
    REQUIRE(in.size() == bits.size());
    int mismatches = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto ours = H(in[i]).bits;
        if (ours != static_cast<std::uint16_t>(bits[i])) {
            if (++mismatches < 5)
                FAIL_CHECK("input " << in[i] << ": ours 0x" << std::hex << ours << ", torch 0x"
                                    << static_cast<std::uint16_t>(bits[i]));
        }
    }
    CHECK(mismatches == 0);

    const auto b16 = span_of<std::int16_t>((p + ".to_f32.bits").c_str());
    const auto val = span_of<float>((p + ".to_f32.value").c_str());
    REQUIRE(b16.size() == val.size());
    mismatches = 0;
    for (std::size_t i = 0; i < b16.size(); ++i)
        if (!same_float(H::from_bits(static_cast<std::uint16_t>(b16[i])).to_float(), val[i])) ++mismatches;
    CHECK(mismatches == 0);
}

} // namespace

TEST_CASE("io: float8 e4m3 matches torch.float8_e4m3fn exactly in range")
{
    check_fp8_against_torch<float8_e4m3_t>("e4m3");
}

TEST_CASE("io: float8 e5m2 matches torch.float8_e5m2 exactly in range")
{
    check_fp8_against_torch<float8_e5m2_t>("e5m2");
}

TEST_CASE("io: float16 and bfloat16 match torch exactly")
{
    check_16_against_torch<float16_t>("f16");
    check_16_against_torch<bfloat16_t>("bf16");
}

TEST_CASE("io: every fp8 and 16-bit pattern survives bits -> float -> bits")
{
    for (unsigned b = 0; b < 256; ++b) {
        const auto e4 = float8_e4m3_t::from_bits(static_cast<std::uint8_t>(b));
        const auto e5 = float8_e5m2_t::from_bits(static_cast<std::uint8_t>(b));
        if (!std::isnan(e4.to_float())) CHECK(float8_e4m3_t(e4.to_float()).bits == b);
        if (!std::isnan(e5.to_float())) CHECK(float8_e5m2_t(e5.to_float()).bits == b);
    }
    int bad16 = 0, badbf = 0;
    for (unsigned b = 0; b < 65536; ++b) {
        const auto h = float16_t::from_bits(static_cast<std::uint16_t>(b));
        const auto bf = bfloat16_t::from_bits(static_cast<std::uint16_t>(b));
        if (!std::isnan(h.to_float()) && float16_t(h.to_float()).bits != b) ++bad16;
        if (!std::isnan(bf.to_float()) && bfloat16_t(bf.to_float()).bits != b) ++badbf;
        if (std::isnan(h.to_float())) CHECK(std::isnan(float16_t(h.to_float()).to_float()));
        if (std::isnan(bf.to_float())) CHECK(std::isnan(bfloat16_t(bf.to_float()).to_float()));
    }
    CHECK(bad16 == 0);
    CHECK(badbf == 0);
}

TEST_CASE("io: float8 conversion saturates out of range and keeps NaN")
{
    constexpr float inf = std::numeric_limits<float>::infinity();
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    static_assert(float8_e4m3_t(448.0f).bits == 0x7e);
    static_assert(float8_e5m2_t(57344.0f).bits == 0x7b);

    CHECK(float8_e4m3_t(448.0f).to_float() == 448.0f);
    CHECK(float8_e4m3_t(464.0f).to_float() == 448.0f); // torch: NaN
    CHECK(float8_e4m3_t(1e6f).to_float() == 448.0f);
    CHECK(float8_e4m3_t(-1e30f).to_float() == -448.0f);
    CHECK(float8_e4m3_t(inf).to_float() == 448.0f); // no infinity in e4m3fn
    CHECK(float8_e4m3_t(-inf).to_float() == -448.0f);
    CHECK(std::isnan(float8_e4m3_t(nan).to_float()));
    CHECK(std::isnan(float8_e4m3_t::from_bits(0x7f).to_float()));
    CHECK(std::isnan(float8_e4m3_t::from_bits(0xff).to_float()));

    CHECK(float8_e5m2_t(61440.0f).to_float() == 57344.0f); // torch: inf
    CHECK(float8_e5m2_t(-1e9f).to_float() == -57344.0f);
    CHECK(float8_e5m2_t(inf).to_float() == inf);
    CHECK(float8_e5m2_t(-inf).to_float() == -inf);
    CHECK(std::isnan(float8_e5m2_t(nan).to_float()));
    CHECK(float8_e5m2_t::from_bits(0x7c).to_float() == inf);

    // Smallest subnormals and underflow ties (round half to even -> 0).
    CHECK(float8_e4m3_t::from_bits(0x01).to_float() == std::ldexp(1.0f, -9));
    CHECK(float8_e4m3_t(std::ldexp(1.0f, -10)).bits == 0x00);
    CHECK(float8_e4m3_t(std::ldexp(1.5f, -10)).bits == 0x01);
    CHECK(float8_e5m2_t::from_bits(0x01).to_float() == std::ldexp(1.0f, -16));
    CHECK(float8_e4m3_t(-0.0f).bits == 0x80);
}

TEST_CASE("io: float16 and bfloat16 keep infinities and NaN, overflow to infinity")
{
    constexpr float inf = std::numeric_limits<float>::infinity();
    CHECK(float16_t(65504.0f).bits == 0x7bff);
    CHECK(float16_t(65519.0f).bits == 0x7bff);
    CHECK(float16_t(65520.0f).bits == 0x7c00);
    CHECK(float16_t(-inf).bits == 0xfc00);
    CHECK(std::isnan(float16_t(std::numeric_limits<float>::quiet_NaN()).to_float()));
    CHECK(float16_t::from_bits(0x0001).to_float() == std::ldexp(1.0f, -24));
    CHECK(bfloat16_t(std::numeric_limits<float>::max()).to_float() == inf);
    CHECK(std::isnan(bfloat16_t(std::numeric_limits<float>::quiet_NaN()).to_float()));
    static_assert(float16_t(1.0f).bits == 0x3c00 && bfloat16_t(1.0f).bits == 0x3f80);
}
