// SPDX-License-Identifier: Apache-2.0
#pragma once
// Device-memory planning and the out-of-memory message. Plain C++ (no CUDA headers) so the
// arithmetic and the message are tested on the CPU.
#include <cstddef>
#include <cstdio>
#include <limits>
#include <string>

#include "blockformer/error.hpp"

namespace blockformer::cuda {

/// "1.50 GiB", "12.0 KiB", "512 B".
inline std::string format_bytes(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char text[32];
  if (u == 0) std::snprintf(text, sizeof text, "%zu B", bytes);
  else std::snprintf(text, sizeof text, "%.2f %s", v, units[u]);
  return text;
}

/// The message of the Error thrown when a device allocation fails: what, requested and free bytes.
inline std::string out_of_memory_message(const std::string& what, std::size_t requested, std::size_t free,
                                         std::size_t total) {
  return "CUDA out of memory allocating " + what + ": requested " + std::to_string(requested) + " bytes (" +
         format_bytes(requested) + "), " + std::to_string(free) + " bytes (" + format_bytes(free) + ") free of " +
         format_bytes(total) + " on the device";
}

/// a * b, or an Error naming `what` when the product overflows size_t.
inline std::size_t checked_multiply(std::size_t a, std::size_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
    throw Error(std::string(what) + ": size overflows (" + std::to_string(a) + " x " + std::to_string(b) + ")");
  return a * b;
}

/// Bytes of one of K or V for a cache [layers, slots, heads, capacity, head_dim] of elem_bytes each.
inline std::size_t kv_stream_bytes(int layers, int slots, int heads, int capacity, int head_dim, int elem_bytes) {
  if (layers < 0 || slots < 0 || heads < 0 || capacity < 0 || head_dim < 0 || elem_bytes <= 0)
    throw Error("KV cache: negative extent (layers " + std::to_string(layers) + ", slots " + std::to_string(slots) +
                ", heads " + std::to_string(heads) + ", capacity " + std::to_string(capacity) + ", head_dim " +
                std::to_string(head_dim) + ")");
  std::size_t n = checked_multiply(std::size_t(layers), std::size_t(slots), "KV cache");
  n = checked_multiply(n, std::size_t(heads), "KV cache");
  n = checked_multiply(n, std::size_t(capacity), "KV cache");
  n = checked_multiply(n, std::size_t(head_dim), "KV cache");
  return checked_multiply(n, std::size_t(elem_bytes), "KV cache");
}

/// The largest batch whose per-sequence bytes fit in `free` after `fixed` bytes and a `headroom`
/// fraction kept for the allocator and cuBLAS workspaces; 0 when not even one sequence fits.
inline int largest_batch(std::size_t per_sequence, std::size_t fixed, std::size_t free, double headroom = 0.05) {
  if (per_sequence == 0) throw Error("largest_batch: per-sequence bytes must be positive");
  const double usable = double(free) * (1.0 - headroom);
  if (usable <= double(fixed)) return 0;
  const double n = (usable - double(fixed)) / double(per_sequence);
  return n >= double(std::numeric_limits<int>::max()) ? std::numeric_limits<int>::max() : int(n);
}

}  // namespace blockformer::cuda
