// SPDX-License-Identifier: Apache-2.0
// Built by tests/consumer/pkgconfig.cmake with nothing but `pkg-config --cflags --libs blockformer`.
// Eigen and nlohmann_json come in through blockformer.pc's Requires; no model is instantiated, to
// keep the test to a few seconds (consumer_install compiles one).
#include <blockformer/config.hpp>
#include <blockformer/version.hpp>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>

static_assert(__cplusplus >= 202002L, "blockformer.pc's Cflags must select C++20");
static_assert(BLOCKFORMER_VERSION_MAJOR == EXPECTED_MAJOR && BLOCKFORMER_VERSION_MINOR == EXPECTED_MINOR &&
                  BLOCKFORMER_VERSION_PATCH == EXPECTED_PATCH,
              "version.hpp disagrees with project(VERSION)");
static_assert(BLOCKFORMER_VERSION == EXPECTED_MAJOR * 10000 + EXPECTED_MINOR * 100 + EXPECTED_PATCH);

int main() {
  std::printf("blockformer %s\n", BLOCKFORMER_VERSION_STRING);
  return std::strcmp(BLOCKFORMER_VERSION_STRING, EXPECTED_STRING) == 0 ? 0 : 1;
}
