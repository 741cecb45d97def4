// Argument checks shared by the kernels. The Python wrappers (pcseg/ops) validate user input with
// friendly messages first; these guard the raw operators when they are called directly.
#pragma once

#include <ATen/ATen.h>

#define PCSEG_CHECK_POINTS(t)                                                                   \
  TORCH_CHECK((t).dim() == 2 && (t).size(1) == 3, #t " must have shape (N, 3), got ", (t).sizes()); \
  TORCH_CHECK((t).is_floating_point(), #t " must be float32 or float64, got ", (t).scalar_type())

#define PCSEG_CHECK_OFFSETS(t)                                                                  \
  TORCH_CHECK((t).dim() == 1 && (t).scalar_type() == at::kLong, #t " must be an int64 (B,) tensor")

#define PCSEG_CHECK_SAME_DEVICE(a, b) \
  TORCH_CHECK((a).device() == (b).device(), #a " and " #b " must be on the same device")
