// Timing for docs/distributed.md (not a test): under mpirun -np R,
//  1. the latency of one MpiReducer::allgather (median of many) for the record sizes
//     the layers use, and
//  2. one training step of a BatchNormalNorm2d layer (forward + backward) on this
//     rank's slice of a global batch: median step time without a reducer on the
//     slice, with the reducer, and the share of it inside the collectives (which
//     includes waiting for the slowest rank).
// Prints medians from rank 0.



#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <normnorm/distributed/mpi.hpp>
#include <normnorm/normnorm.hpp>

using namespace normnorm;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times every allgather it forwards.
class TimedReducer final : public Reducer {
 public:
  explicit TimedReducer(const Reducer& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  const double* allgather(const double* values, std::size_t count) const override {
    const auto start = Clock::now();
    const double* out = inner_.allgather(values, count);
    seconds += std::chrono::duration<double>(Clock::now() - start).count();
    ++calls;
    return out;
  }
  mutable double seconds = 0;
  mutable std::size_t calls = 0;

 private:
  const Reducer& inner_;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    const MpiReducer mpi(MPI_COMM_WORLD);
    const int rank = mpi.rank(), ranks = mpi.size();
    const int channels = argc > 1 ? std::atoi(argv[1]) : 64;
    const int global_batch = argc > 2 ? std::atoi(argv[2]) : 24;
    const int side = argc > 3 ? std::atoi(argv[3]) : 16;

    // 1. Latency per collective.
    if (rank == 0) std::printf("R = %d\n", ranks);
    for (std::size_t count : {std::size_t(9), std::size_t(channels), std::size_t(5 * channels), std::size_t(7 * channels)}) {
      std::vector<double> values(count, 1.0 + rank);
      for (int i = 0; i < 200; ++i) mpi.allgather(values.data(), count);
      std::vector<double> times;
      for (int i = 0; i < 2000; ++i) {
        MPI_Barrier(MPI_COMM_WORLD);
        const auto start = Clock::now();
        mpi.allgather(values.data(), count);
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      }
      const double mine = median(times);
      double worst = 0;
      MPI_Reduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
      if (rank == 0)
        std::printf("allgather %5zu doubles (%6zu bytes per rank): median %.1f us (slowest rank's median)\n", count,
                    count * sizeof(double), worst * 1e6);
    }

    // 2. One training step of BatchNormalNorm2d(channels) on (n, channels, side, side), n = this rank's share.
    const int n = global_batch / ranks + (rank < global_batch % ranks ? 1 : 0);
    const index_t C = channels;
    const Shape shape{n, C, side, side};
    const std::size_t elements = static_cast<std::size_t>(n) * C * side * side;
    std::vector<float> x(std::max<std::size_t>(elements, 1)), out(x.size()), g(x.size()), gx(x.size());
    for (std::size_t i = 0; i < elements; ++i) {
      x[i] = std::sin(0.37f * float(i + 7 * rank)) + 0.2f * std::cos(0.011f * float(i));
      g[i] = std::cos(0.13f * float(i));
    }
    std::vector<float> w(static_cast<std::size_t>(C), 1.0f), b(static_cast<std::size_t>(C), 0.0f), gw(w.size()),
        gb(w.size()), stats(4 * w.size());
    std::int64_t count = 0;
    RunningStats<float> rs{stats.data(), stats.data() + C, stats.data() + 2 * C, stats.data() + 3 * C, &count, C};
    reset_running_stats(rs, C);
    const LayerConfig config = LayerConfig::batch_normal_norm_2d(C);
    SavedContext<float> ctx;
    const TimedReducer timed(mpi);
    auto step = [&](const Reducer* reducer, std::uint64_t call) {
      Execution execution;
      execution.reducer = reducer;
      ForwardArgs<float> fa{x.data(), shape, out.data(), {w.data(), C}, {b.data(), C}, rs, NoiseSource<float>::philox(3, call)};
      forward(config, Mode::train, fa, ctx, execution);
      BackwardArgs<float> ba{x.data(), shape, g.data(), {w.data(), C}, gx.data(), gw.data(), gb.data()};
      backward(config, ba, ctx, execution);
    };
    std::vector<double> local_steps, steps, shares;
    for (int i = 0; i < 300; ++i) {
      {  // the same slice without a reducer (its own statistics): the compute alone
        MPI_Barrier(MPI_COMM_WORLD);
        const auto start = Clock::now();
        step(nullptr, std::uint64_t(i));
        if (i >= 20) local_steps.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      }
      MPI_Barrier(MPI_COMM_WORLD);
      timed.seconds = 0;
      const auto start = Clock::now();
      step(&timed, std::uint64_t(i));
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (i >= 20) {
        steps.push_back(seconds);
        shares.push_back(timed.seconds / seconds);
      }
    }
    const double step_median = median(steps), share_median = median(shares), local_median = median(local_steps);
    double worst_step = 0, worst_share = 0, worst_local = 0;
    MPI_Reduce(&step_median, &worst_step, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&local_median, &worst_local, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&share_median, &worst_share, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      std::printf("step (float, global batch (%d, %d, %d, %d), this rank %d samples): ", global_batch, channels, side,
                  side, n);
      std::printf("no reducer on the slice %.3f ms, ", worst_local * 1e3);
      std::printf("with reducer %.3f ms (slowest rank), collectives %.1f%% of it (largest rank median), %zu per step\n",
                  worst_step * 1e3, worst_share * 100.0, timed.calls / 300);
    }
  }
  MPI_Finalize();
  return 0;
}
