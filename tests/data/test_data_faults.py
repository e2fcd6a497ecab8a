"""Faulty input data: truncated or undecodable images (before and during training) and a BOM attribute file."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from fastreid_dmf.data.build import verify_images
from fastreid_dmf.data.datasets.finegpr import FineGPR
from fastreid_dmf.data.finegpr_format import read_attribute_file
from fastreid_dmf.data.multimodal_dataset import MultimodalReIDDataset, UnreadableImageError
from tests.shared import ATTRS, make_finegpr_tree
from tests.shared import REPO as REPO_ROOT

REPO = Path(REPO_ROOT)
BOM = b"\xef\xbb\xbf"


def write_noise_jpeg(path: Path, seed: int = 0) -> Path:
    """A 64 x 128 JPEG of random pixels (large enough that half of it still has a complete header)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


def truncate_to_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def good_truncated_garbage(tmp_path: Path) -> tuple[Path, Path, Path]:
    good = write_noise_jpeg(tmp_path / "good.jpg")
    truncated = truncate_to_half(write_noise_jpeg(tmp_path / "truncated.jpg", seed=1))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(np.random.default_rng(2).bytes(4000))
    with Image.open(truncated) as image:
        image.verify()  # the header-only check lets the truncated file through
    return good, truncated, garbage


# --------------------------------------------------------------------------- verification before training

def test_verification_reports_truncated_and_undecodable_images(good_truncated_garbage) -> None:
    good, truncated, garbage = good_truncated_garbage
    items = [(str(good), 1, 0), (str(truncated), 1, 0), (str(garbage), 1, 0)]
    with pytest.raises(ValueError, match="2 unreadable training image") as info:
        verify_images(items, skip_unreadable=False)
    message = str(info.value)
    assert "truncated.jpg" in message and "garbage.jpg" in message and "good.jpg" not in message
    assert "DATASETS.SKIP_UNREADABLE" in message
    assert verify_images(items[:1], skip_unreadable=False) == items[:1]


def test_verification_reports_truncation_even_if_pil_is_told_to_load_truncated_images(
        good_truncated_garbage, monkeypatch) -> None:
    _, truncated, _ = good_truncated_garbage
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ValueError, match="truncated.jpg"):
        verify_images([(str(truncated), 1, 0)], skip_unreadable=False)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True, "the caller's setting is restored"


def test_verification_with_skip_unreadable_drops_bad_images_with_a_count(good_truncated_garbage, caplog) -> None:
    good, truncated, garbage = good_truncated_garbage
    items = [(str(good), 1, 0), (str(truncated), 1, 0), (str(garbage), 1, 0)]
    with caplog.at_level(logging.WARNING, logger="fastreid_dmf.data.build"):
        assert verify_images(items, skip_unreadable=True) == items[:1]
    assert "Skipped 2 unreadable training image(s)" in caplog.text
    assert "truncated.jpg" in caplog.text and "garbage.jpg" in caplog.text


# --------------------------------------------------------------------------- read failures while training

@pytest.fixture
def two_identities(tmp_path: Path) -> list[tuple[str, int, int, str]]:
    """Items (with descriptions) of identities 5 (3 images) and 9 (2 images), interleaved, all readable."""
    pids = [5, 9, 5, 9, 5]
    return [(str(write_noise_jpeg(tmp_path / f"{i}_{pid}.jpg", seed=i)), pid, i % 2, f"person {pid}")
            for i, pid in enumerate(pids)]


def test_image_removed_after_loading_raises_an_error_naming_it(two_identities) -> None:
    dataset = MultimodalReIDDataset(two_identities, None, (128, 64))
    os.remove(two_identities[2][0])
    with pytest.raises(UnreadableImageError, match="2_5.jpg") as info:
        dataset[2]
    assert "DATASETS.SKIP_UNREADABLE True" in str(info.value)
    assert dataset[0]["img_paths"] == two_identities[0][0], "other images are unaffected"
    assert dataset[5 + 2]["texts"] == "person 5", "its text sample does not read the image"


def test_truncated_image_is_replaced_by_the_next_image_of_its_identity_when_skipping(two_identities, caplog) -> None:
    dataset = MultimodalReIDDataset(two_identities, None, (128, 64), skip_unreadable=True)
    truncate_to_half(Path(two_identities[2][0]))
    with caplog.at_level(logging.WARNING, logger="fastreid_dmf.data.multimodal_dataset"):
        sample = dataset[2]
        again = dataset[2]
    assert sample["targets"] == again["targets"] == dataset.pid_dict[5]
    assert sample["img_paths"] == again["img_paths"] == two_identities[4][0], "next item of identity 5"
    assert sample["modalities"] == 0 and sample["images"].size == (64, 128)
    assert list(dataset.skipped_paths) == [two_identities[2][0]]
    assert caplog.text.count("2_5.jpg") == 1, "logged once, not read again"


