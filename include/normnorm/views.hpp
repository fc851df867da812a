#pragma once
// Non-owning views the raw-pointer API takes: a pointer and how many values it holds.

#include "normnorm/config.hpp"

namespace normnorm {

template <class T>
struct Span {
  T* data = nullptr;
  index_t size = 0;

  T& operator[](index_t i) const { return data[i]; }
  T* begin() const { return data; }
  T* end() const { return data + size; }
};

}  // namespace normnorm
