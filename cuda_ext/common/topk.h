// The k smallest (squared distance, index) pairs seen so far, ascending, ties broken by the
// smaller index: the one ordering rule of ball query and kNN on CPU and CUDA.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace pcseg {

template <typename T>
PCSEG_HOST_DEVICE bool pair_less(T d_a, int64_t i_a, T d_b, int64_t i_b) {
  return d_a < d_b || (d_a == d_b && i_a < i_b);
}

// Insertion into a sorted list of at most k entries held in caller memory (`dist`, `index`).
template <typename T>
struct TopK {
  T* dist;
  int64_t* index;
  int64_t k;
  int64_t count;

  PCSEG_HOST_DEVICE TopK(T* dist_, int64_t* index_, int64_t k_) : dist(dist_), index(index_), k(k_), count(0) {}

  PCSEG_HOST_DEVICE bool full() const { return count == k; }
  PCSEG_HOST_DEVICE T worst() const { return dist[count - 1]; }

  PCSEG_HOST_DEVICE void push(T d, int64_t i) {
    if (count == k && !pair_less(d, i, dist[k - 1], index[k - 1])) return;
    int64_t pos = count < k ? count++ : k - 1;
    while (pos > 0 && pair_less(d, i, dist[pos - 1], index[pos - 1])) {
      dist[pos] = dist[pos - 1];
      index[pos] = index[pos - 1];
      --pos;
    }
    dist[pos] = d;
    index[pos] = i;
  }
};

}  // namespace pcseg
