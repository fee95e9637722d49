"""Run under torchrun by test_sync_bn.py: SyncBatchNorm2d (argument "2d") or
SyncBatchNorm1d ("1d") on each rank's half of a batch against nn.BatchNorm2d /
nn.BatchNorm1d on the whole batch, in float64."""

import json
import sys

import torch
import torch.distributed as dist
from torch import nn

from maskrcnn_native.engine.distributed import SyncBatchNorm1d, SyncBatchNorm2d, convert_sync_batchnorm


def main(kind: str):
    dist.init_process_group("gloo")
    r, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    n = 3 * world
    shape = (n, 4, 5, 6) if kind == "2d" else (n, 4)
    bn_cls, sync_cls = (nn.BatchNorm2d, SyncBatchNorm2d) if kind == "2d" else (nn.BatchNorm1d, SyncBatchNorm1d)
    x = torch.randn(*shape, dtype=torch.float64) * 3 + 1
    w = torch.randn(*shape, dtype=torch.float64)
    ref = bn_cls(4).double()
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2)
        ref.bias.uniform_(-1, 1)
    m = nn.Sequential(bn_cls(4).double())
    m[0].load_state_dict(ref.state_dict())
    assert convert_sync_batchnorm(m) == 1 and type(m[0]) is sync_cls
    out = {}
    for step in range(2):  # twice: the running statistics accumulate
        ref.zero_grad()
        m.zero_grad()
        xr = x.clone().requires_grad_()
        yr = ref(xr)
        (yr * w).sum().backward()
        lo, hi = 3 * r, 3 * r + 3
        xs = x[lo:hi].clone().requires_grad_()
        ys = m(xs)
        (ys * w[lo:hi]).sum().backward()
        gw, gb = m[0].weight.grad.clone(), m[0].bias.grad.clone()
        dist.all_reduce(gw)
        dist.all_reduce(gb)
        out[step] = {
            "y": (ys - yr[lo:hi]).abs().max().item(),
            "dx": (xs.grad - xr.grad[lo:hi]).abs().max().item(),
            "dweight": (gw - ref.weight.grad).abs().max().item(),
            "dbias": (gb - ref.bias.grad).abs().max().item(),
            "running_mean": (m[0].running_mean - ref.running_mean).abs().max().item(),
            "running_var": (m[0].running_var - ref.running_var).abs().max().item(),
            "batches": [int(m[0].num_batches_tracked), int(ref.num_batches_tracked)],
        }
    m.eval()
    out["eval"] = (m(x) - ref.eval()(x)).abs().max().item()
    if r == 0:
        print("RESULT " + json.dumps(out))
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "2d"))
