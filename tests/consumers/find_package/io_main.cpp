// Links the installed normnorm::io: a state dict through both containers.
#include <normnorm/io/io.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  normnorm::BatchNormalNorm1d<float> layer(2);
  const normnorm::io::StateDict dict = normnorm::io::state_dict(layer, "norm");
  std::vector<unsigned char> image;
  if (!normnorm::io::try_serialize_safetensors(dict, image).ok()) return 1;
  normnorm::io::StateDict back;
  if (!normnorm::io::try_parse_safetensors(image.data(), image.size(), back).ok()) return 1;
  std::printf("%zu entries (%d)\n", back.size(), argc > 1 && argv[1] != nullptr);
  return back.size() == 5 ? 0 : 1;
}
