// normnorm::io: StateDict in .npz and .safetensors, and load_state_dict /
// state_dict for the five module forms. The committed files in
// tests/data/state_dict/ come from make_state_dict.py there (PyTorch + the tools/
// export script); their values follow entry_value() below, which repeats that
// script's formulas, so a correct load is known without reading the files twice.
#include <normnorm/io/io.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reference.hpp"

namespace {

namespace nn = normnorm;
namespace io = normnorm::io;

const std::string kDir = std::string(NORMNORM_TEST_DATA_DIR) + "/state_dict/";

double entry_value(const std::string& name, int module, std::size_t i) {
  const auto j = static_cast<int>(i) + module;
  if (name == "weight") return 1 + 0.125 * (j % 5 - 2);
  if (name == "bias") return 0.0625 * (j % 7 - 3);
  if (name == "running_mean") return 0.25 * (j % 3 - 1);
  if (name == "running_var") return 0.5 + 0.25 * (j % 4);
  if (name == "running_lmbda") return 0.75 + 0.125 * (j % 5);
  return 0.8125 + 0.0625 * (j % 3);  // running_norm
}

std::vector<double> entry_values(const std::string& name, int module, std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = entry_value(name, module, i);
  return v;
}

// The model's modules, as make_state_dict.py's MODULES lists them.
struct ModelPart {
  std::string prefix;
  int index;
  nn::Shape input_shape;
};

template <class T>
std::unique_ptr<nn::NormalNormModule<T>> make_module(int index) {
  switch (index) {
    case 0: return std::make_unique<nn::BatchNormalNorm2d<T>>(3);
    case 1: return std::make_unique<nn::GroupNormalNorm<T>>(2, 4);
    case 2: return std::make_unique<nn::BatchNormalNorm1d<T>>(5);
    case 3: return std::make_unique<nn::LayerNormalNorm<T>>(nn::Shape{2, 3});
    default: {
      nn::Options options = nn::default_options(nn::Form::instance_2d);
      options.affine = true;
      return std::make_unique<nn::InstanceNormalNorm2d<T>>(3, options);
    }
  }
}

const std::vector<ModelPart> kParts = {{"features.0", 0, nn::Shape{2, 3, 4, 5}},
                                       {"features.2", 1, nn::Shape{2, 4, 3, 3}},
                                       {"classifier.1", 2, nn::Shape{6, 5}},
                                       {"encoder.norm", 3, nn::Shape{4, 2, 3}},
                                       {"style", 4, nn::Shape{2, 3, 4, 4}}};

std::vector<double> test_input(const nn::Shape& shape) {
  std::size_t n = 1;
  for (nn::index_t d : shape) n *= static_cast<std::size_t>(d);
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::sin(0.37 * static_cast<double>(i)) + 0.25 * static_cast<double>(i % 7);
  return x;
}

// Loads one part with one call, runs it in eval, and compares with the float64
// reference run on the formula values.
template <class T>
void check_part_matches_reference(const io::StateDict& dict, const ModelPart& part, double tolerance) {
  auto module = make_module<T>(part.index);
  io::load_state_dict(*module, dict, part.prefix);
  module->eval();

  const nn::LayerConfig& config = module->config();
  const auto affine = static_cast<std::size_t>(config.num_affine());
  const std::vector<double> weight = entry_values("weight", part.index, affine);
  const std::vector<double> bias = entry_values("bias", part.index, affine);
  nn::test::ReferenceRunning running(static_cast<std::size_t>(config.num_running()));
  if (config.has_running_stats()) {
    const auto c = static_cast<std::size_t>(config.num_running());
    running.mean = entry_values("running_mean", part.index, c);
    running.var = entry_values("running_var", part.index, c);
    running.lambda = entry_values("running_lmbda", part.index, c);
    running.norm = entry_values("running_norm", part.index, c);
  }
  const std::vector<double> x = test_input(part.input_shape);
  const nn::test::ReferenceOutput expected =
      nn::test::reference_forward(config, nn::Mode::eval, x, part.input_shape, weight, bias, &running, {});

  const std::vector<T> input(x.begin(), x.end());
  std::vector<T> output(x.size());
  module->forward(input.data(), part.input_shape, output.data());
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(output[i]) - expected.out[i]) / (1 + std::fabs(expected.out[i])));
  INFO(part.prefix << " (" << config.name() << "): worst relative error " << worst);
  CHECK(worst <= tolerance);
  if (config.has_running_stats()) CHECK(module->num_batches_tracked() == 7 + part.index);
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A module buffer's values, whether its accessor returns std::vector<T>& or Span<T>.
template <class Buffer>
std::vector<double> values_of(Buffer&& buffer) {
  const auto* data = io::detail::data_of(buffer);
  return std::vector<double>(data, data + io::detail::size_of(buffer));
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("normnorm_io_test_" + name)).string();
}

}  // namespace

