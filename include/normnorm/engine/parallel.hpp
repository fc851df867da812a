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

#include <type_traits>

#include "normnorm/config.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::engine {

// The caller's thread pool as the kernels see it. Eigen's pool code is reached
// through `run`, a function compiled in the caller's translation unit, so it is
// never compiled into a dispatch target's objects, where it would be one more
// shared inline function with that target's instructions (detail/target_namespace.hpp).
struct Workers {
  const Eigen::ThreadPoolDevice* device = nullptr;  // null: the calling thread only
  int threads = 1;
  // Calls run_range(work, first, last) over [0, count) on the device's threads.
  void (*run)(const Eigen::ThreadPoolDevice& device, index_t count, double bytes_per_item, double cycles_per_item,
              void* work, void (*run_range)(void* work, index_t first, index_t last)) = nullptr;
  // Which of slots() per-thread scratch slots the calling thread owns: 0 for a thread
  // outside the pool (the caller, which runs work too), 1 + its index for a pool thread.
  int (*slot_of_device)(const Eigen::ThreadPoolDevice& device) = nullptr;

  NORMNORM_ALWAYS_INLINE int slot() const { return device ? slot_of_device(*device) : 0; }
};

// How many per-thread scratch slots a call on `device` needs (Workers::slot): every
// thread of its pool may run work, whatever numThreads() the device was given.
inline index_t worker_slots(const Eigen::ThreadPoolDevice* device) {
  return device ? static_cast<index_t>(device->numThreadsInPool()) + 1 : 1;
}

NORMNORM_TARGET_NAMESPACE_BEGIN

inline void run_on_device(const Eigen::ThreadPoolDevice& device, index_t count, double bytes_per_item,
                          double cycles_per_item, void* work, void (*run_range)(void*, index_t, index_t)) {
  device.parallelFor(static_cast<Eigen::Index>(count), Eigen::TensorOpCost(bytes_per_item, bytes_per_item, cycles_per_item),
                     [&](Eigen::Index first, Eigen::Index last) {
                       run_range(work, static_cast<index_t>(first), static_cast<index_t>(last));
                     });
}

inline int slot_on_device(const Eigen::ThreadPoolDevice& device) { return device.currentThreadId() + 1; }

// Called on the caller's side (dispatch.hpp's Kernels<T>), never inside a kernel.
inline Workers workers_on(const Eigen::ThreadPoolDevice* device) {
  return {device, device ? device->numThreads() : 1, &run_on_device, &slot_on_device};
}

// Calls work(i) for i in [0, count): serially without a device, otherwise spread
// over the device's threads. bytes_per_item and cycles_per_item let Eigen's cost
// model pick the block size (small groups are batched together). Work estimated
// under serial_cycles runs on the calling thread: waking the pool costs more
// (measured: batch 1d 128x784 polynomial evaluation, 0.11 ms serial, 0.17 ms on two threads).
constexpr double serial_cycles = 5e5;

template <class Work>
inline void parallel_for(const Workers& workers, index_t count, double bytes_per_item, double cycles_per_item,
                         Work&& work) {
  if (!workers.device || workers.threads <= 1 || count <= 1 || double(count) * cycles_per_item < serial_cycles) {
    for (index_t i = 0; i < count; ++i) work(i);
    return;
  }
  using WorkType = std::remove_reference_t<Work>;
  workers.run(*workers.device, count, bytes_per_item, cycles_per_item, const_cast<void*>(static_cast<const void*>(&work)),
              [](void* items, index_t first, index_t last) {
                WorkType& run_item = *static_cast<WorkType*>(items);
                for (index_t i = first; i < last; ++i) run_item(i);
              });
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
