// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Layout of a .npy file:
//   bytes 0..5   magic "\x93NUMPY"
//   byte  6, 7   major, minor format version (1.0, 2.0 or 3.0)
//   then         header length HLEN, little-endian: uint16 for 1.0,
//                uint32 for 2.0 and 3.0
//   then         HLEN bytes of header: a Python dict literal such as
//                {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
//                padded with spaces and terminated by '\n' (ASCII/latin-1
//                for 1.0 and 2.0, UTF-8 for 3.0)
//   then         the raw array data, prod(shape) * itemsize bytes.
//
// The reader is written for untrusted input: every access is bounds checked
// against the buffer, dimensions must be non-negative and their product must
// not overflow. Every failure is a Status (try_* functions, usable without
// exceptions) whose message names the file (or buffer) and the problem; the
// throwing forms turn it into std::runtime_error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <ios>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "normnorm/config.hpp"
#include "normnorm/status.hpp"

namespace normnorm::io {

struct NpyArray {
    std::vector<std::int64_t> shape;  // row-major (C order) shape; empty for a 0-d scalar
    std::vector<double> data;         // values converted to double, C order

    // Product of the shape (1 for a 0-d scalar, 0 if any dimension is 0). For a
    // shape no array can have (a negative dimension, or a product beyond int64)
    // it returns -1 rather than overflow; arrays read by parse_npy never do.
    std::int64_t size() const {
        for (std::int64_t d : shape) {
            if (d < 0) return -1;
            if (d == 0) return 0;
        }
        std::int64_t n = 1;
        for (std::int64_t d : shape) {
            if (n > std::numeric_limits<std::int64_t>::max() / d) return -1;
            n *= d;
        }
        return n;
    }
};

namespace detail {

inline constexpr unsigned char kNpyMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
inline constexpr std::size_t kNpyMagicSize = sizeof(kNpyMagic);
// NumPy itself refuses arrays with more dimensions than this (NPY_MAXDIMS).
inline constexpr std::size_t kNpyMaxDims = 64;
// Header blocks are padded so that the data starts on this alignment.
inline constexpr std::size_t kNpyHeaderAlignment = 64;
// The largest header try_read_npy accepts (NumPy writes a few hundred bytes; its own
// reader refuses more than 10,000 by default).
inline constexpr std::uint64_t kNpyMaxHeaderBytes = 1 << 20;

inline Status npy_error(const std::string& name, const std::string& problem) {
    return Status::invalid_argument("normnorm::io: npy '" + name + "': " + problem);
}

// The throwing io functions' error: std::runtime_error. Without exceptions only
// the try_* forms are safe to call; the throwing ones print and abort.
[[noreturn]] inline void raise_io(const Status& status) {
#if NORMNORM_EXCEPTIONS
    throw std::runtime_error(status.message());
#else
    std::fprintf(stderr, "%s\n", status.message().c_str());
    std::abort();
#endif
}

inline void raise_io_if_error(const Status& status) {
    if (!status.ok()) raise_io(status);
}

inline bool host_is_little_endian() noexcept {
    const std::uint16_t probe = 1;
    unsigned char first = 0;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

// Assembles an unsigned integer of `nbytes` bytes stored in the given order,
// independently of the host byte order.
inline std::uint64_t load_uint(const unsigned char* p, std::size_t nbytes, bool little) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < nbytes; ++i) {
        const std::size_t idx = little ? nbytes - 1 - i : i;
        v = (v << 8) | p[idx];
    }
    return v;
}

inline void store_uint_le(unsigned char* p, std::uint64_t v, std::size_t nbytes) noexcept {
    for (std::size_t i = 0; i < nbytes; ++i) {
        p[i] = static_cast<unsigned char>(v & 0xFFu);
        v >>= 8;
    }
}

// IEEE 754 binary16 -> double (exact: every half value is a double).
inline double half_bits_to_double(std::uint16_t h) noexcept {
    const bool negative = (h & 0x8000u) != 0;
    const unsigned exponent = (h >> 10) & 0x1Fu;
    const unsigned mantissa = h & 0x3FFu;
    double magnitude;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24.
        magnitude = static_cast<double>(mantissa) * (1.0 / 16777216.0);
    } else if (exponent == 0x1F) {
        magnitude = mantissa == 0 ? std::numeric_limits<double>::infinity()
                                  : std::numeric_limits<double>::quiet_NaN();
    } else {
        // (1024 + mantissa) * 2^(exponent - 25), built without <cmath>.
        double scale = 1.0;
        int e = static_cast<int>(exponent) - 25;
        for (; e > 0; --e) scale *= 2.0;
        for (; e < 0; ++e) scale *= 0.5;
        magnitude = static_cast<double>(1024u + mantissa) * scale;
    }
    return negative ? -magnitude : magnitude;
}

