// Non-owning view of a strided tensor: what every kernel receives.
// Strides are in elements. Kernels never allocate outputs; Python does.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace mn {

enum class DType : uint8_t {
  Float32, Float64, Float16, BFloat16,
  Int8, Int16, Int32, Int64, UInt8, Bool, Other
};

enum class DeviceType : uint8_t { CPU, CUDA, Other };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int8: return "int8";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::UInt8: return "uint8";
    case DType::Bool: return "bool";
    default: return "unsupported dtype";
  }
}

constexpr int kMaxDims = 8;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::Other;
  DeviceType device = DeviceType::CPU;
  int device_id = 0;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};
  bool readonly = false;

  int64_t size(int d) const { return shape[d < 0 ? d + ndim : d]; }
  int64_t stride(int d) const { return strides[d < 0 ? d + ndim : d]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }

  // Row-major contiguous (dims of size 1 may have any stride).
  bool is_contiguous() const {
    if (numel() == 0) return true;  // nothing is read or written
    int64_t expected = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
  // 4-D tensor stored as N, H, W, C (torch.channels_last).
  bool is_channels_last() const {
    if (ndim != 4) return false;
    if (numel() == 0) return true;
    const int order[4] = {1, 3, 2, 0};  // innermost first: C, W, H, N
    int64_t expected = 1;
    for (int d : order) {
      if (shape[d] != 1 && strides[d] != expected) return false;
      expected *= shape[d];
    }
    return true;
  }
  std::string shape_str() const {
    std::string s = "[";
    for (int i = 0; i < ndim; ++i) {
      if (i) s += ", ";
      s += std::to_string(shape[i]);
    }
    return s + "]";
  }
};

}  // namespace mn
