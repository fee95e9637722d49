"""The lowest torch this package runs on, checked at import.

The op layer registers every operator with ``torch.library.custom_op`` and
``torch.library.register_fake`` (and ``register_autograd``), which appeared in
torch 2.4. An older torch fails here with one clear message instead of an
AttributeError deep inside ``maskrcnn_native.ops``.
"""

from __future__ import annotations

TORCH_FLOOR = (2, 4)
_REQUIRED = ("custom_op", "register_fake", "register_autograd")


def check_torch() -> None:
    """Raise ImportError when torch lacks the ``torch.library`` APIs the ops use."""
    import torch

    missing = [name for name in _REQUIRED if not hasattr(torch.library, name)]
    if missing:
        raise ImportError(
            f"maskrcnn_native needs torch>={TORCH_FLOOR[0]}.{TORCH_FLOOR[1]} (torch.library."
            f"{', torch.library.'.join(missing)} missing in torch {torch.__version__})"
        )
