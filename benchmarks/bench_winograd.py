"""The inference 3x3 convolution workloads of R50-FPN (channels_last float32,
bias + ReLU epilogue): Winograd F(4x4,3x3) and F(2x2,3x3)
(``maskrcnn_native.ops.winograd``) against torch's ``F.conv2d`` (oneDNN) and
against oneDNN's fused call with a pre-reordered weight (what ``mn.Model``
ran before Winograd).

Run:  python -m pytest benchmarks/bench_winograd.py --benchmark-only -q \\
          --benchmark-columns=median --benchmark-group-by=group

Every Winograd result is checked against a float64 convolution first.
"""

import pytest
import torch
import torch.nn.functional as F

from maskrcnn_native.ops.winograd import conv3x3_winograd, winograd_weight

SHAPES = {
    "P2 1x256x200x304": (1, 256, 200, 304),
    "P3 1x256x100x152": (1, 256, 100, 152),
    "mask head 100x256x14x14": (100, 256, 14, 14),
    "C3 1x128x100x152": (1, 128, 100, 152),
}
TOL = {2: 2e-5, 4: 2e-4}


@pytest.fixture(scope="module", params=list(SHAPES), ids=list(SHAPES))
def case(request):
    n, c, h, w = SHAPES[request.param]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=g).relu().contiguous(memory_format=torch.channels_last)
    wt = torch.randn(c, c, 3, 3, generator=g) * (2.0 / (9 * c)) ** 0.5
    b = torch.randn(c, generator=g) * 0.1
    ref = F.conv2d(x.double(), wt.double(), b.double(), padding=1).relu().float()
    return request.param, x, wt, b, ref


def _torch_conv(x, wt, b):
    return F.conv2d(x, wt, b, padding=1).relu_()


@pytest.mark.parametrize("impl", ["torch_conv2d", "onednn_fused", "winograd_f2", "winograd_f4"])
def test_conv3x3(benchmark, case, impl):
    name, x, wt, b, ref = case
    benchmark.group = f"3x3 conv {name}, bias + ReLU"
    if impl == "torch_conv2d":
        fn, args = _torch_conv, (x, wt, b)
        tol = 1e-4
    elif impl == "onednn_fused":
        wp = torch.ops.mkldnn._reorder_convolution_weight(wt, [1, 1], [1, 1], [1, 1], 1, list(x.shape))

        def fn(x, wp, b):
            return torch.ops.mkldnn._convolution_pointwise(x, wp, b, [1, 1], [1, 1], [1, 1], 1, "relu", [None], "")

        args, tol = (x, wp, b), 1e-4
    else:
        m = int(impl[-1])
        u = winograd_weight(wt, m)

        def fn(x, u, b):
            return conv3x3_winograd(x, u, b, relu=True, m=m)

        args, tol = (x, u, b), TOL[m]
    out = fn(*args)
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    benchmark(fn, *args)
