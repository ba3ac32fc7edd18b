// SPDX-License-Identifier: Apache-2.0
#pragma once
// The safetensors header parser: a strict, non-owning parse of a byte span into a validated view.
// Everything in a file is untrusted: numbers read from it are checked in uint64 with overflow checks,
// the JSON header is validated against the exact schema, and every rejection throws
// blockformer::Error naming the file, the tensor and the offending value.
#include <algorithm>
#include <bit>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockformer/error.hpp"
#include "blockformer/io/dtype.hpp"

namespace blockformer::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swaps in convert_to_float/read_i64");

/// "[2, 3]": a tensor shape as messages print it.
inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// One header entry, validated: begin/end are offsets into the data section with end - begin == byte size.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::uint64_t> shape;  // rank 0..8, each dim < 2^48
  std::uint64_t begin = 0;
  std::uint64_t end = 0;

  /// Number of elements (1 for rank 0); cannot overflow for entries produced by the parser.
  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {

inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit
inline constexpr std::uint64_t kMaxJsonInteger = std::uint64_t{1} << 48;  // beyond any real tensor
inline constexpr std::size_t kMaxRank = 8;
inline constexpr std::size_t kMaxHeaderDepth = 3;  // top object -> tensor entry -> shape array

inline std::string range_string(std::uint64_t begin, std::uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::uint64_t load_le_u64(const std::byte* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// nlohmann's message without its "[json.exception.parse_error.101] " tag, which means nothing to users.
inline std::string json_error_text(const std::exception& e) {
  std::string what = e.what();
  if (auto close = what.find("] "); what.starts_with("[json.") && close != std::string::npos) what.erase(0, close + 2);
  return what;
}

/// Header entry as seen by the SAX handler, before sizes are checked.
struct RawTensor {
  std::string name;
  std::optional<DType> dtype;
  std::optional<std::vector<std::uint64_t>> shape;
  std::optional<std::array<std::uint64_t, 2>> offsets;
};

// A SAX handler instead of a DOM parse: nlohmann's DOM silently keeps the last of duplicate keys, and a
// schema-driven state machine bounds nesting and memory before anything is built.
class HeaderHandler {
 public:
  using json = nlohmann::json;

  explicit HeaderHandler(const std::string& source) : source_(source) {}

  std::vector<RawTensor> take_tensors() { return std::move(tensors_); }
  std::map<std::string, std::string> take_metadata() { return std::move(metadata_); }

  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(json::number_integer_t v) {
    return number(v == 0 ? "-0" : std::to_string(v), std::nullopt);  // only literals with a minus sign land here
  }
  bool number_unsigned(json::number_unsigned_t v) { return number(std::to_string(v), v); }
  bool number_float(json::number_float_t, const json::string_t& text) { return number(text, std::nullopt); }
  bool binary(json::binary_t&) { return scalar("binary"); }

  bool string(json::string_t& s) {
    switch (state_) {
      case State::MetaValue:
        metadata_.emplace(key_, s);
        state_ = State::MetaKey;
        return true;
      case State::FieldValue:
        if (key_ != "dtype") fail(tensor_prefix() + quote(key_) + " must be an array, found a string");
        current_.dtype = parse_dtype(s);
        if (!current_.dtype) fail(tensor_prefix() + "unknown dtype " + quote(s));
        state_ = State::FieldKey;
        return true;
      default:
        return scalar("a string");
    }
  }

  bool start_object(std::size_t) {
    switch (state_) {
      case State::Start:
        state_ = State::TopKey;
        return true;
      case State::TopValue:
        if (key_ == "__metadata__") {
          state_ = State::MetaKey;
        } else {
          current_ = RawTensor{key_, {}, {}, {}};
          field_keys_.clear();
          state_ = State::FieldKey;
        }
        return true;
      default:
        return nested("an object");
    }
  }

  bool end_object() {
    if (state_ == State::MetaKey) {
      state_ = State::TopKey;
    } else if (state_ == State::FieldKey) {
      for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!field_keys_.contains(field)) fail(tensor_prefix() + "missing " + quote(field));
      tensors_.push_back(std::move(current_));
      state_ = State::TopKey;
    }  // else the top object closed: strict parsing rejects anything after it
    return true;
  }

  bool start_array(std::size_t) {
    if (state_ == State::FieldValue && key_ != "dtype") {
      array_.clear();
      array_count_ = 0;
      state_ = State::Array;
      return true;
    }
    return nested("an array");
  }

  bool end_array() {
    if (key_ == "shape") {
      if (array_count_ > kMaxRank)
        fail(tensor_prefix() + "rank " + std::to_string(array_count_) + " exceeds " + std::to_string(kMaxRank));
      current_.shape = array_;
    } else {
      if (array_count_ != 2)
        fail(tensor_prefix() + "data_offsets must have exactly 2 entries, found " + std::to_string(array_count_));
      current_.offsets = std::array<std::uint64_t, 2>{array_[0], array_[1]};
    }
    state_ = State::FieldKey;
    return true;
  }

  bool key(json::string_t& k) {
    switch (state_) {
      case State::TopKey:
        if (!top_keys_.insert(k).second) fail("duplicate key " + quote(k) + " in header");
        state_ = State::TopValue;
        break;
      case State::MetaKey:
        if (metadata_.contains(k)) fail("duplicate key " + quote(k) + " in __metadata__");
        state_ = State::MetaValue;
        break;
      default:  // FieldKey: the only other state in which the parser reports keys
        if (k != "dtype" && k != "shape" && k != "data_offsets")
          fail(tensor_prefix() + "unexpected field " + quote(k) + " (expected dtype, shape, data_offsets)");
        if (!field_keys_.insert(k).second) fail(tensor_prefix() + "duplicate key " + quote(k));
        state_ = State::FieldValue;
        break;
    }
    key_ = k;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const json::exception& e) {
    const std::size_t byte = position > 0 ? position - 1 : 0;  // nlohmann counts bytes read, including the bad one
    fail("invalid header JSON at byte " + std::to_string(byte) + ": " + json_error_text(e));
  }

 private:
  enum class State { Start, TopKey, TopValue, MetaKey, MetaValue, FieldKey, FieldValue, Array };

  [[noreturn]] void fail(const std::string& message) const { throw Error(source_ + ": " + message); }

  std::string tensor_prefix() const { return "tensor " + quote(current_.name) + ": "; }

  // Depth of the container about to open, given the state in which it opens.
  std::size_t depth_of_new_container() const {
    switch (state_) {
      case State::Start: return 1;
      case State::TopValue: return 2;
      case State::MetaValue: case State::FieldValue: return 3;
      default: return kMaxHeaderDepth + 1;
    }
  }

  bool nested(const char* found) {
    if (depth_of_new_container() > kMaxHeaderDepth) fail("header nesting too deep (more than 3 levels)");
    return scalar(found);
  }

  // A value of the wrong JSON type where the schema wants something else.
  bool scalar(const std::string& found) {
    switch (state_) {
      case State::Start: fail("header JSON must be an object, found " + found);
      case State::TopValue:
        if (key_ == "__metadata__") fail("__metadata__ must be an object of strings, found " + found);
        fail("tensor " + quote(key_) + ": entry must be an object, found " + found);
      case State::MetaValue: fail("__metadata__." + key_ + " must be a string, found " + found);
      case State::FieldValue:
        fail(tensor_prefix() + quote(key_) + " must be " + (key_ == "dtype" ? "a string" : "an array") +
             ", found " + found);
      default:  // Array
        fail(tensor_prefix() + element_name() + " is not a non-negative integer < 2^48, found " + found);
    }
  }

  bool number(const std::string& text, std::optional<std::uint64_t> value) {
    if (state_ != State::Array) return scalar("the number " + text);
    if (!value || *value >= kMaxJsonInteger)
      fail(tensor_prefix() + element_name() + " is not a non-negative integer < 2^48, found " + text);
    if (array_.size() < kMaxRank) array_.push_back(*value);
    ++array_count_;
    return true;
  }

  std::string element_name() const { return key_ + "[" + std::to_string(array_count_) + "]"; }

  const std::string& source_;
  State state_ = State::Start;
  std::string key_;  // last key seen: the current tensor field, metadata key or top-level key
  std::set<std::string> top_keys_;
  std::set<std::string> field_keys_;
  RawTensor current_;
  std::vector<std::uint64_t> array_;  // at most kMaxRank entries kept; array_count_ counts them all
  std::size_t array_count_ = 0;
  std::vector<RawTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Pickle protocol 2-5 starts 0x80 0x02..0x05; torch.save's zip format starts "PK\3\4". A real safetensors file
// may begin with the same two bytes (header length 640 = 0x280 is legal), so only a header that could not be
// valid safetensors counts as pickle.
inline bool looks_like_pickle(std::span<const std::byte> bytes) {
  if (bytes.size() < 4) return false;
  const auto b = [&](std::size_t i) { return std::to_integer<unsigned>(bytes[i]); };
  const bool pickle = b(0) == 0x80 && b(1) >= 2 && b(1) <= 5;
  const bool zip = b(0) == 'P' && b(1) == 'K' && b(2) == 3 && b(3) == 4;
  if (!pickle && !zip) return false;
  if (bytes.size() < 9) return true;
  const std::uint64_t n = load_le_u64(bytes.data());
  return n > kMaxHeaderBytes || n + 8 > bytes.size() || b(8) != '{';
}

inline bool has_pickle_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".pkl" || ext == ".ckpt";
}

inline constexpr std::string_view kPickleMessage = "pickle checkpoints are not loaded; convert to safetensors";

}  // namespace detail

/// A validated safetensors file in memory; does not own the bytes, which must outlive it.
class SafetensorsView {
 public:
  /// Parses and validates every header rule; throws Error naming source_name and the culprit.
  static SafetensorsView parse(std::span<const std::byte> bytes, std::string source_name) {
    SafetensorsView view;
    view.bytes_ = bytes;
    view.source_ = std::make_shared<const std::string>(std::move(source_name));
    view.parse_all();
    return view;
  }

  /// All tensors, sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  /// The tensor called name, or nullptr.
  const TensorInfo* find(std::string_view name) const {
    auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                               [](const TensorInfo& t, std::string_view n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
  }

  /// The raw little-endian bytes of a tensor of this view (any alignment).
  std::span<const std::byte> bytes(const TensorInfo& t) const {
    if (t.begin > t.end || t.end > data_.size())
      throw Error(*source_ + ": tensor " + quote(t.name) + " offsets " + detail::range_string(t.begin, t.end) +
                  " are outside the data section of " + std::to_string(data_.size()) + " bytes");
    return data_.subspan(t.begin, t.end - t.begin);
  }

  /// The header's __metadata__ (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The name given to parse, used in every error message.
  const std::string& source() const { return *source_; }

 private:
  SafetensorsView() = default;

  [[noreturn]] void fail(const std::string& message) const { throw Error(*source_ + ": " + message); }

  void parse_all() {
    if (detail::looks_like_pickle(bytes_)) fail(std::string(detail::kPickleMessage));
    if (bytes_.size() < 8)
      fail("header too small: " + std::to_string(bytes_.size()) + " bytes (need at least 8)");
    const std::uint64_t n = detail::load_le_u64(bytes_.data());
    if (n > detail::kMaxHeaderBytes)
      fail("header length " + std::to_string(n) + " exceeds " + std::to_string(detail::kMaxHeaderBytes));
    if (8 + n > bytes_.size())
      fail("header length " + std::to_string(n) + " but file has " + std::to_string(bytes_.size()) + " bytes");
    const auto header = std::string_view(reinterpret_cast<const char*>(bytes_.data()) + 8, n);
    data_ = bytes_.subspan(8 + n);
    parse_header(header);
  }

  void parse_header(std::string_view header) {
    // nlohmann's lexer treats NUL as end of input, so "{}\0junk" would pass; a raw NUL is never valid JSON.
    if (auto nul = header.find('\0'); nul != std::string_view::npos)
      fail("invalid header JSON at byte " + std::to_string(nul) + ": NUL byte");
    const std::size_t last = header.find_last_not_of(' ');
    if (last == std::string_view::npos) fail("invalid header JSON at byte 0: header is empty");
    if (header[0] != '{') fail("invalid header JSON at byte 0: expected '{'");
    const std::string_view json = header.substr(0, last + 1);

    detail::HeaderHandler handler(*source_);
    nlohmann::json::sax_parse(json.begin(), json.end(), &handler);
    // Strict parsing already rejected anything but whitespace after the object; the format allows only spaces.
    if (json.back() != '}')
      fail("invalid header JSON at byte " + std::to_string(json.find_last_of('}') + 1) +
           ": trailing bytes after the object (only spaces may pad the header)");
    metadata_ = handler.take_metadata();
    build_tensors(handler.take_tensors());
  }

  void build_tensors(std::vector<detail::RawTensor> raw) {
    tensors_.reserve(raw.size());
    for (auto& r : raw) {
      TensorInfo t{std::move(r.name), *r.dtype, std::move(*r.shape), (*r.offsets)[0], (*r.offsets)[1]};
      const std::string prefix = "tensor " + quote(t.name) + ": ";
      if (t.end < t.begin)
        fail(prefix + "end < begin in data_offsets " + detail::range_string(t.begin, t.end));
      std::optional<std::uint64_t> bits = dtype_bits(t.dtype);
      for (auto d : t.shape)
        if (bits) bits = detail::checked_mul(*bits, d);
      if (!bits) fail(prefix + "size overflows 64 bits (shape " + shape_string(t.shape) + ")");
      const std::string shape_dtype = "shape " + shape_string(t.shape) + " dtype " +
                                      std::string(dtype_name(t.dtype));
      if (*bits % 8 != 0) fail(prefix + shape_dtype + " is not a whole number of bytes");
      if (t.end - t.begin != *bits / 8)
        fail(prefix + shape_dtype + " needs " + std::to_string(*bits / 8) + " bytes, offsets give " +
             std::to_string(t.end - t.begin));
      tensors_.push_back(std::move(t));
    }
    check_tiling();
    std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }

  // The ranges must cover the data section exactly, so no byte is unaccounted for (no polyglot payload) and
  // no two tensors alias.
  void check_tiling() {
    std::vector<const TensorInfo*> order;
    order.reserve(tensors_.size());
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
    });
    std::uint64_t expected = 0;
    const TensorInfo* previous = nullptr;
    for (const TensorInfo* t : order) {
      const std::string where = "tensor " + quote(t->name) + ": offsets " + detail::range_string(t->begin, t->end);
      const std::string after = previous ? "tensor " + quote(previous->name) + " (ends at " + std::to_string(expected) + ")"
                                         : std::string("the start of the data section");
      if (t->begin > expected)
        fail(where + " leave a gap of " + std::to_string(t->begin - expected) + " bytes after " + after);
      if (t->begin < expected) fail(where + " overlap " + after);
      expected = t->end;
      previous = t;
    }
    const std::uint64_t header_end = bytes_.size() - data_.size();
    if (expected < data_.size())
      fail("file has " + std::to_string(data_.size() - expected) + " bytes after the last tensor" +
           (previous ? " (" + quote(previous->name) + " ends at data offset " + std::to_string(expected) + ")" : ""));
    if (expected > data_.size()) {
      const auto needed = detail::checked_add(header_end, expected);
      fail("file truncated: needs " + (needed ? std::to_string(*needed) : "more than 2^64") + " bytes, has " +
           std::to_string(bytes_.size()) + " (tensor " + quote(previous->name) + " ends at data offset " +
           std::to_string(expected) + ")");
    }
  }

  std::span<const std::byte> bytes_;
  std::span<const std::byte> data_;
  // Behind a pointer so the name's address survives moves of the view (TensorRef::source and Checkpoint
  // hold string_views of it; a moved short string would take its characters along).
  std::shared_ptr<const std::string> source_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace blockformer::io
