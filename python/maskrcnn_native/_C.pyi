"""Type stubs for the native extension. Tensor arguments are any object with
``__dlpack__`` (torch tensors, NumPy arrays) or a DLPack capsule; outputs are
allocated by the caller and filled in place. The public API is
``maskrcnn_native.ops``; these entry points are its plumbing."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

Array = Any  # torch.Tensor | numpy.ndarray | PyCapsule

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _set_host_openmp(allowed: bool) -> None: ...
def _host_openmp_active() -> bool: ...
def _cpu_features() -> Dict[str, Any]: ...
def build_info() -> Dict[str, Any]: ...
def _dlpack_info(x: Array, writable: bool = False) -> Dict[str, Any]: ...
def cuda_device_count() -> int: ...
def cuda_driver_version() -> int: ...

# Test hook: the CUDA kernels' per-thread functors over their whole grid, on the host.
_grid: Any

def roi_align_forward(
    input: Array,
    rois: Array,
    output: Array,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    sampling_ratio: int,
    aligned: bool,
    quantize: bool = False,
    stream: int = 0,
) -> None: ...
def roi_align_backward(
    grad_output: Array,
    rois: Array,
    grad_input: Array,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    sampling_ratio: int,
    aligned: bool,
    quantize: bool = False,
    stream: int = 0,
) -> None: ...
def roi_pool_forward(
    input: Array,
    rois: Array,
    output: Array,
    argmax: Array,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    stream: int = 0,
) -> None: ...
def roi_pool_backward(grad_output: Array, rois: Array, argmax: Array, grad_input: Array, stream: int = 0) -> None: ...
def nms(boxes: Array, scores: Array, iou_threshold: float, keep: Array, stream: int = 0) -> int: ...
def batched_nms(
    boxes: Array, scores: Array, idxs: Array, iou_threshold: float, keep: Array, stream: int = 0
) -> int: ...
def box_iou(boxes1: Array, boxes2: Array, out: Array, stream: int = 0) -> None: ...
def cell_anchors(
    sizes: Sequence[float], aspect_ratios: Sequence[float], style: str, out: Array, stream: int = 0
) -> None: ...
def grid_anchors(
    cell_anchors: Array,
    grid_h: int,
    grid_w: int,
    stride_h: float,
    stride_w: float,
    offset: float,
    out: Array,
    stream: int = 0,
) -> None: ...
def encode_boxes(
    reference_boxes: Array, proposals: Array, weights: Sequence[float], out: Array, stream: int = 0
) -> None: ...
def decode_boxes(
    codes: Array, boxes: Array, weights: Sequence[float], clamp: float, out: Array, stream: int = 0
) -> None: ...
def paste_masks_plan(
    masks: Array, boxes: Array, rects: Array, height: int, width: int, mode: str, stream: int = 0
) -> Any: ...
def paste_masks_forward(
    masks: Array,
    boxes: Array,
    output: Array,
    height: int,
    width: int,
    mode: str,
    threshold: Optional[float],
    stream: int = 0,
) -> None: ...
def paste_masks_crops(
    masks: Array,
    boxes: Array,
    rects: Array,
    output: Array,
    height: int,
    width: int,
    mode: str,
    threshold: Optional[float],
    stream: int = 0,
) -> None: ...
def paste_masks_rle_counts(
    crops: Array, rects: Array, counts: Array, lengths: Array, height: int, width: int
) -> None: ...
def winograd_input_transform(input: Array, v: Array, tile0: int, m: int) -> None: ...
def winograd_grad_transform(grad_output: Array, dm: Array, tile0: int, m: int) -> None: ...
def winograd_output_transform(
    tiles: Array,
    bias: Optional[Array],
    residual: Optional[Array],
    output: Array,
    tile0: int,
    m: int,
    relu: bool,
) -> None: ...
