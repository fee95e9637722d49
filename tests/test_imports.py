"""One-way layers: every module imports on its own (fresh interpreter), and
``maskrcnn_native.ops`` loads without the model, data or engine layers."""

import os
import pkgutil
import subprocess
import sys

import pytest

import maskrcnn_native

MODULES = sorted(m.name for m in pkgutil.walk_packages(maskrcnn_native.__path__, "maskrcnn_native.")
                 if not m.name.endswith("__main__"))


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    pkg_root = os.path.dirname(os.path.dirname(maskrcnn_native.__file__))
    env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_every_module_is_listed():
    assert "maskrcnn_native.modeling.layers" in MODULES and "maskrcnn_native.structures.instances" in MODULES


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    # one interpreter per module: an import cycle or a missing import shows up
    # only when the module is the first one loaded
    code = ("import importlib, subprocess, sys\n"
            f"mods = {MODULES!r}\n"
            "bad = []\n"
            "for m in mods:\n"
            "    r = subprocess.run([sys.executable, '-c', 'import ' + m], capture_output=True, text=True)\n"
            "    if r.returncode: bad.append((m, r.stderr.strip().splitlines()[-1:]))\n"
            "print(bad)\n"
            "sys.exit(1 if bad else 0)\n")
    r = _run(code)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ops_import_without_the_model_and_engine():
    r = _run("import sys, maskrcnn_native.ops\n"
             "loaded = [m for m in sys.modules if m.split('.')[:2] in (['maskrcnn_native', 'modeling'], "
             "['maskrcnn_native', 'engine'], ['maskrcnn_native', 'data'], ['maskrcnn_native', 'evaluation'])]\n"
             "print(loaded)\nsys.exit(1 if loaded else 0)\n")
    assert r.returncode == 0, r.stdout + r.stderr


def test_modeling_does_not_import_engine_data_evaluation_or_cli():
    r = _run("import sys, maskrcnn_native as mn\nmn.Model('R18-FPN', num_classes=3)\n"
             "bad = [m for m in sys.modules if m.split('.')[:2] in (['maskrcnn_native', 'engine'], "
             "['maskrcnn_native', 'data'], ['maskrcnn_native', 'evaluation'], ['maskrcnn_native', 'cli'], "
             "['maskrcnn_native', 'visualize'])]\n"
             "print(bad)\nsys.exit(1 if bad else 0)\n")
    assert r.returncode == 0, r.stdout + r.stderr


def test_old_torch_is_refused_with_a_clear_message(monkeypatch):
    import torch

    from maskrcnn_native import _torch_floor

    monkeypatch.delattr(torch.library, "register_fake")
    with pytest.raises(ImportError, match=r"torch>=2\.4 \(torch\.library\.register_fake missing"):
        _torch_floor.check_torch()
