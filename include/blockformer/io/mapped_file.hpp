// SPDX-License-Identifier: Apache-2.0
#pragma once
// A file's bytes in memory, mapped or read, owned by one movable object. Refuses anything that is
// not a regular file, naming the path and the system's reason.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockformer/error.hpp"

namespace blockformer::io {

/// How a file's bytes get into memory.
enum class LoadMode {
  Mmap,  // map the file read-only: no copy, but see MappedFile about files changed while mapped
  Read,  // read the whole file into memory: safe for untrusted files that others may modify
};

/// Owns a file's bytes, mapped or read; movable, not copyable.
///
/// Mmap limitation: if another process truncates the file while it is mapped, touching the lost pages raises
/// SIGBUS, which no check here can prevent. Use LoadMode::Read for files that others may modify.
class MappedFile {
 public:
  /// An empty file object (no bytes).
  MappedFile() = default;

  /// Maps or reads path; throws Error naming the path and the system's reason. Anything but a
  /// regular file (a FIFO, a device, a directory) is refused without blocking, and so is a file
  /// of more than max_bytes, before any of it is read.
  static MappedFile open(const std::filesystem::path& path, LoadMode mode = LoadMode::Mmap,
                         std::uint64_t max_bytes = std::numeric_limits<std::size_t>::max()) {
    MappedFile file;
    file.path_ = path.string();
    // stat before open: opening a FIFO for reading blocks until a writer appears. O_NONBLOCK
    // covers a FIFO swapped in after the stat (it changes nothing for a regular file), and the
    // fstat below checks what was actually opened.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) file.fail_errno("cannot stat");
    if (!S_ISREG(st.st_mode)) throw Error(quote(file.path_) + " is not a regular file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) file.fail_errno("cannot open");
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};
    if (::fstat(fd, &st) != 0) file.fail_errno("cannot stat");
    if (!S_ISREG(st.st_mode)) throw Error(quote(file.path_) + " is not a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_bytes)
      throw Error(quote(file.path_) + " is " + std::to_string(size) + " bytes, more than the " +
                  std::to_string(max_bytes) + " such a file may have");
    if (mode == LoadMode::Mmap && size > 0) {
      void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) file.fail_errno("cannot mmap");
      file.map_ = static_cast<const std::byte*>(p);
      file.map_size_ = static_cast<std::size_t>(size);
    } else if (mode == LoadMode::Read) {
      file.read_all(fd, static_cast<std::size_t>(size));
    }
    return file;
  }

  MappedFile(MappedFile&& other) noexcept { swap(other); }
  MappedFile& operator=(MappedFile&& other) noexcept {
    MappedFile moved(std::move(other));
    swap(moved);
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (map_) ::munmap(const_cast<std::byte*>(map_), map_size_);
  }

  /// The file's bytes; stable across moves of this object.
  std::span<const std::byte> bytes() const {
    return map_ ? std::span<const std::byte>(map_, map_size_) : std::span<const std::byte>(buffer_);
  }

  /// The path given to open.
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_errno(const char* what) const {
    throw Error(std::string(what) + " " + quote(path_) + ": " + std::strerror(errno));
  }

  // Reads until end of file rather than trusting the size from fstat, since the file may change meanwhile.
  void read_all(int fd, std::size_t size_hint) {
    buffer_.resize(size_hint);
    std::size_t got = 0;
    for (;;) {
      if (got == buffer_.size()) buffer_.resize(buffer_.size() + 65536);
      const ssize_t r = ::read(fd, buffer_.data() + got, buffer_.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) fail_errno("cannot read");
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    buffer_.resize(got);
  }

  void swap(MappedFile& other) noexcept {
    std::swap(path_, other.path_);
    std::swap(map_, other.map_);
    std::swap(map_size_, other.map_size_);
    std::swap(buffer_, other.buffer_);
  }

  std::string path_;
  const std::byte* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::vector<std::byte> buffer_;  // LoadMode::Read; vector moves keep its data pointer, so views stay valid
};

}  // namespace blockformer::io
