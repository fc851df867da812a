// Tests for normnorm/io/npy.hpp: round trips, the real golden files, all
// supported dtypes and header variants, and rejection of malformed input.
#include <normnorm/io/npy.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef NORMNORM_TEST_DATA_DIR
#define NORMNORM_TEST_DATA_DIR "tests/data"
#endif

namespace {

using normnorm::io::NpyArray;
using normnorm::io::parse_npy;
using normnorm::io::read_npy;
using normnorm::io::read_npy_as;
using normnorm::io::serialize_npy;
using normnorm::io::write_npy;
using Bytes = std::vector<unsigned char>;
using Shape = std::vector<std::int64_t>;

// Builds a .npy image from a header dict string and raw data bytes.  The
// header is padded to a multiple of 64 bytes and terminated with '\n' unless
// `pad` is false.  `major` selects the 2-byte (1) or 4-byte (2, 3) length.
Bytes make_npy(const std::string& dict, const Bytes& data, unsigned major = 1, bool pad = true) {
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    const std::size_t prefix = 8 + len_bytes;
    std::string header = dict;
    if (pad) {
        std::size_t total = prefix + header.size() + 1;
        total = (total + 63) / 64 * 64;
        header.append(total - prefix - header.size() - 1, ' ');
        header.push_back('\n');
    }
    Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
    std::size_t hlen = header.size();
    for (std::size_t i = 0; i < len_bytes; ++i) {
        out.push_back(static_cast<unsigned char>(hlen & 0xFF));
        hlen >>= 8;
    }
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::string dict_for(const std::string& descr, const std::string& shape, bool fortran = false) {
    return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
           ", 'shape': " + shape + ", }";
}

// Appends `v` as `n` bytes, little- or big-endian.
void put(Bytes& b, std::uint64_t v, std::size_t n, bool little = true) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t shift = 8 * (little ? i : n - 1 - i);
        b.push_back(static_cast<unsigned char>((v >> shift) & 0xFF));
    }
}

void put_f64(Bytes& b, double d, bool little = true) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    put(b, bits, 8, little);
}

void put_f32(Bytes& b, float f, bool little = true) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    put(b, bits, 4, little);
}

// Parses from an exactly-sized heap copy so that the sanitizers catch any
// read past the end of the buffer.
NpyArray parse(const Bytes& b, const std::string& name = "<test>") {
    std::vector<unsigned char> exact(b.begin(), b.end());
    exact.shrink_to_fit();
    return parse_npy(exact.data(), exact.size(), name);
}

std::string parse_error(const Bytes& b, const std::string& name = "<test>") {
    try {
        (void)parse(b, name);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

std::int64_t product(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
}

// Unique per process so that concurrent test runs do not collide.
std::string temp_path(const std::string& leaf) {
    static const std::string tag = std::to_string(std::random_device{}());
    return (std::filesystem::temp_directory_path() / ("normnorm_test_npy_" + tag + "_" + leaf))
        .string();
}

template <class T>
void check_round_trip(const Shape& shape) {
    const std::int64_t n = product(shape);
    std::vector<T> values(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < values.size(); ++i)
        values[i] = static_cast<T>((static_cast<double>(i) - 3.25) * 0.1);
    if (!values.empty()) values[0] = -std::numeric_limits<T>::infinity();

    const Bytes bytes = serialize_npy(values.data(), shape);
    // v1.0, header (magic .. '\n') a multiple of 64 bytes.
    REQUIRE(bytes.size() >= 64);
    CHECK(bytes[6] == 1);
    CHECK(bytes[7] == 0);
    const std::size_t hlen = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8);
    CHECK((10 + hlen) % 64 == 0);
    CHECK(bytes[10 + hlen - 1] == '\n');
    CHECK(bytes.size() == 10 + hlen + values.size() * sizeof(T));
    const std::string header(bytes.begin() + 10, bytes.begin() + 10 + static_cast<long>(hlen));
    CHECK(header.find(std::is_same_v<T, double> ? "'<f8'" : "'<f4'") != std::string::npos);

    const NpyArray a = parse(bytes);
    CHECK(a.shape == shape);
    CHECK(a.size() == n);
    REQUIRE(a.data.size() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i)
        CHECK(a.data[i] == static_cast<double>(values[i]));

    // Through the file system as well.
    const std::string path = temp_path("rt.npy");
    write_npy(path, values.data(), shape);
    Shape got_shape = {99};
    const std::vector<T> back = read_npy_as<T>(path, &got_shape);
    std::remove(path.c_str());
    CHECK(got_shape == shape);
    CHECK(back == values);
}

}  // namespace

