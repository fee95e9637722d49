"""Detections / ImageList."""

import numpy as np
import pytest
import torch

from maskrcnn_native.structures import Detections, ImageList, masks_to_rle


def test_image_list_pads_to_divisible():
    il = ImageList.from_tensors([torch.ones(3, 30, 50), torch.ones(3, 64, 20)], 32)
    assert il.tensors.shape == (2, 3, 64, 64)
    assert il.image_sizes == [(30, 50), (64, 20)]
    assert il.tensors[0, :, 30:].abs().sum() == 0 and il.tensors[0, :, :30, :50].min() == 1
    with pytest.raises(ValueError):
        ImageList.from_tensors([])


def test_to_coco_boxes_masks_keypoints():
    from pycocotools import mask as mask_utils

    masks = torch.zeros((2, 10, 12), dtype=torch.bool)
    masks[0, 2:5, 3:9] = True
    masks[1, 7:, :2] = True
    kps = torch.tensor([[[1.0, 2.0, 0.3]], [[4.0, 5.0, 0.9]]])
    d = Detections(boxes=torch.tensor([[3.0, 2.0, 9.0, 5.0], [0.0, 7.0, 2.0, 10.0]]),
                   scores=torch.tensor([0.9, 0.4]), labels=torch.tensor([1, 2]), masks=masks,
                   keypoints=kps, image_size=(10, 12))
    out = d.to_coco(5)
    assert [o["category_id"] for o in out] == [1, 2]
    assert out[0]["bbox"] == [3.0, 2.0, 6.0, 3.0]
    assert out[0]["keypoints"] == [1.0, 2.0, 1.0]
    for o, m in zip(out, masks):
        rle = dict(o["segmentation"], counts=o["segmentation"]["counts"].encode())
        assert np.array_equal(mask_utils.decode(rle).astype(bool), m.numpy())
    assert d.to_coco(5, category_ids=[0, 10, 20])[1]["category_id"] == 20
    assert masks_to_rle(torch.zeros((0, 4, 4), dtype=torch.bool)) == []
    assert len(d) == 2
