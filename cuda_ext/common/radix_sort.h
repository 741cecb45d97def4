// Stable LSD radix sort of 64-bit words on the CPU, parallel over contiguous chunks of the input.
//
// Used with words that pack a sort key above a point index (key << index_bits | index): sorting
// only the key bits is then a stable sort of the points by key, and it moves one word per point.
#pragma once

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/bits.h"

namespace pcseg {

// How many chunks to split `n` items into: one per thread, but none smaller than `min_chunk`
// (below that, starting a thread costs more than it saves).
inline int64_t num_chunks_for(int64_t n, int64_t min_chunk = 32768) {
  const int64_t by_size = std::max<int64_t>(1, n / min_chunk);
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), by_size));
}

// Runs fn(chunk, begin, end) for `num_chunks` equal contiguous chunks of [0, n), in parallel.
template <typename Fn>
inline void for_each_chunk(int64_t n, int64_t num_chunks, const Fn& fn) {
  const int64_t chunk = (n + num_chunks - 1) / num_chunks;
  at::parallel_for(0, num_chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) fn(c, std::min(n, c * chunk), std::min(n, (c + 1) * chunk));
  });
}

// Sorts words[0, n) stably by bits [low_bit, low_bit + bits), using scratch[0, n) as the second
// buffer, and returns the buffer that holds the result (words or scratch). Digits of at most 12
// bits cover a 36-bit key in 3 passes; a pass whose digit is the same for every word is skipped.
//
// Each thread's chunk is split into two halves ("lanes") walked side by side, each with its own
// int32 cursors (2 x 16 KB, in L1): spatially ordered input puts runs of equal digits next to each
// other, and with one cursor array every word would wait for the previous word's increment of the
// same cursor. Two lanes make two independent chains.
inline uint64_t* radix_sort_words(uint64_t* words, uint64_t* scratch, int64_t n, int low_bit, int bits) {
  if (n <= 1 || bits <= 0) return words;
  TORCH_CHECK(n < (int64_t(1) << 31), "pcseg: radix sort of at most 2^31 - 1 words");
  const int num_passes = (bits + 11) / 12;
  const int digit_bits = (bits + num_passes - 1) / num_passes;
  const int64_t buckets = int64_t(1) << digit_bits;
  const uint64_t mask = static_cast<uint64_t>(buckets - 1);
  constexpr int64_t kLanes = 2;
  constexpr int64_t kPrefetchAhead = 16;  // words
  const int64_t num_chunks = num_chunks_for(n);
  const int64_t num_lanes = num_chunks * kLanes;
  const int64_t lane_size = (n + num_lanes - 1) / num_lanes;
  // Runs fn(first lane of the chunk, its [begin, end), the second lane's [begin, end)) per chunk.
  auto for_each_lane_pair = [&](const auto& fn) {
    at::parallel_for(0, num_chunks, 1, [&](int64_t first, int64_t last) {
      for (int64_t c = first; c < last; ++c) {
        const int64_t l = c * kLanes;
        fn(l, std::min(n, l * lane_size), std::min(n, (l + 1) * lane_size), std::min(n, (l + 1) * lane_size),
           std::min(n, (l + 2) * lane_size));
      }
    });
  };
  // histogram[l * buckets + b]: words of lane l with digit b; becomes lane l's write cursor.
  std::vector<int32_t> histogram(num_lanes * buckets);
  for (int pass = 0; pass < num_passes; ++pass) {
    const int shift = low_bit + pass * digit_bits;
    std::fill(histogram.begin(), histogram.end(), 0);
    const uint64_t* src = words;
    // Shift, mask and buffers captured by value: through a reference the compiler would reload
    // them after every store (the stores could alias them).
    for_each_lane_pair([&, shift, mask, src](int64_t l, int64_t begin0, int64_t end0, int64_t begin1, int64_t end1) {
      int32_t* h0 = histogram.data() + l * buckets;
      int32_t* h1 = h0 + buckets;
      const int64_t both = std::min(end0 - begin0, end1 - begin1);
      for (int64_t i = 0; i < both; ++i) {
        ++h0[(src[begin0 + i] >> shift) & mask];
        ++h1[(src[begin1 + i] >> shift) & mask];
      }
      for (int64_t i = begin0 + both; i < end0; ++i) ++h0[(src[i] >> shift) & mask];
      for (int64_t i = begin1 + both; i < end1; ++i) ++h1[(src[i] >> shift) & mask];
    });
    // Cursors: all words of smaller digits first, then, within a digit, the lanes in order.
    int64_t running = 0;
    bool one_digit = false;
    for (int64_t b = 0; b < buckets; ++b) {
      const int64_t before = running;
      for (int64_t l = 0; l < num_lanes; ++l) {
        const int64_t count = histogram[l * buckets + b];
        histogram[l * buckets + b] = static_cast<int32_t>(running);
        running += count;
      }
      if (running - before == n) one_digit = true;
    }
    if (one_digit) continue;  // every word has this digit: the pass would move nothing
    uint64_t* dst = scratch;
    for_each_lane_pair([&, shift, mask, src, dst](int64_t l, int64_t begin0, int64_t end0, int64_t begin1,
                                                  int64_t end1) {
      int32_t* cursor0 = histogram.data() + l * buckets;
      int32_t* cursor1 = cursor0 + buckets;
      const int64_t both = std::min(end0 - begin0, end1 - begin1);
      for (int64_t i = 0; i < both; ++i) {
        const uint64_t w0 = src[begin0 + i], w1 = src[begin1 + i];
        const int32_t at0 = cursor0[(w0 >> shift) & mask]++, at1 = cursor1[(w1 >> shift) & mask]++;
        // The destination array is larger than L2: ask for the line two lines further along the
        // bucket now, so that a later store there does not wait for it.
        __builtin_prefetch(dst + at0 + kPrefetchAhead, 1);
        __builtin_prefetch(dst + at1 + kPrefetchAhead, 1);
        dst[at0] = w0;
        dst[at1] = w1;
      }
      for (int64_t i = begin0 + both; i < end0; ++i) dst[cursor0[(src[i] >> shift) & mask]++] = src[i];
      for (int64_t i = begin1 + both; i < end1; ++i) dst[cursor1[(src[i] >> shift) & mask]++] = src[i];
    });
    std::swap(words, scratch);
  }
  return words;
}

}  // namespace pcseg
