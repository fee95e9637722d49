// Threads, build information and a DLPack probe used by the tests.
#include <pybind11/stl.h>

#include "bindings/register.h"
#include "common/checks.h"
#include "common/cuda_runtime.h"
#include "common/parallel.h"

namespace py = pybind11;

namespace mn {

void register_common(py::module_& m) {
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw ValueError("set_num_threads: n must be >= 1, got " + std::to_string(n));
    set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("_set_host_openmp", &set_host_openmp, py::arg("allowed"));
  m.def("_host_openmp_active", &host_openmp_active);
  m.def("build_info", [] {
    py::dict d;
    d["compiler"] = MN_BUILD_COMPILER;
    d["flags"] = MN_BUILD_FLAGS;
    d["build_type"] = MN_BUILD_TYPE;
    d["cuda"] = static_cast<bool>(MN_BUILD_WITH_CUDA);
    d["cuda_version"] = MN_BUILD_CUDA_VERSION;  // nvcc's, "" without CUDA kernels
    d["cuda_runtime"] = cuda::runtime_version();  // CUDART_VERSION linked (static), 0 without
    d["cuda_archs"] = MN_BUILD_CUDA_ARCHS;      // CMAKE_CUDA_ARCHITECTURES, comma-separated
    d["dlpack_max_version"] = py::make_tuple(1, 0);
    return d;
  });
  // Visible CUDA devices (0 without CUDA kernels, driver or device; never raises).
  m.def("cuda_device_count", [] { return cuda::device_count(); });
  m.def("cuda_driver_version", [] { return cuda::driver_version(); });
  // Describes what the importer sees; lets tests check zero-copy and flags.
  m.def("_dlpack_info", [](py::handle obj, bool writable) {
    ImportedTensor t = import_tensor(obj, "_dlpack_info", "x", writable);
    const TensorView& v = t.view();
    py::dict d;
    d["data_ptr"] = reinterpret_cast<uintptr_t>(v.data);
    d["dtype"] = dtype_name(v.dtype);
    d["shape"] = std::vector<int64_t>(v.shape.begin(), v.shape.begin() + v.ndim);
    d["strides"] = std::vector<int64_t>(v.strides.begin(), v.strides.begin() + v.ndim);
    d["readonly"] = v.readonly;
    d["cpu"] = v.device == DeviceType::CPU;
    d["device"] = device_str(v);
    return d;
  }, py::arg("x"), py::arg("writable") = false);
}

}  // namespace mn