TEST_CASE("npy: float and double round trips", "[io][npy]") {
    const std::vector<Shape> shapes = {{}, {0}, {1}, {7}, {2, 3}, {3, 0}, {2, 0, 4},
                                       {2, 3, 4}, {1, 1, 1, 5}, {16, 5}};
    for (const Shape& s : shapes) {
        CAPTURE(s);
        check_round_trip<double>(s);
        check_round_trip<float>(s);
    }
}

TEST_CASE("npy: serialized header text matches NumPy's layout", "[io][npy]") {
    const double x[6] = {1, 2, 3, 4, 5, 6};
    const Bytes b = serialize_npy(x, {2, 3});
    const std::string header(b.begin() + 10, b.begin() + 128);
    CHECK(header.rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
    CHECK(b.size() == 128 + 48);

    const float y[5] = {1, 2, 3, 4, 5};
    const Bytes c = serialize_npy(y, {5});
    CHECK(std::string(c.begin() + 10, c.end()).find("'shape': (5,), }") != std::string::npos);
    const double z = 4.5;
    const Bytes d = serialize_npy(&z, {});
    CHECK(std::string(d.begin() + 10, d.end()).find("'shape': (), }") != std::string::npos);
    CHECK(parse(d).data == std::vector<double>{4.5});

    // Doubles are exact, including special values.
    const double specials[4] = {0.1, -0.0, std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::max()};
    const NpyArray s = parse(serialize_npy(specials, {4}));
    CHECK(std::memcmp(s.data.data(), specials, sizeof specials) == 0);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(std::isnan(parse(serialize_npy(&nan, {})).data[0]));

    CHECK_THROWS_AS(serialize_npy(x, {2, -3}), std::runtime_error);
    CHECK_THROWS_AS(serialize_npy(static_cast<const double*>(nullptr), {2}), std::runtime_error);
    CHECK(parse(serialize_npy(static_cast<const double*>(nullptr), {0, 3})).shape == Shape{0, 3});
}

TEST_CASE("npy: reads the golden bn1d input", "[io][npy]") {
    const std::string path =
        std::string(NORMNORM_TEST_DATA_DIR) + "/golden/bn1d_o1_a1.0_m0.1/step0_x.npy";
    const NpyArray a = read_npy(path);
    REQUIRE(a.shape == Shape{16, 5});
    REQUIRE(a.size() == 80);
    REQUIRE(a.data.size() == 80);
    bool any_nonzero = false;
    for (double v : a.data) {
        CHECK(std::isfinite(v));
        any_nonzero = any_nonzero || v != 0.0;
    }
    CHECK(any_nonzero);
    CHECK(a.data.front() == -0.49174992809838164);
    CHECK(a.data.back() == -0.5763393361209845);

    Shape shape;
    const std::vector<float> f = read_npy_as<float>(path, &shape);
    CHECK(shape == Shape{16, 5});
    REQUIRE(f.size() == 80);
    CHECK(f[0] == static_cast<float>(a.data[0]));
    const std::vector<double> d = read_npy_as<double>(path);
    CHECK(d == a.data);
}

TEST_CASE("npy: format versions 2.0 and 3.0", "[io][npy]") {
    Bytes data;
    for (int i = 0; i < 6; ++i) put_f64(data, i * 1.5);
    for (unsigned major : {1u, 2u, 3u}) {
        CAPTURE(major);
        const Bytes b = make_npy(dict_for("<f8", "(3, 2)"), data, major);
        if (major > 1) CHECK((b.size() - data.size()) % 64 == 0);
        const NpyArray a = parse(b);
        CHECK(a.shape == Shape{3, 2});
        CHECK(a.data == std::vector<double>{0, 1.5, 3, 4.5, 6, 7.5});
    }
    // A v2.0 header longer than 65535 bytes (impossible in v1.0).
    std::string dict = dict_for("<f8", "(3, 2)");
    dict.append(70000, ' ');
    const NpyArray big = parse(make_npy(dict, data, 2));
    CHECK(big.shape == Shape{3, 2});
    CHECK(big.data[5] == 7.5);
}

TEST_CASE("npy: header dict variations", "[io][npy]") {
    Bytes data;
    for (int i = 0; i < 3; ++i) put_f64(data, i + 0.5);
    const std::vector<double> expected = {0.5, 1.5, 2.5};
    const std::vector<std::string> dicts = {
        // Key order and quote style vary between writers.
        "{'shape': (3,), 'fortran_order': False, 'descr': '<f8'}",
        "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,)}",
        "{'descr':'<f8','fortran_order':False,'shape':(3,),}",
        "  {  'descr' : '<f8' ,\n 'fortran_order' : False , 'shape' : ( 3 , ) , }  \n",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3L,), }",  // Python 2
    };
    for (const std::string& d : dicts) {
        CAPTURE(d);
        const NpyArray a = parse(make_npy(d, data));
        CHECK(a.shape == Shape{3});
        CHECK(a.data == expected);
    }
    // Unpadded header (the 64-byte alignment is not required for reading).
    CHECK(parse(make_npy(dict_for("<f8", "(3,)"), data, 1, false)).data == expected);
    // Trailing bytes after the data are ignored, as NumPy does.
    Bytes extra = data;
    extra.push_back(0xAB);
    CHECK(parse(make_npy(dict_for("<f8", "(3,)"), extra)).data == expected);
    // Multi-dim with trailing comma.
    CHECK(parse(make_npy(dict_for("<f8", "(1, 3,)"), data)).shape == Shape{1, 3});
}

