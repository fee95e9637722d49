"""Import of checkpoints from other libraries (torchvision) and strict loading."""

from .state_dict import load_checked
from .torchvision import convert_torchvision_state_dict, from_torchvision

__all__ = ["convert_torchvision_state_dict", "from_torchvision", "load_checked"]
