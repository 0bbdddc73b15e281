// libFuzzer target for the .npy parser (built and run by scripts/fuzz.sh).
// Any input may be rejected with a dskit::error; anything else (another exception, a crash, a sanitizer
// report, a valid array that does not survive a write/read round trip) is a finding.
#include <dskit/io/npy.hpp>
#include <dskit/io/tensor_convert.hpp>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>

namespace {

volatile float sink = 0;

template <class T>
void touch_span(const dskit::tensor_view& t)
{
    try {
        for (const auto& v : dskit::as_span<T>(t, "npy")) sink = sink + static_cast<float>(v);
    } catch (const dskit::error&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::optional<dskit::npy_array> a;
    try {
        a.emplace(dskit::parse_npy(std::as_bytes(std::span(data, size))));
    } catch (const dskit::error&) {
        return 0; // rejected cleanly
    }
    const auto v = a->view();
    try {
        const auto m = dskit::to_matrix(v, "npy");
        if (m.size() > 0) sink = sink + m.data()[m.size() - 1];
    } catch (const dskit::error&) {
    }
    switch (v.type) {
    case dskit::dtype::f64:
        touch_span<double>(v);
        break;
    case dskit::dtype::f32:
        touch_span<float>(v);
        break;
    case dskit::dtype::f16:
        touch_span<dskit::float16_t>(v);
        break;
    case dskit::dtype::i64:
        touch_span<std::int64_t>(v);
        break;
    case dskit::dtype::i32:
        touch_span<std::int32_t>(v);
        break;
    case dskit::dtype::i16:
        touch_span<std::int16_t>(v);
        break;
    case dskit::dtype::i8:
        touch_span<std::int8_t>(v);
        break;
    case dskit::dtype::u8:
        touch_span<std::uint8_t>(v);
        break;
    case dskit::dtype::boolean:
        touch_span<bool>(v);
        break;
    default:
        std::abort(); // parse_npy only produces NumPy dtypes
    }

    // An array we accepted must be written back and read again unchanged (not caught: a throw is a finding).
    const auto b = dskit::parse_npy(dskit::serialize_npy(*a));
    if (b.type != a->type || b.shape != a->shape || b.data != a->data) std::abort();
    return 0;
}