TEST_CASE("npy: fortran_order is transposed to C order", "[io][npy]") {
    SECTION("2-d") {
        // C-order matrix [[1, 2, 3], [4, 5, 6]] stored column-major.
        Bytes data;
        for (double v : {1, 4, 2, 5, 3, 6}) put_f64(data, v);
        const NpyArray a = parse(make_npy(dict_for("<f8", "(2, 3)", true), data));
        CHECK(a.shape == Shape{2, 3});
        CHECK(a.data == std::vector<double>{1, 2, 3, 4, 5, 6});
    }
    SECTION("3-d, float32") {
        const Shape shape = {2, 3, 4};
        // Element (i, j, k) has value equal to its C-order index.
        // Column-major order: i fastest, then j, then k.
        Bytes data;
        for (int k = 0; k < 4; ++k)
            for (int j = 0; j < 3; ++j)
                for (int i = 0; i < 2; ++i) put_f32(data, static_cast<float>(i * 12 + j * 4 + k));
        const NpyArray a = parse(make_npy(dict_for("<f4", "(2, 3, 4)", true), data));
        CHECK(a.shape == shape);
        REQUIRE(a.data.size() == 24);
        for (std::size_t n = 0; n < 24; ++n) CHECK(a.data[n] == static_cast<double>(n));
    }
    SECTION("1-d, 0-d and empty are unchanged") {
        Bytes data;
        for (double v : {7, 8, 9}) put_f64(data, v);
        CHECK(parse(make_npy(dict_for("<f8", "(3,)", true), data)).data ==
              std::vector<double>{7, 8, 9});
        Bytes one;
        put_f64(one, 2.5);
        CHECK(parse(make_npy(dict_for("<f8", "()", true), one)).data == std::vector<double>{2.5});
        const NpyArray e = parse(make_npy(dict_for("<f8", "(0, 3)", true), {}));
        CHECK(e.shape == Shape{0, 3});
        CHECK(e.data.empty());
    }
}

