#pragma once
// StateDict <-> .safetensors. Part of the optional normnorm::io component: needs
// nlohmann/json (Debian: nlohmann-json3-dev).
//
// The format: 8 bytes, a little-endian uint64 N; N bytes of UTF-8 JSON (an object,
// possibly padded with spaces); then the data. The JSON maps each tensor's name to
// {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} (byte offsets
// into the data, end exclusive), plus an optional "__metadata__" object of
// string -> string. Data is little-endian, C order.
//
// The reader takes untrusted input: the header is parsed without exceptions and
// every field's type, every offset and every size is checked against the file
// before anything is copied; a failure is a Status naming the file and the entry.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normnorm/io/npy.hpp"
#include "normnorm/io/state_dict.hpp"
#include "normnorm/status.hpp"

namespace normnorm::io {
namespace detail {

// The reference implementation refuses headers above 100 MB; so do we.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100u * 1000u * 1000u;

inline Status safetensors_entry(const std::string& where, const std::string& name, const nlohmann::json& info,
                                const unsigned char* data, std::size_t data_size, Array& array) {
  const std::string what = where + " entry '" + name + "'";
  if (!info.is_object()) return io_error(what, "is not an object");
  const auto dtype = info.find("dtype");
  const auto shape = info.find("shape");
  const auto offsets = info.find("data_offsets");
  if (dtype == info.end() || !dtype->is_string()) return io_error(what, "has no string \"dtype\"");
  if (shape == info.end() || !shape->is_array()) return io_error(what, "has no array \"shape\"");
  if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2)
    return io_error(what, "has no two-element \"data_offsets\"");
  const std::string& dtype_text = dtype->get_ref<const std::string&>();
  if (!dtype_from_name(dtype_text, array.dtype)) return io_error(what, "unsupported dtype '" + dtype_text + "'");
  array.shape.clear();
  for (const auto& dim : *shape) {
    if (!dim.is_number_unsigned()) return io_error(what, "shape holds a value that is not a non-negative integer");
    const auto d = dim.get<std::uint64_t>();
    if (d > static_cast<std::uint64_t>(INT64_MAX)) return io_error(what, "dimension too large");
    array.shape.push_back(static_cast<std::int64_t>(d));
  }
  if (array.shape.size() > kNpyMaxDims) return io_error(what, "too many dimensions");
  std::int64_t count = 0;
  NORMNORM_RETURN_IF_ERROR(checked_element_count(array.shape, itemsize_of(array.dtype), what, count));
  if (!(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    return io_error(what, "data_offsets are not non-negative integers");
  const auto begin = (*offsets)[0].get<std::uint64_t>();
  const auto end = (*offsets)[1].get<std::uint64_t>();
  if (begin > end || end > data_size)
    return io_error(what, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                              ") fall outside the " + std::to_string(data_size) + " data bytes");
  const std::uint64_t needed = static_cast<std::uint64_t>(count) * itemsize_of(array.dtype);
  if (end - begin != needed)
    return io_error(what, "data_offsets span " + std::to_string(end - begin) + " bytes, but " + dtype_text + " " +
                              shape_string(array.shape) + " needs " + std::to_string(needed));
  array.bytes.assign(data + begin, data + end);
  return {};
}

}  // namespace detail

// Parses an in-memory .safetensors image into `out` (unchanged on failure).
inline Status try_parse_safetensors(const unsigned char* bytes, std::size_t length, StateDict& out,
                                    const std::string& name_for_errors = "<memory>") {
  using detail::io_error;
  const std::string where = "safetensors '" + name_for_errors + "'";
  if (bytes == nullptr && length != 0) return io_error(where, "null buffer");
  if (length < 8) return io_error(where, "too short for the 8-byte header length");
  const std::uint64_t header_size = detail::load_uint(bytes, 8, true);
  if (header_size > detail::kSafetensorsMaxHeader) return io_error(where, "header length " + std::to_string(header_size) + " is above 100 MB");
  if (header_size > length - 8)
    return io_error(where, "header length " + std::to_string(header_size) + " exceeds the " +
                               std::to_string(length - 8) + " bytes after it");
  const unsigned char* header_begin = bytes + 8;
  const unsigned char* header_end = header_begin + header_size;
  if (header_size == 0 || header_begin[0] != '{') return io_error(where, "header does not start with '{'");
  // allow_exceptions = false: a malformed header is a discarded value, not a throw.
  const nlohmann::json header = nlohmann::json::parse(header_begin, header_end, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return io_error(where, "header is not a valid JSON object");

  const unsigned char* data = header_end;
  const std::size_t data_size = length - 8 - static_cast<std::size_t>(header_size);
  StateDict result;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object()) return io_error(where, "__metadata__ is not an object");
      for (const auto& meta : item.value().items()) {
        if (!meta.value().is_string()) return io_error(where, "__metadata__ value '" + meta.key() + "' is not a string");
        result.metadata[meta.key()] = meta.value().get<std::string>();
      }
      continue;
    }
    Array array;
    NORMNORM_RETURN_IF_ERROR(detail::safetensors_entry(where, item.key(), item.value(), data, data_size, array));
    result.insert(item.key(), std::move(array));
  }
  out = std::move(result);
  return {};
}

inline Status try_read_safetensors(const std::string& path, StateDict& out) {
  std::vector<unsigned char> bytes;
  NORMNORM_RETURN_IF_ERROR(detail::read_file_bytes(path, bytes));
  return try_parse_safetensors(bytes.data(), bytes.size(), out, path);
}

// The .safetensors image of `dict`: arrays in name order, contiguous, the header
// padded with spaces to a multiple of 8 bytes (as the reference writer does).
inline Status try_serialize_safetensors(const StateDict& dict, std::vector<unsigned char>& out) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, array] : dict.arrays) {
    NORMNORM_RETURN_IF_ERROR(detail::check_array(name, array));
    if (name == "__metadata__") return detail::io_error("safetensors", "an array may not be named __metadata__");
    const std::uint64_t end = offset + array.bytes.size();
    header[name] = {{"dtype", dtype_name(array.dtype)}, {"shape", array.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  if (!dict.metadata.empty()) header["__metadata__"] = dict.metadata;
  // replace: an invalid UTF-8 name becomes U+FFFD instead of throwing.
  std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');
  out.assign(8, 0);
  detail::store_uint_le(out.data(), text.size(), 8);
  out.insert(out.end(), text.begin(), text.end());
  for (const auto& entry : dict.arrays) out.insert(out.end(), entry.second.bytes.begin(), entry.second.bytes.end());
  return {};
}

inline Status try_write_safetensors(const std::string& path, const StateDict& dict) {
  std::vector<unsigned char> bytes;
  NORMNORM_RETURN_IF_ERROR(try_serialize_safetensors(dict, bytes));
  return detail::write_file_bytes(path, bytes);
}

inline StateDict read_safetensors(const std::string& path) {
  StateDict dict;
  detail::raise_io_if_error(try_read_safetensors(path, dict));
  return dict;
}

inline void write_safetensors(const std::string& path, const StateDict& dict) {
  detail::raise_io_if_error(try_write_safetensors(path, dict));
}

}  // namespace normnorm::io
