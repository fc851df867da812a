// The distributed path over MPI (normnorm::MpiReducer). Run under mpirun with 2 or
// 3 ranks (ctest: mpi.np2, mpi.np3): every batch form, uneven batches (a rank with
// no samples at 3 ranks), train forward + backward + eval, against the single-process
// run on the whole batch; then mismatched calls and non-finite input.
// Exit code 0 when every check passed on every rank.



#include <cstdio>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include <normnorm/distributed/mpi.hpp>

#include "distributed_check.hpp"

using namespace normnorm;
namespace nd = normnorm::test::distributed;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what, int rank) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what.c_str());
}

// The largest of `value` over ranks (for the report).
double max_over_ranks(double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

template <class T>
void check_cases(const MpiReducer& reducer) {
  const int rank = reducer.rank();
  for (const nd::Case& c : nd::cases(reducer.size())) {
    nd::Errors e;
    std::string error;
    try {
      e = nd::check_rank<T>(c, reducer, Execution{});
    } catch (const std::exception& ex) {
      error = ex.what();
    }
    const std::string label = c.name + (sizeof(T) == 8 ? " double" : " float");
    expect(error.empty(), label + ": " + error, rank);
    expect(e.max() <= nd::tolerance<T>(), label + ": " + e.to_string(), rank);
    expect(e.running_identical_on_ranks, label + ": running statistics differ across ranks", rank);
    expect(e.rerun_identical, label + ": a second run differs", rank);
    const double out = max_over_ranks(e.out), grad_x = max_over_ranks(e.grad_x), params = max_over_ranks(e.grad_params),
                 lambda = max_over_ranks(e.lambda), running = max_over_ranks(e.running), eval = max_over_ranks(e.eval);
    if (rank == 0)
      std::printf("mpi R=%d %-6s %-36s out %.2e grad_x %.2e grad_w/b %.2e lambda %.2e running %.2e eval %.2e\n",
                  reducer.size(), sizeof(T) == 8 ? "double" : "float", c.name.c_str(), out, grad_x, params, lambda,
                  running, eval);
  }
}

// One training forward where rank `odd` makes a different call; every rank must throw the same text.
void check_refusal(const MpiReducer& reducer, const char* what, int odd, int channels_on_odd, double eps_on_odd,
                   bool nan_on_odd) {
  const int rank = reducer.rank();
  const index_t C = rank == odd ? channels_on_odd : 3;
  LayerConfig config = LayerConfig::batch_normal_norm_2d(C);
  if (rank == odd) config.options.eps = eps_on_odd;
  std::vector<double> x(static_cast<std::size_t>(2 * C * 9)), out(x.size(), -7.0), w(static_cast<std::size_t>(C), 1.0),
      b(static_cast<std::size_t>(C), 0.0), stats(static_cast<std::size_t>(4 * C), 0.25);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.3 * double(i) + rank);
  if (rank == odd && nan_on_odd) x[5] = std::numeric_limits<double>::quiet_NaN();
  std::int64_t count = 3;
  RunningStats<double> rs{stats.data(), stats.data() + C, stats.data() + 2 * C, stats.data() + 3 * C, &count, C};
  SavedContext<double> ctx;
  Execution execution;
  execution.reducer = &reducer;
  ForwardArgs<double> fa{x.data(), Shape{2, C, 3, 3}, out.data(), {w.data(), C}, {b.data(), C}, rs,
                         NoiseSource<double>::philox(1, 0)};
  std::string message;
  try {
    forward(config, Mode::train, fa, ctx, execution);
  } catch (const std::exception& e) {
    message = e.what();
  }
  expect(!message.empty(), std::string(what) + ": no error", rank);
  bool untouched = count == 3;
  for (double v : out) untouched = untouched && v == -7.0;
  for (double v : stats) untouched = untouched && v == 0.25;
  expect(untouched, std::string(what) + ": something was written", rank);
  // The same message on every rank: compare with rank 0's.
  std::vector<char> text(512, '\0');
  message.copy(text.data(), text.size() - 1);
  std::vector<char> first(text);
  MPI_Bcast(first.data(), static_cast<int>(first.size()), MPI_CHAR, 0, MPI_COMM_WORLD);
  expect(first == text, std::string(what) + ": the error differs from rank 0's: " + message, rank);
  if (rank == 0) std::printf("refused (%s): %s\n", what, message.c_str());
}

void check_collective_counts(const MpiReducer& reducer) {
  const int rank = reducer.rank();
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
  const index_t n = rank == 1 ? 0 : 2;
  std::vector<double> x(static_cast<std::size_t>(std::max<index_t>(n * 48, 1)), 1.0), out(x.size()), g(x.size(), 1.0),
      gx(x.size()), w(3, 1.0), b(3, 0.0), gw(3), gb(3), stats(12);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(double(i) + rank);
  std::int64_t count = 0;
  RunningStats<double> rs{stats.data(), stats.data() + 3, stats.data() + 6, stats.data() + 9, &count, 3};
  reset_running_stats(rs, 3);
  SavedContext<double> ctx;
  Execution execution;
  execution.reducer = &reducer;
  ForwardArgs<double> fa{x.data(), Shape{n, 3, 4, 4}, out.data(), {w.data(), 3}, {b.data(), 3}, rs,
                         NoiseSource<double>::philox(1, 0)};
  std::size_t before = reducer.calls();
  forward(config, Mode::train, fa, ctx, execution);
  expect(reducer.calls() - before == 6, "forward makes 6 collectives", rank);
  BackwardArgs<double> ba{x.data(), Shape{n, 3, 4, 4}, g.data(), {w.data(), 3}, gx.data(), gw.data(), gb.data()};
  before = reducer.calls();
  backward(config, ba, ctx, execution);
  expect(reducer.calls() - before == 2, "backward makes 2 collectives", rank);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    const MpiReducer reducer(MPI_COMM_WORLD);
    check_cases<double>(reducer);
    check_cases<float>(reducer);
    check_collective_counts(reducer);
    if (reducer.size() > 1) {
      const int last = reducer.size() - 1;
      check_refusal(reducer, "channel counts differ", last, 4, 1e-5, false);
      check_refusal(reducer, "options differ", last, 3, 1e-3, false);
      check_refusal(reducer, "non-finite input on one rank", last, 3, 1e-5, true);
    }
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) std::printf("%s: %d failure(s) over all ranks\n", total ? "FAILED" : "passed", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
