// CPU kernels of the Winograd transforms (see winograd.h); arguments validated.
#pragma once
#include <cstdint>

#include "common/tensor_view.h"

namespace mn {
namespace cpu {

void winograd_input_transform(const TensorView& input, const TensorView& v, int64_t tile0,
                              int64_t m);

void winograd_grad_transform(const TensorView& grad_output, const TensorView& dm, int64_t tile0,
                             int64_t m);

void winograd_output_transform(const TensorView& mt, const TensorView* bias,
                               const TensorView* residual, const TensorView& output,
                               int64_t tile0, int64_t m, bool relu);

}  // namespace cpu
}  // namespace mn
