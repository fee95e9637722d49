"""Region proposal network and anchors."""

from .rpn import RPN, AnchorGenerator, RPNHead

__all__ = ["RPN", "AnchorGenerator", "RPNHead"]