TEST_CASE("npy: integer, unsigned and bool dtypes", "[io][npy]") {
    SECTION("signed") {
        const std::vector<std::int64_t> vals = {-3, 0, 5, -128, 127};
        for (std::size_t size : {1u, 2u, 4u, 8u}) {
            const std::string descr = (size == 1 ? std::string("|i") : std::string("<i")) +
                                      std::to_string(size);
            CAPTURE(descr);
            Bytes data;
            for (std::int64_t v : vals) put(data, static_cast<std::uint64_t>(v), size);
            const NpyArray a = parse(make_npy(dict_for(descr, "(5,)"), data));
            CHECK(a.data == std::vector<double>{-3, 0, 5, -128, 127});
        }
        Bytes wide;
        put(wide, static_cast<std::uint64_t>(std::int64_t{-2000000000}), 4);
        put(wide, static_cast<std::uint64_t>(std::int64_t{-40000}) , 8);
        put(wide, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::min()), 8);
        CHECK(parse(make_npy(dict_for("<i4", "(1,)"), Bytes(wide.begin(), wide.begin() + 4)))
                  .data[0] == -2000000000.0);
        CHECK(parse(make_npy(dict_for("<i8", "(2,)"), Bytes(wide.begin() + 4, wide.end())))
                  .data == std::vector<double>{-40000.0, -9223372036854775808.0});
        Bytes i2;
        put(i2, 0x8000, 2);
        CHECK(parse(make_npy(dict_for("<i2", "()"), i2)).data[0] == -32768.0);
    }
    SECTION("unsigned") {
        Bytes u1 = {0, 255, 7};
        CHECK(parse(make_npy(dict_for("|u1", "(3,)"), u1)).data == std::vector<double>{0, 255, 7});
        Bytes u2;
        put(u2, 65535, 2);
        CHECK(parse(make_npy(dict_for("<u2", "(1,)"), u2)).data[0] == 65535.0);
        Bytes u4;
        put(u4, 4294967295u, 4);
        CHECK(parse(make_npy(dict_for("<u4", "(1,)"), u4)).data[0] == 4294967295.0);
        Bytes u8;
        put(u8, std::uint64_t{1} << 63, 8);
        put(u8, 12345, 8);
        CHECK(parse(make_npy(dict_for("<u8", "(2,)"), u8)).data ==
              std::vector<double>{9223372036854775808.0, 12345.0});
    }
    SECTION("bool") {
        const Bytes b = {1, 0, 0, 1, 2, 0};  // any nonzero byte is True
        const NpyArray a = parse(make_npy(dict_for("|b1", "(2, 3)"), b));
        CHECK(a.shape == Shape{2, 3});
        CHECK(a.data == std::vector<double>{1, 0, 0, 1, 1, 0});
        // Bool + Fortran order.
        const NpyArray f = parse(make_npy(dict_for("|b1", "(2, 3)", true), b));
        CHECK(f.data == std::vector<double>{1, 0, 1, 0, 1, 0});
    }
}

