#pragma once
// A model's state as PyTorch's state_dict() holds it: names such as
// "features.1.running_mean" mapped to typed arrays. This header is the in-memory
// form only (no dependencies beyond the standard library); io/npz.hpp and
// io/safetensors.hpp read and write it, io/module_state.hpp moves it in and out of
// the module classes.
//
// An Array keeps the values exactly as stored (dtype, shape, little-endian bytes in
// C order), so a file read and written again is unchanged, whatever its dtype.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "normnorm/io/npy.hpp"
#include "normnorm/status.hpp"

namespace normnorm::io {

// The element types both containers share (names as safetensors spells them).
enum class DType { F16, BF16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, BOOL };

inline constexpr std::size_t itemsize_of(DType dtype) {
  switch (dtype) {
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
    case DType::F16: case DType::BF16: case DType::I16: case DType::U16: return 2;
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::F64: case DType::I64: case DType::U64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I8: return "I8";
    case DType::I16: return "I16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::U16: return "U16";
    case DType::U32: return "U32";
    case DType::U64: return "U64";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

inline bool is_floating(DType dtype) {
  return dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F32 || dtype == DType::F64;
}

inline bool dtype_from_name(const std::string& name, DType& dtype) {
  for (DType d : {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I8, DType::I16, DType::I32, DType::I64,
                  DType::U8, DType::U16, DType::U32, DType::U64, DType::BOOL}) {
    if (name == dtype_name(d)) {
      dtype = d;
      return true;
    }
  }
  return false;
}

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// One stored array: dtype, shape (empty for a scalar) and prod(shape) * itemsize
// bytes, little-endian, C order.
struct Array {
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }

  // Element i as a double (exact for every dtype but 64-bit integers above 2^53).
  double value(std::size_t i) const {
    const std::size_t size = itemsize_of(dtype);
    const std::uint64_t bits = detail::load_uint(bytes.data() + i * size, size, true);
    switch (dtype) {
      case DType::F16: return detail::half_bits_to_double(static_cast<std::uint16_t>(bits));
      case DType::BF16: return float_from_bits(static_cast<std::uint32_t>(bits << 16));
      case DType::F32: return float_from_bits(static_cast<std::uint32_t>(bits));
      case DType::F64: {
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
      }
      case DType::I8: case DType::I16: case DType::I32: case DType::I64: {
        const unsigned shift = static_cast<unsigned>(64 - 8 * size);  // sign-extend
        const std::uint64_t shifted = bits << shift;
        std::int64_t v;
        std::memcpy(&v, &shifted, sizeof v);
        return static_cast<double>(v >> shift);
      }
      case DType::U8: case DType::U16: case DType::U32: case DType::U64: return static_cast<double>(bits);
      case DType::BOOL: return bits != 0 ? 1.0 : 0.0;
    }
    return 0.0;
  }

  // All values converted to T (float or double).
  template <class T>
  std::vector<T> values() const {
    std::vector<T> out(static_cast<std::size_t>(numel()));
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(value(i));
    return out;
  }

  // An F32 (float) or F64 (double) array holding a copy of data[0 .. prod(shape)).
  template <class T>
  static Array from_values(const T* data, std::vector<std::int64_t> shape) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "from_values takes float or double");
    Array array;
    array.dtype = std::is_same_v<T, double> ? DType::F64 : DType::F32;
    array.shape = std::move(shape);
    const auto n = static_cast<std::size_t>(array.numel());
    array.bytes.resize(n * sizeof(T));
    for (std::size_t i = 0; i < n; ++i) {
      std::conditional_t<std::is_same_v<T, double>, std::uint64_t, std::uint32_t> bits;
      std::memcpy(&bits, data + i, sizeof bits);
      detail::store_uint_le(array.bytes.data() + i * sizeof(T), bits, sizeof(T));
    }
    return array;
  }

  // A 0-d I64 array (PyTorch's num_batches_tracked).
  static Array scalar_i64(std::int64_t v) {
    Array array;
    array.dtype = DType::I64;
    array.bytes.resize(8);
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    detail::store_uint_le(array.bytes.data(), bits, 8);
    return array;
  }

 private:
  static double float_from_bits(std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return static_cast<double>(f);
  }
};

// name -> Array, in name order (both writers emit that order, so output is
// deterministic). `metadata` is safetensors' optional "__metadata__" string map
// (npz has no place for it).
struct StateDict {
  std::map<std::string, Array> arrays;
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& name) const { return arrays.count(name) != 0; }
  const Array* find(const std::string& name) const {
    const auto it = arrays.find(name);
    return it == arrays.end() ? nullptr : &it->second;
  }
  void insert(std::string name, Array array) { arrays.insert_or_assign(std::move(name), std::move(array)); }
  std::size_t size() const { return arrays.size(); }
};

namespace detail {

inline Status io_error(const std::string& what, const std::string& problem) {
  return Status::invalid_argument("normnorm::io: " + what + ": " + problem);
}

// Checks that an array's byte count matches its dtype and shape (no overflow).
inline Status check_array(const std::string& name, const Array& array) {
  std::int64_t count = 0;
  NORMNORM_RETURN_IF_ERROR(checked_element_count(array.shape, itemsize_of(array.dtype), name, count));
  if (array.bytes.size() != static_cast<std::size_t>(count) * itemsize_of(array.dtype))
    return io_error("'" + name + "'", "holds " + std::to_string(array.bytes.size()) + " bytes, but " +
                                          dtype_name(array.dtype) + " " + shape_string(array.shape) + " needs " +
                                          std::to_string(static_cast<std::size_t>(count) * itemsize_of(array.dtype)));
  return {};
}

}  // namespace detail
}  // namespace normnorm::io
