// CPU helpers shared by voxelization, ball query and kNN: integer cell coordinates of points,
// packed into one int64 key per point ((batch, x, y, z) in lexicographic order), a stable radix
// sort of the keys (common/radix_sort.h), and the run-length "cells" view of the sorted points.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "common/radix_sort.h"

namespace pcseg {

// Batch index of every point from ragged offsets (cumulative counts, offsets[B-1] == n).
inline std::vector<int64_t> batch_of_points(const int64_t* offsets, int64_t num_batches, int64_t n) {
  std::vector<int64_t> batch(n);
  int64_t start = 0;
  for (int64_t b = 0; b < num_batches; ++b) {
    for (int64_t i = start; i < offsets[b]; ++i) batch[i] = b;
    start = offsets[b];
  }
  return batch;
}

// Cloud of point i in a ragged batch: the first b with offsets[b] > i.
inline int64_t batch_at(const int64_t* offsets, int64_t num_batches, int64_t i) {
  return std::upper_bound(offsets, offsets + num_batches, i) - offsets;
}

// How (batch, cx, cy, cz) integer cells pack into one non-negative int64 key.
struct KeyLayout {
  int64_t min[3] = {0, 0, 0};
  int64_t extent[3] = {1, 1, 1};  // max - min + 1 per axis
  int64_t num_batches = 1;

  int64_t pack(int64_t b, int64_t x, int64_t y, int64_t z) const {
    return ((b * extent[0] + (x - min[0])) * extent[1] + (y - min[1])) * extent[2] + (z - min[2]);
  }
  void unpack(int64_t key, int64_t* b, int64_t* x, int64_t* y, int64_t* z) const {
    *z = key % extent[2] + min[2];
    key /= extent[2];
    *y = key % extent[1] + min[1];
    key /= extent[1];
    *x = key % extent[0] + min[0];
    *b = key / extent[0];
  }
  bool inside(int64_t x, int64_t y, int64_t z) const {
    return x >= min[0] && x < min[0] + extent[0] && y >= min[1] && y < min[1] + extent[1] &&
           z >= min[2] && z < min[2] + extent[2];
  }
  int64_t num_keys() const { return num_batches * extent[0] * extent[1] * extent[2]; }
};

// Integer cell of one coordinate: floor((p - origin) / size) in the points' own precision, the
// same rounding as the PyTorch reference. Truncation plus a correction is floor without a libm call.
template <typename scalar_t>
inline int64_t cell_of(scalar_t p, scalar_t origin, scalar_t size) {
  const scalar_t q = (p - origin) / size;
  const int64_t t = static_cast<int64_t>(q);
  return t - static_cast<int64_t>(q < static_cast<scalar_t>(t));
}

// Smallest and largest coordinate per axis of points[0, n) (n >= 1), in parallel chunks. NaN
// fails every comparison, so min and max pass over it: `has_nan` (when given) says whether any
// coordinate is NaN.
template <typename scalar_t>
void coordinate_bounds(const scalar_t* points, int64_t n, scalar_t* lo, scalar_t* hi, bool* has_nan = nullptr) {
  const int64_t num_chunks = num_chunks_for(n);
  std::vector<scalar_t> chunk_lo(num_chunks * 3), chunk_hi(num_chunks * 3);
  std::vector<char> chunk_nan(num_chunks, 0);
  for_each_chunk(n, num_chunks, [&](int64_t c, int64_t begin, int64_t end) {
    // The (x, y, z) rows are walked as a flat array in blocks of 8 rows, so that lane k of the
    // block always holds axis k % 3 and the loop over lanes vectorises.
    constexpr int kLanes = 24;
    scalar_t l[kLanes], h[kLanes];
    int nan[kLanes];
    for (int k = 0; k < kLanes; ++k) l[k] = h[k] = points[begin * 3 + k % 3], nan[k] = 0;
    const scalar_t* flat = points + begin * 3;
    const int64_t num_values = (end - begin) * 3, full = num_values - num_values % kLanes;
    for (int64_t i = 0; i < full; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const scalar_t v = flat[i + k];
        l[k] = v < l[k] ? v : l[k];
        h[k] = v > h[k] ? v : h[k];
        nan[k] |= v != v;
      }
    }
    for (int64_t i = full; i < num_values; ++i) {
      const scalar_t v = flat[i];
      const int k = static_cast<int>(i % 3);
      l[k] = v < l[k] ? v : l[k];
      h[k] = v > h[k] ? v : h[k];
      nan[k] |= v != v;
    }
    bool any_nan = false;
    for (int k = 0; k < kLanes; ++k) {
      const int d = k % 3;
      chunk_lo[c * 3 + d] = k < 3 ? l[k] : std::min(chunk_lo[c * 3 + d], l[k]);
      chunk_hi[c * 3 + d] = k < 3 ? h[k] : std::max(chunk_hi[c * 3 + d], h[k]);
      any_nan |= nan[k] != 0;
    }
    chunk_nan[c] = any_nan;
  });
  for (int d = 0; d < 3; ++d) {
    lo[d] = chunk_lo[d], hi[d] = chunk_hi[d];
    for (int64_t c = 1; c < num_chunks; ++c) lo[d] = std::min(lo[d], chunk_lo[c * 3 + d]), hi[d] = std::max(hi[d], chunk_hi[c * 3 + d]);
  }
  if (has_nan) *has_nan = std::any_of(chunk_nan.begin(), chunk_nan.end(), [](char x) { return x != 0; });
}

