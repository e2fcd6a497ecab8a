"""Attention maps (DMF Fig. 5): Grad-CAM shapes and targets, rollout algebra, text token bars, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.shared import REPO

H, W = 32, 16  # INPUT.SIZE_TEST of the tiny models
GRID = (4, 2)  # 8-pixel patches
TEXT = "a man in a red jacket and black trousers"


@pytest.fixture(scope="module")
def models(inference_run):
    """``models[arch, seed] -> (cfg, model)`` for DMF / MMET, seeds 0 and 1, loaded once."""
    from fastreid_dmf.engine.inference import load_inference_model

    return {(arch, seed): load_inference_model(inference_run(arch, seed)[1])
            for arch in ("DMF", "MMET") for seed in (0, 1)}


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, H, W, generator=torch.Generator().manual_seed(0)) * 255


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Two small RGB files (other size than the test size: the test transform resizes them)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        path = folder / f"person_{i}.png"
        Image.fromarray(rng.integers(0, 255, (48, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_reshape_transform_lays_patches_on_the_grid():
    from fastreid_dmf.tooling.visualize import vit_reshape_transform

    tokens = torch.arange(9, dtype=torch.float32)[None, :, None].expand(1, 9, 3)  # token index as value
    maps = vit_reshape_transform(GRID)(tokens)
    assert maps.shape == (1, 3, *GRID)
    assert maps[0, 0].tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]  # [cls] dropped, row-major
    with pytest.raises(ValueError, match="1 \\+ 4x2"):
        vit_reshape_transform(GRID)(torch.zeros(1, 8, 3))


@pytest.mark.parametrize("arch", ["DMF", "MMET"])
def test_gradcam_maps_have_input_shape_and_depend_on_the_weights(models, images, arch):
    from fastreid_dmf.tooling.visualize import image_maps
    from fastreid_dmf.tooling.visualize.attention import vit_parts

    assert vit_parts(models[arch, 0][1]).grid == GRID
    maps = [image_maps(models[arch, seed][1], images, "gradcam") for seed in (0, 1)]
    for m in maps:
        assert m.shape == (len(images), H, W) and m.dtype == np.float32
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1
        assert (m.reshape(len(images), -1).max(axis=1) > 0.5).all()  # not blank: the target has a gradient
    assert np.abs(maps[0] - maps[1]).max() > 0.1
    # A reference image changes the target (cosine to its feature); Eigen-CAM and rollout give the same shape.
    model = models[arch, 0][1]
    with torch.no_grad():
        reference = model.image_test_features(images[:1])[0]
    with_reference = image_maps(model, images, "gradcam", reference)
    assert with_reference.shape == maps[0].shape and np.isfinite(with_reference).all()
    assert not np.allclose(with_reference[1:], maps[0][1:])
    for method in ("eigencam", "rollout"):
        other = image_maps(model, images, method)
        assert other.shape == (len(images), H, W) and np.isfinite(other).all()
    with pytest.raises(ValueError, match="rollout"):
        image_maps(model, images, "rollout", reference)


def test_self_similarity_target_has_a_gradient():
    """The own-feature target is <f, f0/|f0|>: cos(f, f0) would have a zero gradient at f = f0."""
    from fastreid_dmf.tooling.visualize import FeatureSimilarityTarget

    feature = torch.tensor([3.0, 4.0], requires_grad=True)
    FeatureSimilarityTarget(feature, cosine=False)(feature).backward()
    assert feature.grad.tolist() == pytest.approx([0.6, 0.8])
    feature.grad = None
    FeatureSimilarityTarget(feature, cosine=True)(feature).backward()
    assert feature.grad.abs().max() < 1e-6


def test_rollout_is_row_stochastic_and_follows_the_formula():
    from fastreid_dmf.tooling.visualize import attention_rollout

    generator = torch.Generator().manual_seed(0)
    layers = [torch.rand(2, 5, 5, generator=generator).softmax(dim=-1) for _ in range(3)]
    rollout = attention_rollout(layers)
    assert rollout.shape == (2, 5, 5)
    assert torch.allclose(rollout.sum(dim=-1), torch.ones(2, 5), atol=1e-6) and (rollout >= 0).all()
    eye = torch.eye(5)
    expected = eye
    for layer in layers:
        expected = (layer + eye) / 2 @ expected  # rows of A + I sum to 2
    assert torch.allclose(rollout, expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        attention_rollout([])


@pytest.mark.parametrize("arch", ["DMF", "MMET"])
def test_image_rollout_shape_and_normalisation(models, images, arch):
    from fastreid_dmf.tooling.visualize import image_rollout

    rollout = image_rollout(models[arch, 0][1], images)
    assert rollout.shape == (len(images), *GRID)
    total = rollout.sum(dim=(1, 2))
    assert (rollout >= 0).all() and (total > 0).all() and (total <= 1 + 1e-6).all()


def test_captured_attention_equals_timms_explicit_softmax(models):
    """The hook's recomputed probabilities = what timm's non-fused path feeds to attn_drop (with a text mask)."""
    from fastreid_dmf.tooling.visualize import captured_attentions

    backbone = models["DMF", 0][1].backbone
    explicit: list[torch.Tensor] = []
    hooks = []
    for block in backbone.blocks:
        block.attn.fused_attn = False
        hooks.append(block.attn.attn_drop.register_forward_hook(
            lambda module, args, output: explicit.append(args[0].mean(dim=1))))
    try:
        with captured_attentions(backbone.blocks) as captured, torch.no_grad():
            tokens, valid = backbone.text_tokens([TEXT, "a woman"])
            assert not valid.all()  # the second description is padded
            backbone._encode(tokens, valid)
    finally:
        for block, hook in zip(backbone.blocks, hooks):
            block.attn.fused_attn = True
            hook.remove()
    assert len(captured) == len(explicit) == len(backbone.blocks)
    for mine, timm in zip(captured, explicit):
        assert torch.allclose(mine, timm, atol=1e-6)
        assert (mine[1][:, ~valid[1]] == 0).all()  # padding gets no attention


@pytest.mark.parametrize("arch", ["DMF", "MMET"])
def test_text_token_bars_one_per_token(models, arch):
    from fastreid_dmf.tooling.visualize import text_token_attention, token_bar_figure

    model = models[arch, 0][1]
    tokens, weights = text_token_attention(model, TEXT)
    tokenizer = model.backbone.text_encoder.tokenizer
    ids = tokenizer(TEXT)["input_ids"]
    expected = tokenizer.convert_ids_to_tokens(ids if arch == "DMF" else ids[1:])  # MMET: [CLS] is the row
    assert tokens == expected and weights.shape == (len(tokens),)
    assert np.isfinite(weights).all() and (weights >= 0).all() and weights.sum() <= 1 + 1e-6
    short, _ = text_token_attention(model, "a woman")
    figure = token_bar_figure([("A", TEXT, tokens, weights), ("A", "a woman", short, _)], columns=1)
    axes = figure.get_axes()
    assert [len(axis.patches) for axis in axes] == [len(tokens), len(short)]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == tokens


def test_two_models_side_by_side(models, inference_run, image_files, tmp_path):
    from fastreid_dmf.tooling.visualize import visualize_attention

    _, first = inference_run("DMF", 0)
    _, second = inference_run("DMF", 1)
    out = tmp_path / "fig5.png"
    summary = visualize_attention(first, str(out), compare_checkpoint=second, labels=["DMF w/o Text", "DMF"],
                                  images=image_files, method="gradcam", texts=[TEXT])
    maps = np.load(tmp_path / "fig5.npy")
    assert maps.shape == (2, 2, H, W) and np.isfinite(maps).all()
    assert np.abs(maps[:, 0] - maps[:, 1]).max() > 0.1
    assert (tmp_path / "fig5_text.png").is_file() and out.is_file()
    assert json.loads((tmp_path / "fig5.json").read_text()) == summary
    assert summary["labels"] == ["DMF w/o Text", "DMF"] and len(summary["text"]) == 2
    with pytest.raises(FileExistsError, match="fig5"):
        visualize_attention(first, str(out), images=image_files)
    again = visualize_attention(first, str(out), images=image_files[:1], method="rollout", overwrite=True)
    assert again["maps_shape"] == [1, 1, H, W] and again["text"] == []
    assert not (tmp_path / "fig5_text.png").exists()  # the earlier run's bars went with its figure


def test_bad_inputs_are_named(inference_run, image_files, tmp_path):
    from fastreid_dmf.tooling.visualize import visualize_attention

    _, checkpoint = inference_run("DMF", 0)
    out = str(tmp_path / "maps.png")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        visualize_attention(str(tmp_path / "nope.pth"), out, images=image_files)
    with pytest.raises(FileNotFoundError, match="compare_nope.pth"):
        visualize_attention(checkpoint, out, compare_checkpoint=str(tmp_path / "compare_nope.pth"), images=image_files)
    with pytest.raises(ValueError, match="--images"):
        visualize_attention(checkpoint, out, images=[])
    with pytest.raises(FileNotFoundError, match="ghost.jpg"):
        visualize_attention(checkpoint, out, images=[image_files[0], str(tmp_path / "ghost.jpg")])
    with pytest.raises(ValueError, match="--labels: got 2 label"):
        visualize_attention(checkpoint, out, images=image_files, labels=["a", "b"])
    with pytest.raises(ValueError, match="--reference"):
        visualize_attention(checkpoint, out, images=image_files, method="rollout", reference=image_files[0])
    with pytest.raises(ValueError, match="\\.png"):
        visualize_attention(checkpoint, str(tmp_path / "maps.jpg"), images=image_files)
    with pytest.raises(ValueError, match=f"checkpoint {checkpoint}.*no text encoder"):
        visualize_attention(checkpoint, out, images=image_files, texts=[TEXT],
                            opts=["MODEL.DMF.TEXT_ENCODER.NAME", ""])
    assert not any(name.startswith("maps") for name in os.listdir(tmp_path))  # nothing written on errors
    (tmp_path / "maps.npy").write_bytes(b"not mine")
    with pytest.raises(FileExistsError, match="maps.npy.*--overwrite"):
        visualize_attention(checkpoint, out, images=image_files)
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"not an image")
    with pytest.raises(OSError, match="broken.jpg"):
        visualize_attention(checkpoint, str(tmp_path / "other.png"), images=[str(unreadable)])


def test_empty_images_option_is_refused_by_the_parser():
    import importlib.util

    spec = importlib.util.spec_from_file_location("visualize_attention", os.path.join(REPO, "tools",
                                                                                     "visualize_attention.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit):
        tool.parse_args(["--checkpoint", "c.pth", "--out", "o.png", "--images"])
    args = tool.parse_args(["--checkpoint", "c.pth", "--out", "o.png", "--images", "a.jpg", "--",
                            "MODEL.DEVICE", "cpu"])
    assert args.images == ["a.jpg"] and args.opts == ["MODEL.DEVICE", "cpu"]


def test_tool_runs_end_to_end(inference_run, tiny_benchmark_root, tmp_path):
    """MMET, Grad-CAM on dataset query images, with text bars, through the script."""
    _, checkpoint = inference_run("MMET", 0)
    env = {**os.environ, "FASTREID_DATASETS": str(tiny_benchmark_root), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "mmet.png"
    command = [sys.executable, os.path.join("tools", "visualize_attention.py"), "--checkpoint", checkpoint,
               "--dataset", "SynthMarket", "--num", "2", "--out", str(out), "--text", TEXT]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "mmet.json").read_text())
    assert summary["maps_shape"] == [2, 1, H, W] and len(summary["images"]) == 2
    assert all("synth_market" in path for path in summary["images"])
    assert (tmp_path / "mmet_text.png").is_file() and out.is_file()
