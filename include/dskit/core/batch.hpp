// A batch of sequences of different lengths, packed without padding.
//
// All tokens live in one [total_tokens, features] matrix; `offsets()` holds
// where each sequence starts (like cu_seqlens in FlashAttention's varlen API).
// Row-wise layers run on the packed matrix at once; sequence-wise layers
// (attention, sequence gates) run on each `operator[](i)` view.
#pragma once

#include <initializer_list>
#include <vector>

#include "dskit/core/matrix.hpp"

namespace dskit {

template <class T = float>
class batch {
public:
    batch() = default;

    /// An empty batch whose sequences will have `features` columns.
    explicit batch(index_t features) : data_(0, features), offsets_{0} {}

    /// Packs copies of `sequences`; all must have the same number of columns.
    explicit batch(const std::vector<matrix<T>>& sequences) { assign(sequences.begin(), sequences.end()); }
    batch(std::initializer_list<matrix<T>> sequences) { assign(sequences.begin(), sequences.end()); }

    /// Adopts a packed matrix and the start offsets of its sequences (offsets.front() == 0,
    /// non-decreasing, offsets.back() == packed.rows()).
    batch(matrix<T> packed, std::vector<index_t> offsets) : data_(std::move(packed)), offsets_(std::move(offsets))
    {
        if (offsets_.empty() || offsets_.front() != 0 || offsets_.back() != data_.rows())
            throw shape_error(detail::describe("batch", "offsets from 0 to " + std::to_string(data_.rows()),
                                               offsets_.empty() ? std::string("no offsets")
                                                                : "offsets from " + std::to_string(offsets_.front()) +
                                                                      " to " + std::to_string(offsets_.back())));
        for (std::size_t i = 1; i < offsets_.size(); ++i)
            if (offsets_[i] < offsets_[i - 1])
                throw shape_error(detail::describe("batch", "non-decreasing offsets",
                                                   "offset " + std::to_string(offsets_[i]) + " after " +
                                                       std::to_string(offsets_[i - 1])));
    }

    /// Appends a copy of one sequence.
    template <class Derived>
    void push_back(const Eigen::MatrixBase<Derived>& sequence)
    {
        if (offsets_.empty()) {
            data_.resize(0, sequence.cols());
            offsets_ = {0};
        }
        detail::require_cols("batch::push_back", "a sequence", sequence, data_.cols());
        const index_t start = data_.rows();
        data_.conservativeResize(start + sequence.rows(), Eigen::NoChange);
        data_.middleRows(start, sequence.rows()) = sequence;
        offsets_.push_back(data_.rows());
    }

    /// Number of sequences.
    std::size_t size() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
    bool empty() const noexcept { return size() == 0; }
    index_t features() const noexcept { return data_.cols(); }
    index_t total_tokens() const noexcept { return data_.rows(); }
    index_t length(std::size_t i) const { return offsets_.at(i + 1) - offsets_.at(i); }

    /// View of sequence i: [length(i), features].
    auto operator[](std::size_t i) { return data_.middleRows(offsets_.at(i), length(i)); }
    auto operator[](std::size_t i) const { return data_.middleRows(offsets_.at(i), length(i)); }

    /// The packed [total_tokens, features] matrix.
    matrix<T>& packed() noexcept { return data_; }
    const matrix<T>& packed() const noexcept { return data_; }
    const std::vector<index_t>& offsets() const noexcept { return offsets_; }

private:
    template <class It>
    void assign(It first, It last)
    {
        offsets_ = {0};
        if (first == last) return;
        const index_t cols = first->cols();
        index_t rows = 0;
        for (It it = first; it != last; ++it) {
            detail::require_cols("batch", "every sequence", *it, cols);
            rows += it->rows();
        }
        data_.resize(rows, cols);
        index_t at = 0;
        for (It it = first; it != last; ++it) {
            data_.middleRows(at, it->rows()) = *it;
            at += it->rows();
            offsets_.push_back(at);
        }
    }

    matrix<T> data_;
    std::vector<index_t> offsets_;
};

} // namespace dskit
