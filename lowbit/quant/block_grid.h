// BlockGrid: where the blocks of a granularity lie in a tensor, and how the
// tensor is cut into work units for threads.
//
// Every tensor is viewed as rows x cols, cols being its last axis (a scalar
// is 1 x 1, a vector 1 x n). Element (r, j) belongs to block
//   ((r / row_div) % row_mod) * blocks_per_row + j / group
// which covers every granularity:
//   tensor        group = cols, row_div = rows, row_mod = 1
//   g<N>          group = N,    row_div = 1,    row_mod = rows
//   b<R>x<C>      group = C,    row_div = R,    row_mod = ceil(rows / R)
//   channel, last axis: one scale per column: group = 1, row_div = rows
//   channel, axis a < last: group = cols, row_div = prod(shape[a+1:-1]),
//                 row_mod = shape[a]
// Short last groups and blocks are padding-free: they simply hold fewer
// elements.
//
// Work units are rectangles of rows x columns, aligned to blocks, of a fixed
// size that never depends on the thread count (so neither do results). A
// grid is "local" when no block crosses a unit: then each unit is quantized
// start to finish on its own, in cache.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/quant/scheme.h"

namespace lowbit {

struct BlockGrid {
  uint64_t rows = 1, cols = 1;
  uint64_t group = 1;
  uint64_t row_div = 1, row_mod = 1;
  uint64_t blocks_per_row = 1;
  uint64_t num_blocks = 1;
  // Work units.
  uint64_t unit_rows = 1, unit_cols = 1;
  uint64_t row_units = 1, col_units = 1;
  bool local = true;

  // Throws Error(kUsage) for an empty granularity, Error(kInput) for a
  // channel axis beyond the tensor's rank (the scheme is fine; this tensor
  // lacks the axis) or sizes that overflow.
  static BlockGrid make(const std::vector<uint64_t>& shape, const Granularity& g);

  uint64_t numel() const { return rows * cols; }
  uint64_t block_row(uint64_t r) const { return (r / row_div) % row_mod; }
  uint64_t block_of(uint64_t r, uint64_t j) const { return block_row(r) * blocks_per_row + j / group; }
  uint64_t num_units() const { return row_units * col_units; }
  struct Unit {
    uint64_t r0, r1, c0, c1;
  };
  Unit unit(uint64_t u) const;
  // Elements of block b (its size after edge truncation).
  uint64_t block_elements(uint64_t b) const;
};

}  // namespace lowbit
