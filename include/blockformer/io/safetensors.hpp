// SPDX-License-Identifier: Apache-2.0
#pragma once
// Safetensors files: the dtype table (dtype.hpp), the mapped file (mapped_file.hpp), the header
// parser and its view (safetensors_header.hpp), conversion to float (tensor_conversion.hpp), and
// here the file on disk that owns its bytes and their validated view.
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blockformer/error.hpp"
#include "blockformer/io/dtype.hpp"
#include "blockformer/io/mapped_file.hpp"
#include "blockformer/io/safetensors_header.hpp"
#include "blockformer/io/tensor_conversion.hpp"

namespace blockformer::io {

/// A safetensors file on disk: the owned bytes plus the validated view of them.
class SafetensorsFile {
 public:
  /// Opens and validates path; pickle files (.bin/.pt/.pth/.pkl/.ckpt or pickle/zip magic) are refused.
  static SafetensorsFile open(const std::filesystem::path& path, LoadMode mode = LoadMode::Mmap) {
    if (detail::has_pickle_extension(path))
      throw Error(path.string() + ": " + std::string(detail::kPickleMessage));
    MappedFile file = MappedFile::open(path, mode);
    SafetensorsView view = SafetensorsView::parse(file.bytes(), path.string());
    return SafetensorsFile(std::move(file), std::move(view));
  }

  /// The validated view over this file's bytes.
  const SafetensorsView& view() const { return view_; }
  /// All tensors, sorted by name.
  const std::vector<TensorInfo>& tensors() const { return view_.tensors(); }
  /// The tensor called name, or nullptr.
  const TensorInfo* find(std::string_view name) const { return view_.find(name); }
  /// The raw bytes of one of this file's tensors.
  std::span<const std::byte> bytes(const TensorInfo& t) const { return view_.bytes(t); }
  /// The header's __metadata__.
  const std::map<std::string, std::string>& metadata() const { return view_.metadata(); }
  /// The path, as used in error messages.
  const std::string& source() const { return view_.source(); }

 private:
  SafetensorsFile(MappedFile file, SafetensorsView view) : file_(std::move(file)), view_(std::move(view)) {}

  MappedFile file_;
  SafetensorsView view_;  // points into file_'s bytes, which do not move when file_ does
};

}  // namespace blockformer::io
