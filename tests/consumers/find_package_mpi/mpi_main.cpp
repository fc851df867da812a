// Links the installed normnorm::mpi: a BatchNormalNorm1d training forward through an
// MpiReducer on MPI_COMM_WORLD (run with 1 rank), checked against the same layer
// without a reducer.
#include <normnorm/distributed/mpi.hpp>
#include <normnorm/normnorm.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

namespace {

int run() {
  const normnorm::MpiReducer reducer(MPI_COMM_WORLD);
  normnorm::Execution execution;
  execution.reducer = &reducer;

  const normnorm::index_t n = 4, c = 3;
  std::vector<double> x(static_cast<std::size_t>(n * c)), with(x.size()), without(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7 * double(i) + 0.1);

  normnorm::BatchNormalNorm1d<double> distributed(c, normnorm::default_options(normnorm::Form::batch_1d), 7);
  normnorm::BatchNormalNorm1d<double> local(c, normnorm::default_options(normnorm::Form::batch_1d), 7);
  distributed.set_execution(execution);
  distributed.forward(x.data(), normnorm::Shape{n, c}, with.data());
  local.forward(x.data(), normnorm::Shape{n, c}, without.data());

  // 6 collectives: a default training forward (docs/distributed.md); 0 would mean
  // the reducer was never used.
  if (reducer.calls() != 6) {
    std::fprintf(stderr, "expected 6 collectives, got %zu\n", reducer.calls());
    return 1;
  }
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::fmax(worst, std::fabs(with[i] - without[i]));
  if (!(worst <= 1e-12)) {
    std::fprintf(stderr, "reduced and local forward differ by %g\n", worst);
    return 1;
  }
  std::printf("normnorm %s, MpiReducer rank %d of %d, %zu collectives, max difference %g\n", NORMNORM_VERSION_STRING,
              reducer.rank(), reducer.size(), reducer.calls(), worst);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    std::fprintf(stderr, "MPI_Init failed\n");
    return 1;
  }
  int rc = 1;
  try {
    rc = run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  MPI_Finalize();
  return rc;
}
