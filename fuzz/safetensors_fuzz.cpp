// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the safetensors parser, from memory. libFuzzer hands over a heap buffer of exactly
// `size` bytes, so ASan flags any read past the file. Every accepted file must satisfy the parser's contract:
// tensor byte ranges lie inside the data section and tile it exactly; F32/F16/BF16 tensors convert; every
// other dtype is refused by name. A violated contract aborts (a finding), a blockformer::Error is a rejection.
#include <blockformer/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

[[noreturn]] void contract_violated(const char* what) {
  std::fprintf(stderr, "safetensors_fuzz: contract violated: %s\n", what);
  std::abort();
}

void exercise(const blockformer::io::SafetensorsView& view, std::span<const std::byte> file) {
  using namespace blockformer::io;
  std::uint64_t total = 0;
  volatile unsigned sink = 0;
  for (const TensorInfo& t : view.tensors()) {
    const auto bytes = view.bytes(t);
    if (bytes.size() != t.end - t.begin) contract_violated("bytes() size differs from end - begin");
    if (!bytes.empty() && (bytes.data() < file.data() || bytes.data() + bytes.size() > file.data() + file.size()))
      contract_violated("tensor bytes outside the file");
    if (!bytes.empty()) sink = sink + std::to_integer<unsigned>(bytes.front()) + std::to_integer<unsigned>(bytes.back());
    if (t.shape.size() > 8) contract_violated("rank over 8");
    if (view.find(t.name) != &t) contract_violated("find() does not return the tensor");
    total += bytes.size();
    const bool floating = t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16;
    try {
      std::vector<float> out(floating ? t.numel() : 0);
      convert_to_float(t, bytes, out);
      if (!floating) contract_violated("convert_to_float accepted a non-float dtype");
      for (float f : out) sink = sink + (f == f ? 1u : 0u);
    } catch (const blockformer::Error&) {
      if (floating) contract_violated("convert_to_float refused a valid float tensor");
    }
  }
  for (const auto& [key, value] : view.metadata()) sink = sink + unsigned(key.size() + value.size());
  // The header length is the first 8 bytes; the tensors must cover exactly what follows the header.
  std::uint64_t header = 0;
  std::memcpy(&header, file.data(), 8);
  if (8 + header + total != file.size()) contract_violated("tensors do not tile the data section");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = std::as_bytes(std::span(data, size));
  try {
    const auto view = blockformer::io::SafetensorsView::parse(file, "fuzz.safetensors");
    exercise(view, file);
  } catch (const blockformer::Error&) {
    // A rejection with a message: the intended outcome for hostile input.
  }
  return 0;
}
