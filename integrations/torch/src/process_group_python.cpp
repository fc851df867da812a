// normnorm_torch._process_group: a torch.distributed process group as the ScriptObject
// the ops take (`__torch__.torch.classes.c10d.ProcessGroup`).
//
// PyTorch 1.13 registers c10d::ProcessGroup as a TorchScript custom class, but a Python
// torch.distributed group (a pybind11 object) does not convert to one when passed to a
// torch.ops op ("object was missing attribute capsule"). This module takes the pybind11
// object (pybind11 hands over its c10::intrusive_ptr holder) and returns the same C++
// object as a ScriptObject. It is built with PyTorch's pybind11 type casters and links
// libtorch_python.

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/jit/python/pybind_utils.h>
#include <torch/csrc/utils/pybind.h>

PYBIND11_MODULE(_process_group, m) {
  m.doc() = "A torch.distributed process group as the ScriptObject normnorm's sync ops take.";
  m.def(
      "script_object",
      [](const c10::intrusive_ptr<c10d::ProcessGroup>& process_group) {
        return torch::jit::toPyObject(c10::IValue(process_group));
      },
      pybind11::arg("process_group"));
}
