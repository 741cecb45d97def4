// Python module init for pcseg._C: makes `from pcseg import _C` import the shared library, whose
// static initialisers (TORCH_LIBRARY*) register the operators under torch.ops.pcseg.
#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",  // name
      "pcseg compiled operators (registered under torch.ops.pcseg)",
      -1,
      nullptr,
  };
  return PyModule_Create(&module_def);
}
}

#include <torch/library.h>

// The single TORCH_LIBRARY block of the `pcseg` namespace; every op adds its schema with
// TORCH_LIBRARY_FRAGMENT(pcseg, m) next to its kernels (cuda_ext/<op>/<op>.cpp).
TORCH_LIBRARY(pcseg, m) {}
