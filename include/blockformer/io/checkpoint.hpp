// SPDX-License-Identifier: Apache-2.0
#pragma once
// A checkpoint: the named tensors of one safetensors file or of a sharded HuggingFace checkpoint
// (model.safetensors.index.json + shards). The index is untrusted like the shards: shard names must stay
// inside the model directory and the weight_map must agree exactly with the shards' contents.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockformer/error.hpp"
#include "blockformer/io/safetensors.hpp"

namespace blockformer::io {

/// One tensor of a checkpoint: its validated header entry, its raw bytes and the file it came from.
/// Valid while the Checkpoint that returned it is alive (moving the Checkpoint keeps it valid).
struct TensorRef {
  const TensorInfo* info = nullptr;
  std::span<const std::byte> bytes;  // little-endian, any alignment
  std::string_view source;           // file (or memory buffer) name, for error messages
};

namespace detail {

inline constexpr std::string_view kSingleFileName = "model.safetensors";
inline constexpr std::string_view kIndexFileName = "model.safetensors.index.json";
inline constexpr std::size_t kMaxIndexDepth = 16;  // the HF index needs 3; more is not an index
// A real index lists one line per tensor: a few hundred KB for the largest models. The cap bounds
// what parsing a hostile index can cost (1 M entries, 26 MB: 6.6 s and 347 MB).
inline constexpr std::uint64_t kMaxIndexBytes = 16 << 20;

/// Where a tensor lives: which shard, and its entry in that shard's view.
struct CheckpointEntry {
  std::string_view name;  // points into the shard view's TensorInfo
  std::size_t shard;
  const TensorInfo* info;
};

}  // namespace detail

/// The named tensors of a single-file or sharded safetensors checkpoint; owns the files' bytes.
class Checkpoint {
 public:
  /// Opens a .safetensors file, a model.safetensors.index.json, or a directory holding either.
  static Checkpoint open(const std::filesystem::path& path, LoadMode mode = LoadMode::Mmap) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return open_directory(path, mode);
    if (path.extension() == ".json") return open_index(path, mode);
    Checkpoint c;
    c.add_file(path, mode);
    c.index_single_shard();
    return c;
  }

  /// A checkpoint over a safetensors image in memory (no file); bytes must outlive the checkpoint.
  static Checkpoint from_memory(std::span<const std::byte> bytes, std::string name) {
    Checkpoint c;
    c.memory_ = SafetensorsView::parse(bytes, std::move(name));
    c.index_single_shard();
    return c;
  }