// Runs of equal items in a sorted sequence [0, n), split into `num_chunks` chunks as for_each_chunk
// splits it: entry c is the number of runs that start before chunk c (the last entry: all runs).
// `differs(i)` says whether item i (i >= 1) differs from item i - 1.
template <typename Differs>
std::vector<int64_t> runs_before_chunks(int64_t n, int64_t num_chunks, const Differs& differs) {
  std::vector<int64_t> first_run(num_chunks + 1, 0);
  for_each_chunk(n, num_chunks, [&](int64_t c, int64_t begin, int64_t end) {
    int64_t starts = 0;
    for (int64_t i = begin; i < end; ++i) starts += (i == 0 || differs(i));
    first_run[c + 1] = starts;
  });
  for (int64_t c = 0; c < num_chunks; ++c) first_run[c + 1] += first_run[c];
  return first_run;
}

// Key layout covering every point: the smallest and largest cell per axis come from the smallest
// and largest coordinate, because floor((p - origin) / size) is monotonic in p.
template <typename scalar_t>
KeyLayout layout_of(const scalar_t* points, int64_t n, int64_t num_batches, const double* cell_size,
                    const double* origin) {
  KeyLayout layout;
  layout.num_batches = std::max<int64_t>(num_batches, 1);
  if (n == 0) return layout;
  scalar_t lo[3], hi[3];
  coordinate_bounds(points, n, lo, hi);
  double total = static_cast<double>(layout.num_batches);
  for (int d = 0; d < 3; ++d) {
    const scalar_t size = static_cast<scalar_t>(cell_size[d]), org = static_cast<scalar_t>(origin[d]);
    layout.min[d] = cell_of(lo[d], org, size);
    layout.extent[d] = cell_of(hi[d], org, size) - layout.min[d] + 1;
    total *= static_cast<double>(layout.extent[d]);
  }
  TORCH_CHECK(total < 4.0e18, "pcseg: the grid is too large to index (cell size too small for the extent of the points)");
  return layout;
}

// Points sorted by cell: the unique cell keys (ascending), where each cell's run starts in
// `order`, and `order` itself (point indices, ascending within a cell).
struct SortedCells {
  KeyLayout layout;
  std::vector<int64_t> cell_keys;   // (V,)
  std::vector<int64_t> cell_start;  // (V+1,)
  std::vector<int32_t> order;       // (n,)

  // [begin, end) range in `order` of the cells with keys in [key_lo, key_hi].
  void key_range(int64_t key_lo, int64_t key_hi, int64_t* begin, int64_t* end) const {
    auto first = std::lower_bound(cell_keys.begin(), cell_keys.end(), key_lo);
    auto last = std::upper_bound(first, cell_keys.end(), key_hi);
    *begin = cell_start[first - cell_keys.begin()];
    *end = cell_start[last - cell_keys.begin()];
  }
};

