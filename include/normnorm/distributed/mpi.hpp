#pragma once
// normnorm::MpiReducer: the batch forms' Reducer over an MPI communicator
// (docs/distributed.md). Link normnorm::mpi (CMake; built when find_package(MPI)
// finds MPI) or add your MPI's flags yourself.
//
//   MPI_Init(&argc, &argv);
//   normnorm::MpiReducer reducer(MPI_COMM_WORLD);
//   normnorm::Execution execution;
//   execution.reducer = &reducer;
//   normnorm::forward(config, normnorm::Mode::train, args, context, execution);  // this rank's slice
//
// One MPI_Allgather per collective, never MPI_Allreduce: normnorm adds the gathered
// partial sums itself in rank order (engine/reduction.hpp), so results are the same
// bits on every rank and from run to run for a given number of ranks, whatever
// algorithm the MPI library picks. Calls are made from the thread that calls
// normnorm (MPI_THREAD_FUNNELED suffices when that is the main thread). The
// communicator is not duplicated: keep normnorm's calls in the same order on every rank.

// The C API only: no MPI C++ bindings (deprecated, and their headers warn).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <climits>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "normnorm/distributed/reducer.hpp"

namespace normnorm {

class MpiReducer final : public Reducer {
 public:
  explicit MpiReducer(MPI_Comm comm) : comm_(comm) {
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm communicator() const { return comm_; }

  const double* allgather(const double* values, std::size_t count) const override {
    if (count > static_cast<std::size_t>(INT_MAX))
      throw std::length_error("normnorm: MpiReducer: " + std::to_string(count) + " values exceed MPI's int count");
    result_.resize(count * static_cast<std::size_t>(size_));
    // MPI needs a non-null buffer even for zero values.
    double dummy = 0.0;
    check(MPI_Allgather(count ? values : &dummy, static_cast<int>(count), MPI_DOUBLE, count ? result_.data() : &dummy,
                        static_cast<int>(count), MPI_DOUBLE, comm_),
          "MPI_Allgather");
    ++calls_;
    return result_.data();
  }

  // Collectives made so far (for tests and measurements).
  std::size_t calls() const { return calls_; }

 private:
  static void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw std::runtime_error(std::string("normnorm: MpiReducer: ") + what + " failed: " + std::string(text, static_cast<std::size_t>(length)));
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  mutable std::vector<double> result_;
  mutable std::size_t calls_ = 0;
};

}  // namespace normnorm
