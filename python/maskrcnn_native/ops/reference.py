"""Slow, obviously-correct pure-PyTorch versions of every native op.

They are the test oracle when torchvision is absent and a documented fallback
(e.g. on devices the native library was not built for). Each function mirrors
the signature of its counterpart in ``maskrcnn_native.ops`` and works on torch
tensors only. Nothing here is tuned for speed.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor

