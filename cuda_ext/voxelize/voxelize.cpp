// Dynamic voxelization, CPU kernel and schema.
//
// pcseg::voxelize(points (N,3), offsets (B,) int64, voxel_size[3], origin[3])
//   -> coords (V,4) int32 (batch, x, y, z) in ascending lexicographic order ((V,3) (x, y, z)
//      when with_batch is false: a single cloud needs no batch column),
//      inverse (N,) int64 (voxel of every point), counts (V,) int64.
// Cell of a point: floor((p - origin) / voxel_size) in the points' precision.
//
// Fast path: consecutive points in the same cell (scans are ordered, so neighbours often share a
// voxel) become one run; one word per run, key (batch | x | y | z bit fields) above the run's first
// point and length; a parallel radix sort of the key bits; one parallel pass over the sorted runs
// finds the voxels. Grids too large for that word fall back to a comparison sort of the cells.
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "common/checks.h"
#include "common/grid.h"
#include "common/radix_sort.h"

namespace pcseg {
namespace {

// cell_of for cells known to fit in int32: the same floor, in a form that vectorises.
template <typename scalar_t>
inline int32_t cell_of_int32(scalar_t p, scalar_t origin, scalar_t size) {
  const scalar_t q = (p - origin) / size;
  const int32_t t = static_cast<int32_t>(q);
  return t - static_cast<int32_t>(q < static_cast<scalar_t>(t));
}

// Smallest and largest cell per axis (cell_range also rejects NaN and infinite coordinates).
struct CellRange {
  int64_t min[3];
  int64_t max[3];
};

template <typename scalar_t>
CellRange cell_range(const scalar_t* points, int64_t n, const scalar_t* size, const scalar_t* org) {
  scalar_t lo[3], hi[3];
  bool has_nan = false;
  coordinate_bounds(points, n, lo, hi, &has_nan);
  // An infinite coordinate is itself the smallest or largest one.
  bool bad = has_nan;
  for (int d = 0; d < 3; ++d) bad |= !std::isfinite(lo[d]) || !std::isfinite(hi[d]);
  TORCH_CHECK(!bad, "points contains NaN or infinite coordinates");
  CellRange range;
  for (int d = 0; d < 3; ++d) {
    // floor((p - origin) / size) is monotonic in p: the extreme cells come from the extreme points.
    range.min[d] = cell_of(lo[d], org[d], size[d]);
    range.max[d] = cell_of(hi[d], org[d], size[d]);
    TORCH_CHECK(range.min[d] >= INT32_MIN && range.max[d] <= INT32_MAX,
                "voxel coordinates do not fit in int32: voxel_size is too small for these points");
  }
  return range;
}

// Runs of points sorted by cell, one packed word per run, most significant first: key bit fields
// (batch, x - min_x, y - min_y, z - min_z), the run's first point (`index_bits`), the run's length
// (`length_bits`). The run covers points [first, first + length).
struct PackedRuns {
  const uint64_t* words;
  int index_bits, length_bits;
  int axis_bits[3];
  int64_t min[3];

  int key_shift() const { return index_bits + length_bits; }
  void points(int64_t i, int64_t* begin, int64_t* end) const {
    const uint64_t w = words[i];
    *begin = static_cast<int64_t>((w >> length_bits) & ((uint64_t(1) << index_bits) - 1));
    *end = *begin + static_cast<int64_t>(w & ((uint64_t(1) << length_bits) - 1));
  }
  bool same_cell(int64_t i, int64_t j) const { return (words[i] >> key_shift()) == (words[j] >> key_shift()); }
  void cell(int64_t i, int32_t* out) const {
    uint64_t key = words[i] >> key_shift();
    for (int d = 2; d >= 0; --d) {
      out[1 + d] = static_cast<int32_t>(static_cast<int64_t>(key & ((uint64_t(1) << axis_bits[d]) - 1)) + min[d]);
      key >>= axis_bits[d];
    }
    out[0] = static_cast<int32_t>(key);  // what remains is the batch
  }
};

// Single points sorted by their explicit (batch, x, y, z) cells (wide grids).
struct ExplicitSorted {
  const int32_t* order;
  const int32_t* cells;  // (N, 4) in point order

