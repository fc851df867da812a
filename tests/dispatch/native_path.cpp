// The native path, built with the dispatch archive's own flags (baseline), next
// to the dispatch targets in normnorm_dispatch_archive: check_dispatch_symbols.cmake
// checks that it shares no normnorm code symbol with them either.

#include <vector>

#include "normnorm/normnorm.hpp"

namespace normnorm_dispatch_archive {

// Instantiates the native and scalar kernels (the archive's tests never call it).
void run_native_path() {
  for (normnorm::SimdPath path : {normnorm::SimdPath::native, normnorm::SimdPath::scalar}) {
    const auto config = normnorm::LayerConfig::group_normal_norm(2, 4);
    std::vector<float> x(2 * 4 * 9, 0.5f), y(x.size()), gy(x.size(), 1.0f), gx(x.size());
    normnorm::SavedContext<float> context;
    normnorm::Execution execution;
    execution.simd_path = path;
    normnorm::ForwardArgs<float> args;
    args.input = x.data();
    args.shape = normnorm::Shape{2, 4, 3, 3};
    args.output = y.data();
    (void)normnorm::try_forward(config, normnorm::Mode::eval, args, context, execution);
  }
}

}  // namespace normnorm_dispatch_archive
