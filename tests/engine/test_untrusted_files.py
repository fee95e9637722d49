"""Untrusted files: no pickle ever runs (a .pth whose ``__reduce__`` writes a
marker file), and broken weights/config files give one error naming the file.
Also the checkpoint temporaries a killed write leaves behind."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native._io import WeightsFileError
from maskrcnn_native.engine import checkpoint as ckpt


class _Evil:
    """Unpickling this calls ``open(marker, "w")``: the marker appears iff a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_files(tmp_path):
    marker = tmp_path / "PICKLE_RAN"
    zipped = tmp_path / "evil_zip.pth"
    torch.save({"model": {"backbone.body.conv1.weight": torch.zeros(1), "x": _Evil(marker)}}, zipped)
    legacy = tmp_path / "evil_legacy.pth"
    with open(legacy, "wb") as f:
        pickle.dump({"backbone.body.conv1.weight": _Evil(marker)}, f)
    plain = tmp_path / "evil_plain.pkl.pth"
    plain.write_bytes(pickle.dumps(_Evil(marker)))
    # the marker mechanism itself works
    probe = tmp_path / "probe.pkl"
    probe.write_bytes(pickle.dumps(_Evil(tmp_path / "probe_marker")))
    pickle.loads(probe.read_bytes()).close()  # the unpickled object is the opened file
    assert (tmp_path / "probe_marker").exists()
    return marker, [zipped, legacy, plain]


def test_no_pickle_runs_in_model_load_from_torchvision_or_convert(tmp_path, subprocess_env):
    marker, files = _evil_files(tmp_path)
    for f in files:
        with pytest.raises(WeightsFileError, match=str(f)):
            mn.Model.from_torchvision(str(f))
        with pytest.raises(WeightsFileError, match=str(f)):
            mn.Model.load(f)
        with pytest.raises(WeightsFileError, match=str(f)):
            ckpt.load_checkpoint(f)
        assert not marker.exists(), f
    # the command line: one line on stderr, exit status 2, no marker
    for f in files[:2]:
        r = subprocess.run([sys.executable, "-m", "maskrcnn_native", "convert", str(f), str(tmp_path / "o.safetensors")],
                           capture_output=True, text=True, env=subprocess_env, timeout=300)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(f) in lines[0] and "refusing" in lines[0], r.stderr
        assert not marker.exists()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    cfg = dict(num_classes=3, fpn_channels=16, box_head_dim=32, mask_head_dim=8, min_size=64, max_size=64)
    model = mn.Model("R18-FPN", **cfg)
    path = d / "model.safetensors"
    model.save(path)
    return path


def _copy(src: Path, dst: Path, data: bytes = None) -> Path:
    dst.write_bytes(src.read_bytes() if data is None else data)
    return dst


def test_truncated_or_garbage_safetensors_names_the_file(saved_model, tmp_path):
    raw = saved_model.read_bytes()
    cases = {
        "truncated.safetensors": raw[: len(raw) // 2],
        "header_only.safetensors": raw[:16],
        "garbage.safetensors": os.urandom(4096),
        "empty.safetensors": b"",
        "json_header_broken.safetensors": raw[:8] + b"{" * 64 + raw[72:],
    }
    for name, data in cases.items():
        p = _copy(saved_model, tmp_path / name, data)
        with pytest.raises(WeightsFileError, match="not a readable safetensors file") as ei:
            mn.Model.load(p)
        assert str(p) in str(ei.value), name
    with pytest.raises(FileNotFoundError, match="no such file"):
        mn.Model.load(tmp_path / "absent.safetensors")


def _with_config(src: Path, dst: Path, config_text: str) -> Path:
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(src)), str(dst), metadata={"config": config_text, "format": "maskrcnn_native"})
    return dst


def test_config_with_unknown_keys_or_garbage_names_the_file(saved_model, tmp_path):
    from safetensors import safe_open

    with safe_open(str(saved_model), framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])

    bad = dict(cfg, not_a_field=1)
    p = _with_config(saved_model, tmp_path / "unknown.safetensors", json.dumps(bad))
    with pytest.raises(WeightsFileError, match=r"unknown.safetensors \(embedded config\) does not fit.*not_a_field"):
        mn.Model.load(p)
    p = _with_config(saved_model, tmp_path / "garbage_cfg.safetensors", "{this is not json")
    with pytest.raises(WeightsFileError, match=r"garbage_cfg.safetensors \(embedded config\) is not valid JSON"):
        mn.Model.load(p)
    p = _with_config(saved_model, tmp_path / "list_cfg.safetensors", "[1, 2]")
    with pytest.raises(WeightsFileError, match="must be a JSON object"):
        mn.Model.load(p)

    # no embedded config: the .json beside the file is read, and checked the same way
    from safetensors.torch import load_file, save_file

    side = tmp_path / "side.safetensors"
    save_file(load_file(str(saved_model)), str(side))
    side.with_suffix(".json").write_text(json.dumps(bad))
    with pytest.raises(WeightsFileError, match=r"side\.json does not fit.*not_a_field"):
        mn.Model.load(side)
    side.with_suffix(".json").write_text(json.dumps(cfg))
    assert isinstance(mn.Model.load(side), mn.Model)  # and the good file still loads


def test_train_model_weights_with_garbage_config_is_refused(saved_model, tmp_path):
    from maskrcnn_native.engine.trainer import load_initial_weights

    p = _with_config(saved_model, tmp_path / "garbage_cfg.safetensors", '{"num_classes": "many", "bogus": []}')
    model = mn.Model("R18-FPN", num_classes=3, fpn_channels=16, box_head_dim=32, mask_head_dim=8)
    with pytest.raises(WeightsFileError, match="garbage_cfg.safetensors"):
        load_initial_weights(model, str(p), "R18-FPN")
    t = _copy(saved_model, tmp_path / "t.safetensors", saved_model.read_bytes()[:1000])
    with pytest.raises(WeightsFileError, match="t.safetensors"):
        load_initial_weights(model, str(t), "R18-FPN")
    load_initial_weights(model, str(saved_model), "R18-FPN")  # the intact file loads


# ---------------------------------------------------------------------------- checkpoints


def test_stale_checkpoint_temporaries_are_removed_at_the_next_write(tmp_path):
    stale = [tmp_path / ".checkpoint_0000004.pt.k3j_x1.tmp", tmp_path / ".checkpoint_0000005.pt.zz.tmp"]
    for s in stale:
        s.write_bytes(b"\0" * 1000)
    other = tmp_path / "notes.tmp"
    other.write_text("not ours")
    ckpt.save_checkpoint({"iteration": 6, "w": torch.ones(3)}, ckpt.checkpoint_path(tmp_path, 6))
    assert not any(s.exists() for s in stale)
    assert other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_0000006.pt", "notes.tmp"]
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))["iteration"] == 6


def test_corrupt_checkpoint_names_the_file(tmp_path):
    p = ckpt.save_checkpoint({"iteration": 1, "w": torch.ones(1000)}, ckpt.checkpoint_path(tmp_path, 1))
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(WeightsFileError, match=r"checkpoint .*checkpoint_0000001\.pt cannot be read"):
        ckpt.load_checkpoint(p)
