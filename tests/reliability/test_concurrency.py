"""Concurrency: 8 Python threads call roi_align (forward and backward), nms,
batched_nms and paste_masks on different inputs for a bounded time while
another thread keeps changing ``mn.set_num_threads``; every result must be
bitwise equal to the same call made single-threaded beforehand.

Cost: ``MN_CONCURRENCY_SECONDS`` (default 8) plus setup, about 10 s.
"""

import os
import random
import threading
import time

import torch

import maskrcnn_native as mn

THREADS = 8
SECONDS = float(os.environ.get("MN_CONCURRENCY_SECONDS", "8"))


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, 24, 28, generator=g)
    if seed % 2:
        x = x.contiguous(memory_format=torch.channels_last)
    k = 40 + seed % 7
    xy = torch.rand(k, 2, generator=g) * 150
    wh = torch.rand(k, 2, generator=g) * 80 + 2
    rois = torch.cat([torch.randint(0, 2, (k, 1), generator=g).float(), xy, xy + wh], 1)
    n = 300 + 10 * seed
    bxy = torch.rand(n, 2, generator=g) * 200
    boxes = torch.cat([bxy, bxy + torch.rand(n, 2, generator=g) * 60 + 1], 1)
    scores = torch.rand(n, generator=g)
    idxs = torch.randint(0, 5, (n,), generator=g)
    masks = torch.rand(20, 28, 28, generator=g)
    mboxes = boxes[:20]
    return x, rois, boxes, scores, idxs, masks, mboxes


def _compute(inp):
    x, rois, boxes, scores, idxs, masks, mboxes = inp
    xg = x.clone().requires_grad_()
    out = mn.ops.roi_align(xg, rois, (7, 7), 0.125, sampling_ratio=2, aligned=True)
    out.backward(torch.ones_like(out))
    return (out.detach(), xg.grad, mn.ops.nms(boxes, scores, 0.5), mn.ops.batched_nms(boxes, scores, idxs, 0.5),
            mn.ops.paste_masks(masks, mboxes, (240, 260)),
            mn.ops.paste_masks(masks, mboxes, (240, 260), threshold=None, output="crops").masks[3])


def test_eight_threads_bitwise_equal_single_threaded():
    n0 = mn.get_num_threads()
    inputs = [_inputs(s) for s in range(THREADS)]
    try:
        mn.set_num_threads(1)
        expected = [_compute(inp) for inp in inputs]
        stop = threading.Event()
        calls = [0] * THREADS
        mismatches = []
        errors = []

        def worker(i):
            try:
                while not stop.is_set():
                    got = _compute(inputs[i])
                    calls[i] += 1
                    for j, (a, b) in enumerate(zip(got, expected[i])):
                        if not torch.equal(a, b):
                            mismatches.append((i, j))
            except BaseException as e:  # noqa: BLE001
                errors.append(repr(e))

        def changer():
            rng = random.Random(0)
            while not stop.is_set():
                mn.set_num_threads(rng.randint(1, 4))
                time.sleep(0.002)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        threads.append(threading.Thread(target=changer))
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
    finally:
        mn.set_num_threads(n0)
    assert not errors, errors[:3]
    assert not mismatches, mismatches[:10]
    assert all(c >= 1 for c in calls), calls
    print(f"{sum(calls)} rounds of 6 results in {SECONDS:.0f} s over {THREADS} threads, 0 mismatches")