TEST_CASE("npy: float16, byte orders and native spellings", "[io][npy]") {
    SECTION("half precision") {
        Bytes h;
        for (std::uint16_t bits : {0x3C00, 0xC000, 0x0000, 0x8000, 0x7BFF, 0x0001, 0x3555, 0x7C00})
            put(h, bits, 2);
        const NpyArray a = parse(make_npy(dict_for("<f2", "(8,)"), h));
        CHECK(a.data[0] == 1.0);
        CHECK(a.data[1] == -2.0);
        CHECK(a.data[2] == 0.0);
        CHECK(std::signbit(a.data[3]));
        CHECK(a.data[4] == 65504.0);
        CHECK(a.data[5] == std::ldexp(1.0, -24));
        CHECK(a.data[6] == 0.333251953125);
        CHECK(std::isinf(a.data[7]));
        Bytes nan;
        put(nan, 0x7E00, 2);
        CHECK(std::isnan(parse(make_npy(dict_for("<f2", "()"), nan)).data[0]));
    }
    SECTION("big-endian is byteswapped") {
        Bytes f8, f4, i4, u2, f2;
        put_f64(f8, -1.25, false);
        put_f64(f8, 3e100, false);
        put_f32(f4, 0.5f, false);
        put(i4, static_cast<std::uint64_t>(std::int64_t{-7}), 4, false);
        put(u2, 0x0102, 2, false);
        put(f2, 0x3C00, 2, false);
        CHECK(parse(make_npy(dict_for(">f8", "(2,)"), f8)).data == std::vector<double>{-1.25, 3e100});
        CHECK(parse(make_npy(dict_for(">f4", "()"), f4)).data[0] == 0.5);
        CHECK(parse(make_npy(dict_for(">i4", "()"), i4)).data[0] == -7.0);
        CHECK(parse(make_npy(dict_for(">u2", "()"), u2)).data[0] == 258.0);
        CHECK(parse(make_npy(dict_for(">f2", "()"), f2)).data[0] == 1.0);
        CHECK(parse(make_npy(dict_for("<i1", "()"), Bytes{0xFF})).data[0] == -1.0);
    }
    SECTION("native spellings") {
        const std::uint16_t probe = 1;
        unsigned char first;
        std::memcpy(&first, &probe, 1);
        const bool little = first == 1;
        Bytes f8;
        put_f64(f8, 6.75, little);
        CHECK(parse(make_npy(dict_for("=f8", "()"), f8)).data[0] == 6.75);
        CHECK(parse(make_npy(dict_for("f8", "()"), f8)).data[0] == 6.75);
        Bytes i2;
        put(i2, static_cast<std::uint64_t>(std::int64_t{-300}), 2, little);
        CHECK(parse(make_npy(dict_for("=i2", "()"), i2)).data[0] == -300.0);
        CHECK(parse(make_npy(dict_for("=b1", "()"), Bytes{1})).data[0] == 1.0);
    }
}

