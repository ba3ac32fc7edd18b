// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test helpers that write safetensors files as byte strings, valid or deliberately broken.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace blockformer::test {

/// One tensor for make_safetensors: raw little-endian bytes, whose size must match dtype and shape.
struct BuilderTensor {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::string data;
};

/// An 8-byte little-endian header length, the header text as given, then data: for malformed files.
inline std::string make_raw(std::string header_json, std::string data) {
  std::string out(8, '\0');
  std::uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

/// The JSON header make_safetensors would write, without padding: a starting point for broken variants.
inline std::string make_header(const std::vector<BuilderTensor>& tensors,
                               const std::map<std::string, std::string>& metadata = {}) {
  std::string json = "{";
  if (!metadata.empty()) json += "\"__metadata__\":" + nlohmann::json(metadata).dump();
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (json.size() > 1) json += ",";
    json += nlohmann::json(t.name).dump() + ":{\"dtype\":\"" + t.dtype + "\",\"shape\":" +
            nlohmann::json(t.shape).dump() + ",\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + t.data.size()) + "]}";
    offset += t.data.size();
  }
  return json + "}";
}

/// A valid safetensors file: tensors back to back in the given order, header space-padded to a multiple of 8.
inline std::string make_safetensors(const std::vector<BuilderTensor>& tensors,
                                    const std::map<std::string, std::string>& metadata = {}) {
  std::string header = make_header(tensors, metadata);
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data;
  for (const auto& t : tensors) data += t.data;
  return make_raw(std::move(header), std::move(data));
}

/// The builder's strings as the byte span the parser takes.
inline std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

/// The little-endian bytes of a vector of trivially copyable values.
template <class T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

/// Writes bytes to path, replacing the file.
inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A fresh, empty directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("blockformer_test_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace blockformer::test