TEST_CASE("state dict: every form loads in one call from .npz and deflated .npz and .safetensors", "[io]") {
  for (const char* file : {"model.npz", "model_compressed.npz", "model.safetensors"}) {
    INFO(file);
    const io::StateDict dict = io::read_state_dict(kDir + file);
    CHECK(dict.size() == 20);  // weight and bias of 5 modules + 5 buffers of the 2 batch forms
    for (const ModelPart& part : kParts) {
      check_part_matches_reference<float>(dict, part, 2e-6);
      check_part_matches_reference<double>(dict, part, 1e-13);
    }
  }
}

TEST_CASE("state dict: the layer form's weight keeps normalized_shape and buffers keep PyTorch's names", "[io]") {
  const io::StateDict dict = io::read_safetensors(kDir + "model.safetensors");
  REQUIRE(dict.find("encoder.norm.weight") != nullptr);
  CHECK(dict.find("encoder.norm.weight")->shape == std::vector<std::int64_t>{2, 3});
  REQUIRE(dict.find("features.0.num_batches_tracked") != nullptr);
  CHECK(dict.find("features.0.num_batches_tracked")->dtype == io::DType::I64);
  CHECK(dict.find("features.0.num_batches_tracked")->shape.empty());
  CHECK(dict.find("features.0.num_batches_tracked")->value(0) == 7);
  CHECK(dict.metadata.at("writer") == "make_state_dict.py");

  nn::BatchNormalNorm2d<float> bn(3);
  const io::StateDict saved = io::state_dict(bn, "features.0");
  for (const char* name : {"weight", "bias", "running_mean", "running_var", "running_lmbda", "running_norm",
                           "num_batches_tracked"})
    CHECK(saved.contains(std::string("features.0.") + name));
  CHECK(saved.size() == 7);
  nn::GroupNormalNorm<double> group(2, 4);
  CHECK(io::state_dict(group).size() == 2);
  CHECK(io::state_dict(group).find("weight")->dtype == io::DType::F64);
}

TEST_CASE("state dict: F16 BF16 F32 F64 and I64 decode as PyTorch stores them", "[io]") {
  const io::StateDict dict = io::read_safetensors(kDir + "dtypes.safetensors");
  const std::vector<std::pair<std::string, io::DType>> kinds = {
      {"f16", io::DType::F16}, {"bf16", io::DType::BF16}, {"f32", io::DType::F32}, {"f64", io::DType::F64}};
  for (const auto& [label, dtype] : kinds) {
    INFO(label);
    const io::Array* stored = dict.find(label);
    const io::Array* wide = dict.find(label + "_as_f64");
    REQUIRE(stored != nullptr);
    REQUIRE(wide != nullptr);
    CHECK(stored->dtype == dtype);
    REQUIRE(stored->numel() == wide->numel());
    for (std::size_t i = 0; i < static_cast<std::size_t>(stored->numel()); ++i) CHECK(stored->value(i) == wide->value(i));
  }
  const io::Array* ints = dict.find("i64");
  REQUIRE(ints != nullptr);
  CHECK(ints->shape == std::vector<std::int64_t>{2, 2});
  CHECK(ints->values<double>() == std::vector<double>{-3, 0, 5, 1099511627776.0});
}

