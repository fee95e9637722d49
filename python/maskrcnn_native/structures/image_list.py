"""A batch of differently sized images padded into one tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor


def image_to_float(image: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    """The one image converter: uint8 ``Tensor[..., H, W]`` in 0..255 ->
    float in [0, 1] (divided by 255); a floating image is returned as is, or
    cast to ``dtype`` when given (default float32 for uint8 input)."""
    if image.dtype == torch.uint8:
        return image.to(dtype or torch.float32).div_(255.0)
    if dtype is not None and image.dtype != dtype:
        return image.to(dtype)
    return image


@dataclass
class ImageList:
    """tensors: Tensor[N, C, Hp, Wp] (zero padded at the bottom/right, Hp and Wp
    multiples of the size divisor); image_sizes: the (h, w) of each image
    before padding, in the same (resized) pixel frame as ``tensors``."""

    tensors: Tensor
    image_sizes: List[Tuple[int, int]]

    @staticmethod
    def from_tensors(images: List[Tensor], size_divisible: int = 32) -> "ImageList":
        """Pad images [C, H_i, W_i] to a common size divisible by ``size_divisible``."""
        if not images:
            raise ValueError("ImageList.from_tensors: got no images")
        c = images[0].shape[0]
        hmax = max(int(im.shape[-2]) for im in images)
        wmax = max(int(im.shape[-1]) for im in images)
        d = size_divisible
        hp, wp = (hmax + d - 1) // d * d, (wmax + d - 1) // d * d
        batch = images[0].new_zeros((len(images), c, hp, wp))
        for i, im in enumerate(images):
            batch[i, :, : im.shape[-2], : im.shape[-1]].copy_(im)
        return ImageList(batch, [(int(im.shape[-2]), int(im.shape[-1])) for im in images])

    def __len__(self) -> int:
        return len(self.image_sizes)
