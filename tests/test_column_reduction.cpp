// engine/column_reduction.hpp sums columns of row-major memory bit-identically to
// reduce_group on the transposed (contiguous) groups.

#include <catch2/catch.hpp>

#include <random>

#include "normnorm/engine/column_reduction.hpp"
#include "normnorm/engine/traversal.hpp"

using namespace normnorm;

namespace {

// Row-major (segments * rows, columns) -> each column's segments contiguous, as `layout`
// (Layout{segments, columns, rows}, groups spanning the segments) lays a group out.
template <class T>
std::vector<T> groups_contiguous(const std::vector<T>& matrix, const Layout& layout) {
  const index_t segments = layout.outer, columns = layout.channels, rows = layout.inner;
  std::vector<T> copy(matrix.size());
  for (index_t s = 0; s < segments; ++s)
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < columns; ++c)
        copy[static_cast<std::size_t>(layout.segment_offset(c, s) + r)] =
            matrix[static_cast<std::size_t>((s * rows + r) * columns + c)];
  return copy;
}

template <class T, class Arch>
void check_columns_match_contiguous(index_t segments, index_t rows, index_t columns) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(segments * 1000 + rows * 10 + columns));
  std::normal_distribution<double> normal;
  std::vector<T> matrix(static_cast<std::size_t>(segments * rows * columns));
  for (auto& v : matrix) v = T(std::exp(0.7 * normal(rng)) + 0.3 * normal(rng));
  std::vector<T> centre(static_cast<std::size_t>(columns));
  for (auto& v : centre) v = T(normal(rng));
  const Layout layout{segments, columns, rows, 1, true};
  const std::vector<T> copy = groups_contiguous(matrix, layout);

  constexpr index_t lanes = engine::column_lanes<T, Arch>;
  for (index_t first = 0; first < columns; first += lanes) {
    const index_t width = std::min(lanes, columns - first);
    std::vector<std::array<double, 2>> totals(static_cast<std::size_t>(width));
    const engine::Columns geometry{columns, segments, rows, columns, rows * columns};
    engine::reduce_columns<T, Arch, 2>(
        geometry, first, width,
        [&](auto zero, index_t offset, index_t column, auto& sums) {
          using V = decltype(zero);
          const V value = engine::load_lanes<V>(matrix.data() + offset, width);
          // (Padded in the last block, as the value: a full load would read past `centre`.)
          const V centred = value - engine::load_lanes<V>(centre.data() + first + column, width);
          sums.add(0, value);
          sums.add(1, centred * centred);
        },
        totals.data());
    for (index_t j = 0; j < width; ++j) {
      const index_t group = first + j;
      const auto want = engine::reduce_group<T, Arch, 2>(layout, group, [&](auto zero, index_t p, auto& sums) {
        using V = decltype(zero);
        const V value = math::load<V>(copy.data() + p);
        const V centred = value - V(centre[static_cast<std::size_t>(group)]);
        sums.add(0, value);
        sums.add(1, centred * centred);
      });
      INFO("segments " << segments << " rows " << rows << " columns " << columns << " column " << group);
      CHECK(totals[static_cast<std::size_t>(j)][0] == want[0]);
      CHECK(totals[static_cast<std::size_t>(j)][1] == want[1]);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("column sums equal reduce_group's on the transposed groups, bit for bit", "[column_reduction]", float,
                   double) {
  for (index_t segments : {1, 3})
    for (index_t rows : {1, 7, 128, 515, 1100})
      for (index_t columns : {1, 5, 8, 19, 64}) {
        check_columns_match_contiguous<TestType, xsimd::default_arch>(segments, rows, columns);
        check_columns_match_contiguous<TestType, math::scalar_arch>(segments, rows, columns);
      }
}

#include "normnorm/engine/column_statistics.hpp"

namespace {

template <class T, class Arch>
void check_statistics_match(const Options& options, index_t segments, index_t rows, index_t columns, double offset) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(segments * 7 + rows * 3 + columns));
  std::normal_distribution<double> normal;
  std::vector<T> matrix(static_cast<std::size_t>(segments * rows * columns));
  for (auto& v : matrix) v = T(offset + std::exp(0.7 * normal(rng)) + 0.3 * normal(rng));
  const Layout layout{segments, columns, rows, 1, true};
  const std::vector<T> copy = groups_contiguous(matrix, layout);
  constexpr index_t lanes = engine::column_lanes<T, Arch>;
  for (index_t first = 0; first < columns; first += lanes) {
    const index_t width = std::min(lanes, columns - first);
    engine::GroupStatistics got[lanes];
    engine::column_statistics<T, Arch>(matrix.data(), engine::Columns{columns, segments, rows, columns, rows * columns},
                                       first, width, options, got);
    for (index_t j = 0; j < width; ++j) {
      const engine::GroupStatistics want = engine::group_statistics<T, Arch>(layout, options, copy.data(), first + j);
      INFO("rows " << rows << " columns " << columns << " column " << first + j << " offset " << offset);
      const engine::GroupStatistics& g = got[j];
      CHECK(g.mean == want.mean);
      CHECK(g.var == want.var);
      CHECK(g.rstd == want.rstd);
      CHECK(g.lambda == want.lambda);
      CHECK(g.g1 == want.g1);
      CHECK(g.g2 == want.g2);
      CHECK(g.mean_hd == want.mean_hd);
      CHECK(g.max_h == want.max_h);
      CHECK(g.max_minus_h == want.max_minus_h);
      CHECK(g.finite == want.finite);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("column statistics equal group_statistics on the transposed groups, bit for bit", "[column_reduction]",
                   float, double) {
  std::vector<Options> variants(4);
  variants[1].standardize = false;
  variants[2].estimator = LambdaEstimator::gradient_step;
  variants[3].power_transform = false;
  for (const Options& options : variants)
    for (double offset : {0.0, 1e4})
      for (index_t rows : {7, 128, 515})
        for (index_t columns : {5, 19}) {
          check_statistics_match<TestType, xsimd::default_arch>(options, 2, rows, columns, offset);
          check_statistics_match<TestType, math::scalar_arch>(options, 2, rows, columns, offset);
        }
}