TEST_CASE("state dict: files written round-trip bytes and dtypes and shapes in both formats", "[io]") {
  io::StateDict dict = io::read_safetensors(kDir + "dtypes.safetensors");
  dict.metadata["note"] = "round trip";
  const std::string st = temp_path("roundtrip.safetensors");
  io::write_safetensors(st, dict);
  const io::StateDict back = io::read_safetensors(st);
  REQUIRE(back.size() == dict.size());
  for (const auto& [name, array] : dict.arrays) {
    INFO(name);
    const io::Array* other = back.find(name);
    REQUIRE(other != nullptr);
    CHECK(other->dtype == array.dtype);
    CHECK(other->shape == array.shape);
    CHECK(other->bytes == array.bytes);
  }
  CHECK(back.metadata == dict.metadata);

  // NumPy has no bfloat16: writing it to .npz is an error, and nothing is written.
  const std::string npz = temp_path("roundtrip.npz");
  std::remove(npz.c_str());
  const nn::Status bf16 = io::try_write_npz(npz, dict);
  CHECK(!bf16.ok());
  CHECK_THAT(bf16.message(), Catch::Contains("bf16") && Catch::Contains("BF16"));
  CHECK(!std::filesystem::exists(npz));

  // An empty dict is an empty archive (what numpy.savez() writes) and reads back empty.
  io::write_npz(npz, io::StateDict{});
  CHECK(std::filesystem::file_size(npz) == 22);
  CHECK(io::read_npz(npz).size() == 0);

  dict.arrays.erase("bf16");
  for (bool compress : {false, true}) {
    io::write_npz(npz, dict, compress);
    const io::StateDict from_npz = io::read_npz(npz);
    REQUIRE(from_npz.size() == dict.size());
    for (const auto& [name, array] : dict.arrays) {
      INFO(name << " compress " << compress);
      CHECK(from_npz.find(name)->dtype == array.dtype);
      CHECK(from_npz.find(name)->shape == array.shape);
      CHECK(from_npz.find(name)->bytes == array.bytes);
    }
  }
  std::remove(npz.c_str());
  std::remove(st.c_str());
}

TEST_CASE("state dict: a module saved and loaded again is unchanged in both formats", "[io]") {
  nn::Options options = nn::default_options(nn::Form::batch_1d);
  options.noise_train = 0;
  nn::BatchNormalNorm1d<double> trained(4, options);
  std::vector<double> x(8 * 4), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(1.3 * static_cast<double>(i)) * static_cast<double>(i % 5);
  trained.forward(x.data(), nn::Shape{8, 4}, y.data());
  trained.weight()[1] = 1.5;
  for (const char* ext : {".npz", ".safetensors"}) {
    const std::string path = temp_path(std::string("module") + ext);
    io::write_state_dict(path, io::state_dict(trained, "head"));
    nn::BatchNormalNorm1d<double> loaded(4, options);
    io::load_state_dict(loaded, io::read_state_dict(path), "head.");
    CHECK(loaded.weight() == trained.weight());
    CHECK(loaded.bias() == trained.bias());
    CHECK(values_of(loaded.running_mean()) == values_of(trained.running_mean()));
    CHECK(values_of(loaded.running_var()) == values_of(trained.running_var()));
    CHECK(values_of(loaded.running_lambda()) == values_of(trained.running_lambda()));
    CHECK(values_of(loaded.running_norm()) == values_of(trained.running_norm()));
    std::remove(path.c_str());
  }
}

