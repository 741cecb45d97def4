// Open-addressing hash table of int64 coordinate keys -> row, shared by the CPU and CUDA kernels.
//
// Keys are the non-negative linear keys of pcseg.sparse.tensor.CoordIndex; -1 marks an empty
// slot. Capacity is a power of two at least twice the key count, probing is linear.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace pcseg {
namespace sparse {

constexpr int64_t kEmptyKey = -1;

// splitmix64's finaliser: spreads nearby keys (neighbouring voxels) over the table.
PCSEG_HOST_DEVICE uint64_t hash_key(int64_t key) {
  uint64_t x = static_cast<uint64_t>(key);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline int64_t table_capacity(int64_t num_keys) {
  int64_t cap = 16;
  while (cap < 2 * num_keys) cap <<= 1;
  return cap;
}

// Row of `key`, or -1 when absent.
PCSEG_HOST_DEVICE int32_t table_find(const int64_t* table_keys, const int32_t* table_rows, int64_t mask,
                                     int64_t key) {
  if (key < 0) return -1;
  uint64_t slot = hash_key(key) & static_cast<uint64_t>(mask);
  while (true) {
    const int64_t k = table_keys[slot];
    if (k == key) return table_rows[slot];
    if (k == kEmptyKey) return -1;
    slot = (slot + 1) & static_cast<uint64_t>(mask);
  }
}

// CPU layout: key and row side by side, so a hit costs one cache line instead of two.
struct TableSlot {
  int64_t key;
  int64_t row;
};

inline int64_t slot_table_find(const TableSlot* table, int64_t mask, int64_t key) {
  if (key < 0) return -1;
  uint64_t slot = hash_key(key) & static_cast<uint64_t>(mask);
  while (true) {
    const TableSlot& entry = table[slot];
    if (entry.key == key) return entry.row;
    if (entry.key == kEmptyKey) return -1;
    slot = (slot + 1) & static_cast<uint64_t>(mask);
  }
}

}  // namespace sparse
}  // namespace pcseg
