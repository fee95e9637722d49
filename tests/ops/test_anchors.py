"""cell_anchors / grid_anchors / multilevel_grid_anchors against ops.reference
and torchvision's AnchorGenerator."""

import math

import numpy as np
import pytest
import torch

from maskrcnn_native import ops
from maskrcnn_native.ops import reference as ref

SIZES = [(32,), (64,), (128,), (256,), (512,)]
RATIOS = (0.5, 1.0, 2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sizes,ratios", [((32,), RATIOS), ((128, 256, 512), RATIOS),
                                          ((23, 45.5, 90), (0.3, 1.0, 1.7, 3.1)), ((7,), (1.0,))])
def test_cell_anchors_torchvision_style(dtype, sizes, ratios):
    got = ops.cell_anchors(sizes, ratios, dtype=dtype)
    assert got.shape == (len(sizes) * len(ratios), 4) and got.dtype == dtype
    assert torch.equal(got, ref.cell_anchors(sizes, ratios, dtype))
    ag = pytest.importorskip("torchvision.models.detection.anchor_utils")
    gen = ag.AnchorGenerator((sizes,), (ratios,))
    assert torch.equal(got, gen.generate_anchors(list(sizes), list(ratios), dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cell_anchors_detectron2_style(dtype):
    sizes, ratios = (32, 40.3, 50.8), (0.5, 1.0, 2.0)
    got = ops.cell_anchors(sizes, ratios, dtype=dtype, style="detectron2")
    assert torch.equal(got, ref.cell_anchors(sizes, ratios, dtype, style="detectron2"))
    # size-major order, exact (unrounded) area size^2 and ratio h / w
    w = got[:, 2] - got[:, 0]
    h = got[:, 3] - got[:, 1]
    exp_area = torch.tensor([s * s for s in sizes for _ in ratios], dtype=torch.float64)
    exp_ratio = torch.tensor([r for _ in sizes for r in ratios], dtype=torch.float64)
    torch.testing.assert_close((w * h).double(), exp_area, rtol=1e-5, atol=0)
    torch.testing.assert_close((h / w).double(), exp_ratio, rtol=1e-5, atol=0)
    assert not torch.equal(got, got.round())


def test_cell_anchors_numpy_and_scalar():
    a = ops.cell_anchors(32, 1.0, dtype=np.float64)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64
    np.testing.assert_array_equal(a, [[-16.0, -16.0, 16.0, 16.0]])


def test_cell_anchors_errors():
    with pytest.raises(ValueError, match=r"cell_anchors: style must be 'torchvision' or 'detectron2', got 'mmdet'"):
        ops.cell_anchors((32,), RATIOS, style="mmdet")
    with pytest.raises(ValueError, match=r"cell_anchors: sizes\[1\] must be a positive finite number, got -2"):
        ops.cell_anchors((32, -2), RATIOS)
    with pytest.raises(ValueError, match=r"cell_anchors: aspect_ratios\[0\] must be a positive finite number, got nan"):
        ops.cell_anchors((32,), (float("nan"),))
    with pytest.raises(ValueError, match=r"cell_anchors: sizes must not be empty"):
        ops.cell_anchors((), RATIOS)
    with pytest.raises(TypeError, match=r"cell_anchors: out must be float32 or float64, got int32"):
        ops.cell_anchors((32,), RATIOS, dtype=torch.int32)
    with pytest.raises(TypeError, match=r"cell_anchors: sizes must be a number or a sequence of numbers"):
        ops.cell_anchors("big", RATIOS)


def image_strides(image, grids):
    return [(image[0] // g[0], image[1] // g[1]) for g in grids]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_anchors_match_torchvision(dtype):
    tvd = pytest.importorskip("torchvision.models.detection")
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    image = (200, 328)
    strides = [4, 8, 16, 32, 64]
    grids = [(math.ceil(image[0] / s), math.ceil(image[1] / s)) for s in strides]
    gen = AnchorGenerator(tuple(SIZES), (RATIOS,) * 5)
    feats = [torch.empty(1, 1, *g, dtype=dtype) for g in grids]
    expected = gen(ImageList(torch.empty(2, 3, *image, dtype=dtype), [image, image]), feats)
    cells = [ops.cell_anchors(s, RATIOS, dtype=dtype) for s in SIZES]
    st = image_strides(image, grids)
    got = ops.multilevel_grid_anchors(cells, grids, st)
    assert got.dtype == dtype
    assert torch.equal(got, expected[0]) and torch.equal(got, expected[1])
    per_level = gen.grid_anchors([list(g) for g in grids],
                                 [[torch.tensor(a), torch.tensor(b)] for a, b in st])
    for c, g, s, e in zip(cells, grids, st, per_level):
        assert torch.equal(ops.grid_anchors(c, g, s), e)
    assert tvd is not None


@pytest.mark.parametrize("offset", [0.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_anchors_match_reference(offset, dtype):
    cell = ops.cell_anchors((32, 45), (0.5, 1.0, 2.0), dtype=dtype, style="detectron2")
    for grid, stride in [((7, 5), 8), ((1, 1), 4), ((13, 19), (64, 63)), ((3, 9), 2.5)]:
        got = ops.grid_anchors(cell, grid, stride, offset=offset)
        assert got.shape == (grid[0] * grid[1] * 6, 4)
        assert torch.equal(got, ref.grid_anchors(cell, grid, stride, offset))
    np_got = ops.grid_anchors(cell.numpy(), (7, 5), 8, offset=offset)
    assert isinstance(np_got, np.ndarray)
    np.testing.assert_array_equal(np_got, ref.grid_anchors(cell, (7, 5), 8, offset).numpy())


def test_grid_anchors_order_location_major():
    cell = torch.tensor([[-1.0, -2.0, 1.0, 2.0], [-3.0, -3.0, 3.0, 3.0]])
    got = ops.grid_anchors(cell, (2, 3), (10, 5))
    # row (y * W + x) * A + a
    y, x, a = 1, 2, 1
    assert got[(y * 3 + x) * 2 + a].tolist() == [5 * x - 3, 10 * y - 3, 5 * x + 3, 10 * y + 3]
    assert got[1].tolist() == [-3.0, -3.0, 3.0, 3.0]


def test_grid_anchors_empty_grid():
    cell = ops.cell_anchors((32,), RATIOS)
    assert ops.grid_anchors(cell, (0, 5), 4).shape == (0, 4)
    assert ops.grid_anchors(cell, (3, 0), 4).shape == (0, 4)


def test_grid_anchors_cache_returns_independent_copies():
    ops.clear_anchor_cache()
    cell = ops.cell_anchors((32,), RATIOS)
    first = ops.grid_anchors(cell, (6, 4), 8, cache=True)
    pristine = first.clone()
    first.add_(1000)  # caller mutates its result
    second = ops.grid_anchors(cell, (6, 4), 8, cache=True)
    assert torch.equal(second, pristine)
    assert second.data_ptr() != first.data_ptr()
    # the key is the cell content, not its shape or identity
    other = cell * 2
    assert torch.equal(ops.grid_anchors(other, (6, 4), 8, cache=True), ref.grid_anchors(other, (6, 4), 8))
    cell.mul_(3)  # mutated in place: must not hit the stale entry
    assert torch.equal(ops.grid_anchors(cell, (6, 4), 8, cache=True), ref.grid_anchors(cell, (6, 4), 8))
    # uncached calls return fresh tensors as well
    u1 = ops.grid_anchors(cell, (6, 4), 8)
    u1.zero_()
    assert torch.equal(ops.grid_anchors(cell, (6, 4), 8), ref.grid_anchors(cell, (6, 4), 8))
    cells = [ops.cell_anchors(s, RATIOS) for s in SIZES[:2]]
    m1 = ops.multilevel_grid_anchors(cells, [(4, 4), (2, 2)], [8, 16], cache=True)
    keep = m1.clone()
    m1.zero_()
    assert torch.equal(ops.multilevel_grid_anchors(cells, [(4, 4), (2, 2)], [8, 16], cache=True), keep)
    assert torch.equal(ops.multilevel_grid_anchors(cells, [(4, 4), (2, 2)], [8, 16]), keep)


@pytest.mark.parametrize("offset", [float("inf"), float("-inf"), float("nan")])
def test_multilevel_grid_anchors_names_itself_for_a_bad_offset(offset):
    """Found by the fuzz suite: the per-level kernel's check said "grid_anchors: ..."."""
    cells = [torch.zeros(0, 4, dtype=torch.float64)] * 3
    with pytest.raises(ValueError, match=r"^multilevel_grid_anchors: offset must be finite"):
        ops.multilevel_grid_anchors(cells, [0, 0, 0], [(4, 16)] * 3, offset=offset)
    with pytest.raises(ValueError, match=r"^multilevel_grid_anchors: offset must be finite"):
        torch.ops.maskrcnn_native.multilevel_grid_anchors(cells, [0, 0] * 3, [4.0, 16.0] * 3, offset, False)


def test_grid_anchors_errors():
    cell = ops.cell_anchors((32,), RATIOS)
    with pytest.raises(ValueError, match=r"grid_anchors: grid_size must be non-negative, got \(-1, 4\)"):
        ops.grid_anchors(cell, (-1, 4), 8)
    with pytest.raises(ValueError, match=r"grid_anchors: stride must be positive and finite, got \(0.000000, 8.000000\)"):
        ops.grid_anchors(cell, (4, 4), (0, 8))
    with pytest.raises(ValueError, match=r"grid_anchors: offset must be finite, got nan"):
        ops.grid_anchors(cell, (4, 4), 8, offset=float("nan"))
    with pytest.raises(ValueError, match=r"grid_anchors: cell_anchors must have shape \[A, 4\], got \[3, 5\]"):
        ops.grid_anchors(torch.zeros(3, 5), (4, 4), 8)
    with pytest.raises(TypeError, match=r"grid_anchors: cell_anchors must be float32 or float64, got int64"):
        ops.grid_anchors(torch.zeros(3, 4, dtype=torch.int64), (4, 4), 8)
    with pytest.raises(TypeError, match=r"grid_anchors: grid_size must be a number or a pair \(h, w\)"):
        ops.grid_anchors(cell, (1, 2, 3), 8)
    with pytest.raises(TypeError, match=r"grid_anchors: cell_anchors must be a Tensor or a NumPy array, got list"):
        ops.grid_anchors([[0, 0, 1, 1]], (2, 2), 8)
    with pytest.raises(ValueError, match=r"multilevel_grid_anchors: need one grid size and one stride per level"):
        ops.multilevel_grid_anchors([cell, cell], [(2, 2)], [8, 16])
    with pytest.raises(TypeError, match=r"multilevel_grid_anchors: cell_anchors\[1\] must have the same dtype"):
        ops.multilevel_grid_anchors([cell, cell.double()], [(2, 2), (1, 1)], [8, 16])


def test_anchor_opcheck():
    cell = ops.cell_anchors((32, 64), RATIOS)
    torch.library.opcheck(torch.ops.maskrcnn_native.grid_anchors.default, (cell, 5, 7, 8.0, 8.0, 0.0, True))
    torch.library.opcheck(torch.ops.maskrcnn_native.multilevel_grid_anchors.default,
                          ([cell, cell * 2], [5, 7, 3, 4], [8.0, 8.0, 16.0, 16.0], 0.5, False))


def test_multilevel_grid_anchors_names_itself_on_a_bad_cell_shape():
    # found by tests/fuzz: the error used to name grid_anchors
    with pytest.raises(ValueError, match=r"multilevel_grid_anchors: cell_anchors\[0\] must have shape \[A, 4\], got \[0, 5\]"):
        ops.multilevel_grid_anchors([torch.zeros(0, 5)], [(9, 0)], [(4, 4)])
