"""tools/export_onnx.py: ONNX files that onnxruntime runs like PyTorch at any batch size, reports, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastreid_dmf.engine.inference import ImageFeatureModel, load_inference_model
from fastreid_dmf.tooling import onnx_export
from fastreid_dmf.tooling.onnx_export import ONNX_OPSET, check_images, compare_with_onnxruntime, export_onnx
from tests.shared import REPO

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch's dynamo exporter

ARCHS = ("DMF", "MMET")


@pytest.fixture(scope="module")
def exported(inference_run, tmp_path_factory):
    """``exported(arch) -> (onnx path, report)``: one export per architecture for the module (read-only)."""
    made: dict[str, tuple[str, dict]] = {}

    def get(arch: str) -> tuple[str, dict]:
        if arch not in made:
            config, checkpoint = inference_run(arch)
            path = str(tmp_path_factory.mktemp(f"onnx_{arch}") / "model.onnx")
            made[arch] = path, export_onnx(checkpoint, path, config_file=config, batch_sizes=(1, 3))
        return made[arch]

    return get


def _onnx_features(path: str, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["features"], {"images": images.numpy()})[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches_pytorch_at_two_batch_sizes(inference_run, exported, arch):
    config, checkpoint = inference_run(arch)
    path, report = exported(arch)
    cfg, model = load_inference_model(checkpoint, config, device="cpu")
    net = ImageFeatureModel(model)
    height, width = cfg.INPUT.SIZE_TEST
    generator = torch.Generator().manual_seed(1)
    for batch in (2, 5):  # neither is a size the export or its own check used
        images = torch.rand(batch, 3, height, width, generator=generator) * 255
        with torch.no_grad():
            expected = net(images).numpy()
        got = _onnx_features(path, images)
        assert got.dtype == np.float32 and got.shape == expected.shape == (batch, report["feature_dim"])
        assert np.abs(got - expected).max() <= 1e-4
    print(f"{arch}: max abs difference {report['max_abs_diff']:.3g} at batch sizes {report['batch_sizes']}")


@pytest.mark.parametrize("arch", ARCHS)
def test_report_records_opset_signature_and_check(exported, arch):
    path, report = exported(arch)
    with open(os.path.splitext(path)[0] + ".json") as handle:
        on_disk = json.load(handle)
    assert on_disk == report
    assert report["opset"] == ONNX_OPSET and report["exporter"] == "torch.onnx.export(dynamo=True)"
    assert report["inputs"] == [{"name": "images", "shape": ["batch", 3, 32, 16], "dtype": "float32"}]
    assert report["outputs"] == [{"name": "features", "shape": ["batch", 32], "dtype": "float32"}]
    assert report["batch_sizes"] == [1, 3] and set(report["max_abs_diff_per_batch_size"]) == {"1", "3"}
    assert 0 <= report["max_abs_diff"] <= report["atol"] == 1e-4
    assert report["meta_architecture"] == arch and report["flip_test_in_graph"] is False
    assert report["versions"]["onnxruntime"] == onnxruntime.__version__
    import onnx

    assert [o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx")] == [ONNX_OPSET]


def test_check_on_dataset_images(inference_run, exported, tiny_datasets):
    config, checkpoint = inference_run("MMET")
    path, _ = exported("MMET")
    cfg, model = load_inference_model(checkpoint, config, device="cpu")
    images, described = check_images(cfg, 4, dataset="SynthMarket")
    assert images.shape == (4, 3, 32, 16) and "SynthMarket" in described
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 1  # 0..255, not 0..1
    diffs = compare_with_onnxruntime(path, ImageFeatureModel(model), images, (1, 4))
    assert set(diffs) == {1, 4} and max(diffs.values()) <= 1e-4


def test_existing_output_is_refused(inference_run, exported, tmp_path):
    config, checkpoint = inference_run("DMF")
    path, _ = exported("DMF")
    before = os.path.getmtime(path)
    with pytest.raises(FileExistsError, match=f"{path} already exists; pass --overwrite"):
        export_onnx(checkpoint, path, config_file=config)
    assert os.path.getmtime(path) == before
    report_only = tmp_path / "fresh.json"
    report_only.write_text("{}")
    with pytest.raises(FileExistsError, match="fresh.json"):
        export_onnx(checkpoint, str(tmp_path / "fresh.onnx"), config_file=config)


def test_bad_inputs_are_clear_errors(inference_run, tmp_path):
    config, checkpoint = inference_run("DMF")
    missing = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        export_onnx(missing, str(tmp_path / "m.onnx"), config_file=config)
    with pytest.raises(ValueError, match="at least two different positive batch sizes"):
        export_onnx(checkpoint, str(tmp_path / "m.onnx"), config_file=config, batch_sizes=(4, 4))
    with pytest.raises(ValueError, match="overwritten by its own .json report"):
        export_onnx(checkpoint, str(tmp_path / "m.json"), config_file=config)
    with pytest.raises(ValueError, match="'Nope' is not a registered dataset"):
        export_onnx(checkpoint, str(tmp_path / "m.onnx"), config_file=config, dataset="Nope")
    assert not list(tmp_path.iterdir())


def test_failed_check_writes_nothing(inference_run, tmp_path, monkeypatch):
    config, checkpoint = inference_run("MMET")
    monkeypatch.setattr(onnx_export, "compare_with_onnxruntime", lambda path, net, images, sizes: {1: 0.0, 4: 0.5})
    with pytest.raises(ValueError, match=r"ONNX check failed: .* = 0\.5 at batch size 4 .* above --atol 0\.0001"):
        export_onnx(checkpoint, str(tmp_path / "bad.onnx"), config_file=config)
    assert not list(tmp_path.iterdir())  # no ONNX file, no report, no temporary file


def test_command_line(inference_run, tmp_path):
    """End to end through the script: flip averaging in the graph, and the one-line error format."""
    config, checkpoint = inference_run("DMF")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tool = os.path.join(REPO, "tools", "export_onnx.py")
    out = tmp_path / "flip.onnx"
    done = subprocess.run([sys.executable, tool, checkpoint, str(out), "--config-file", config, "--flip-test",
                           "--batch-sizes", "1", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"opset {ONNX_OPSET}" in done.stdout and "max abs difference" in done.stdout
    report = json.loads((tmp_path / "flip.json").read_text())
    assert report["flip_test_in_graph"] is True and report["batch_sizes"] == [1, 2]
    cfg, model = load_inference_model(checkpoint, config, device="cpu")
    net = ImageFeatureModel(model)
    images = torch.rand(3, 3, 32, 16, generator=torch.Generator().manual_seed(2)) * 255
    with torch.no_grad():
        expected = ((net(images) + net(images.flip(dims=[3]))) / 2).numpy()
    assert np.abs(_onnx_features(str(out), images) - expected).max() <= 1e-4

    missing = str(tmp_path / "no_such_run" / "model_final.pth")
    done = subprocess.run([sys.executable, tool, missing, str(tmp_path / "x.onnx"), "--config-file", config],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("export_onnx.py: error: ") and missing in last
    assert "Traceback" not in done.stderr and not (tmp_path / "x.onnx").exists()
