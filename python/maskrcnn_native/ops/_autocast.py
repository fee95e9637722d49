"""Autocast behaviour of the native ops, as torchvision registers it for its ops.

Under ``torch.autocast`` (CPU or CUDA) the RoI ops (roi_align, roi_warp,
roi_pool), nms, batched_nms and box_iou run in float32: every floating input
that autocast may cast (float16 / bfloat16 / float32; float64 is left alone)
is cast to float32, the op runs with autocast excluded, and the RoI ops cast
their feature output back to the dtype of ``input``. So float32 features with
bfloat16 boxes give float32 features, bfloat16 features with float32 boxes
give bfloat16 features, and nms returns int64 indices, exactly as
torchvision's autocast kernels do. decode_boxes also runs in float32 and
returns float32: under autocast the regression codes come out of a bfloat16
linear/conv layer while the anchors and proposals are float32, and boxes
rounded to bfloat16's 8-bit mantissa would be off by up to 4 px at 1000 px. Autocast sits before autograd in the
dispatcher, so gradients flow through the casts.
"""

import torch

_KEYS = {"AutocastCPU": torch._C.DispatchKey.AutocastCPU, "AutocastCUDA": torch._C.DispatchKey.AutocastCUDA}
_lib = torch.library.Library("maskrcnn_native", "IMPL")


def _cast(t):
    if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64:
        return t.float()
    return t


def _register(name: str, cast_back: bool, tuple_out: bool = False) -> None:
    op = getattr(torch.ops.maskrcnn_native, name).default
    for key_name, key in _KEYS.items():
        excluded = torch._C.DispatchKeySet(key)

        def kernel(*args, _op=op, _excluded=excluded):
            with torch._C._ExcludeDispatchKeyGuard(_excluded):
                out = _op(*[_cast(a) for a in args])
            if not cast_back:
                return out
            dtype = args[0].dtype
            if tuple_out:
                return (out[0].to(dtype),) + tuple(out[1:])
            return out.to(dtype)

        _lib.impl(name, kernel, key_name)


_register("roi_align", cast_back=True)
_register("roi_pool", cast_back=True, tuple_out=True)
_register("nms", cast_back=False)
_register("batched_nms", cast_back=False)
_register("box_iou", cast_back=False)
_register("decode_boxes", cast_back=False)