enum class NpyKind { Float, Int, UInt, Bool };

struct NpyDtype {
    NpyKind kind = NpyKind::Float;
    std::size_t itemsize = 0;
    bool little = true;  // byte order of the stored data
};

// Interprets a descr string such as '<f8', '|u1', '>i4' or '=f4'.
inline Status parse_descr(const std::string& descr, const std::string& name, NpyDtype& dt) {
    const Status unsupported = npy_error(name, "unsupported dtype '" + descr +
                                                   "' (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)");
    if (descr.size() < 2 || descr.size() > 3) return unsupported;

    std::size_t pos = 0;
    char order = '=';
    if (descr[0] == '<' || descr[0] == '>' || descr[0] == '=' || descr[0] == '|') {
        order = descr[0];
        pos = 1;
    }
    if (descr.size() - pos != 2) return unsupported;
    const char kind_char = descr[pos];
    const char size_char = descr[pos + 1];
    if (size_char < '1' || size_char > '9') return unsupported;

    dt.itemsize = static_cast<std::size_t>(size_char - '0');
    const bool int_size = dt.itemsize == 1 || dt.itemsize == 2 || dt.itemsize == 4 || dt.itemsize == 8;
    switch (kind_char) {
        case 'f':
            dt.kind = NpyKind::Float;
            if (dt.itemsize != 2 && dt.itemsize != 4 && dt.itemsize != 8) return unsupported;
            break;
        case 'i':
            dt.kind = NpyKind::Int;
            if (!int_size) return unsupported;
            break;
        case 'u':
            dt.kind = NpyKind::UInt;
            if (!int_size) return unsupported;
            break;
        case 'b':
            dt.kind = NpyKind::Bool;
            if (dt.itemsize != 1) return unsupported;
            break;
        default:
            return unsupported;
    }
    // '|' means "byte order not applicable" and is only meaningful for
    // single-byte types; a multi-byte type must state its byte order.
    if (order == '|' && dt.itemsize != 1) return unsupported;
    if (order == '<') {
        dt.little = true;
    } else if (order == '>') {
        dt.little = false;
    } else {
        dt.little = host_is_little_endian();
    }
    return {};
}

inline double decode_element(const unsigned char* p, const NpyDtype& dt) noexcept {
    const std::uint64_t bits = load_uint(p, dt.itemsize, dt.little);
    switch (dt.kind) {
        case NpyKind::Float:
            if (dt.itemsize == 8) {
                double d;
                std::memcpy(&d, &bits, sizeof d);
                return d;
            }
            if (dt.itemsize == 4) {
                const auto b32 = static_cast<std::uint32_t>(bits);
                float f;
                std::memcpy(&f, &b32, sizeof f);
                return static_cast<double>(f);
            }
            return half_bits_to_double(static_cast<std::uint16_t>(bits));
        case NpyKind::Int: {
            // Sign-extend from itemsize bytes.
            const unsigned shift = static_cast<unsigned>(64 - 8 * dt.itemsize);
            const std::uint64_t shifted = bits << shift;
            std::int64_t v;
            std::memcpy(&v, &shifted, sizeof v);
            return static_cast<double>(v >> shift);
        }
        case NpyKind::UInt:
            return static_cast<double>(bits);
        case NpyKind::Bool:
            return bits != 0 ? 1.0 : 0.0;
    }
    return 0.0;
}

