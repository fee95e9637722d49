// Winograd F(m x m, 3 x 3) convolution, the two data transforms (CPU, float32).
//
// A 3x3 convolution with stride 1, padding 1, dilation 1 and one group is
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A
// per m x m output tile (Lavin & Gray 2016), d the (m+2) x (m+2) input patch.
// The caller transforms the weight once (U = G g G^T, [A, C, O], A = (m+2)^2),
// then per chunk of tiles: input transform -> A batched GEMMs V[a] @ U[a] (the
// caller's BLAS) -> output transform. m = 2 (A = 16) or m = 4 (A = 36).
//
// Tiles: the output plane of image n is cut into TH = ceil(H/m) by TW = ceil(W/m)
// tiles; tile t of the whole batch is (n, ty, tx) = row-major over [N, TH, TW].
// A call handles the T tiles tile0 .. tile0 + T - 1 (T = the tile dim of v / mt).
//
// Contract (CPU views, outputs preallocated by the caller):
//   input     [N, C, H, W] float32, channels_last (C innermost, stride 1)
//   v         [A, T, C] float32, innermost dim contiguous; fully overwritten
//   mt        [A, T, O] float32, innermost dim contiguous
//   bias      [O] float32 contiguous, or absent
//   residual  [N, O, H, W] float32 channels_last, or absent: added after the bias
//   output    [N, O, H, W] float32 channels_last; the pixels of the T tiles are
//             written (bias, then + residual, then ReLU when asked), no others.
// The weight gradient runs the same tiles backwards: per tile, the input
// transform V and the output-gradient transform dM = A dY A^T (dY the tile's
// m x m output gradient, zeros beyond the map) give dU[a] += V[a]^T @ dM[a] (the
// caller's BLAS), and dW = G^T dU G:
//   grad_output  [N, O, H, W] float32, channels_last
//   dm           [A, T, O] float32, innermost dim contiguous; fully overwritten
// Out-of-image input pixels are zeros (the padding). Each tile is computed by
// one thread in a fixed order: results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "common/tensor_view.h"

namespace mn {

void winograd_input_transform(const TensorView& input, const TensorView& v, int64_t tile0,
                              int64_t m);

void winograd_grad_transform(const TensorView& grad_output, const TensorView& dm, int64_t tile0,
                             int64_t m);

void winograd_output_transform(const TensorView& mt, const TensorView* bias,
                               const TensorView* residual, const TensorView& output,
                               int64_t tile0, int64_t m, bool relu);

}  // namespace mn