TEST_CASE("npy: malformed input throws std::runtime_error", "[io][npy]") {
    Bytes data;
    for (int i = 0; i < 6; ++i) put_f64(data, i);
    const Bytes good = make_npy(dict_for("<f8", "(2, 3)"), data);
    REQUIRE(parse(good).data.size() == 6);

    SECTION("bad magic") {
        Bytes b = good;
        b[1] = 'X';
        CHECK(parse_error(b).find("magic") != std::string::npos);
        b = good;
        b[0] = 0x92;
        CHECK_THROWS_AS(parse(b), std::runtime_error);
        CHECK_THROWS_AS(parse(Bytes{}), std::runtime_error);
        CHECK_THROWS_AS(parse_npy(nullptr, 0), std::runtime_error);
        CHECK_THROWS_AS(parse(Bytes{0x93, 'N', 'U', 'M'}), std::runtime_error);
        const std::string text = "just some text, not an array at all, padding padding";
        CHECK_THROWS_AS(parse(Bytes(text.begin(), text.end())), std::runtime_error);
    }
    SECTION("unsupported version") {
        for (auto ver : {std::pair<int, int>{0, 0}, {4, 0}, {1, 1}, {2, 5}, {255, 0}}) {
            Bytes b = good;
            b[6] = static_cast<unsigned char>(ver.first);
            b[7] = static_cast<unsigned char>(ver.second);
            CHECK(parse_error(b).find("version") != std::string::npos);
        }
    }
    SECTION("truncated header") {
        // Every prefix that ends inside the header must be rejected.
        for (std::size_t len = 0; len < 128; ++len) {
            CAPTURE(len);
            CHECK_THROWS_AS(parse(Bytes(good.begin(), good.begin() + static_cast<long>(len))),
                            std::runtime_error);
        }
        // Header length pointing past the end of the buffer.
        Bytes b = good;
        b[8] = 0xFF;
        b[9] = 0xFF;
        CHECK(parse_error(b).find("truncated header") != std::string::npos);
        Bytes v2 = make_npy(dict_for("<f8", "(2, 3)"), data, 2);
        v2[8] = v2[9] = v2[10] = v2[11] = 0xFF;
        CHECK(parse_error(v2).find("truncated header") != std::string::npos);
        // Header that ends before the dict closes.
        const std::string cut = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,";
        CHECK_THROWS_AS(parse(make_npy(cut, {}, 1, false)), std::runtime_error);
    }
    SECTION("truncated data") {
        for (std::size_t len = 128; len < good.size(); ++len) {
            CAPTURE(len);
            const std::string msg =
                parse_error(Bytes(good.begin(), good.begin() + static_cast<long>(len)));
            CHECK(msg.find("truncated data") != std::string::npos);
        }
        // A 0-d array still needs one element.
        CHECK_THROWS_AS(parse(make_npy(dict_for("<f8", "()"), Bytes(7, 0))), std::runtime_error);
        CHECK_THROWS_AS(parse(make_npy(dict_for("<u2", "(3,)"), Bytes(5, 0))), std::runtime_error);
    }
    SECTION("bad dict") {
        const std::vector<std::string> bad = {
            "",
            "   \n",
            "{",
            "}",
            "[]",
            "{}",
            "{'descr': '<f8', 'fortran_order': False}",                         // no shape
            "{'descr': '<f8', 'shape': (2, 3)}",                                // no fortran_order
            "{'fortran_order': False, 'shape': (2, 3)}",                        // no descr
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': 1}",  // extra key
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)} junk",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)",
            "{'descr': '<f8' 'fortran_order': False, 'shape': (2, 3)}",         // missing comma
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 3)}",            // not a bool
            "{'descr': '<f8', 'fortran_order': false, 'shape': (2, 3)}",
            "{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2, 3)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': [2, 3]}",        // list
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6)}",           // int
            "{'descr': '<f8', 'fortran_order': False, 'shape': 6}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2 3)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,, 3)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, x)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2.0, 3)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3}",
            "{'descr': <f8, 'fortran_order': False, 'shape': (2, 3)}",          // unquoted
            "{'descr': '<f8, 'fortran_order': False, 'shape': (2, 3)}",         // bad quote
            "{'descr': '<f8\", 'fortran_order': False, 'shape': (2, 3)}",
            "{'de\\x73cr': '<f8', 'fortran_order': False, 'shape': (2, 3)}",    // escape
            "{descr: '<f8', 'fortran_order': False, 'shape': (2, 3)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3),, }",
            "{, 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}",
            std::string("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}\0", 59),
        };
        for (const std::string& d : bad) {
            CAPTURE(d);
            const std::string msg = parse_error(make_npy(d, data, 1, false));
            CHECK(msg.find("malformed header") != std::string::npos);
        }
    }
    SECTION("unsupported descr") {
        for (const std::string d : {"<c16", "<c8", "<f16", "<U3", "|S4", "|O", "<M8[ns]", "|V8",
                                    "<f3", "<i3", "|f8", "|i4", "<b2", "<x8", "", "<", "f", "<<f8",
                                    ">f8 ", "<f08"}) {
            CAPTURE(d);
            const std::string msg = parse_error(make_npy(dict_for(d, "(2, 3)"), data));
            CHECK(msg.find("unsupported dtype") != std::string::npos);
        }
        // Structured dtype.
        const std::string structured =
            "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }";
        CHECK(parse_error(make_npy(structured, data)).find("unsupported dtype") !=
              std::string::npos);
        const std::string subarray =
            "{'descr': ('<f8', (3,)), 'fortran_order': False, 'shape': (2,), }";
        CHECK(parse_error(make_npy(subarray, data)).find("unsupported dtype") != std::string::npos);
    }
    SECTION("negative and overflowing dims") {
        CHECK(parse_error(make_npy(dict_for("<f8", "(-1,)"), data)).find("negative") !=
              std::string::npos);
        CHECK(parse_error(make_npy(dict_for("<f8", "(2, -3)"), data)).find("negative") !=
              std::string::npos);
        CHECK_THROWS_AS(parse(make_npy(dict_for("<f8", "(-0,)"), data)), std::runtime_error);
        // Product overflow (each dim fits in int64, the product does not).
        CHECK(parse_error(make_npy(dict_for("<f8", "(4294967296, 4294967296)"), data))
                  .find("overflow") != std::string::npos);
        // Element count fits but byte count does not.
        CHECK(parse_error(make_npy(dict_for("<f8", "(2305843009213693952,)"), data))
                  .find("overflow") != std::string::npos);
        // A single dim that does not fit in int64.
        CHECK(parse_error(make_npy(dict_for("<f8", "(99999999999999999999,)"), data))
                  .find("too large") != std::string::npos);
        // Huge but representable size: truncated data, not an allocation.
        CHECK(parse_error(make_npy(dict_for("<f8", "(1000000000, 1000000000)"), data))
                  .find("truncated data") != std::string::npos);
        // A zero dimension makes the array empty regardless of the others.
        const NpyArray e = parse(make_npy(dict_for("<f8", "(9223372036854775807, 0, 5)"), {}));
        CHECK(e.data.empty());
        CHECK(e.size() == 0);
        // Too many dimensions.
        std::string many = "(";
        for (int i = 0; i < 65; ++i) many += "1, ";
        many += ")";
        CHECK_THROWS_AS(parse(make_npy(dict_for("<f8", many), data)), std::runtime_error);
    }
    SECTION("error messages name the source") {
        Bytes b = good;
        b[2] = 0;
        CHECK(parse_error(b, "weights/layer3.npy").find("weights/layer3.npy") != std::string::npos);
        CHECK(parse_error(Bytes(good.begin(), good.end() - 1), "stats.npy").find("stats.npy") !=
              std::string::npos);
    }
}

