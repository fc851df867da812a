#pragma once
// StateDict <-> .npz: what numpy.savez(path, **state_dict) writes (and
// numpy.savez_compressed): a zip archive with one member "<name>.npy" per array,
// stored or deflated. Part of the optional normnorm::io component: needs libzip
// (Debian: libzip-dev).
//
// Reading accepts every .npy dtype StateDict has except BF16 (NumPy has none),
// either byte order and Fortran order (both converted to little-endian C order).
// Every failure is a Status naming the archive and the member; the throwing forms
// raise std::runtime_error.

#include <zip.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "normnorm/io/npy.hpp"
#include "normnorm/io/state_dict.hpp"
#include "normnorm/status.hpp"

namespace normnorm::io {
namespace detail {

inline bool dtype_from_npy(const NpyDtype& npy, DType& dtype) {
  switch (npy.kind) {
    case NpyKind::Float:
      dtype = npy.itemsize == 2 ? DType::F16 : npy.itemsize == 4 ? DType::F32 : DType::F64;
      return true;
    case NpyKind::Int:
      dtype = npy.itemsize == 1 ? DType::I8 : npy.itemsize == 2 ? DType::I16 : npy.itemsize == 4 ? DType::I32 : DType::I64;
      return true;
    case NpyKind::UInt:
      dtype = npy.itemsize == 1 ? DType::U8 : npy.itemsize == 2 ? DType::U16 : npy.itemsize == 4 ? DType::U32 : DType::U64;
      return true;
    case NpyKind::Bool:
      dtype = DType::BOOL;
      return true;
  }
  return false;
}

inline const char* npy_descr_of(DType dtype) {
  switch (dtype) {
    case DType::F16: return "<f2";
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::I8: return "|i1";
    case DType::I16: return "<i2";
    case DType::I32: return "<i4";
    case DType::I64: return "<i8";
    case DType::U8: return "|u1";
    case DType::U16: return "<u2";
    case DType::U32: return "<u4";
    case DType::U64: return "<u8";
    case DType::BOOL: return "|b1";
    case DType::BF16: return nullptr;  // NumPy has no bfloat16
  }
  return nullptr;
}

// One .npy image -> Array (little-endian, C order).
inline Status array_from_npy(const std::vector<unsigned char>& image, const std::string& name, Array& array) {
  NpyHeader header;
  NORMNORM_RETURN_IF_ERROR(parse_npy_header(image.data(), image.size(), name, header));
  if (!dtype_from_npy(header.dtype, array.dtype)) return npy_error(name, "unsupported dtype");
  array.shape = header.shape;
  const std::size_t size = header.dtype.itemsize;
  const auto count = static_cast<std::size_t>(header.count);
  array.bytes.assign(count * size, 0);
  // Element k of the C-order result comes from element source[k] of the image.
  std::vector<std::size_t> source(count);
  for (std::size_t k = 0; k < count; ++k) source[k] = k;
  if (header.fortran_order && header.shape.size() > 1) {
    std::vector<double> index(count);
    for (std::size_t k = 0; k < count; ++k) index[k] = static_cast<double>(k);
    const std::vector<double> reordered = fortran_to_c_order(index, header.shape);
    for (std::size_t k = 0; k < count; ++k) source[k] = static_cast<std::size_t>(reordered[k]);
  }
  const unsigned char* data = image.data() + header.data_offset;
  for (std::size_t k = 0; k < count; ++k) {
    const unsigned char* from = data + source[k] * size;
    unsigned char* to = array.bytes.data() + k * size;
    for (std::size_t b = 0; b < size; ++b) to[b] = header.dtype.little ? from[b] : from[size - 1 - b];
  }
  return {};
}

struct ZipArchiveCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

// Reads every member of an open archive.
inline Status read_npz_members(zip_t* archive, const std::string& where, StateDict& out) {
  const zip_int64_t entries = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    const char* raw_name = zip_get_name(archive, index, ZIP_FL_ENC_GUESS);
    if (raw_name == nullptr) return io_error(where, "member " + std::to_string(i) + " has no readable name");
    const std::string member = raw_name;
    const std::string suffix = ".npy";
    if (member.size() <= suffix.size() || member.compare(member.size() - suffix.size(), suffix.size(), suffix) != 0)
      return io_error(where, "member '" + member + "' is not a .npy file");
    const std::string name = member.substr(0, member.size() - suffix.size());
    if (out.contains(name)) return io_error(where, "duplicate member '" + member + "'");

    std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(archive, index, 0));
    if (!file) return io_error(where + " member '" + member + "'", zip_strerror(archive));
    std::vector<unsigned char> image;
    unsigned char buffer[1 << 16];
    for (;;) {
      const zip_int64_t got = zip_fread(file.get(), buffer, sizeof buffer);
      if (got < 0) return io_error(where + " member '" + member + "'", zip_file_strerror(file.get()));
      if (got == 0) break;
      image.insert(image.end(), buffer, buffer + got);
    }
    Array array;
    NORMNORM_RETURN_IF_ERROR(array_from_npy(image, where + ":" + member, array));
    out.insert(name, std::move(array));
  }
  return {};
}

