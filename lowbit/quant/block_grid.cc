#include "lowbit/quant/block_grid.h"

#include <algorithm>
#include <string>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"

namespace lowbit {

namespace {

// Elements per work unit: large enough to amortize a task, small enough to
// stay in L2 with its output.
constexpr uint64_t kUnitElements = 1 << 15;

uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

}  // namespace

BlockGrid BlockGrid::make(const std::vector<uint64_t>& shape, const Granularity& g) {
  BlockGrid b;
  uint64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows = mul_or_fail(rows, shape[i], "tensor size");
  b.cols = shape.empty() ? 1 : shape.back();
  b.rows = rows;
  (void)mul_or_fail(b.rows, b.cols, "tensor size");
  const uint64_t R = std::max<uint64_t>(b.rows, 1), C = std::max<uint64_t>(b.cols, 1);
  if ((g.kind == Granularity::Kind::kGroup && g.group == 0) ||
      (g.kind == Granularity::Kind::kBlock2D && (g.rows == 0 || g.cols == 0))) {
    fail_usage("granularity " + g.to_string() + " is empty: group and block sizes must be at least 1");
  }
  switch (g.kind) {
    case Granularity::Kind::kTensor:
      b.group = C;
      b.row_div = R;
      b.row_mod = 1;
      b.blocks_per_row = 1;
      b.local = false;
      break;
    case Granularity::Kind::kGroup:
      b.group = g.group;
      b.row_div = 1;
      b.row_mod = R;
      b.blocks_per_row = ceil_div(C, g.group);
      break;
    case Granularity::Kind::kBlock2D:
      b.group = g.cols;
      b.row_div = g.rows;
      b.row_mod = ceil_div(R, g.rows);
      b.blocks_per_row = ceil_div(C, g.cols);
      break;
    case Granularity::Kind::kChannel: {
      const size_t rank = shape.size();
      if (static_cast<size_t>(g.axis) >= std::max<size_t>(rank, 1)) {
        fail_input("channel axis " + std::to_string(g.axis) + " is out of range for a tensor of rank " +
                   std::to_string(rank));
      }
      if (rank <= 1 || static_cast<size_t>(g.axis) == rank - 1) {
        // One scale per column.
        b.group = 1;
        b.row_div = R;
        b.row_mod = 1;
        b.blocks_per_row = C;
        b.local = R == 1;
      } else {
        uint64_t div = 1;
        for (size_t i = static_cast<size_t>(g.axis) + 1; i + 1 < rank; ++i) div *= shape[i];
        b.group = C;
        b.row_div = std::max<uint64_t>(div, 1);
        b.row_mod = std::max<uint64_t>(shape[static_cast<size_t>(g.axis)], 1);
        b.blocks_per_row = 1;
        b.local = g.axis == 0;  // then row blocks never wrap
      }
      break;
    }
  }
  b.num_blocks = mul_or_fail(b.row_mod, b.blocks_per_row, "block count");
  // Units: whole blocks across columns, and row_div-aligned runs of rows.
  if (b.group >= C) {
    b.unit_cols = C;
  } else {
    uint64_t k = std::max<uint64_t>(1, kUnitElements / b.group);
    if (k % 2) ++k;  // even column starts keep packed nibbles byte-aligned
    b.unit_cols = std::min(C, k * b.group);
  }
  const uint64_t rows_per_unit = std::max<uint64_t>(1, kUnitElements / b.unit_cols);
  if (b.local && g.kind == Granularity::Kind::kBlock2D) {
    b.unit_rows = std::min(R, ceil_div(rows_per_unit, b.row_div) * b.row_div);
  } else if (b.local && g.kind == Granularity::Kind::kChannel && b.row_div > 1) {
    b.unit_rows = std::min(R, ceil_div(rows_per_unit, b.row_div) * b.row_div);
  } else {
    b.unit_rows = std::min(R, rows_per_unit);
  }
  b.row_units = ceil_div(R, b.unit_rows);
  b.col_units = ceil_div(C, b.unit_cols);
  return b;
}

BlockGrid::Unit BlockGrid::unit(uint64_t u) const {
  const uint64_t ur = u / col_units, uc = u % col_units;
  Unit out;
  out.r0 = ur * unit_rows;
  out.r1 = std::min(rows, out.r0 + unit_rows);
  out.c0 = uc * unit_cols;
  out.c1 = std::min(cols, out.c0 + unit_cols);
  return out;
}

uint64_t BlockGrid::block_elements(uint64_t b) const {
  const uint64_t br = b / blocks_per_row, bc = b % blocks_per_row;
  const uint64_t width = std::min(cols, (bc + 1) * group) - bc * group;
  uint64_t height;
  if (row_mod == 1) {
    height = rows;
  } else if (row_mod * row_div >= rows) {
    // Block rows follow each other without wrapping (groups, 2-D blocks,
    // channel on axis 0).
    height = std::min(rows, (br + 1) * row_div) - br * row_div;
  } else {
    // Channel on a middle axis: its index recurs every row_mod * row_div
    // rows, row_div rows at a time.
    height = rows / row_mod;
  }
  return width * height;
}

}  // namespace lowbit
