#pragma once
// LayerConfig moved to normnorm/layer_config.hpp (beside options.hpp: the engine and
// validation use it, so it belongs below the layer classes). This include keeps
// code written against 0.2 compiling.
#include "normnorm/layer_config.hpp"
