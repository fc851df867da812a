#pragma once
// The normnorm::io component in one include: StateDict, its .npz and
// .safetensors files, and loading it into (and saving it from) the modules.
// Link normnorm::io (needs libzip and nlohmann/json); the core never includes this.

#include <string>

#include "normnorm/io/module_state.hpp"
#include "normnorm/io/npy.hpp"
#include "normnorm/io/npz.hpp"
#include "normnorm/io/safetensors.hpp"
#include "normnorm/io/state_dict.hpp"

namespace normnorm::io {

namespace detail {
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace detail

// Reads a .npz or .safetensors file, chosen by its extension.
inline Status try_read_state_dict(const std::string& path, StateDict& out) {
  if (detail::ends_with(path, ".npz")) return try_read_npz(path, out);
  if (detail::ends_with(path, ".safetensors")) return try_read_safetensors(path, out);
  return detail::io_error("'" + path + "'", "unknown state-dict format (expected .npz or .safetensors)");
}

// Writes a .npz (stored members, as numpy.savez) or .safetensors file, by extension.
inline Status try_write_state_dict(const std::string& path, const StateDict& dict) {
  if (detail::ends_with(path, ".npz")) return try_write_npz(path, dict);
  if (detail::ends_with(path, ".safetensors")) return try_write_safetensors(path, dict);
  return detail::io_error("'" + path + "'", "unknown state-dict format (expected .npz or .safetensors)");
}

inline StateDict read_state_dict(const std::string& path) {
  StateDict dict;
  detail::raise_io_if_error(try_read_state_dict(path, dict));
  return dict;
}

inline void write_state_dict(const std::string& path, const StateDict& dict) {
  detail::raise_io_if_error(try_write_state_dict(path, dict));
}

}  // namespace normnorm::io
