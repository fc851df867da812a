#pragma once
// A Reducer over threads of one process: each thread is a rank and calls the
// layers with its own slice of the batch. For tests and for trying the
// distributed path without a cluster (docs/distributed.md).
//
//   normnorm::InProcessGroup group(3);
//   // on thread r:  normnorm::InProcessReducer reducer(group, r);
//   //               execution.reducer = &reducer;  forward(...); backward(...);
//
// Every rank must make the same sequence of calls; a collective with different
// counts on different ranks throws std::logic_error on every rank.

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "normnorm/distributed/reducer.hpp"

namespace normnorm {

// The ranks' meeting point: one per group of threads, outliving their reducers.
class InProcessGroup {
 public:
  explicit InProcessGroup(int ranks) : ranks_(ranks) {
    if (ranks < 1) throw std::invalid_argument("normnorm: InProcessGroup needs at least one rank");
  }
  int size() const { return ranks_; }

  // Rank `rank` contributes `count` values; returns every rank's, in rank order, into `out`.
  void allgather(int rank, const double* values, std::size_t count, std::vector<double>& out) {
    std::unique_lock<std::mutex> lock(mutex_);
    // Wait until the previous collective has been read by every rank.
    cv_.wait(lock, [&] { return !draining_; });
    if (arrived_ == 0) {
      count_ = count;
      mismatch_ = false;
      data_.assign(static_cast<std::size_t>(ranks_) * count, 0.0);
    }
    if (count != count_) mismatch_ = true;
    for (std::size_t i = 0; i < count && i < count_; ++i) data_[static_cast<std::size_t>(rank) * count_ + i] = values[i];
    const std::size_t generation = generation_;
    if (++arrived_ == ranks_) {
      draining_ = true;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
    const bool mismatch = mismatch_;
    if (!mismatch) out.assign(data_.begin(), data_.end());
    if (--arrived_ == 0) {
      draining_ = false;
      cv_.notify_all();
    }
    if (mismatch)
      throw std::logic_error("normnorm: InProcessGroup: the ranks called a collective with different counts "
                             "(they did not make the same sequence of calls)");
  }

 private:
  int ranks_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<double> data_;
  std::size_t count_ = 0;
  int arrived_ = 0;
  std::size_t generation_ = 0;
  bool draining_ = false;
  bool mismatch_ = false;
};

class InProcessReducer final : public Reducer {
 public:
  InProcessReducer(InProcessGroup& group, int rank) : group_(&group), rank_(rank) {
    if (rank < 0 || rank >= group.size())
      throw std::invalid_argument("normnorm: InProcessReducer: rank " + std::to_string(rank) + " outside the group");
  }
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  const double* allgather(const double* values, std::size_t count) const override {
    group_->allgather(rank_, values, count, result_);
    ++calls_;
    bytes_sent_ += count * sizeof(double);
    return result_.data();
  }
  // Collectives made and bytes this rank contributed (for tests and docs).
  std::size_t calls() const { return calls_; }
  std::size_t bytes_sent() const { return bytes_sent_; }

 private:
  InProcessGroup* group_;
  int rank_;
  mutable std::vector<double> result_;
  mutable std::size_t calls_ = 0, bytes_sent_ = 0;
};

}  // namespace normnorm
