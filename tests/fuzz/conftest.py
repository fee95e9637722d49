import os

import pytest


@pytest.fixture
def fuzz_long(request) -> bool:
    opt = False
    try:
        opt = bool(request.config.getoption("--fuzz-long"))
    except ValueError:
        pass
    return opt or os.environ.get("MN_FUZZ_LONG", "") not in ("", "0")