inline Status zip_open_error(const std::string& where, int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  const std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return io_error(where, "not a readable zip archive (" + message + ")");
}

}  // namespace detail

// Reads an .npz file into `out` (replacing its contents; unchanged on failure).
inline Status try_read_npz(const std::string& path, StateDict& out) {
  const std::string where = "npz '" + path + "'";
  int code = 0;
  std::unique_ptr<zip_t, detail::ZipArchiveCloser> archive(zip_open(path.c_str(), ZIP_RDONLY, &code));
  if (!archive) {
    if (code == ZIP_ER_NOENT || code == ZIP_ER_OPEN) return detail::io_error(where, "cannot open file");
    return detail::zip_open_error(where, code);
  }
  StateDict result;
  NORMNORM_RETURN_IF_ERROR(detail::read_npz_members(archive.get(), where, result));
  out = std::move(result);
  return {};
}

// Reads an in-memory .npz image (e.g. a file received over the network).
inline Status try_parse_npz(const unsigned char* bytes, std::size_t length, StateDict& out,
                            const std::string& name_for_errors = "<memory>") {
  const std::string where = "npz '" + name_for_errors + "'";
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes, length, 0, &error);
  if (source == nullptr) {
    zip_error_fini(&error);
    return detail::io_error(where, "cannot wrap the buffer");
  }
  std::unique_ptr<zip_t, detail::ZipArchiveCloser> archive(zip_open_from_source(source, ZIP_RDONLY, &error));
  if (!archive) {
    zip_source_free(source);
    const int code = zip_error_code_zip(&error);
    zip_error_fini(&error);
    return detail::zip_open_error(where, code);
  }
  zip_error_fini(&error);
  StateDict result;
  NORMNORM_RETURN_IF_ERROR(detail::read_npz_members(archive.get(), where, result));
  out = std::move(result);
  return {};
}

// Writes `dict` as an .npz file numpy.load reads: members stored (numpy.savez) or,
// with `compress`, deflated (numpy.savez_compressed). BF16 arrays are an error
// (NumPy has no bfloat16: convert them to F32 first). Metadata is not written.
inline Status try_write_npz(const std::string& path, const StateDict& dict, bool compress = false) {
  const std::string where = "npz '" + path + "'";
  // Build every member first: nothing is created on a bad input.
  std::vector<std::vector<unsigned char>> images;
  for (const auto& [name, array] : dict.arrays) {
    NORMNORM_RETURN_IF_ERROR(detail::check_array(name, array));
    const char* descr = detail::npy_descr_of(array.dtype);
    if (descr == nullptr)
      return detail::io_error(where, "'" + name + "' is " + dtype_name(array.dtype) + ", which .npy cannot hold");
    std::vector<unsigned char> image;
    NORMNORM_RETURN_IF_ERROR(detail::npy_header_bytes(descr, array.shape, image));
    image.insert(image.end(), array.bytes.begin(), array.bytes.end());
    images.push_back(std::move(image));
  }
  if (dict.arrays.empty()) {
    // libzip writes no file for an archive without members; numpy.savez() writes the
    // bare end-of-central-directory record: so do we.
    std::vector<unsigned char> empty(22, 0);
    empty[0] = 'P', empty[1] = 'K', empty[2] = 5, empty[3] = 6;
    const Status written = detail::write_file_bytes(path, empty);
    return written.ok() ? Status{} : detail::io_error(where, "cannot open file for writing");
  }
  int code = 0;
  std::unique_ptr<zip_t, detail::ZipArchiveCloser> archive(zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
  if (!archive) return detail::io_error(where, "cannot open file for writing");
  std::size_t k = 0;
  for (const auto& entry : dict.arrays) {
    const std::vector<unsigned char>& image = images[k++];
    zip_source_t* source = zip_source_buffer(archive.get(), image.data(), image.size(), 0);
    if (source == nullptr) return detail::io_error(where, zip_strerror(archive.get()));
    const zip_int64_t index =
        zip_file_add(archive.get(), (entry.first + ".npy").c_str(), source, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (index < 0) {
      zip_source_free(source);
      return detail::io_error(where, zip_strerror(archive.get()));
    }
    if (zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(index),
                                 compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0)
      return detail::io_error(where, zip_strerror(archive.get()));
  }
  // zip_close reads the buffers (kept alive in `images`) and writes the file.
  if (zip_close(archive.get()) != 0) return detail::io_error(where, std::string("write failed: ") + zip_strerror(archive.get()));
  archive.release();  // closed
  return {};
}

inline StateDict read_npz(const std::string& path) {
  StateDict dict;
  detail::raise_io_if_error(try_read_npz(path, dict));
  return dict;
}

inline void write_npz(const std::string& path, const StateDict& dict, bool compress = false) {
  detail::raise_io_if_error(try_write_npz(path, dict, compress));
}

}  // namespace normnorm::io
