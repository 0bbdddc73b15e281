// A read-only view of a whole file's bytes: memory-mapped on POSIX systems (the OS pages weights in
// on demand and shares them between processes), read into memory elsewhere (_WIN32).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "dskit/core/error.hpp"

#if defined(_WIN32)
#include <fstream>
#include <vector>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace dskit {

/// A read-only mapping of a file; move-only, unmapped on destruction. An empty file gives an empty
/// span. The mapped bytes are only as aligned as the page start: data inside may be unaligned.
class mapped_file {
public:
    /// Maps `path`; throws io_error naming the path and the system's reason on failure.
    explicit mapped_file(std::string path) : path_(std::move(path)) { open(); }

    mapped_file(mapped_file&& o) noexcept
        : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0))
#if defined(_WIN32)
          ,
          buffer_(std::move(o.buffer_))
#endif
    {
    }
    mapped_file& operator=(mapped_file&& o) noexcept
    {
        if (this != &o) {
            release();
            path_ = std::move(o.path_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
#if defined(_WIN32)
            buffer_ = std::move(o.buffer_);
#endif
        }
        return *this;
    }
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    ~mapped_file()
    {
        release();
    }

    const std::byte* data() const noexcept
    {
        return data_;
    }
    std::size_t size() const noexcept
    {
        return size_;
    }
    std::span<const std::byte> bytes() const noexcept
    {
        return {data_, size_};
    }
    const std::string& path() const noexcept
    {
        return path_;
    }

private:
    [[noreturn]] void fail(const char* what, int err) const
    {
        throw io_error("mapped_file: cannot " + std::string(what) + " '" + path_ + "': " + std::strerror(err));
    }

#if defined(_WIN32)
    void open()
    {
        std::ifstream in(path_, std::ios::binary | std::ios::ate);
        if (!in) fail("open", errno);
        const auto end = in.tellg();
        if (end < 0) fail("read", errno);
        buffer_.resize(static_cast<std::size_t>(end));
        in.seekg(0);
        if (!buffer_.empty() && !in.read(reinterpret_cast<char*>(buffer_.data()), end)) fail("read", errno);
        data_ = buffer_.data();
        size_ = buffer_.size();
    }
    void release() noexcept
    {
        buffer_.clear();
        data_ = nullptr;
        size_ = 0;
    }
#else
    void open()
    {
        const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("open", errno);
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            const int err = errno;
            ::close(fd);
            fail("stat", err);
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            throw io_error("mapped_file: cannot map '" + path_ + "': expected a regular file, got " +
                           (S_ISDIR(st.st_mode) ? "a directory" : "a special file"));
        }
        if (st.st_size > 0) { // mmap rejects length 0: an empty file stays an empty span
            void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int err = errno;
                ::close(fd);
                fail("map", err);
            }
            data_ = static_cast<const std::byte*>(p);
            size_ = static_cast<std::size_t>(st.st_size);
        }
        ::close(fd); // the mapping keeps the file alive
    }
    void release() noexcept
    {
        if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
        data_ = nullptr;
        size_ = 0;
    }
#endif

    std::string path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
#if defined(_WIN32)
    std::vector<std::byte> buffer_;
#endif
};

} // namespace dskit
