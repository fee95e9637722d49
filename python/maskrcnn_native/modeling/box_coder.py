"""Box parameterisation of R-CNN (Girshick et al.): (dx, dy, dw, dh) with
weights. Thin wrapper over ``ops.encode_boxes`` / ``ops.decode_boxes``.

All boxes are ``Tensor[N, 4]`` float32 XYXY in absolute (resized-image) pixels.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from torch import Tensor

from . import _ops


class BoxCoder:
    """weights: (wx, wy, ww, wh); RPN uses (1, 1, 1, 1), the box head (10, 10, 5, 5).
    ``scale_clamp`` bounds dw/dh before exp (log(1000/16), torchvision's)."""

    def __init__(self, weights: Sequence[float], scale_clamp: float = _ops.DEFAULT_SCALE_CLAMP):
        self.weights: Tuple[float, ...] = tuple(float(w) for w in weights)
        self.scale_clamp = scale_clamp

    def encode(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        """Targets [N, 4] that turn ``proposals`` [N, 4] into ``reference_boxes`` [N, 4]."""
        return _ops.encode_boxes(reference_boxes, proposals, self.weights)

    def decode(self, codes: Tensor, boxes: Tensor) -> Tensor:
        """codes [N, 4*C] applied to boxes [N, 4] -> [N, C, 4] XYXY."""
        if codes.dim() != 2 or codes.shape[0] != boxes.shape[0] or codes.shape[1] % 4:
            raise ValueError(
                f"BoxCoder.decode: codes must be [N, 4*C] for boxes [N, 4], got "
                f"{list(codes.shape)} and {list(boxes.shape)}"
            )
        out = _ops.decode_boxes(codes, boxes, self.weights, clamp=self.scale_clamp)
        return out.reshape(boxes.shape[0], codes.shape[1] // 4, 4)
