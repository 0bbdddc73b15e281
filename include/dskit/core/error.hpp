// The exceptions dskit throws. Every message names the operation, what was
// expected and what came, so a user can fix the call without a debugger.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dskit {

/// Base of every dskit exception.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A tensor had the wrong shape for the operation (wrong rank, size or a mismatch between two inputs).
class shape_error : public error {
public:
    using error::error;
};

/// A file or buffer is malformed, or holds another dtype than the one requested.
class format_error : public error {
public:
    using error::error;
};

/// A value is outside what the operation accepts (negative epsilon, NaN/Inf input, bad option).
class value_error : public error {
public:
    using error::error;
};

/// A named weight is missing from a weight source.
class missing_weight_error : public error {
public:
    using error::error;
};

/// Opening, reading or writing a file failed at the operating-system level.
class io_error : public error {
public:
    using error::error;
};

/// A CUDA runtime call failed; the message names the call and CUDA's own message.
class cuda_error : public error {
public:
    using error::error;
};

namespace detail {

inline std::string shape_string(std::initializer_list<std::ptrdiff_t> dims)
{
    std::ostringstream s;
    s << '[';
    bool first = true;
    for (auto d : dims) {
        if (!first) s << ", ";
        s << d;
        first = false;
    }
    s << ']';
    return s.str();
}

template <class Dims>
std::string shape_string(const Dims& dims)
{
    std::ostringstream s;
    s << '[';
    bool first = true;
    for (auto d : dims) {
        if (!first) s << ", ";
        s << d;
        first = false;
    }
    s << ']';
    return s.str();
}

/// Builds "op: expected E, got G" messages.
inline std::string describe(std::string_view op, std::string_view expected, std::string_view got)
{
    std::string m;
    m.reserve(op.size() + expected.size() + got.size() + 24);
    m.append(op).append(": expected ").append(expected).append(", got ").append(got);
    return m;
}

[[noreturn]] inline void throw_shape(std::string_view op, std::string_view expected, std::string_view got)
{
    throw shape_error(describe(op, expected, got));
}

} // namespace detail
} // namespace dskit
