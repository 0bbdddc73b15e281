// Owning GPU memory.
//
//   dskit::cuda::device_buffer<float> buf(n);        // cudaMalloc; freed by the destructor
//   buf.upload(host_span);  buf.download(host_span); // sizes must match (shape_error otherwise)
//
//   dskit::cuda::device_matrix<float> d(x);           // rows x cols, row-major, rows packed (ld() == cols())
//   d.download(y);                                    // into any matrix_ref<float> of the same shape
//
// Both types are move-only. Copies take an optional stream and are ordered on it; they return once the
// host side is done (upload: the host data may be reused; download: the host data is filled), because
// host memory from std::vector or Eigen is pageable and an asynchronous copy could outlive it.
// Only the runtime API is used: this header also compiles with g++/clang++ given CUDA's include path.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dskit/backend/cuda/check.cuh"
#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit::cuda {

/// `size()` elements of T in device memory.
template <class T>
class device_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "device_buffer<T>: T must be trivially copyable");

public:
    device_buffer() = default;

    /// Uninitialised storage for `n` elements (no allocation when n == 0).
    explicit device_buffer(std::size_t n) : size_(n)
    {
        if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
            throw value_error(dskit::detail::describe("cuda::device_buffer", "a size whose byte count fits size_t",
                                                      std::to_string(n) + " elements"));
        if (n != 0) DSKIT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), n * sizeof(T)));
    }

    /// Allocates host.size() elements and copies `host` into them.
    explicit device_buffer(std::span<const T> host, cudaStream_t stream = nullptr) : device_buffer(host.size())
    {
        upload(host, stream);
    }

    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;

    device_buffer(device_buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0))
    {
    }

    device_buffer& operator=(device_buffer&& other) noexcept
    {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    ~device_buffer() { release(); }

    /// Device pointer: dereference it only in device code.
    T* data() noexcept { return data_; }
    const T* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
    bool empty() const noexcept { return size_ == 0; }

    /// Copies `host` (exactly size() elements) to the device.
    void upload(std::span<const T> host, cudaStream_t stream = nullptr)
    {
        require_host_size("cuda::device_buffer::upload", host.size());
        if (size_ == 0) return;
        DSKIT_CUDA_CHECK(cudaMemcpyAsync(data_, host.data(), size_bytes(), cudaMemcpyHostToDevice, stream));
        DSKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    /// Copies the device data into `host` (exactly size() elements).
    void download(std::span<T> host, cudaStream_t stream = nullptr) const
    {
        require_host_size("cuda::device_buffer::download", host.size());
        if (size_ == 0) return;
        DSKIT_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, size_bytes(), cudaMemcpyDeviceToHost, stream));
        DSKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    /// Sets every byte to zero (ordered on `stream`, not waited for).
    void fill_zero(cudaStream_t stream = nullptr)
    {
        if (size_ != 0) DSKIT_CUDA_CHECK(cudaMemsetAsync(data_, 0, size_bytes(), stream));
    }

private:
    void release() noexcept
    {
        // No throwing from a destructor: a failure here means the context is already broken, and the
        // call that broke it has reported (or will report) the error.
        if (data_ != nullptr) (void)cudaFree(data_);
        data_ = nullptr;
        size_ = 0;
    }

    void require_host_size(std::string_view op, std::size_t n) const
    {
        if (n != size_)
            dskit::detail::throw_shape(op, "host span of size " + std::to_string(size_), "size " + std::to_string(n));
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// A rows x cols row-major matrix in device memory with packed rows (leading dimension == cols).
template <class T>
class device_matrix {
public:
    device_matrix() = default;

    /// Uninitialised rows x cols matrix.
    device_matrix(index_t rows, index_t cols) : buffer_(checked_size(rows, cols)), rows_(rows), cols_(cols) {}

    /// Copy of a host matrix or view; any row stride is accepted.
    explicit device_matrix(const_matrix_ref<T> host, cudaStream_t stream = nullptr)
        : device_matrix(host.rows(), host.cols())
    {
        upload(host, stream);
    }

    device_matrix(device_matrix&& other) noexcept
        : buffer_(std::move(other.buffer_)), rows_(std::exchange(other.rows_, 0)), cols_(std::exchange(other.cols_, 0))
    {
    }

    device_matrix& operator=(device_matrix&& other) noexcept
    {
        buffer_ = std::move(other.buffer_);
        rows_ = std::exchange(other.rows_, 0);
        cols_ = std::exchange(other.cols_, 0);
        return *this;
    }

    index_t rows() const noexcept { return rows_; }
    index_t cols() const noexcept { return cols_; }
    index_t size() const noexcept { return rows_ * cols_; }
    /// Elements between the starts of consecutive rows.
    index_t ld() const noexcept { return cols_; }
    T* data() noexcept { return buffer_.data(); }
    const T* data() const noexcept { return buffer_.data(); }
    device_buffer<T>& buffer() noexcept { return buffer_; }
    const device_buffer<T>& buffer() const noexcept { return buffer_; }

    /// Copies `host` (same shape, any row stride) to the device.
    void upload(const_matrix_ref<T> host, cudaStream_t stream = nullptr)
    {
        require_shape("cuda::device_matrix::upload", host);
        if (size() == 0) return;
        DSKIT_CUDA_CHECK(cudaMemcpy2DAsync(data(), row_bytes(), host.data(), host_pitch(host), row_bytes(),
                                           static_cast<std::size_t>(rows_), cudaMemcpyHostToDevice, stream));
        DSKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    /// Copies the device data into `host` (same shape, any row stride).
    void download(matrix_ref<T> host, cudaStream_t stream = nullptr) const
    {
        require_shape("cuda::device_matrix::download", host);
        if (size() == 0) return;
        DSKIT_CUDA_CHECK(cudaMemcpy2DAsync(host.data(), host_pitch(host), data(), row_bytes(), row_bytes(),
                                           static_cast<std::size_t>(rows_), cudaMemcpyDeviceToHost, stream));
        DSKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    /// The device data as a new host matrix.
    matrix<T> download(cudaStream_t stream = nullptr) const
    {
        matrix<T> host(rows_, cols_);
        download(host, stream);
        return host;
    }

private:
    static std::size_t checked_size(index_t rows, index_t cols)
    {
        if (rows < 0 || cols < 0)
            dskit::detail::throw_shape("cuda::device_matrix", "non-negative dimensions",
                                       dskit::detail::shape_string({rows, cols}));
        return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    }

    std::size_t row_bytes() const noexcept { return static_cast<std::size_t>(cols_) * sizeof(T); }

    // A one-row view may report any outer stride; its pitch is irrelevant, so use the packed one.
    template <class View>
    std::size_t host_pitch(const View& host) const noexcept
    {
        return rows_ > 1 ? static_cast<std::size_t>(host.outerStride()) * sizeof(T) : row_bytes();
    }

    template <class View>
    void require_shape(std::string_view op, const View& host) const
    {
        if (host.rows() != rows_ || host.cols() != cols_)
            dskit::detail::throw_shape(op, "host matrix of shape " + dskit::detail::shape_string({rows_, cols_}),
                                       dskit::detail::shape_of(host));
    }

    device_buffer<T> buffer_;
    index_t rows_ = 0;
    index_t cols_ = 0;
};

} // namespace dskit::cuda
