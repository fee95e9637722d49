"""Strict state-dict loading with one readable error."""

from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import Tensor, nn

__all__ = ["load_checked"]


def load_checked(model: nn.Module, state_dict: Dict[str, Tensor], allow_missing: Sequence[str] = ()) -> None:
    """Load ``state_dict`` strictly, raising one ValueError that lists missing
    keys, unexpected keys and shape mismatches (``name: checkpoint [..] vs model [..]``)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and k not in allow_missing]
    unexpected = [k for k in state_dict if k not in own]
    mism = [
        f"{k}: checkpoint {list(state_dict[k].shape)} vs model {list(own[k].shape)}"
        for k in state_dict
        if k in own and state_dict[k].shape != own[k].shape
    ]
    if missing or unexpected or mism:
        lines = []
        if missing:
            lines.append(f"missing keys ({len(missing)}): {missing}")
        if unexpected:
            lines.append(f"unexpected keys ({len(unexpected)}): {unexpected}")
        if mism:
            lines.append(f"shape mismatches ({len(mism)}): {mism}")
        hint = ""
        if mism:
            hint = (
                "\nA different num_classes / num_keypoints? Pass reinit_heads=True to "
                "from_torchvision to re-initialise the class-specific layers for fine-tuning."
            )
        raise ValueError("state dict does not fit the model:\n  " + "\n  ".join(lines) + hint)
    with torch.no_grad():
        for k, v in state_dict.items():
            own[k].copy_(v)