TEST_CASE("state dict: strict load reports every problem in one error and changes nothing", "[io]") {
  io::StateDict dict = io::read_npz(kDir + "model.npz");
  dict.arrays.erase("features.0.bias");                                             // missing
  dict.insert("features.0.running_lambda", dict.arrays.at("features.0.running_var"));  // unexpected (our C++ name)
  dict.insert("features.0.extra.weight", dict.arrays.at("features.0.weight"));      // a child's entry: not ours
  io::Array wrong = dict.arrays.at("features.0.running_mean");
  wrong.shape = {1, 3};
  dict.insert("features.0.running_mean", wrong);                                    // wrong shape
  io::Array poisoned = io::Array::from_values(std::vector<double>{1.0, NAN, 2.0}.data(), {3});
  dict.insert("features.0.running_var", poisoned);                                  // non-finite
  io::Array huge = io::Array::from_values(std::vector<double>{1.0, 1e300, 2.0}.data(), {3});
  dict.insert("features.0.running_norm", huge);                                     // beyond float
  io::Array ints = io::Array::scalar_i64(3);
  ints.shape = {1};
  dict.insert("features.0.running_lmbda", ints);                                    // wrong shape (and dtype)

  nn::BatchNormalNorm2d<float> module(3);
  module.weight()[0] = 42.0f;
  const auto before = io::state_dict(module);
  const nn::Status status = io::try_load_state_dict(module, dict, "features.0");
  REQUIRE(!status.ok());
  CHECK(status.kind() == nn::ErrorKind::invalid_argument);
  const std::string& message = status.message();
  CHECK_THAT(message, Catch::Contains("6 problem(s)"));
  CHECK_THAT(message, Catch::Contains("missing 'features.0.bias'"));
  CHECK_THAT(message, Catch::Contains("unexpected 'features.0.running_lambda'"));
  CHECK_THAT(message, Catch::Contains("'features.0.running_mean' has shape (1, 3), expected (3,)"));
  CHECK_THAT(message, Catch::Contains("'features.0.running_var' has 1 non-finite"));
  CHECK_THAT(message, Catch::Contains("'features.0.running_norm' has 1 non-finite"));
  CHECK_THAT(message, Catch::Contains("'features.0.running_lmbda' has dtype I64"));
  CHECK_THAT(message, !Catch::Contains("extra"));
  const auto after = io::state_dict(module);
  for (const auto& [name, array] : before.arrays) CHECK(after.find(name)->bytes == array.bytes);
  CHECK_THROWS_AS(io::load_state_dict(module, dict, "features.0"), std::invalid_argument);

  // Not strict: missing and unexpected entries are fine, bad values are not.
  const io::StateDict good = io::read_npz(kDir + "model.npz");
  io::StateDict partial;
  partial.insert("features.0.weight", good.arrays.at("features.0.weight"));
  partial.insert("features.0.surprise", good.arrays.at("features.0.weight"));
  REQUIRE(io::try_load_state_dict(module, partial, "features.0", false).ok());
  CHECK(module.weight()[0] == static_cast<float>(entry_value("weight", 0, 0)));
  CHECK(values_of(module.running_mean())[0] == 0.0);
  partial.insert("features.0.running_var", poisoned);
  CHECK(!io::try_load_state_dict(module, partial, "features.0", false).ok());
}