// Minimal parser for the Python dict literal in a .npy header.  It accepts
// exactly what NumPy writes (and the small variations other writers use:
// either quote style, any key order, optional trailing commas, Python 2
// "5L" integers) and nothing more.
class NpyHeaderParser {
public:
    NpyHeaderParser(const unsigned char* begin, std::size_t length, const std::string& name)
        : p_(begin), n_(length), name_(name) {}

    struct Result {
        std::string descr;
        bool fortran_order = false;
        std::vector<std::int64_t> shape;
    };

    Status parse(Result& r) {
        bool have_descr = false, have_order = false, have_shape = false;
        skip_ws();
        NORMNORM_RETURN_IF_ERROR(expect('{'));
        for (;;) {
            skip_ws();
            if (peek() == '}') {
                ++i_;
                break;
            }
            std::string key;
            NORMNORM_RETURN_IF_ERROR(parse_string(key));
            skip_ws();
            NORMNORM_RETURN_IF_ERROR(expect(':'));
            skip_ws();
            if (key == "descr") {
                if (have_descr) return malformed("duplicate key 'descr'");
                have_descr = true;
                if (peek() == '[' || peek() == '{' || peek() == '(')
                    return npy_error(name_, "unsupported dtype (structured/record dtypes are not supported)");
                NORMNORM_RETURN_IF_ERROR(parse_string(r.descr));
            } else if (key == "fortran_order") {
                if (have_order) return malformed("duplicate key 'fortran_order'");
                have_order = true;
                NORMNORM_RETURN_IF_ERROR(parse_bool(r.fortran_order));
            } else if (key == "shape") {
                if (have_shape) return malformed("duplicate key 'shape'");
                have_shape = true;
                NORMNORM_RETURN_IF_ERROR(parse_shape(r.shape));
            } else {
                return malformed("unexpected key '" + key + "'");
            }
            skip_ws();
            const int c = peek();
            if (c == ',') {
                ++i_;
            } else if (c == '}') {
                ++i_;
                break;
            } else {
                return malformed("expected ',' or '}' after value");
            }
        }
        // Only padding may follow the dict.
        skip_ws();
        if (i_ != n_) return malformed("unexpected data after the header dict");
        if (!have_descr) return malformed("missing key 'descr'");
        if (!have_order) return malformed("missing key 'fortran_order'");
        if (!have_shape) return malformed("missing key 'shape'");
        return {};
    }

private:
    Status malformed(const std::string& what) const {
        return npy_error(name_, "malformed header: " + what + " (at header offset " + std::to_string(i_) + ")");
    }

    // Returns the current byte, or -1 at the end of the header.
    int peek() const { return i_ < n_ ? static_cast<int>(p_[i_]) : -1; }

