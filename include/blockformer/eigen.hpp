// SPDX-License-Identifier: Apache-2.0
#pragma once
// The core plus the Eigen CPU backend (host compiler only).
#include "blockformer/backends/eigen/eigen_backend.hpp"
#include "blockformer/blockformer.hpp"
