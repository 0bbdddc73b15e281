// dskit version: the one source of the version number (CMake reads these lines).
#pragma once

#define DSKIT_VERSION_MAJOR 0
#define DSKIT_VERSION_MINOR 1
#define DSKIT_VERSION_PATCH 0

#define DSKIT_VERSION (DSKIT_VERSION_MAJOR * 10000 + DSKIT_VERSION_MINOR * 100 + DSKIT_VERSION_PATCH)

namespace dskit {
inline constexpr int version_major = DSKIT_VERSION_MAJOR;
inline constexpr int version_minor = DSKIT_VERSION_MINOR;
inline constexpr int version_patch = DSKIT_VERSION_PATCH;
} // namespace dskit
