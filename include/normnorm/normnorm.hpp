#pragma once
// Umbrella header: the whole library, in dependency order.

#include "normnorm/version.hpp"
#include "normnorm/config.hpp"
#include "normnorm/options.hpp"
#include "normnorm/shape.hpp"
#include "normnorm/views.hpp"
#include "normnorm/layout.hpp"
#include "normnorm/running_stats.hpp"
#include "normnorm/noise/philox.hpp"
#include "normnorm/noise/normal.hpp"
#include "normnorm/noise/noise_source.hpp"
#include "normnorm/context.hpp"
#include "normnorm/layers/config.hpp"
#include "normnorm/api.hpp"
#include "normnorm/eigen/functors.hpp"
#include "normnorm/layers/module.hpp"
#include "normnorm/io/npy.hpp"