    void skip_ws() {
        while (i_ < n_) {
            const unsigned char c = p_[i_];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                ++i_;
            } else {
                break;
            }
        }
    }

    Status expect(char c) {
        if (peek() != static_cast<unsigned char>(c)) return malformed(std::string("expected '") + c + "'");
        ++i_;
        return {};
    }

    bool consume_word(const char* word) {
        const std::size_t len = std::strlen(word);
        if (n_ - i_ < len || std::memcmp(p_ + i_, word, len) != 0) return false;
        // The word must not continue as a longer identifier ("Truex").
        if (i_ + len < n_) {
            const unsigned char next = p_[i_ + len];
            if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
                (next >= '0' && next <= '9') || next == '_')
                return false;
        }
        i_ += len;
        return true;
    }

    Status parse_string(std::string& s) {
        const int quote = peek();
        if (quote != '\'' && quote != '"') return malformed("expected a quoted string");
        ++i_;
        s.clear();
        for (;;) {
            const int c = peek();
            if (c < 0) return malformed("unterminated string");
            ++i_;
            if (c == quote) break;
            if (c == '\\') return malformed("escape sequences are not supported in strings");
            if (c == '\n' || c == '\r') return malformed("newline inside string");
            s.push_back(static_cast<char>(c));
        }
        return {};
    }

    Status parse_bool(bool& value) {
        if (consume_word("True")) {
            value = true;
            return {};
        }
        if (consume_word("False")) {
            value = false;
            return {};
        }
        return malformed("'fortran_order' must be True or False");
    }

    Status parse_dim(std::int64_t& v) {
        if (peek() == '-') return npy_error(name_, "negative dimension in shape");
        if (peek() < '0' || peek() > '9') return malformed("expected a non-negative integer dimension");
        v = 0;
        while (peek() >= '0' && peek() <= '9') {
            const int digit = peek() - '0';
            if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10)
                return npy_error(name_, "dimension too large in shape");
            v = v * 10 + digit;
            ++i_;
        }
        if (peek() == 'L' || peek() == 'l') ++i_;  // Python 2 long suffix
        return {};
    }

    Status parse_shape(std::vector<std::int64_t>& shape) {
        if (peek() != '(') return malformed("'shape' must be a tuple");
        ++i_;
        shape.clear();
        skip_ws();
        if (peek() == ')') {
            ++i_;
            return {};  // 0-d
        }
        for (;;) {
            skip_ws();
            if (shape.size() >= kNpyMaxDims)
                return npy_error(name_, "too many dimensions (limit " + std::to_string(kNpyMaxDims) + ")");
            std::int64_t dim = 0;
            NORMNORM_RETURN_IF_ERROR(parse_dim(dim));
            shape.push_back(dim);
            skip_ws();
            const int c = peek();
            if (c == ',') {
                ++i_;
                skip_ws();
                if (peek() == ')') {
                    ++i_;
                    return {};
                }
            } else if (c == ')') {
                // "(5)" is an int in Python, not a tuple.
                if (shape.size() == 1) return malformed("'shape' must be a tuple (missing ',' in 1-tuple)");
                ++i_;
                return {};
            } else {
                return malformed("expected ',' or ')' in shape");
            }
        }
    }

    const unsigned char* p_;
    std::size_t n_;
    std::size_t i_ = 0;
    const std::string& name_;
};

// Checked product of dimensions; fails if the element count or the byte count
// (count * itemsize) does not fit in int64.
inline Status checked_element_count(const std::vector<std::int64_t>& shape, std::size_t itemsize,
                                    const std::string& name, std::int64_t& count) {
    count = 1;
    for (std::int64_t d : shape) {
        if (d < 0) return npy_error(name, "negative dimension in shape");
        if (d == 0) count = 0;
    }
    if (count == 0) return {};
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    for (std::int64_t d : shape) {
        if (count > max / d) return npy_error(name, "shape product overflows");
        count *= d;
    }
    if (itemsize != 0 && count > max / static_cast<std::int64_t>(itemsize))
        return npy_error(name, "array byte size overflows");
    return {};
}

// Reorders column-major (Fortran) data of the given shape into row-major order.
inline std::vector<double> fortran_to_c_order(const std::vector<double>& f,
                                              const std::vector<std::int64_t>& shape) {
    const std::size_t ndim = shape.size();
    if (ndim <= 1 || f.empty()) return f;
    // Column-major strides (in elements).
    std::vector<std::int64_t> fstride(ndim);
    std::int64_t s = 1;
    for (std::size_t k = 0; k < ndim; ++k) {
        fstride[k] = s;
        s *= shape[k];
    }
    std::vector<double> c(f.size());
    std::vector<std::int64_t> idx(ndim, 0);
    std::int64_t foff = 0;
    for (std::size_t out = 0; out < c.size(); ++out) {
        c[out] = f[static_cast<std::size_t>(foff)];
        // Advance the row-major multi-index (last axis fastest), tracking the
        // column-major offset incrementally.
        for (std::size_t k = ndim; k-- > 0;) {
            ++idx[k];
            foff += fstride[k];
            if (idx[k] < shape[k]) break;
            foff -= idx[k] * fstride[k];
            idx[k] = 0;
        }
    }
    return c;
}

template <class T>
constexpr void check_float_type() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "normnorm::io npy functions support only float and double");
}