TEST_CASE("npy: file errors", "[io][npy]") {
    const std::string missing = temp_path("does_not_exist.npy");
    try {
        (void)read_npy(missing);
        FAIL("expected an exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find(missing) != std::string::npos);
    }
    CHECK_THROWS_AS(read_npy_as<float>(missing), std::runtime_error);

    // A file with a bad payload is reported with its path.
    const std::string garbage = temp_path("garbage.npy");
    {
        std::FILE* f = std::fopen(garbage.c_str(), "wb");
        REQUIRE(f != nullptr);
        std::fputs("PK\x03\x04 not a npy file", f);
        std::fclose(f);
    }
    std::string msg;
    try {
        (void)read_npy(garbage);
    } catch (const std::runtime_error& e) {
        msg = e.what();
    }
    std::remove(garbage.c_str());
    CHECK(msg.find(garbage) != std::string::npos);
    CHECK(msg.find("magic") != std::string::npos);

    const double x = 1.0;
    CHECK_THROWS_AS(write_npy(temp_path("no_such_dir") + "/x.npy", &x, {}), std::runtime_error);
}

TEST_CASE("npy: corrupted buffers never crash", "[io][npy]") {
    // Deterministic byte flips over a valid image: each must either parse
    // (with consistent shape and data) or throw std::runtime_error.  Run under
    // the sanitizers this checks that no corruption causes an out-of-bounds
    // read.
    Bytes data;
    for (int i = 0; i < 12; ++i) put_f32(data, static_cast<float>(i));
    const Bytes good = make_npy(dict_for("<f4", "(3, 4)", true), data);
    std::uint32_t state = 12345u;
    const auto next = [&state] {
        state = state * 1664525u + 1013904223u;
        return state >> 8;
    };
    int parsed = 0, rejected = 0;
    for (int trial = 0; trial < 4000; ++trial) {
        Bytes b = good;
        const int flips = 1 + static_cast<int>(next() % 3);
        for (int k = 0; k < flips; ++k) b[next() % b.size()] = static_cast<unsigned char>(next());
        if (next() % 4 == 0) b.resize(next() % (b.size() + 1));
        try {
            const NpyArray a = parse(b);
            CHECK(static_cast<std::int64_t>(a.data.size()) == a.size());
            ++parsed;
        } catch (const std::runtime_error&) {
            ++rejected;
        }
    }
    CHECK(parsed > 0);
    CHECK(rejected > 0);
}
