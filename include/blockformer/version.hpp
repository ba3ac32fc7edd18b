// SPDX-License-Identifier: Apache-2.0
#pragma once
// The library's version, SemVer (see CHANGELOG.md). The single source of truth: CMakeLists.txt
// reads these three numbers for project(VERSION), which feeds blockformerConfigVersion.cmake and
// blockformer.pc, so the macros, find_package(blockformer 0.1) and pkg-config never disagree.

#define BLOCKFORMER_VERSION_MAJOR 0
#define BLOCKFORMER_VERSION_MINOR 1
#define BLOCKFORMER_VERSION_PATCH 0

/// For `#if BLOCKFORMER_VERSION >= 100` (0.1.0) style checks: MAJOR * 10000 + MINOR * 100 + PATCH.
#define BLOCKFORMER_VERSION \
  (BLOCKFORMER_VERSION_MAJOR * 10000 + BLOCKFORMER_VERSION_MINOR * 100 + BLOCKFORMER_VERSION_PATCH)

#define BLOCKFORMER_VERSION_STR_(x) #x
#define BLOCKFORMER_VERSION_XSTR_(x) BLOCKFORMER_VERSION_STR_(x)
/// "MAJOR.MINOR.PATCH", built from the numbers above.
#define BLOCKFORMER_VERSION_STRING                                                     \
  BLOCKFORMER_VERSION_XSTR_(BLOCKFORMER_VERSION_MAJOR) "." BLOCKFORMER_VERSION_XSTR_( \
      BLOCKFORMER_VERSION_MINOR) "." BLOCKFORMER_VERSION_XSTR_(BLOCKFORMER_VERSION_PATCH)
