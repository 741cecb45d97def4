// Bit-width arithmetic shared by the CPU and CUDA key packing (radix sort, voxel keys).
#pragma once

#include <cstdint>

namespace pcseg {

// Number of bits needed to store values in [0, bound).
inline int bits_for(uint64_t bound) {
  int bits = 0;
  while (bits < 64 && (uint64_t(1) << bits) < bound) ++bits;
  return bits;
}

}  // namespace pcseg