  void points(int64_t i, int64_t* begin, int64_t* end) const {
    *begin = order[i];
    *end = *begin + 1;
  }
  bool same_cell(int64_t i, int64_t j) const {
    const int32_t* a = cells + int64_t(order[i]) * 4;
    const int32_t* b = cells + int64_t(order[j]) * 4;
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
  }
  void cell(int64_t i, int32_t* out) const {
    const int32_t* c = cells + int64_t(order[i]) * 4;
    for (int d = 0; d < 4; ++d) out[d] = c[d];
  }
};

// How many runs ahead voxels_of_sorted asks for the cache line of an inverse write.
constexpr int64_t kPrefetchDistance = 16;

// Voxels from runs of points sorted by cell (`num_runs` of them, covering all `n` points): a voxel
// starts wherever the cell changes. Two parallel passes over the runs: count the voxels each chunk
// starts, then fill the outputs.
template <typename Sorted>
std::tuple<at::Tensor, at::Tensor, at::Tensor> voxels_of_sorted(const Sorted& sorted, int64_t num_runs, int64_t n,
                                                                bool with_batch, const at::TensorOptions& options) {
  const int64_t num_chunks = num_chunks_for(num_runs);
  const std::vector<int64_t> first_voxel =  // voxels started before chunk c
      runs_before_chunks(num_runs, num_chunks, [&sorted](int64_t i) { return !sorted.same_cell(i, i - 1); });
  const int64_t num_voxels = first_voxel[num_chunks];
  const int64_t width = with_batch ? 4 : 3;
  at::Tensor coords = at::empty({num_voxels, width}, options.dtype(at::kInt));
  at::Tensor counts = at::empty({num_voxels}, options.dtype(at::kLong));
  at::Tensor inverse = at::empty({n}, options.dtype(at::kLong));
  int32_t* coords_ptr = coords.data_ptr<int32_t>();
  int64_t* counts_ptr = counts.data_ptr<int64_t>();
  int64_t* inverse_ptr = inverse.data_ptr<int64_t>();
  // Points of the runs at the head of a chunk that continue the previous chunk's last voxel:
  // added afterwards so that no two chunks write the same count.
  std::vector<int64_t> carried(num_chunks, 0);
  for_each_chunk(num_runs, num_chunks, [&, width, coords_ptr, counts_ptr, inverse_ptr](int64_t c, int64_t begin,
                                                                                       int64_t end) {
    const Sorted local = sorted;  // a copy the stores below cannot alias
    int64_t v = first_voxel[c] - 1, points_in_voxel = 0;
    for (int64_t i = begin; i < end; ++i) {
      if (i == 0 || !local.same_cell(i, i - 1)) {
        if (v >= first_voxel[c]) counts_ptr[v] = points_in_voxel; else carried[c] = points_in_voxel;
        ++v;
        points_in_voxel = 0;
        int32_t cell[4];
        local.cell(i, cell);
        // Fixed-width copies (a variable-width one becomes a memmove call per voxel).
        if (width == 4) {
          for (int d = 0; d < 4; ++d) coords_ptr[v * 4 + d] = cell[d];
        } else {
          for (int d = 0; d < 3; ++d) coords_ptr[v * 3 + d] = cell[1 + d];
        }
      }
      int64_t first, last;
      if (i + kPrefetchDistance < end) {
        // The inverse writes land at random places in an array larger than L2: ask for the
        // cache line a few runs ahead so the store finds it there.
        local.points(i + kPrefetchDistance, &first, &last);
        __builtin_prefetch(inverse_ptr + first, 1);
      }
      local.points(i, &first, &last);
      for (int64_t j = first; j < last; ++j) inverse_ptr[j] = v;
      points_in_voxel += last - first;
    }
    if (v >= first_voxel[c]) counts_ptr[v] = points_in_voxel; else carried[c] = points_in_voxel;
  });
  for (int64_t c = 1; c < num_chunks; ++c) counts_ptr[first_voxel[c] - 1] += carried[c];
  return {coords, inverse, counts};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_cpu(const at::Tensor& points_in, const at::Tensor& offsets_in,
                                                            at::ArrayRef<double> voxel_size,
                                                            at::ArrayRef<double> origin, bool with_batch) {
  PCSEG_CHECK_POINTS(points_in);
  PCSEG_CHECK_OFFSETS(offsets_in);
  TORCH_CHECK(voxel_size.size() == 3 && origin.size() == 3, "voxel_size and origin must have 3 values");
  const at::Tensor points = points_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const int64_t n = points.size(0);
  const int64_t num_batches = offsets.size(0);
  TORCH_CHECK(num_batches == 0 ? n == 0 : offsets.data_ptr<int64_t>()[num_batches - 1] == n,
              "offsets[-1] must equal the number of points");
  TORCH_CHECK(n < (int64_t(1) << 31), "pcseg: at most 2^31 - 1 points per call");
  const at::TensorOptions options = points.options();
  if (n == 0) {
    return {at::empty({0, with_batch ? 4 : 3}, options.dtype(at::kInt)), at::empty({0}, options.dtype(at::kLong)),
            at::empty({0}, options.dtype(at::kLong))};
  }
  const int64_t* offsets_ptr = offsets.data_ptr<int64_t>();
  std::tuple<at::Tensor, at::Tensor, at::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_voxelize", [&] {
    const scalar_t* p = points.data_ptr<scalar_t>();
    const scalar_t size[3] = {static_cast<scalar_t>(voxel_size[0]), static_cast<scalar_t>(voxel_size[1]),
                              static_cast<scalar_t>(voxel_size[2])};
    const scalar_t org[3] = {static_cast<scalar_t>(origin[0]), static_cast<scalar_t>(origin[1]),
                             static_cast<scalar_t>(origin[2])};
    const CellRange range = cell_range(p, n, size, org);
    int axis_bits[3];
    for (int d = 0; d < 3; ++d) axis_bits[d] = bits_for(static_cast<uint64_t>(range.max[d] - range.min[d]) + 1);
    const int batch_bits = bits_for(static_cast<uint64_t>(num_batches));
    const int index_bits = std::max(1, bits_for(static_cast<uint64_t>(n)));
    const int key_bits = batch_bits + axis_bits[0] + axis_bits[1] + axis_bits[2];
    const int64_t num_chunks = num_chunks_for(n);

    if (key_bits + index_bits < 64) {
      // Up to 8 bits of run length (longer runs are split); at least 1 (then every run is one point).
      const int length_bits = std::min(8, 64 - key_bits - index_bits);
      const int z_shift = index_bits + length_bits, y_shift = z_shift + axis_bits[2],
                x_shift = y_shift + axis_bits[1], b_shift = x_shift + axis_bits[0];
      // Uninitialised buffers: every word that is read is written first.
      std::unique_ptr<uint64_t[]> words(new uint64_t[n]), scratch(new uint64_t[n]);
      std::vector<int64_t> runs_in_chunk(num_chunks);
      const int64_t chunk_size = (n + num_chunks - 1) / num_chunks;
      uint64_t* words_ptr = words.get();
      int64_t* runs_ptr = runs_in_chunk.data();
      const int64_t min_x = range.min[0], min_y = range.min[1], min_z = range.min[2];
      const uint64_t length_mask = (uint64_t(1) << length_bits) - 1;
      // Each chunk writes its runs from its own first position. Locals are captured by value
      // because the stores could alias anything read through a reference.
      for_each_chunk(n, num_chunks, [=](int64_t c, int64_t begin, int64_t end) {
        // Locals, not closure members: the compiler reloads members after every store to words_ptr.
        const uint64_t run_full = length_mask;
        const int index_shift = length_bits;
        int64_t last_run = begin - 1;
        uint64_t run_key = ~uint64_t(0), run_word = 0;  // no key has every bit set
        int64_t b = batch_at(offsets_ptr, num_batches, begin);
        constexpr int64_t kBlock = 256;
        int32_t cells[3][kBlock];
        for (int64_t block = begin; block < end; block += kBlock) {
          const int64_t count = std::min(kBlock, end - block);
          // Cells first, in a loop the compiler vectorises (the divisions dominate otherwise);
          // int32 is enough because cell_range checked the extreme cells.
          for (int d = 0; d < 3; ++d) {
            const scalar_t* coordinate = p + block * 3 + d;
            for (int64_t j = 0; j < count; ++j) cells[d][j] = cell_of_int32(coordinate[j * 3], org[d], size[d]);
          }
          // Keys next, also vectorised: cells relative to the minimum, in unsigned 32-bit arithmetic
          // (well defined where the extent exceeds 2^31, and the distance fits in 32 bits).
          uint64_t keys[kBlock];
          const uint32_t mx = static_cast<uint32_t>(min_x), my = static_cast<uint32_t>(min_y), mz = static_cast<uint32_t>(min_z);
          for (int64_t j = 0; j < count; ++j) {
            keys[j] = (static_cast<uint64_t>(static_cast<uint32_t>(cells[0][j]) - mx) << x_shift) |
                      (static_cast<uint64_t>(static_cast<uint32_t>(cells[1][j]) - my) << y_shift) |
                      (static_cast<uint64_t>(static_cast<uint32_t>(cells[2][j]) - mz) << z_shift);
          }
          // Runs, one batch segment of the block at a time. Branch-free: whether a point starts a
          // run is data (a mask), not control flow, since it changes unpredictably.
          for (int64_t j = 0; j < count;) {
            while (offsets_ptr[b] <= block + j) ++b;
            const int64_t segment_end = std::min(count, offsets_ptr[b] - block);
            const uint64_t batch_key = static_cast<uint64_t>(b) << b_shift;
            for (; j < segment_end; ++j) {
              const uint64_t key = batch_key | keys[j];
              const uint64_t starts_run =
                  static_cast<uint64_t>(key != run_key) | static_cast<uint64_t>((run_word & run_full) == run_full);
              const uint64_t continues = starts_run - 1;  // all ones when the point extends the run
              last_run += static_cast<int64_t>(starts_run);
              run_word = ((run_word & continues) | ((key | (static_cast<uint64_t>(block + j) << index_shift)) & ~continues)) + 1;
              run_key = key;
              words_ptr[last_run] = run_word;
            }
          }
        }
        runs_ptr[c] = last_run + 1 - begin;
      });
      // Close the gaps between the chunks' runs.
      int64_t num_runs = runs_in_chunk[0];
      for (int64_t c = 1; c < num_chunks; ++c) {
        std::memmove(words_ptr + num_runs, words_ptr + c * chunk_size, runs_in_chunk[c] * sizeof(uint64_t));
        num_runs += runs_in_chunk[c];
      }
      const uint64_t* sorted_words =
          radix_sort_words(words_ptr, scratch.get(), num_runs, index_bits + length_bits, key_bits);
      const PackedRuns sorted{sorted_words, index_bits, length_bits, {axis_bits[0], axis_bits[1], axis_bits[2]},
                              {range.min[0], range.min[1], range.min[2]}};
      result = voxels_of_sorted(sorted, num_runs, n, with_batch, options);
    } else {
      // Grid too large to pack with the point index: sort point indices by their explicit cells.
      std::vector<int32_t> cells(n * 4), order(n);
      for_each_chunk(n, num_chunks, [&](int64_t, int64_t begin, int64_t end) {
        int64_t b = batch_at(offsets_ptr, num_batches, begin);
        for (int64_t i = begin; i < end; ++i) {
          while (offsets_ptr[b] <= i) ++b;
          cells[i * 4] = static_cast<int32_t>(b);
          for (int d = 0; d < 3; ++d) cells[i * 4 + 1 + d] = static_cast<int32_t>(cell_of(p[i * 3 + d], org[d], size[d]));
          order[i] = static_cast<int32_t>(i);
        }
      });
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t c) {
        const int32_t* cell_a = cells.data() + int64_t(a) * 4;
        const int32_t* cell_c = cells.data() + int64_t(c) * 4;
        return std::lexicographical_compare(cell_a, cell_a + 4, cell_c, cell_c + 4);
      });
      result = voxels_of_sorted(ExplicitSorted{order.data(), cells.data()}, n, n, with_batch, options);
    }
  });
  return result;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("voxelize(Tensor points, Tensor offsets, float[] voxel_size, float[] origin, bool with_batch=True) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) { m.impl("voxelize", &voxelize_cpu); }

}  // namespace pcseg
