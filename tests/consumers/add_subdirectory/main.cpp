// Tiny consumer of normnorm: it only has to compile against the installed or
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

    std::printf("normnorm %s\n", NORMNORM_VERSION_STRING);
    return 0;
}
