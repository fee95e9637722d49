"""mn.build_info() says how the extension was really built."""

import maskrcnn_native as mn


def test_flags_are_the_core_compile_options():
    info = mn.build_info()
    assert info["version"] == mn.__version__
    if info["compiler"].split()[0] in ("GNU", "Clang"):
        flags = info["flags"].split()
        # the core's own options and the warnings, as CMakeLists.txt passes them
        for f in ("-O3", "-fno-math-errno", "-Wall", "-Wextra"):
            assert f in flags, (f, info["flags"])
        assert "  " not in info["flags"]
