#pragma once
// Fashion-MNIST: the four IDX files (gzip'd, as Debian's dataset-fashion-mnist ships them
// under /usr/share/datasets/fashion-mnist, or already unpacked), read with zlib.
//
// IDX format: bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte), byte 3 the
// number of dimensions; then each dimension as a big-endian uint32; then the elements,
// row-major. Images are (count, 28, 28), labels (count,).

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace fashion_mnist {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline const char* const default_data_dir = "/usr/share/datasets/fashion-mnist";

// Thrown when a file is not there: main() turns it into the "install the package" hint.
struct DataMissing : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Split {
  Matrix images;            // (count, 784), standardized
  std::vector<int> labels;  // 0..9
  int count() const { return static_cast<int>(labels.size()); }
};

struct Dataset {
  Split train, test;
  float pixel_mean = 0, pixel_std = 1;  // of the training images, on the [0, 1] scale
};

inline const char* const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

namespace detail {

struct Idx {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

// Reads one IDX file of unsigned bytes. gzopen reads gzip'd and plain files alike, so
// `path` may name either; the caller picks which one exists.
inline Idx read_idx(const std::filesystem::path& path) {
  gzFile file = gzopen(path.string().c_str(), "rb");
  if (!file) throw std::runtime_error("cannot open " + path.string());
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  int got = 0;
  while ((got = gzread(file, chunk, sizeof chunk)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  int error = Z_OK;
  const std::string message = got < 0 ? gzerror(file, &error) : "";
  gzclose(file);
  if (got < 0) throw std::runtime_error(path.string() + ": zlib: " + message);

  const auto fail = [&](const std::string& problem) -> Idx {
    throw std::runtime_error(path.string() + ": not an IDX file of unsigned bytes (" + problem + ")");
  };
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) return fail("bad magic");
  if (bytes[2] != 0x08) return fail("element type " + std::to_string(bytes[2]));
  Idx idx;
  const std::size_t rank = bytes[3];
  if (bytes.size() < 4 + 4 * rank) return fail("truncated header");
  std::size_t count = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * k;
    idx.dims.push_back(std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3]);
    count *= idx.dims.back();
  }
  const std::size_t offset = 4 + 4 * rank;
  if (bytes.size() - offset < count) return fail("truncated data");
  idx.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(offset),
                  bytes.begin() + static_cast<std::ptrdiff_t>(offset + count));
  return idx;
}

// dir/name.gz, or dir/name if only the unpacked file is there.
inline std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& name) {
  for (const std::string& candidate : {name + ".gz", name})
    if (std::filesystem::exists(dir / candidate)) return dir / candidate;
  throw DataMissing("Fashion-MNIST not found: no " + name + ".gz (or " + name + ") in " + dir.string());
}

// Images as floats on the [0, 1] scale, and their labels; `limit` > 0 keeps the first ones.
inline Split read_split(const std::filesystem::path& dir, const std::string& prefix, int limit) {
  const Idx images = read_idx(find_file(dir, prefix + "-images-idx3-ubyte"));
  const Idx labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte"));
  if (images.dims.size() != 3 || images.dims[1] * images.dims[2] != 784 || labels.dims.size() != 1 ||
      labels.dims[0] != images.dims[0])
    throw std::runtime_error("Fashion-MNIST files in " + dir.string() + " (" + prefix +
                             "): expected (count, 28, 28) images and (count,) labels");
  int count = static_cast<int>(images.dims[0]);
  if (limit > 0 && limit < count) count = limit;
  Split split;
  split.images.resize(count, 784);
  split.labels.resize(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    for (int j = 0; j < 784; ++j) split.images(i, j) = images.data[static_cast<std::size_t>(i) * 784 + j] / 255.0f;
    const int label = labels.data[static_cast<std::size_t>(i)];
    if (label > 9) throw std::runtime_error("Fashion-MNIST " + prefix + " label " + std::to_string(label) + " > 9");
    split.labels[static_cast<std::size_t>(i)] = label;
  }
  return split;
}

}  // namespace detail

// Reads the training and test sets and standardizes both with the training images' mean
// and standard deviation (one scalar each, over every pixel, like torchvision's Normalize).
inline Dataset load(const std::filesystem::path& dir, int train_limit = 0, int test_limit = 0) {
  Dataset data;
  data.train = detail::read_split(dir, "train", train_limit);
  data.test = detail::read_split(dir, "t10k", test_limit);
  double sum = 0, sum_squares = 0;
  for (Eigen::Index i = 0; i < data.train.images.size(); ++i) {
    const double pixel = data.train.images.data()[i];
    sum += pixel;
    sum_squares += pixel * pixel;
  }
  const double pixels = static_cast<double>(data.train.images.size());
  const double mean = sum / pixels;
  const double variance = sum_squares / pixels - mean * mean;  // pixels in [0, 1]: no cancellation worth a second pass
  data.pixel_mean = static_cast<float>(mean);
  data.pixel_std = static_cast<float>(std::sqrt(variance));
  for (Split* split : {&data.train, &data.test})
    split->images = (split->images.array() - data.pixel_mean) / data.pixel_std;
  return data;
}

}  // namespace fashion_mnist
