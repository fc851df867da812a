// normnorm version. This header is the single place the version is written:
// the top-level CMakeLists.txt parses these three numbers from it.
#pragma once

#define NORMNORM_VERSION_MAJOR 0
#define NORMNORM_VERSION_MINOR 2
#define NORMNORM_VERSION_PATCH 0

#define NORMNORM_VERSION_STRING "0.2.0"

// Single integer for preprocessor comparisons, e.g. NORMNORM_VERSION >= 200 for 0.2.0.
#define NORMNORM_VERSION \
    (NORMNORM_VERSION_MAJOR * 100000 + NORMNORM_VERSION_MINOR * 100 + NORMNORM_VERSION_PATCH)
