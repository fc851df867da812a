// Tiny consumer of normnorm, shared by the add_subdirectory, find_package and
// FetchContent consumers: it only has to compile against the installed or
// embedded library (including the headers of its dependencies, Eigen and xsimd,
// which must arrive through normnorm::normnorm's usage requirements), link, and
// print the version.
#include <normnorm/normnorm.hpp>  // the umbrella header (includes version.hpp)

#include <Eigen/Core>
#include <xsimd/xsimd.hpp>

#include <cstdio>

int main() {
    const Eigen::Vector3d v(1.0, 2.0, 3.0);
    if (v.sum() != 6.0) {
        std::fprintf(stderr, "Eigen sanity check failed\n");
        return 1;
    }

    using batch = xsimd::batch<double>;
    const batch ones(1.0);
    if (xsimd::hadd(ones) != static_cast<double>(batch::size)) {
        std::fprintf(stderr, "xsimd sanity check failed\n");
        return 1;
    }

    // One small call through the runtime-selected kernels (with SIMD dispatch in
    // the find_package and FetchContent consumers: normnorm_add_simd_dispatch).
    const auto config = normnorm::LayerConfig::batch_normal_norm_1d(3);
    const float x[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    float y[6] = {};
    const float weight[3] = {1.0f, 1.0f, 1.0f}, bias[3] = {0.0f, 0.0f, 0.0f};
    float running_mean[3] = {0, 0, 0}, running_var[3] = {1, 1, 1}, running_lambda[3] = {1, 1, 1};
    float running_norm[3] = {0.8f, 0.8f, 0.8f};
    normnorm::SavedContext<float> context;
    normnorm::ForwardArgs<float> args;
    args.input = x;
    args.shape = normnorm::Shape{2, 3};
    args.output = y;
    args.weight = {weight, 3};
    args.bias = {bias, 3};
    args.running = {running_mean, running_var, running_lambda, running_norm, nullptr, 3};
    args.noise = normnorm::NoiseSource<float>::philox(1, 0);
    normnorm::forward(config, normnorm::Mode::train, args, context);
    if (!(y[0] == y[0]) || y[0] == 0.0f) {
        std::fprintf(stderr, "normnorm forward sanity check failed\n");
        return 1;
    }
#if defined(NORMNORM_SIMD_DISPATCH)
    const bool dispatch = true;
#else
    const bool dispatch = false;
#endif
    std::printf("normnorm %s, SIMD path %s (dispatch %s)\n", NORMNORM_VERSION_STRING, normnorm::resolved_simd_arch(),
                dispatch ? "on" : "off");
    return 0;
}