  /// The weight_map of a model.safetensors.index.json text (`name` labels errors); public for the
  /// fuzzer. A DOM parse guarded by a callback: the callback sees every key, so duplicates (which nlohmann would
  // silently collapse, hiding a tensor mapped to two shards) are errors, and nesting is bounded.
  static std::map<std::string, std::string> parse_weight_map(std::string_view text, const std::string& name) {
    const auto fail = [&](const std::string& message) { index_error(name, message); };
    // nlohmann's lexer stops at a NUL as if the input ended, which would hide whatever follows.
    if (auto nul = text.find('\0'); nul != std::string_view::npos)
      fail("invalid JSON at byte " + std::to_string(nul) + ": NUL byte");

    std::vector<std::set<std::string>> keys_per_depth;
    const auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      using Event = nlohmann::json::parse_event_t;
      if (static_cast<std::size_t>(depth) > detail::kMaxIndexDepth) fail("JSON nesting too deep");
      if (event == Event::object_start) keys_per_depth.emplace_back();
      if (event == Event::object_end) keys_per_depth.pop_back();
      if (event == Event::key && !keys_per_depth.back().insert(parsed.get<std::string>()).second)
        fail("duplicate key " + quote(parsed.get<std::string>()));
      return true;
    };
    nlohmann::json root;
    try {
      root = nlohmann::json::parse(text.begin(), text.end(), callback);
    } catch (const nlohmann::json::parse_error& e) {
      fail("invalid JSON at byte " + std::to_string(e.byte > 0 ? e.byte - 1 : 0) + ": " + detail::json_error_text(e));
    } catch (const nlohmann::json::out_of_range& e) {  // a number past double, "1e400" (a fuzzer finding)
      fail("invalid JSON: " + detail::json_error_text(e));
    }
    if (!root.is_object()) fail("top level must be an object");
    auto wm = root.find("weight_map");
    if (wm == root.end()) fail("missing 'weight_map'");
    if (!wm->is_object()) fail("'weight_map' must be an object of tensor name -> shard file name");
    std::map<std::string, std::string> weight_map;
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string()) fail("weight_map[" + quote(tensor) + "] must be a string (a shard file name)");
      weight_map.emplace(tensor, shard.get<std::string>());
    }
    return weight_map;
  }

  /// All tensor names, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.emplace_back(e.name);
    return out;
  }

  /// Number of tensors.
  std::size_t size() const { return entries_.size(); }

  /// The directory holding the model file or the index (its config.json describes the model);
  /// empty for a checkpoint in memory.
  std::filesystem::path directory() const {
    return files_.empty() ? std::filesystem::path{} : std::filesystem::path(files_.front().source()).parent_path();
  }

  /// The tensor called name, or nullopt.
  std::optional<TensorRef> find(std::string_view name) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [](const detail::CheckpointEntry& e, std::string_view n) { return e.name < n; });
    if (it == entries_.end() || it->name != name) return std::nullopt;
    const SafetensorsView& view = shard_view(it->shard);
    return TensorRef{it->info, view.bytes(*it->info), view.source()};
  }

  /// The tensor called name; throws Error naming it and the checkpoint when it is missing.
  TensorRef at(std::string_view name) const {
    if (auto ref = find(name)) return *ref;
    throw Error(source_ + ": tensor " + quote(name) + " not found");
  }

  /// What was opened (file, index or memory name), for error messages.
  const std::string& source() const { return source_; }

 private:
  Checkpoint() = default;

  /// The model file of a directory: model.safetensors or the index (both at once is ambiguous:
  /// refused), else the newest `checkpoint-<step>` subdirectory that holds one (the HF Trainer
  /// layout the authors release: results/<name>/checkpoint-<step>/model.safetensors).
  static Checkpoint open_directory(const std::filesystem::path& dir, LoadMode mode) {
    std::error_code ec;
    const bool single = std::filesystem::exists(dir / detail::kSingleFileName, ec);
    const bool index = std::filesystem::exists(dir / detail::kIndexFileName, ec);
    if (single && index)
      throw Error(dir.string() + ": holds both " + std::string(detail::kSingleFileName) + " and " +
                  std::string(detail::kIndexFileName) + "; pass the path of the one to load");
    if (single) return open(dir / detail::kSingleFileName, mode);
    if (index) return open_index(dir / detail::kIndexFileName, mode);
    if (const std::filesystem::path newest = newest_trainer_checkpoint(dir); !newest.empty())
      return open_directory(newest, mode);
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
      if (entry.is_regular_file(ec) && detail::has_pickle_extension(entry.path()))
        throw Error(entry.path().string() + ": " + std::string(detail::kPickleMessage));
    throw Error(dir.string() + ": no " + std::string(detail::kSingleFileName) + " or " +
                std::string(detail::kIndexFileName) + " in this directory");
  }

  /// The `checkpoint-<step>` subdirectory of dir with the largest step that holds a model file,
  /// or an empty path.
  static std::filesystem::path newest_trainer_checkpoint(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::path newest;
    unsigned long long newest_step = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      constexpr std::string_view kPrefix = "checkpoint-";
      if (!entry.is_directory(ec) || name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0 ||
          name.size() - kPrefix.size() > 18 ||
          !std::all_of(name.begin() + kPrefix.size(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      const unsigned long long step = std::stoull(name.substr(kPrefix.size()));
      const bool has_model = std::filesystem::exists(entry.path() / detail::kSingleFileName, ec) ||
                             std::filesystem::exists(entry.path() / detail::kIndexFileName, ec);
      if (has_model && (newest.empty() || step > newest_step)) {
        newest = entry.path();
        newest_step = step;
      }
    }
    return newest;
  }

  static Checkpoint open_index(const std::filesystem::path& index_path, LoadMode mode) {
    const std::string index_name = index_path.string();
    const auto fail = [&](const std::string& message) { index_error(index_name, message); };
    const std::map<std::string, std::string> weight_map = read_weight_map(index_path);
    const std::filesystem::path dir = index_path.parent_path().empty() ? "." : index_path.parent_path();

    std::error_code ec;
    const std::filesystem::path real_dir = std::filesystem::canonical(dir, ec);
    if (ec) fail("cannot resolve model dir " + quote(dir.string()) + ": " + ec.message());

    // One load per distinct shard, in name order so errors and layout do not depend on the index's order.
    std::set<std::string> shard_names;
    for (const auto& [tensor, shard] : weight_map) {
      const bool plain = !shard.empty() && shard != "." && shard != ".." &&
                         shard.find_first_of(std::string_view("/\\\0", 3)) == std::string::npos;
      if (!plain) fail("shard name " + quote(shard) + " (tensor " + quote(tensor) + ") must be a plain file name in the model dir");
      shard_names.insert(shard);
    }

    Checkpoint c;
    c.source_ = index_name;
    std::map<std::string, std::size_t> shard_index;
    for (const auto& shard : shard_names) {
      const std::filesystem::path p = dir / shard;
      if (!std::filesystem::exists(p, ec)) fail("shard file " + quote(shard) + " does not exist in " + quote(dir.string()));
      const std::filesystem::path real = std::filesystem::canonical(p, ec);
      if (ec || real.parent_path() != real_dir)
        fail("shard name " + quote(shard) + " must be a plain file name in the model dir (it resolves to " +
             quote(real.string()) + ")");
      shard_index.emplace(shard, c.files_.size());
      c.add_file(p, mode);
    }

    for (const auto& [tensor, shard] : weight_map) {
      const std::size_t s = shard_index.at(shard);
      const TensorInfo* info = c.files_[s].find(tensor);
      if (!info) index_error(index_name, "tensor " + quote(tensor) + " is listed in shard " + quote(shard) + " but that shard does not contain it");
      c.entries_.push_back({info->name, s, info});
    }
    for (const auto& [shard, s] : shard_index) {
      for (const TensorInfo& t : c.files_[s].tensors()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end())
          fail("tensor " + quote(t.name) + " in shard " + quote(shard) + " is not listed in weight_map");
        if (it->second != shard)
          fail("tensor " + quote(t.name) + " is in two shards: " + quote(it->second) + " (per weight_map) and " + quote(shard));
      }
    }
    // weight_map is a std::map, so entries_ is already sorted by name.
    return c;
  }

  static std::map<std::string, std::string> read_weight_map(const std::filesystem::path& index_path) {
    const MappedFile file = MappedFile::open(index_path, LoadMode::Read, detail::kMaxIndexBytes);
    const auto bytes = file.bytes();
    return parse_weight_map(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                            index_path.string());
  }

  [[noreturn]] static void index_error(const std::string& index_name, const std::string& message) {
    throw Error(index_name + ": index: " + message);
  }

  void add_file(const std::filesystem::path& path, LoadMode mode) {
    files_.push_back(SafetensorsFile::open(path, mode));
  }

  const SafetensorsView& shard_view(std::size_t shard) const { return memory_ ? *memory_ : files_[shard].view(); }

  void index_single_shard() {
    const SafetensorsView& view = shard_view(0);
    source_ = view.source();
    for (const TensorInfo& t : view.tensors()) entries_.push_back({t.name, 0, &t});
  }

  std::string source_;
  std::vector<SafetensorsFile> files_;             // one per shard; TensorInfo addresses survive vector moves
  std::optional<SafetensorsView> memory_;          // from_memory's only shard, instead of files_
  std::vector<detail::CheckpointEntry> entries_;   // sorted by name
};

}  // namespace blockformer::io
