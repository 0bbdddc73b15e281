// uninitialized_buffer<T>: an uninitialised, 64-byte-aligned scratch array for kernels that fill it completely
// (a std::vector would first zero all of it: one more pass over attention's 16+ MiB of packed K/V).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace dskit::detail {

template <class T>
class uninitialized_buffer {
public:
    uninitialized_buffer() = default;
    explicit uninitialized_buffer(std::size_t count)
    {
        if (count == 0) return;
        const std::size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
        p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
        if (p_ == nullptr) throw std::bad_alloc();
    }
    uninitialized_buffer(const uninitialized_buffer&) = delete;
    uninitialized_buffer& operator=(const uninitialized_buffer&) = delete;
    uninitialized_buffer(uninitialized_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    uninitialized_buffer& operator=(uninitialized_buffer&& o) noexcept
    {
        std::swap(p_, o.p_);
        return *this;
    }
    ~uninitialized_buffer() { std::free(p_); }

    T* get() noexcept { return p_; }
    const T* get() const noexcept { return p_; }

private:
    T* p_ = nullptr;
};

} // namespace dskit::detail