// What a .npy header says, and where its data is in the image.
struct NpyHeader {
    std::string descr;
    NpyDtype dtype;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
    std::int64_t count = 0;       // number of elements
    std::size_t data_offset = 0;  // from the start of the image
};

// Parses and checks the header of an in-memory .npy image; on success the image
// holds at least count * itemsize bytes from data_offset on.
inline Status parse_npy_header(const unsigned char* bytes, std::size_t length, const std::string& name,
                               NpyHeader& out) {
    if (bytes == nullptr && length != 0) return npy_error(name, "null buffer");
    if (length < kNpyMagicSize || std::memcmp(bytes, kNpyMagic, kNpyMagicSize) != 0)
        return npy_error(name, "bad magic (not a .npy file)");
    if (length < kNpyMagicSize + 2) return npy_error(name, "truncated header (missing version)");
    const unsigned major = bytes[kNpyMagicSize];
    const unsigned minor = bytes[kNpyMagicSize + 1];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return npy_error(name, "unsupported format version " + std::to_string(major) + "." + std::to_string(minor));
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    const std::size_t prefix = kNpyMagicSize + 2 + len_bytes;
    if (length < prefix) return npy_error(name, "truncated header (missing header length)");
    const std::uint64_t header_len = load_uint(bytes + kNpyMagicSize + 2, len_bytes, true);
    if (header_len > length - prefix)
        return npy_error(name, "truncated header (header length " + std::to_string(header_len) + " exceeds the " +
                                   std::to_string(length - prefix) + " bytes available)");
    const auto hlen = static_cast<std::size_t>(header_len);

    NpyHeaderParser parser(bytes + prefix, hlen, name);
    NpyHeaderParser::Result header;
    NORMNORM_RETURN_IF_ERROR(parser.parse(header));
    NORMNORM_RETURN_IF_ERROR(parse_descr(header.descr, name, out.dtype));
    NORMNORM_RETURN_IF_ERROR(checked_element_count(header.shape, out.dtype.itemsize, name, out.count));

    out.data_offset = prefix + hlen;
    const std::size_t available = length - out.data_offset;
    const std::uint64_t needed = static_cast<std::uint64_t>(out.count) * static_cast<std::uint64_t>(out.dtype.itemsize);
    if (needed > available)
        return npy_error(name, "truncated data (need " + std::to_string(needed) + " bytes, have " +
                                   std::to_string(available) + ")");
    // Trailing bytes after the array are ignored, as NumPy does.
    out.descr = std::move(header.descr);
    out.fortran_order = header.fortran_order;
    out.shape = std::move(header.shape);
    return {};
}

// The header block of a C-order .npy v1.0 image with this descr and shape: magic,
// version, length and the dict, padded so the data starts at a multiple of 64.
inline Status npy_header_bytes(const std::string& descr, const std::vector<std::int64_t>& shape,
                               std::vector<unsigned char>& out) {
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
    for (std::size_t k = 0; k < shape.size(); ++k) {
        if (k > 0) dict += ", ";
        dict += std::to_string(shape[k]);
    }
    if (shape.size() == 1) dict += ",";
    dict += "), }";

    // Pad with spaces and a final '\n' so magic + version + length + header
    // is a multiple of the alignment.  At most 64 dims of <= 19 digits keeps
    // the header far below the 65535-byte limit of format 1.0.
    const std::size_t prefix = kNpyMagicSize + 2 + 2;
    std::size_t total = prefix + dict.size() + 1;
    total = (total + kNpyHeaderAlignment - 1) / kNpyHeaderAlignment * kNpyHeaderAlignment;
    const std::size_t hlen = total - prefix;
    if (hlen > 0xFFFFu) return npy_error("<serialize>", "header too long");
    dict.append(hlen - dict.size() - 1, ' ');
    dict.push_back('\n');

    out.assign(total, 0);
    std::memcpy(out.data(), kNpyMagic, kNpyMagicSize);
    out[kNpyMagicSize] = 1;
    out[kNpyMagicSize + 1] = 0;
    store_uint_le(out.data() + kNpyMagicSize + 2, hlen, 2);
    std::memcpy(out.data() + prefix, dict.data(), dict.size());
    return {};
}

