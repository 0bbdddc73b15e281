// libFuzzer target for the safetensors parser (built and run by scripts/fuzz.sh).
// Any input may be rejected with a dskit::error; anything else (another exception, a crash, a sanitizer
// report, a valid file that does not survive a write/read round trip) is a finding.
#include <dskit/io/safetensors.hpp>
#include <dskit/io/tensor_convert.hpp>
#include <dskit/io/weight_map.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

namespace {

volatile float sink = 0;

template <class T>
void touch_span(const dskit::tensor_view& t, const std::string& name)
{
    try {
        for (const auto& v : dskit::as_span<T>(t, name)) sink = sink + static_cast<float>(v);
    } catch (const dskit::error&) {
    }
}

void touch(const dskit::tensor_view& t, const std::string& name)
{
    unsigned sum = 0;
    for (auto b : t.bytes) sum += static_cast<unsigned>(b);
    sink = sink + static_cast<float>(sum);
    try {
        const auto m = dskit::to_matrix(t, name);
        if (m.size() > 0) sink = sink + m.data()[m.size() - 1];
    } catch (const dskit::error&) {
    }
    switch (t.type) {
    case dskit::dtype::f64:
        return touch_span<double>(t, name);
    case dskit::dtype::f32:
        return touch_span<float>(t, name);
    case dskit::dtype::f16:
        return touch_span<dskit::float16_t>(t, name);
    case dskit::dtype::bf16:
        return touch_span<dskit::bfloat16_t>(t, name);
    case dskit::dtype::i64:
        return touch_span<std::int64_t>(t, name);
    case dskit::dtype::i32:
        return touch_span<std::int32_t>(t, name);
    case dskit::dtype::i16:
        return touch_span<std::int16_t>(t, name);
    case dskit::dtype::i8:
        return touch_span<std::int8_t>(t, name);
    case dskit::dtype::u8:
        return touch_span<std::uint8_t>(t, name);
    case dskit::dtype::boolean:
        return touch_span<bool>(t, name);
    case dskit::dtype::f8_e4m3:
        return touch_span<dskit::float8_e4m3_t>(t, name);
    case dskit::dtype::f8_e5m2:
        return touch_span<dskit::float8_e5m2_t>(t, name);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::vector<std::byte> bytes(size);
    if (size != 0) std::memcpy(bytes.data(), data, size);
    std::optional<dskit::safetensors_file> file;
    try {
        file.emplace(dskit::safetensors_file::from_bytes(std::move(bytes)));
    } catch (const dskit::error&) {
        return 0; // rejected cleanly
    }
    const auto names = file->names();
    for (const auto& name : names) touch(file->at(name), name);

    // A file we accepted must be written back and read again unchanged (not caught: a throw is a finding).
    const auto again = dskit::safetensors_file::from_bytes(dskit::serialize_safetensors(*file, file->metadata()));
    if (again.names() != names || again.metadata() != file->metadata()) std::abort();
    for (const auto& name : names) {
        const auto a = file->at(name), b = again.at(name);
        if (a.type != b.type || a.shape != b.shape || a.bytes.size() != b.bytes.size() ||
            (a.bytes.size() != 0 && std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) != 0))
            std::abort();
    }
    return 0;
}
