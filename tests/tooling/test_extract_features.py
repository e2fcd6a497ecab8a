"""tools/extract_features.py: features equal to the evaluator's, file formats, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fastreid_dmf.engine.inference import ImageFeatureModel, load_inference_model
from fastreid_dmf.tooling.features import extract_features, find_images, read_features
from tests.shared import REPO

ARCHS = ("DMF", "MMET")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Seven images of different sizes, suffixes and modes in nested folders, plus files that are not images.

    Returns ``(folder, expected paths in order)``.
    """
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    names = ["b/02.jpg", "a/01.PNG", "a/sub/03.jpeg", "c.bmp", "grey.png", "rgba.png", "rgba_twin.png"]
    for i, name in enumerate(names[:5]):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(40 + 3 * i, 17 + i, 3), dtype=np.uint8)
        Image.fromarray(pixels[..., 0] if name == "grey.png" else pixels).save(path)
    twin = Image.fromarray(rng.integers(0, 256, size=(30, 15, 3), dtype=np.uint8))
    twin.convert("RGBA").save(folder / "rgba.png")  # opaque RGBA: the same picture as its RGB twin
    twin.save(folder / "rgba_twin.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "b" / "labels.json").write_text("{}")
    expected = sorted(names)
    return folder, [os.path.join(str(folder), *name.split("/")) for name in expected]


def _evaluator_features(cfg, model, paths, flip: bool = False) -> torch.Tensor:
    """Features of ``paths`` as fast-reid's evaluation reads them: CommDataset + test transform + model."""
    from fastreid.data.common import CommDataset
    from fastreid.data.transforms import build_transforms

    data = CommDataset([(p, 0, 0) for p in paths], build_transforms(cfg, is_train=False), relabel=False)
    images = torch.stack([data[i]["images"] for i in range(len(data))])
    net = ImageFeatureModel(model)
    with torch.no_grad():
        out = net(images)
        return (out + net(images.flip(dims=[3]))) / 2 if flip else out


@pytest.mark.parametrize("arch", ARCHS)
def test_folder_features_equal_the_evaluators(inference_run, image_folder, tmp_path, arch):
    config, checkpoint = inference_run(arch)
    folder, expected_paths = image_folder
    out = tmp_path / "features.npy"
    result = extract_features(checkpoint, str(out), images=str(folder), config_file=config, batch_size=3,
                              num_workers=0, progress=False)
    assert result["outputs"] == [str(out), str(tmp_path / "features.json")]
    features, meta = read_features(str(out))
    cfg, model = load_inference_model(checkpoint, config, device="cpu")
    assert features.dtype == np.float32 and features.shape == (len(expected_paths), result["feature_dim"])
    assert meta["paths"] == expected_paths and meta["num_images"] == len(expected_paths)
    assert meta["meta_architecture"] == arch and meta["pids"] is None and meta["flip_test"] is False
    readable = [p for p in expected_paths if not p.endswith("rgba.png")]  # fast-reid keeps RGBA's 4 channels
    rows = [expected_paths.index(p) for p in readable]
    reference = _evaluator_features(cfg, model, readable).numpy()
    np.testing.assert_allclose(features[rows], reference, rtol=0, atol=1e-5)
    rgba, twin = expected_paths.index(str(folder / "rgba.png")), expected_paths.index(str(folder / "rgba_twin.png"))
    np.testing.assert_allclose(features[rgba], features[twin], rtol=0, atol=1e-6)  # RGBA read as its RGB


def test_flip_test_config_averages_with_the_flipped_image(inference_run, image_folder, tmp_path):
    config, checkpoint = inference_run("DMF")
    folder, paths = image_folder
    out = tmp_path / "flip.safetensors"
    extract_features(checkpoint, str(out), images=str(folder), config_file=config, num_workers=0, progress=False,
                     opts=["TEST.FLIP.ENABLED", "True"])
    features, meta = read_features(str(out))
    assert meta["flip_test"] is True
    cfg, model = load_inference_model(checkpoint, config, device="cpu")
    readable = [p for p in paths if not p.endswith("rgba.png")]
    reference = _evaluator_features(cfg, model, readable, flip=True).numpy()
    np.testing.assert_allclose(features[[paths.index(p) for p in readable]], reference, rtol=0, atol=1e-5)
    plain = _evaluator_features(cfg, model, readable[:1]).numpy()
    assert np.abs(features[paths.index(readable[0])] - plain[0]).max() > 1e-4  # the flip changed something


def test_safetensors_round_trip_matches_npy(inference_run, image_folder, tmp_path):
    config, checkpoint = inference_run("MMET")
    folder, paths = image_folder
    kwargs = dict(images=str(folder), config_file=config, num_workers=0, progress=False)
    extract_features(checkpoint, str(tmp_path / "f.npy"), batch_size=64, **kwargs)
    extract_features(checkpoint, str(tmp_path / "f.safetensors"), batch_size=1, **kwargs)
    npy, npy_meta = read_features(str(tmp_path / "f.npy"))
    st, st_meta = read_features(str(tmp_path / "f.safetensors"))
    assert st.dtype == np.float32 and st.shape == npy.shape
    np.testing.assert_allclose(st, npy, rtol=0, atol=1e-5)  # batch 1 vs batch 64
    assert st_meta == npy_meta and st_meta["paths"] == paths
    from safetensors import safe_open

    with safe_open(str(tmp_path / "f.safetensors"), framework="pt") as handle:
        assert list(handle.keys()) == ["features"]
        assert json.loads(handle.metadata()["paths"]) == paths  # plain JSON strings, readable without this module


def test_dataset_features_equal_fastreid_inference(inference_run, tiny_datasets, tmp_path):
    """Query + gallery through fast-reid's own test loader and inference_on_dataset (flip on) give the same."""
    from fastreid.evaluation import DatasetEvaluator, inference_on_dataset

    from fastreid_dmf.data.build import build_dmf_test_loader

    config, checkpoint = inference_run("DMF")
    opts = ["TEST.FLIP.ENABLED", "True", "DATALOADER.NUM_WORKERS", "0"]
    out = tmp_path / "market.npy"
    extract_features(checkpoint, str(out), dataset="SynthMarket", config_file=config, opts=opts, batch_size=5,
                     progress=False)
    features, meta = read_features(str(out))

    class Capture(DatasetEvaluator):
        def reset(self):
            self.rows, self.pids, self.camids, self.paths = [], [], [], []

        def process(self, inputs, outputs):
            self.rows.append(outputs.cpu())
            self.pids += inputs["targets"].tolist()
            self.camids += inputs["camids"].tolist()
            self.paths += list(inputs["img_paths"])

        def evaluate(self):
            return {}

    cfg, model = load_inference_model(checkpoint, config, opts, device="cpu")
    loader, num_query = build_dmf_test_loader(cfg, "SynthMarket")
    capture = Capture()
    inference_on_dataset(model, loader, capture, flip_test=cfg.TEST.FLIP.ENABLED)
    assert meta["paths"] == capture.paths and meta["pids"] == capture.pids and meta["camids"] == capture.camids
    assert meta["num_query"] == num_query and meta["splits"] == ["query"] * num_query + ["gallery"] * (
        len(capture.paths) - num_query)
    assert meta["source"]["dataset"] == "SynthMarket"
    np.testing.assert_allclose(features, torch.cat(capture.rows).numpy(), rtol=0, atol=1e-5)


def test_bad_inputs_are_clear_errors_naming_the_path(inference_run, image_folder, tmp_path):
    config, checkpoint = inference_run("DMF")
    folder, _ = image_folder
    kwargs = dict(config_file=config, num_workers=0, progress=False)
    missing = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        extract_features(missing, str(tmp_path / "a.npy"), images=str(folder), **kwargs)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=f"no images in folder '{empty}'"):
        extract_features(checkpoint, str(tmp_path / "a.npy"), images=str(empty), **kwargs)
    with pytest.raises(NotADirectoryError, match="nowhere"):
        find_images(str(tmp_path / "nowhere"))
    existing = tmp_path / "old.npy"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=f"{existing} already exists; pass --overwrite"):
        extract_features(checkpoint, str(existing), images=str(folder), **kwargs)
    assert existing.read_bytes() == b"keep me"
    (tmp_path / "sidecar.json").write_text("{}")  # the .npy's sidecar counts as output too
    with pytest.raises(FileExistsError, match="sidecar.json"):
        extract_features(checkpoint, str(tmp_path / "sidecar.npy"), images=str(folder), **kwargs)
    with pytest.raises(ValueError, match=r"\.npy, \.safetensors"):
        extract_features(checkpoint, str(tmp_path / "a.csv"), images=str(folder), **kwargs)
    with pytest.raises(ValueError, match="exactly one of --images FOLDER and --dataset NAME"):
        extract_features(checkpoint, str(tmp_path / "a.npy"), images=str(folder), dataset="SynthMarket", **kwargs)
    broken = tmp_path / "broken"
    broken.mkdir()
    Image.new("RGB", (16, 32)).save(broken / "good.jpg")
    (broken / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=f"cannot read image '{broken / 'bad.jpg'}'"):
        extract_features(checkpoint, str(tmp_path / "b.npy"), images=str(broken), **kwargs)
    assert not (tmp_path / "b.npy").exists() and not (tmp_path / "b.json").exists()
    extract_features(checkpoint, str(existing), images=str(folder), overwrite=True, **kwargs)
    assert read_features(str(existing))[0].shape[0] == 7


def test_command_line(inference_run, image_folder, tmp_path):
    config, checkpoint = inference_run("MMET")
    folder, paths = image_folder
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tool = os.path.join(REPO, "tools", "extract_features.py")
    out = tmp_path / "cli.safetensors"
    done = subprocess.run([sys.executable, tool, checkpoint, str(out), "--images", str(folder), "--batch-size", "4",
                           "--num-workers", "0", "--config-file", config], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"features 7 x 32 -> {out}" in done.stdout
    features, meta = read_features(str(out))
    assert features.shape == (7, 32) and meta["paths"] == paths
    done = subprocess.run([sys.executable, tool, checkpoint, str(out), "--images", str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (f"extract_features.py: error: {out} already exists; "
                                                    "pass --overwrite to replace it")
