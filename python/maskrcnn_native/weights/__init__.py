"""Import of checkpoints from other libraries (torchvision)."""

from .torchvision import convert_torchvision_state_dict, from_torchvision

__all__ = ["convert_torchvision_state_dict", "from_torchvision"]
