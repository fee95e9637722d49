// Winograd transforms: validation (once, before any kernel) and dispatch.
#include "ops/winograd/winograd.h"

#include <string>

#include "common/checks.h"
#include "ops/winograd/winograd_cpu.h"

namespace mn {
namespace {

int64_t alpha2(const char* op, int64_t m) {
  if (m != 2 && m != 4)
    throw ValueError(std::string(op) + ": m must be 2 or 4 (F(2x2,3x3) or F(4x4,3x3)), got " +
                     std::to_string(m));
  return (m + 2) * (m + 2);
}

void check_map(const char* op, const char* arg, const TensorView& t, const char* shape) {
  check_host(op, arg, t);
  check_dtype(op, arg, t, {DType::Float32});
  check_ndim(op, arg, t, 4, shape);
  if (!t.is_channels_last())
    throw ValueError(arg_prefix(op, arg) + " must be channels_last (torch.channels_last)");
}

// [A, T, C] with a unit stride on the last dim (the first two may be strided).
void check_tiles(const char* op, const char* arg, const TensorView& t, int64_t a, int64_t c,
                 const char* shape) {
  check_host(op, arg, t);
  check_dtype(op, arg, t, {DType::Float32});
  check_shape(op, arg, t, {a, -1, c}, shape);
  if (t.size(2) > 1 && t.stride(2) != 1)
    throw ValueError(arg_prefix(op, arg) + " must have a contiguous last dimension");
}

void check_tile_range(const char* op, int64_t tile0, int64_t count, int64_t n, int64_t h,
                      int64_t w, int64_t m) {
  const int64_t total = n * ((h + m - 1) / m) * ((w + m - 1) / m);
  if (tile0 < 0 || tile0 + count > total)
    throw ValueError(std::string(op) + ": tiles " + std::to_string(tile0) + " .. " +
                     std::to_string(tile0 + count) + " are outside the " +
                     std::to_string(total) + " tiles of the map");
}

}  // namespace

void winograd_input_transform(const TensorView& input, const TensorView& v, int64_t tile0,
                              int64_t m) {
  const char* op = "winograd_input_transform";
  const int64_t a = alpha2(op, m);
  check_map(op, "input", input, "[N, C, H, W]");
  check_tiles(op, "v", v, a, input.size(1), "[(m+2)^2, T, C]");
  check_writable(op, "v", v);
  check_tile_range(op, tile0, v.size(1), input.size(0), input.size(2), input.size(3), m);
  cpu::winograd_input_transform(input, v, tile0, m);
}

void winograd_grad_transform(const TensorView& grad_output, const TensorView& dm, int64_t tile0,
                             int64_t m) {
  const char* op = "winograd_grad_transform";
  const int64_t a = alpha2(op, m);
  check_map(op, "grad_output", grad_output, "[N, O, H, W]");
  check_tiles(op, "dm", dm, a, grad_output.size(1), "[(m+2)^2, T, O]");
  check_writable(op, "dm", dm);
  check_tile_range(op, tile0, dm.size(1), grad_output.size(0), grad_output.size(2),
                   grad_output.size(3), m);
  cpu::winograd_grad_transform(grad_output, dm, tile0, m);
}

void winograd_output_transform(const TensorView& mt, const TensorView* bias,
                               const TensorView* residual, const TensorView& output,
                               int64_t tile0, int64_t m, bool relu) {
  const char* op = "winograd_output_transform";
  const int64_t a = alpha2(op, m);
  check_map(op, "output", output, "[N, O, H, W]");
  check_writable(op, "output", output);
  const int64_t o = output.size(1);
  check_tiles(op, "tiles", mt, a, o, "[(m+2)^2, T, O]");
  if (bias) {
    check_host(op, "bias", *bias);
    check_dtype(op, "bias", *bias, {DType::Float32});
    check_shape(op, "bias", *bias, {o}, "[O]");
    check_contiguous(op, "bias", *bias);
  }
  if (residual) {
    check_map(op, "residual", *residual, "[N, O, H, W]");
    check_shape(op, "residual", *residual,
                {output.size(0), o, output.size(2), output.size(3)}, "the shape of output");
  }
  check_tile_range(op, tile0, mt.size(1), output.size(0), output.size(2), output.size(3), m);
  cpu::winograd_output_transform(mt, bias, residual, output, tile0, m, relu);
}

}  // namespace mn