TEST_CASE("state dict: damaged files are errors naming the file and never crashes", "[io]") {
  io::StateDict dict;
  nn::Status status = io::try_read_state_dict(kDir + "no_such_file.npz", dict);
  CHECK_THAT(status.message(), Catch::Contains("no_such_file.npz") && Catch::Contains("cannot open"));
  status = io::try_read_state_dict(kDir + "no_such_file.safetensors", dict);
  CHECK_THAT(status.message(), Catch::Contains("no_such_file.safetensors"));
  CHECK(!io::try_read_state_dict(kDir + "model.pt", dict).ok());

  const std::vector<unsigned char> st = read_bytes(kDir + "model.safetensors");
  const std::vector<unsigned char> npz = read_bytes(kDir + "model_compressed.npz");
  REQUIRE(st.size() > 100);
  REQUIRE(npz.size() > 100);
  // Every truncation and a spread of single-byte corruptions: a Status or a valid
  // dict, nothing else (ASan/UBSan builds check the "nothing else").
  std::size_t errors = 0;
  for (std::size_t cut = 0; cut < st.size(); cut += 7) {
    io::StateDict out;
    errors += !io::try_parse_safetensors(st.data(), cut, out).ok();
  }
  CHECK(errors == (st.size() + 6) / 7);
  for (std::size_t cut = 0; cut < npz.size(); cut += 13) {
    io::StateDict out;
    errors += !io::try_parse_npz(npz.data(), cut, out).ok();
  }
  for (std::size_t at = 0; at < st.size(); at += 5) {
    std::vector<unsigned char> bad = st;
    bad[at] = static_cast<unsigned char>(bad[at] ^ 0x5A);
    io::StateDict out;
    (void)io::try_parse_safetensors(bad.data(), bad.size(), out);
  }
  for (std::size_t at = 0; at < npz.size(); at += 11) {
    std::vector<unsigned char> bad = npz;
    bad[at] = static_cast<unsigned char>(bad[at] ^ 0x5A);
    io::StateDict out;
    (void)io::try_parse_npz(bad.data(), bad.size(), out);
  }

  // Specific header faults.
  const auto image = [](const std::string& json, std::size_t data_bytes) {
    std::vector<unsigned char> b(8 + json.size() + data_bytes, 0);
    normnorm::io::detail::store_uint_le(b.data(), json.size(), 8);
    std::memcpy(b.data() + 8, json.data(), json.size());
    return b;
  };
  const auto message_of = [](const std::vector<unsigned char>& b) {
    io::StateDict out;
    return io::try_parse_safetensors(b.data(), b.size(), out, "x.safetensors").message();
  };
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)), Catch::Equals(""));
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)),
             Catch::Contains("'a'") && Catch::Contains("needs 12"));
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8)),
             Catch::Contains("outside"));
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}})", 8)),
             Catch::Contains("unsupported dtype 'Q8'"));
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
             Catch::Contains("non-negative"));
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8)),
             Catch::Contains("data_offsets"));
  CHECK_THAT(message_of(image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", 8)),
             Catch::Contains("overflow"));
  CHECK_THAT(message_of(image(R"({"a":)", 0)), Catch::Contains("not a valid JSON"));
  CHECK_THAT(message_of(image(R"({"__metadata__":{"k":1}})", 0)), Catch::Contains("__metadata__"));
  std::vector<unsigned char> huge_header = image("{}", 0);
  normnorm::io::detail::store_uint_le(huge_header.data(), 1ull << 62, 8);
  CHECK_THAT(message_of(huge_header), Catch::Contains("100 MB"));

  // A zip whose member is not a .npy file.
  const std::string not_npy = temp_path("not_npy.npz");
  io::StateDict one;
  one.insert("a", io::Array::scalar_i64(1));
  io::write_npz(not_npy, one);
  std::vector<unsigned char> zip_bytes = read_bytes(not_npy);
  for (std::size_t i = 0; i + 4 < zip_bytes.size(); ++i)
    if (zip_bytes[i] == 'a' && zip_bytes[i + 1] == '.' && zip_bytes[i + 2] == 'n') zip_bytes[i + 3] = 'x';  // a.npx
  io::StateDict out;
  CHECK_THAT(io::try_parse_npz(zip_bytes.data(), zip_bytes.size(), out).message(), Catch::Contains("not a .npy"));
  write_bytes(not_npy, {'P', 'K', 1, 2});
  CHECK_THAT(io::try_read_npz(not_npy, out).message(), Catch::Contains("not a readable zip"));
  std::remove(not_npy.c_str());
}

TEST_CASE("state dict: the buffer helpers take std::vector and Span alike", "[io]") {
  // module.hpp's accessors may return either; module_state.hpp reads both the same way.
  std::vector<float> values{1.0f, 2.0f, 3.0f};
  const nn::Span<float> span{values.data(), 3};
  CHECK(io::detail::data_of(values) == values.data());
  CHECK(io::detail::size_of(values) == 3);
  CHECK(io::detail::data_of(span) == values.data());
  CHECK(io::detail::size_of(span) == 3);
  CHECK(values_of(span) == std::vector<double>{1.0, 2.0, 3.0});
}
