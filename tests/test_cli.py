"""The maskrcnn-native command line: help texts, make-shapes, config errors,
and a tiny end-to-end demo -> eval -> predict round trip (tiny images and a
couple of iterations: it checks the plumbing and the files, not accuracy)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maskrcnn_native.cli import build_parser, main

COMMANDS = ["demo", "train", "eval", "predict", "make-shapes", "convert", "bench"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for c in COMMANDS:
        assert c in out


@pytest.mark.parametrize("command,option", [
    ("demo", "--keypoints"), ("train", "--set"), ("eval", "--shapes-seed"), ("predict", "--weights"),
    ("make-shapes", "--num-images"), ("convert", "--arch"), ("bench", "--quick")])
def test_each_command_has_help(capsys, command, option):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert option in capsys.readouterr().out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "maskrcnn_native", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "make-shapes" in r.stdout


def test_unknown_command_fails():
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["fly"])
    assert e.value.code != 0


def test_train_config_error_names_the_key(tmp_path, capsys):
    rc = main(["train", "--output-dir", str(tmp_path), "--set", "solver.lrr=0.1"])
    assert rc == 2
    assert "solver.lrr" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("solver:\n  max_iter: many\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "solver.max_iter" in capsys.readouterr().err


def test_make_shapes_writes_coco(tmp_path):
    rc = main(["make-shapes", str(tmp_path / "s"), "--num-images", "3", "--image-size", "48", "--seed", "5"])
    assert rc == 0
    data = json.loads((tmp_path / "s" / "annotations.json").read_text())
    assert len(data["images"]) == 3 and len(data["annotations"]) >= 3
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 3
    import maskrcnn_native as mn

    ds = mn.data.CocoDataset(str(tmp_path / "s" / "images"), str(tmp_path / "s" / "annotations.json"))
    assert len(ds) == 3


TINY = ["--iters", "2", "--image-size", "64", "--train-images", "4", "--eval-images", "2", "--batch-size", "2",
        "--set", "model.fpn_channels=32", "--set", "model.box_head_dim=64", "--set", "model.mask_head=mlp",
        "--set", "model.box_batch_size_per_image=32", "--set", "model.rpn_post_nms_top_n_train=50",
        "--set", "model.rpn_post_nms_top_n_test=20", "--set", "progress=false"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), *TINY]) == 0
    return out


def test_demo_writes_metrics_picture_and_loadable_model(demo_dir):
    import maskrcnn_native as mn

    m = json.loads((demo_dir / "metrics.json").read_text())
    for k in ("bbox_AP", "segm_AP", "segm_AP50"):
        assert k in m and (m[k] is None or 0.0 <= m[k] <= 1.0)
    # every timing names its CPU: the wall time and the machine it was measured on
    assert m["wall_seconds"] > 0
    assert m["machine"]["cpu"] and m["machine"]["threads"] >= 1
    assert (demo_dir / "predictions.png").stat().st_size > 0
    assert (demo_dir / "metrics.jsonl").exists() and (demo_dir / "config.yaml").exists()
    model = mn.Model.load(demo_dir / "model.safetensors")
    assert model.config.min_size == 64 and model.config.num_classes == 4
    info = json.loads((demo_dir / "dataset_info.json").read_text())
    assert info["class_names"][0] == "__background__"


def test_eval_on_another_seed(demo_dir, tmp_path, capsys):
    rc = main(["eval", "--weights", str(demo_dir / "model.safetensors"), "--shapes-seed", "77",
               "--num-images", "2", "--out", str(tmp_path), "--json"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = json.loads(last)
    assert "segm_AP" in metrics and "bbox_AP" in metrics
    assert (tmp_path / "coco_results.json").exists()


def test_predict_writes_pictures_and_coco_json(demo_dir, tmp_path):
    from maskrcnn_native.data import ShapesDataset
    from maskrcnn_native.visualize import to_pil

    paths = []
    ds = ShapesDataset(2, image_size=64, seed=3)
    for i in range(2):
        p = tmp_path / f"im{i}.png"
        to_pil(ds[i][0]).save(p)
        paths.append(str(p))
    out = tmp_path / "pred"
    rc = main(["predict", "--weights", str(demo_dir / "model.safetensors"), *paths, "--out", str(out),
               "--score-threshold", "0.0"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*_pred.png")) == ["im0_pred.png", "im1_pred.png"]
    results = json.loads((out / "predictions.json").read_text())
    assert isinstance(results, list)
    assert all({"image_id", "category_id", "bbox", "score"} <= set(r) for r in results)
    images = json.loads((out / "images.json").read_text())
    assert [Path(i["file_name"]).name for i in images] == ["im0.png", "im1.png"]


def test_command_line_adapts_threads_unless_fixed(monkeypatch):
    from maskrcnn_native.cli import _adaptive_threads, demo_config

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert _adaptive_threads(None) and not _adaptive_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert not _adaptive_threads(None)
    assert demo_config("x", adaptive_threads=True).adaptive_threads
    assert not demo_config("x").adaptive_threads  # the Python API keeps a fixed count
    assert not demo_config("x", adaptive_threads=True, overrides=["adaptive_threads=false"]).adaptive_threads