def test_substitute_wraps_round_to_the_first_image_of_the_identity(two_identities) -> None:
    dataset = MultimodalReIDDataset(two_identities, None, (128, 64), skip_unreadable=True)
    os.remove(two_identities[4][0])
    sample = dataset[4]
    assert sample["img_paths"] == two_identities[0][0] and sample["targets"] == dataset.pid_dict[5]
    assert len(dataset.skipped_paths) == 1


def test_identity_without_any_readable_image_raises_even_when_skipping(two_identities) -> None:
    dataset = MultimodalReIDDataset(two_identities, None, (128, 64), skip_unreadable=True)
    for index in (1, 3):
        os.remove(two_identities[index][0])
    with pytest.raises(UnreadableImageError, match="identity 9"):
        dataset[3]
    assert len(dataset.skipped_paths) == 2


def test_error_in_a_dataloader_worker_reaches_the_main_process_naming_the_file(two_identities) -> None:
    dataset = MultimodalReIDDataset(two_identities, None, (128, 64))
    os.remove(two_identities[1][0])
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=[1], num_workers=1)
    with pytest.raises(UnreadableImageError, match="1_9.jpg"):
        next(iter(loader))


# --------------------------------------------------------------------------- attribute file with a BOM

def test_attribute_file_with_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    csv_path = folder / "attributes.csv"
    csv_path.write_bytes(BOM + csv_path.read_bytes())
    assert read_attribute_file(str(csv_path)) == ATTRS
    assert FineGPR(root=str(tmp_path), verbose=False).attributes == ATTRS


def test_attribute_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    csv_path = folder / "attributes.csv"
    csv_path.write_bytes(csv_path.read_bytes().replace(b"blue", b"bl\xe9u"))
    with pytest.raises(ValueError, match="not UTF-8") as info:
        read_attribute_file(str(csv_path))
    assert str(csv_path) in str(info.value)


# --------------------------------------------------------------------------- end to end

TINY_RUN = ["SOLVER.MAX_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_INSTANCE", "4",
            "DATALOADER.NUM_WORKERS", "0", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48",
            "MODEL.DMF.NUM_HEADS", "3", "MODEL.BACKBONE.FEAT_DIM", "48", "SOLVER.WARMUP_ITERS", "1",
            "TEST.EVAL_PERIOD", "2", "TEST.IMS_PER_BATCH", "64", "DATASETS.NAMES", '("SynthMarket",)',
            "DATASETS.TESTS", '("SynthMarket",)', "DATASETS.VERIFY_IMAGES", "False"]


@pytest.fixture
def benchmark_with_truncated_image(tiny_benchmark_root, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tiny benchmark with one SynthMarket training image cut in half, and that image."""
    root = tmp_path / "data"
    shutil.copytree(tiny_benchmark_root, root)
    bad = sorted((root / "synth_market" / "bounding_box_train").glob("*.jpg"))[5]
    return root, truncate_to_half(bad)


def train_tiny(root: Path, output: Path, *opts: str) -> subprocess.CompletedProcess:
    """``tools/train_net.py`` on ``dmf_scratch.yml`` at test size, in a subprocess (a hang fails, not blocks)."""
    command = [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file",
               str(REPO / "configs" / "demo" / "dmf_scratch.yml"), *TINY_RUN, "OUTPUT_DIR", str(output), *opts]
    env = {**os.environ, "FASTREID_DATASETS": str(root)}
    try:
        return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"training did not end within {err.timeout} s (the train loader hangs?); stderr tail:\n"
                    f"{(err.stderr or b'')[-3000:]!r}")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_training_on_a_truncated_image_stops_with_an_error_naming_it(benchmark_with_truncated_image,
                                                                      tmp_path: Path, workers: str) -> None:
    root, bad = benchmark_with_truncated_image
    run = train_tiny(root, tmp_path / "out", "DATALOADER.NUM_WORKERS", workers)
    assert run.returncode == 1, run.stderr[-3000:]  # not 134 (an abort while loader threads/workers live)
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("train_net.py: error: ") and bad.name in last and "DATASETS.SKIP_UNREADABLE" in last


def test_training_on_a_truncated_image_finishes_when_skipping(benchmark_with_truncated_image, tmp_path: Path) -> None:
    root, bad = benchmark_with_truncated_image
    run = train_tiny(root, tmp_path / "out", "DATASETS.SKIP_UNREADABLE", "True")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "out" / "model_final.pth").is_file()
    log = run.stdout + run.stderr
    assert "Skipping unreadable training image" in log and bad.name in log