// Sorts the points of a ragged batch into cells of `cell_size` (keys (batch, x, y, z)).
template <typename scalar_t>
SortedCells sort_into_cells(const scalar_t* points, int64_t n, const int64_t* offsets, int64_t num_batches,
                            const double* cell_size, const double* origin) {
  TORCH_CHECK(n < (int64_t(1) << 31), "pcseg: at most 2^31 - 1 points per call");
  SortedCells grid;
  grid.layout = layout_of(points, n, num_batches, cell_size, origin);
  const KeyLayout& layout = grid.layout;
  const scalar_t size[3] = {static_cast<scalar_t>(cell_size[0]), static_cast<scalar_t>(cell_size[1]),
                            static_cast<scalar_t>(cell_size[2])};
  const scalar_t org[3] = {static_cast<scalar_t>(origin[0]), static_cast<scalar_t>(origin[1]),
                           static_cast<scalar_t>(origin[2])};
  const int key_bits = bits_for(static_cast<uint64_t>(layout.num_keys()));
  const int index_bits = std::max(1, bits_for(static_cast<uint64_t>(n)));
  const int64_t num_chunks = num_chunks_for(n);
  // Calls fn(i, key of point i) for every point of a chunk (cells as in cell_of).
  auto for_each_key = [&](int64_t begin, int64_t end, auto&& fn) {
    const KeyLayout lay = layout;  // a local copy: stores made by fn cannot alias it
    for (int64_t b = batch_at(offsets, num_batches, begin), i = begin; i < end; ++b) {
      for (const int64_t batch_end = std::min(end, offsets[b]); i < batch_end; ++i) {
        fn(i, lay.pack(b, cell_of(points[i * 3], org[0], size[0]), cell_of(points[i * 3 + 1], org[1], size[1]),
                       cell_of(points[i * 3 + 2], org[2], size[2])));
      }
    }
  };
  std::unique_ptr<int64_t[]> sorted_keys(new int64_t[n]);  // uninitialised: written before read
  grid.order.resize(n);
  if (key_bits + index_bits <= 64) {
    // Key and point index packed in one word: sorting by the key bits sorts both, stably.
    std::unique_ptr<uint64_t[]> words(new uint64_t[n]), scratch(new uint64_t[n]);
    uint64_t* words_ptr = words.get();
    for_each_chunk(n, num_chunks, [&](int64_t, int64_t begin, int64_t end) {
      for_each_key(begin, end, [=](int64_t i, int64_t key) {
        words_ptr[i] = (static_cast<uint64_t>(key) << index_bits) | static_cast<uint64_t>(i);
      });
    });
    const uint64_t* sorted = radix_sort_words(words_ptr, scratch.get(), n, index_bits, key_bits);
    const uint64_t index_mask = (uint64_t(1) << index_bits) - 1;
    int64_t* keys_ptr = sorted_keys.get();
    int32_t* order_ptr = grid.order.data();
    for_each_chunk(n, num_chunks, [=](int64_t, int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        keys_ptr[i] = static_cast<int64_t>(sorted[i] >> index_bits);
        order_ptr[i] = static_cast<int32_t>(sorted[i] & index_mask);
      }
    });
  } else {
    // Wide keys (huge grids): sort indices by key with a stable comparison sort.
    std::vector<int64_t> keys(n);
    for_each_chunk(n, num_chunks, [&](int64_t, int64_t begin, int64_t end) {
      for_each_key(begin, end, [&](int64_t i, int64_t key) { keys[i] = key; });
    });
    for (int64_t i = 0; i < n; ++i) grid.order[i] = static_cast<int32_t>(i);
    std::stable_sort(grid.order.begin(), grid.order.end(), [&](int32_t a, int32_t c) { return keys[a] < keys[c]; });
    for (int64_t i = 0; i < n; ++i) sorted_keys[i] = keys[grid.order[i]];
  }
  // Cells: runs of equal keys. Counted per chunk, then written in parallel.
  const int64_t* keys_ptr = sorted_keys.get();
  const std::vector<int64_t> first_cell =
      runs_before_chunks(n, num_chunks, [keys_ptr](int64_t i) { return keys_ptr[i] != keys_ptr[i - 1]; });
  const int64_t num_cells = first_cell[num_chunks];
  grid.cell_keys.resize(num_cells);
  grid.cell_start.resize(num_cells + 1);
  grid.cell_start[num_cells] = n;
  for_each_chunk(n, num_chunks, [&](int64_t c, int64_t begin, int64_t end) {
    int64_t cell = first_cell[c];
    for (int64_t i = begin; i < end; ++i) {
      if (i == 0 || keys_ptr[i] != keys_ptr[i - 1]) {
        grid.cell_keys[cell] = keys_ptr[i];
        grid.cell_start[cell] = i;
        ++cell;
      }
    }
  });
  return grid;
}

// out[t] = points[order[t]] for 3-vectors, in parallel. The reads are random: each is requested
// a few rows ahead so that it arrives from memory while earlier rows are copied.
template <typename scalar_t>
void gather_rows3(const scalar_t* points, const int32_t* order, int64_t n, scalar_t* out) {
  constexpr int64_t kAhead = 16;
  for_each_chunk(n, num_chunks_for(n), [=](int64_t, int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      if (t + kAhead < end) __builtin_prefetch(points + int64_t(order[t + kAhead]) * 3);
      const scalar_t* row = points + int64_t(order[t]) * 3;
      out[t * 3] = row[0], out[t * 3 + 1] = row[1], out[t * 3 + 2] = row[2];
    }
  });
}

}  // namespace pcseg
