// Stable LSD radix sort of 64-bit words on the CPU, parallel over contiguous chunks of the input.
//
// Used with words that pack a sort key above a point index (key << index_bits | index): sorting
// only the key bits is then a stable sort of the points by key, and it moves one word per point.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

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
// bits keep a chunk's histogram (32 KB) in L1 while covering a 36-bit key in 3 passes; a pass
// whose digit is the same for every word is skipped.
inline uint64_t* radix_sort_words(uint64_t* words, uint64_t* scratch, int64_t n, int low_bit, int bits) {
  if (n <= 1 || bits <= 0) return words;
  const int num_passes = (bits + 11) / 12;
  const int digit_bits = (bits + num_passes - 1) / num_passes;
  const int64_t buckets = int64_t(1) << digit_bits;
  const uint64_t mask = static_cast<uint64_t>(buckets - 1);
  const int64_t num_chunks = num_chunks_for(n);
  // histogram[c * buckets + b]: words of chunk c with digit b; becomes chunk c's write cursor.
  std::vector<int64_t> histogram(num_chunks * buckets);
  for (int pass = 0; pass < num_passes; ++pass) {
    const int shift = low_bit + pass * digit_bits;
    std::fill(histogram.begin(), histogram.end(), 0);
    const uint64_t* src = words;
    // Shift, mask and buffers captured by value: through a reference the compiler would reload
    // them after every store (the stores could alias them).
    for_each_chunk(n, num_chunks, [&, shift, mask, src](int64_t c, int64_t begin, int64_t end) {
      int64_t* h = histogram.data() + c * buckets;
      for (int64_t i = begin; i < end; ++i) ++h[(src[i] >> shift) & mask];
    });
    // Cursors: all words of smaller digits first, then, within a digit, the chunks in order.
    int64_t running = 0;
    bool one_digit = false;
    for (int64_t b = 0; b < buckets; ++b) {
      const int64_t before = running;
      for (int64_t c = 0; c < num_chunks; ++c) {
        const int64_t count = histogram[c * buckets + b];
        histogram[c * buckets + b] = running;
        running += count;
      }
      if (running - before == n) one_digit = true;
    }
    if (one_digit) continue;  // every word has this digit: the pass would move nothing
    uint64_t* dst = scratch;
    for_each_chunk(n, num_chunks, [&, shift, mask, src, dst](int64_t c, int64_t begin, int64_t end) {
      int64_t* cursor = histogram.data() + c * buckets;
      for (int64_t i = begin; i < end; ++i) {
        const uint64_t w = src[i];
        dst[cursor[(w >> shift) & mask]++] = w;
      }
    });
    std::swap(words, scratch);
  }
  return words;
}

// Number of bits needed to store values in [0, bound).
inline int bits_for(uint64_t bound) {
  int bits = 0;
  while (bits < 64 && (uint64_t(1) << bits) < bound) ++bits;
  return bits;
}

}  // namespace pcseg
