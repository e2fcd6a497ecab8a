"""Person search by description: the constructed case, the command's files and colours, and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fastreid_dmf.data.descriptions import build_description
from fastreid_dmf.engine.inference import load_inference_model
from fastreid_dmf.evaluation.search import Searcher
from fastreid_dmf.tooling.text_search import search_by_text
from fastreid_dmf.tooling.visualize.figures import GREEN, NEUTRAL, RED, RankingLayout
from tests.shared import ATTRS, REPO, write_jpeg


@pytest.mark.parametrize("arch", ["DMF", "MMET"])
def test_the_description_of_an_identity_finds_that_identity_first(inference_run, arch):
    # Constructed case: each gallery entry sits where its identity's description lands (plus noise), so a
    # search by description must answer with the identity whose attributes the description came from.
    _, checkpoint = inference_run(arch)
    _, model = load_inference_model(checkpoint)
    pids = sorted(ATTRS)
    texts = [build_description(ATTRS[pid], None, "sentence", with_environment=False) for pid in pids]
    anchors = model.text_test_features(texts).detach().numpy()
    rng = np.random.default_rng(0)
    gallery = np.repeat(anchors, 3, axis=0) + rng.normal(0, 1e-3 * np.abs(anchors).mean(), (9, anchors.shape[1]))
    labels = [pid for pid in pids for _ in range(3)]
    searcher = Searcher(gallery, "cosine", labels=labels)
    for pid, text in zip(pids, texts, strict=True):
        result = searcher.search(model.text_test_features([text]).detach().numpy(), k=3)
        assert result.labels[0] == [pid, pid, pid]


def _frame_colour(path, layout, column):
    x0, y0, _, _ = layout.tile_box(column)
    return Image.open(path).convert("RGB").getpixel((x0 + 1, y0 + 1))


def test_dataset_search_writes_rankings_with_ground_truth_frames(tiny_datasets, inference_run, tmp_path):
    _, checkpoint = inference_run("DMF")
    out = tmp_path / "search"
    report = search_by_text(checkpoint, str(out), dataset="SynthMarket", dataset_queries=2, k=4, cell_height=64,
                            opts=["DATALOADER.NUM_WORKERS", 0], progress=False)
    saved = json.loads((out / "search.json").read_text())
    assert saved["queries"] == json.loads(json.dumps(report["queries"]))
    layout = RankingLayout.for_test_size(4, 64, (32, 16))
    for number, query in enumerate(saved["queries"], start=1):
        picture = out / f"query_{number:02d}.png"
        assert Image.open(picture).size == layout.size
        distances = [hit["distance"] for hit in query["results"]]
        assert distances == sorted(distances)
        for column, hit in enumerate(query["results"], start=1):
            assert hit["match"] == (hit["pid"] == query["pid"])
            assert _frame_colour(picture, layout, column) == (GREEN if hit["match"] else RED)
    assert (out / "contact_sheet.png").is_file()


def test_folder_search_uses_neutral_frames_and_every_image(inference_run, tmp_path):
    _, checkpoint = inference_run("DMF")
    for index in range(5):
        write_jpeg(tmp_path / "gallery" / f"person_{index}.jpg", shade=40 * index)
    report = search_by_text(checkpoint, str(tmp_path / "out"), texts=["a man in a red jacket"],
                            images=str(tmp_path / "gallery"), k=10, cell_height=64, progress=False)
    hits = report["queries"][0]["results"]
    assert report["gallery_size"] == 5 and len(hits) == 5
    assert {os.path.basename(h["path"]) for h in hits} == {f"person_{i}.jpg" for i in range(5)}
    assert all(h["pid"] is None and h["match"] is None for h in hits)
    layout = RankingLayout.for_test_size(5, 64, (32, 16))
    assert _frame_colour(tmp_path / "out" / "query_01.png", layout, 1) == NEUTRAL


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(texts=["a man"], images="missing_folder"), NotADirectoryError, "missing_folder"),
    (dict(texts=["a man"], images="EMPTY"), ValueError, "no images in folder"),
    (dict(texts=["a man in a red jacket " * 12], images="GALLERY"), ValueError, "MAX_TOKENS=32"),
    (dict(texts=[], images="GALLERY"), ValueError, "no description given"),
    (dict(texts=["a man"], images="GALLERY", dataset="SynthMarket"), ValueError, "exactly one gallery"),
])
def test_bad_input_is_refused_before_searching(inference_run, tmp_path, kwargs, error, message):
    _, checkpoint = inference_run("DMF")
    (tmp_path / "EMPTY").mkdir()
    write_jpeg(tmp_path / "GALLERY" / "a.jpg")
    kwargs = {key: str(tmp_path / value) if key == "images" else value for key, value in kwargs.items()}
    with pytest.raises(error, match=message):
        search_by_text(checkpoint, str(tmp_path / "out"), progress=False, **kwargs)


def test_an_existing_output_folder_is_kept_without_overwrite(inference_run, tmp_path):
    _, checkpoint = inference_run("DMF")
    write_jpeg(tmp_path / "gallery" / "a.jpg")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        search_by_text(checkpoint, str(tmp_path / "out"), texts=["a man"], images=str(tmp_path / "gallery"))
    search_by_text(checkpoint, str(tmp_path / "out"), texts=["a man"], images=str(tmp_path / "gallery"),
                   overwrite=True, progress=False)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_command_prints_the_ranking_and_fails_in_one_line(inference_run, tmp_path):
    _, checkpoint = inference_run("DMF")
    write_jpeg(tmp_path / "gallery" / "a.jpg")
    tool = os.path.join(REPO, "tools", "search_text.py")
    run = subprocess.run([sys.executable, tool, "--checkpoint", checkpoint, "--text", "a man in a red jacket",
                          "--images", str(tmp_path / "gallery"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "[1] a man in a red jacket" in run.stdout and "a.jpg" in run.stdout
    missing = subprocess.run([sys.executable, tool, "--checkpoint", str(tmp_path / "none.pth"), "--text", "x",
                              "--images", str(tmp_path / "gallery"), "--out", str(tmp_path / "out2")],
                             capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith("search_text.py: error: checkpoint")
