"""Anchor workload W8: the 5 FPN levels of an 800x1216 image against
torchvision's AnchorGenerator.

Run:  python -m pytest benchmarks/bench_anchors.py --benchmark-only \
          --benchmark-columns=median,iqr,rounds --benchmark-group-by=group

Levels: sizes ((32,), (64,), (128,), (256,), (512,)), aspect ratios
(0.5, 1, 2), strides 4..64, feature sizes ceil(800/s) x ceil(1216/s):
242,991 anchors.

Groups:
* "W8 forward": torchvision ``AnchorGenerator.forward(ImageList, features)``
  (one image; its output is the concatenation over levels) against
  ``multilevel_grid_anchors`` on the same grids and strides
  (image_size // grid_size, as torchvision computes them), default
  (uncached: one kernel call per level into one fresh tensor): this is the
  W8 figure. Also timed: ``cache=True`` (a clone of the cached tensor), to
  show why recomputing is the default.
* "W8 grid_anchors": torchvision ``AnchorGenerator.grid_anchors`` (list per
  level, cell anchors precomputed) against ``grid_anchors`` per level.
Every benchmark checks its output equals torchvision's.
"""

import math

import pytest
import torch

import maskrcnn_native as mn

tv = pytest.importorskip("torchvision")
from torchvision.models.detection.anchor_utils import AnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402

SIZES = ((32,), (64,), (128,), (256,), (512,))
RATIOS = ((0.5, 1.0, 2.0),) * 5
IMAGE = (800, 1216)
GRIDS = [(math.ceil(IMAGE[0] / s), math.ceil(IMAGE[1] / s)) for s in (4, 8, 16, 32, 64)]
STRIDES = [(IMAGE[0] // g[0], IMAGE[1] // g[1]) for g in GRIDS]


@pytest.fixture(scope="module")
def setup():
    gen = AnchorGenerator(SIZES, RATIOS)
    images = ImageList(torch.empty(1, 3, *IMAGE), [IMAGE])
    feats = [torch.empty(1, 1, *g) for g in GRIDS]
    expected = gen(images, feats)[0]
    cells = [mn.ops.cell_anchors(s, r) for s, r in zip(SIZES, RATIOS)]
    return gen, images, feats, expected, cells


@pytest.mark.parametrize("impl", ["torchvision", "native", "native_cache_clone"])
def test_w8_forward(benchmark, setup, impl):
    gen, images, feats, expected, cells = setup
    benchmark.group = "W8 forward: anchors for 5 FPN levels of 800x1216 (242,991 anchors)"
    if impl == "torchvision":
        out = benchmark(lambda: gen(images, feats)[0])
    elif impl == "native":
        out = benchmark(mn.ops.multilevel_grid_anchors, cells, GRIDS, STRIDES)
    else:
        out = benchmark(lambda: mn.ops.multilevel_grid_anchors(cells, GRIDS, STRIDES, cache=True))
    assert torch.equal(out, expected)


@pytest.mark.parametrize("impl", ["torchvision", "native"])
def test_w8_grid_anchors(benchmark, setup, impl):
    gen, images, feats, expected, cells = setup
    benchmark.group = "W8 grid_anchors: per-level lists, 5 FPN levels of 800x1216"
    if impl == "torchvision":
        strides = [[torch.tensor(a), torch.tensor(b)] for a, b in STRIDES]
        out = benchmark(gen.grid_anchors, [list(g) for g in GRIDS], strides)
    else:
        out = benchmark(lambda: [mn.ops.grid_anchors(c, g, s) for c, g, s in zip(cells, GRIDS, STRIDES)])
    assert torch.equal(torch.cat(out), expected)
