"""``python -m maskrcnn_native COMMAND ...`` (same as ``maskrcnn-native``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
