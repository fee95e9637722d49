// Threads, build information and a DLPack probe used by the tests.
#include <pybind11/stl.h>

#include <string>

#include "bindings/register.h"
#include "common/checks.h"
#include "common/cuda_runtime.h"
#include "common/parallel.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define MN_HAVE_CPUID 1
#endif

namespace py = pybind11;

namespace mn {

namespace {

// What CPUID says (x86 with GCC/Clang; an empty dict elsewhere): the CPU the
// native target_clones dispatch on, which under an emulator (QEMU's CPU models)
// is not the one /proc/cpuinfo describes. family/model as lscpu prints them.
// A feature counts only when the OS also saves its registers (XCR0), as for
// GCC's __builtin_cpu_supports, which the target_clones resolvers call.
py::dict cpu_features() {
  py::dict d;
#ifdef MN_HAVE_CPUID
  unsigned a = 0, b = 0, c = 0, e = 0;
  bool avx_os = false, avx512_os = false, amx_os = false;
  if (__get_cpuid(1, &a, &b, &c, &e)) {
    unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model |= ((a >> 16) & 0xf) << 4;
    d["family"] = family;
    d["model"] = model;
    if (c & (1u << 27)) {  // OSXSAVE: XGETBV may be executed
      unsigned lo = 0, hi = 0;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      avx_os = (lo & 0x6u) == 0x6u;                       // SSE + AVX state
      avx512_os = avx_os && (lo & 0xe0u) == 0xe0u;         // opmask, ZMM_Hi256, Hi16_ZMM
      amx_os = (lo & (0x3u << 17)) == (0x3u << 17);        // XTILECFG, XTILEDATA
    }
    d["fma"] = avx_os && (c & (1u << 12));
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, e);
    const unsigned max_subleaf = a;
    d["avx2"] = avx_os && (b & (1u << 5));
    d["avx512f"] = avx512_os && (b & (1u << 16));
    d["amx_bf16"] = amx_os && (e & (1u << 22));
    d["avx512_fp16"] = avx512_os && (e & (1u << 23));
    d["amx_tile"] = amx_os && (e & (1u << 24));
    bool bf16 = false;
    if (max_subleaf >= 1) {
      __cpuid_count(7, 1, a, b, c, e);
      bf16 = avx512_os && (a & (1u << 5));
    }
    d["avx512_bf16"] = bf16;
  }
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    unsigned r[12];
    for (unsigned i = 0; i < 3; ++i) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    std::string brand(reinterpret_cast<const char*>(r), sizeof(r));
    brand = brand.substr(0, brand.find('\0'));
    const auto first = brand.find_first_not_of(' ');
    const auto last = brand.find_last_not_of(' ');
    d["brand"] = first == std::string::npos ? std::string() : brand.substr(first, last - first + 1);
  }
#endif
  return d;
}

}  // namespace

void register_common(py::module_& m) {
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw ValueError("set_num_threads: n must be >= 1, got " + std::to_string(n));
    set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("_set_host_openmp", &set_host_openmp, py::arg("allowed"));
  m.def("_host_openmp_active", &host_openmp_active);
  m.def("_cpu_features", &cpu_features);
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
