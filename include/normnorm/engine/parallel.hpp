#pragma once
// Running per-group work on the caller's Eigen::ThreadPoolDevice. Work is split
// by group (or by fixed blocks of groups), and every group's result depends only
// on its own data, so the outcome is bit-identical for any thread count.

// Threading runs on Eigen's ThreadPoolDevice, which the Tensor module defines only
// under EIGEN_USE_THREADS: include normnorm before Eigen's Tensor header, or define
// EIGEN_USE_THREADS yourself.
#ifndef EIGEN_USE_THREADS
#define EIGEN_USE_THREADS
#endif
#include <unsupported/Eigen/CXX11/Tensor>
#ifndef EIGEN_CXX11_TENSOR_TENSOR_DEVICE_THREAD_POOL_H
#error "normnorm needs Eigen::ThreadPoolDevice: include <normnorm/normnorm.hpp> before <unsupported/Eigen/CXX11/Tensor>, or define EIGEN_USE_THREADS first"
#endif

#include "normnorm/config.hpp"

namespace normnorm::engine {

// Calls work(i) for i in [0, count): serially without a device, otherwise spread
// over the device's threads. bytes_per_item and cycles_per_item let Eigen's cost
// model pick the block size (small groups are batched together). Work estimated
// under serial_cycles runs on the calling thread: waking the pool costs more
// (measured: batch 1d 128x784 polynomial evaluation, 0.11 ms serial, 0.17 ms on two threads).
constexpr double serial_cycles = 5e5;

template <class Work>
inline void parallel_for(const Eigen::ThreadPoolDevice* device, index_t count, double bytes_per_item,
                         double cycles_per_item, Work&& work) {
  if (!device || device->numThreads() <= 1 || count <= 1 || double(count) * cycles_per_item < serial_cycles) {
    for (index_t i = 0; i < count; ++i) work(i);
    return;
  }
  device->parallelFor(static_cast<Eigen::Index>(count), Eigen::TensorOpCost(bytes_per_item, bytes_per_item, cycles_per_item),
                      [&work](Eigen::Index first, Eigen::Index last) {
                        for (Eigen::Index i = first; i < last; ++i) work(static_cast<index_t>(i));
                      });
}

}  // namespace normnorm::engine
