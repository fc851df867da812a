#pragma once
// The hook through which the batch forms reduce over a batch split across
// processes (docs/distributed.md). normnorm owns no transport: an adapter wraps a
// collective engine (distributed/mpi.hpp: MPI; distributed/in_process.hpp: threads
// of one process, for tests) and gives the engine one operation, an allgather of
// doubles. Every sum the engine takes over ranks it then adds itself, in rank
// order, so the result is the same bits on every rank and from run to run for a
// given rank count, whatever the collective library does inside.
//
// Pass one through Execution::reducer. Only the batch forms (batch_1d, batch_2d,
// batch_3d: groups span the samples) use it; the other forms ignore it.

#include <cstddef>

namespace normnorm {

class Reducer {
 public:
  // This process's rank in [0, size()), and the number of ranks.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // A collective: every rank calls it with the same count. Returns every rank's
  // `count` values, rank r's value i at [r * count + i] (size() * count values),
  // in storage the adapter owns, valid until its next call. Throws (or aborts, as
  // the collective library does) when the transport fails.
  virtual const double* allgather(const double* values, std::size_t count) const = 0;

 protected:
  Reducer() = default;
  Reducer(const Reducer&) = default;
  Reducer& operator=(const Reducer&) = default;
  ~Reducer() = default;  // not deleted through a Reducer*
};

}  // namespace normnorm