inline Status read_file_bytes(const std::string& path, std::vector<unsigned char>& bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::invalid_argument("normnorm::io: '" + path + "': cannot open file");
    bytes.clear();
    char buf[1 << 16];
    for (;;) {
        in.read(buf, sizeof buf);
        const std::streamsize got = in.gcount();
        if (got > 0) bytes.insert(bytes.end(), buf, buf + got);
        if (!in) break;
    }
    if (in.bad()) return Status::invalid_argument("normnorm::io: '" + path + "': read error");
    return {};
}

inline Status write_file_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return Status::invalid_argument("normnorm::io: '" + path + "': cannot open file for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) return Status::invalid_argument("normnorm::io: '" + path + "': write failed");
    return {};
}

}  // namespace detail

// Parses an in-memory .npy image into `out`.  `name_for_errors` is used in messages.
inline Status try_parse_npy(const unsigned char* bytes, std::size_t length, NpyArray& out,
                            const std::string& name_for_errors = "<memory>") {
    using namespace detail;
    NpyHeader header;
    NORMNORM_RETURN_IF_ERROR(parse_npy_header(bytes, length, name_for_errors, header));
    out.shape = header.shape;
    out.data.resize(static_cast<std::size_t>(header.count));
    const unsigned char* p = bytes + header.data_offset;
    for (std::size_t i = 0; i < out.data.size(); ++i, p += header.dtype.itemsize)
        out.data[i] = decode_element(p, header.dtype);
    if (header.fortran_order) out.data = fortran_to_c_order(out.data, out.shape);
    return {};
}

// Throwing form of try_parse_npy: std::runtime_error on any problem.
inline NpyArray parse_npy(const unsigned char* bytes, std::size_t length,
                          const std::string& name_for_errors = "<memory>") {
    NpyArray out;
    detail::raise_io_if_error(try_parse_npy(bytes, length, out, name_for_errors));
    return out;
}

// Reads a .npy file into `out`; a failure names the file. Reads only what the
// header announces, after checking the magic and bounding the header, so a stream
// that is not a .npy file (e.g. /dev/zero) fails at its first bytes.
inline Status try_read_npy(const std::string& path, NpyArray& out) {
    using namespace detail;
    std::ifstream in(path, std::ios::binary);
    if (!in) return npy_error(path, "cannot open file");
    std::vector<unsigned char> bytes;
    // Appends up to `count` bytes; false at the end of the stream.
    auto read_more = [&](std::uint64_t count) {
        char buf[1 << 16];
        while (count > 0) {
            const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(count, sizeof buf));
            in.read(buf, want);
            const std::streamsize got = in.gcount();
            bytes.insert(bytes.end(), buf, buf + got);
            count -= static_cast<std::uint64_t>(got);
            if (got < want) return false;
        }
        return true;
    };
    read_more(kNpyMagicSize + 2);
    if (bytes.size() < kNpyMagicSize || std::memcmp(bytes.data(), kNpyMagic, kNpyMagicSize) != 0)
        return npy_error(path, "bad magic (not a .npy file)");
    const std::size_t len_bytes = bytes.size() > kNpyMagicSize && bytes[kNpyMagicSize] == 1 ? 2 : 4;
    if (read_more(len_bytes)) {
        const std::uint64_t header_len = load_uint(bytes.data() + kNpyMagicSize + 2, len_bytes, true);
        if (header_len > kNpyMaxHeaderBytes)
            return npy_error(path, "header length " + std::to_string(header_len) + " exceeds the " +
                                       std::to_string(kNpyMaxHeaderBytes) + "-byte limit");
        if (read_more(header_len)) {
            // The data size the header announces (try_parse_npy checks the whole image again).
            NpyHeaderParser::Result header;
            NpyDtype dtype;
            std::int64_t count = 0;
            NpyHeaderParser parser(bytes.data() + kNpyMagicSize + 2 + len_bytes, static_cast<std::size_t>(header_len), path);
            if (parser.parse(header).ok() && parse_descr(header.descr, path, dtype).ok() &&
                checked_element_count(header.shape, dtype.itemsize, path, count).ok())
                read_more(static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(dtype.itemsize));
        }
    }
    if (in.bad()) return npy_error(path, "read error");
    return try_parse_npy(bytes.data(), bytes.size(), out, path);
}

