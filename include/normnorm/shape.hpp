#pragma once
// A small fixed-capacity shape: no heap allocation, so the inference path stays
// allocation-free even though every call carries one.

#include <array>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "normnorm/config.hpp"
#include "normnorm/status.hpp"

namespace normnorm {

class Shape {
 public:
  static constexpr int max_rank = 8;

  Shape() = default;
  Shape(std::initializer_list<index_t> dims) {
    if (dims.size() > static_cast<std::size_t>(max_rank))
      detail::raise(Status::invalid_argument("normnorm: Shape supports at most 8 dimensions"));
    for (index_t d : dims) dims_[static_cast<std::size_t>(rank_++)] = d;
  }
  template <class Int>
  Shape(const Int* dims, int rank) {
    if (rank < 0 || rank > max_rank)
      detail::raise(Status::invalid_argument("normnorm: Shape rank must be in [0, 8], got " + std::to_string(rank)));
    for (int i = 0; i < rank; ++i) dims_[static_cast<std::size_t>(rank_++)] = static_cast<index_t>(dims[i]);
  }

  int rank() const { return rank_; }
  index_t operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  index_t& operator[](int axis) { return dims_[static_cast<std::size_t>(axis)]; }
  const index_t* begin() const { return dims_.data(); }
  const index_t* end() const { return dims_.data() + rank_; }

  bool operator==(const Shape& other) const {
    if (rank_ != other.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[static_cast<std::size_t>(i)] != other.dims_[static_cast<std::size_t>(i)]) return false;
    return true;
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }

  // "(16, 5)": for error messages.
  std::string to_string() const {
    std::string text = "(";
    for (int i = 0; i < rank_; ++i) text += (i ? ", " : "") + std::to_string(dims_[static_cast<std::size_t>(i)]);
    return text + (rank_ == 1 ? ",)" : ")");
  }

 private:
  std::array<index_t, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace normnorm
