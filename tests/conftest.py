"""Repository-wide pytest options."""


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="run the op fuzz suite (tests/fuzz) for hours instead of the bounded default "
                          "(also MN_FUZZ_LONG=1)")