// Reads a .npy file.  Throws std::runtime_error naming the file on failure.
inline NpyArray read_npy(const std::string& path) {
    NpyArray out;
    detail::raise_io_if_error(try_read_npy(path, out));
    return out;
}

// Reads a .npy file and converts the values to T (float or double).
template <class T>
Status try_read_npy_as(const std::string& path, std::vector<T>& values,
                       std::vector<std::int64_t>* shape_out = nullptr) {
    detail::check_float_type<T>();
    NpyArray a;
    NORMNORM_RETURN_IF_ERROR(try_read_npy(path, a));
    if (shape_out != nullptr) *shape_out = a.shape;
    if constexpr (std::is_same_v<T, double>) {
        values = std::move(a.data);
    } else {
        values.assign(a.data.begin(), a.data.end());
    }
    return {};
}

template <class T>
std::vector<T> read_npy_as(const std::string& path, std::vector<std::int64_t>* shape_out = nullptr) {
    std::vector<T> values;
    detail::raise_io_if_error(try_read_npy_as(path, values, shape_out));
    return values;
}

// Serializes a C-order array to a .npy v1.0 image with dtype '<f8' (double)
// or '<f4' (float).  `data` must hold prod(shape) values (may be null if that
// is 0).
template <class T>
Status try_serialize_npy(const T* data, const std::vector<std::int64_t>& shape, std::vector<unsigned char>& out) {
    detail::check_float_type<T>();
    using namespace detail;
    const std::string name = "<serialize>";
    if (shape.size() > kNpyMaxDims)
        return npy_error(name, "too many dimensions (limit " + std::to_string(kNpyMaxDims) + ")");
    std::int64_t count = 0;
    NORMNORM_RETURN_IF_ERROR(checked_element_count(shape, sizeof(T), name, count));
    if (count > 0 && data == nullptr) return npy_error(name, "null data pointer for a non-empty array");

    NORMNORM_RETURN_IF_ERROR(npy_header_bytes(std::is_same_v<T, double> ? "<f8" : "<f4", shape, out));
    const std::size_t total = out.size();
    const auto n = static_cast<std::size_t>(count);
    out.resize(total + n * sizeof(T));
    unsigned char* p = out.data() + total;
    for (std::size_t i = 0; i < n; ++i, p += sizeof(T)) {
        if constexpr (std::is_same_v<T, double>) {
            std::uint64_t bits;
            std::memcpy(&bits, data + i, sizeof bits);
            store_uint_le(p, bits, 8);
        } else {
            std::uint32_t bits;
            std::memcpy(&bits, data + i, sizeof bits);
            store_uint_le(p, bits, 4);
        }
    }
    return {};
}

// Throwing form: std::runtime_error for an invalid shape.
template <class T>
std::vector<unsigned char> serialize_npy(const T* data, const std::vector<std::int64_t>& shape) {
    std::vector<unsigned char> out;
    detail::raise_io_if_error(try_serialize_npy(data, shape, out));
    return out;
}

// Writes a C-order .npy v1.0 file ('<f8' for double, '<f4' for float).
template <class T>
Status try_write_npy(const std::string& path, const T* data, const std::vector<std::int64_t>& shape) {
    std::vector<unsigned char> bytes;
    NORMNORM_RETURN_IF_ERROR(try_serialize_npy(data, shape, bytes));
    const Status written = detail::write_file_bytes(path, bytes);
    if (!written.ok())
        return detail::npy_error(path, written.message().find("cannot open") != std::string::npos
                                           ? "cannot open file for writing" : "write failed");
    return {};
}

// Throwing form: std::runtime_error on invalid shape or I/O failure.
template <class T>
void write_npy(const std::string& path, const T* data, const std::vector<std::int64_t>& shape) {
    detail::raise_io_if_error(try_write_npy(path, data, shape));
}

}  // namespace normnorm::io
