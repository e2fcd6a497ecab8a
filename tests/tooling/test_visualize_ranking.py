"""Ranking lists (DMF Fig. 4): fast-reid's ranking rule and AP, exact pixel layout, border colours, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.shared import REPO

DATASET = "SynthMSMT"  # its tiny test split has gallery images of a query's identity *and* camera
K = 5
NO_WORKERS = ("DATALOADER.NUM_WORKERS", "0")
# The documented layout (tools/visualize_ranking.py): margin 8, frame 4, gap 4, query gap 12, title 32, labels 30.
CELL_H = 128
CELL_W = round(CELL_H * 16 / 32)  # INPUT.SIZE_TEST of the tiny models: 32 x 16
WIDTH = 2 * 8 + (K + 1) * (CELL_W + 2 * 4) + K * 4 + 12
HEIGHT = 2 * 8 + 32 + (CELL_H + 2 * 4) + 30


def _tile_origin(column: int) -> tuple[int, int]:
    """Top-left pixel of column ``column``'s frame (0 = query), from the documented formula."""
    return 8 + (12 if column else 0) + column * (CELL_W + 2 * 4 + 4), 8 + 32


@pytest.fixture(scope="module")
def truth(tiny_datasets):
    """``path -> (pid, camid)`` of the query and gallery images, read by the dataset class itself."""
    from fastreid.data.datasets import DATASET_REGISTRY

    data = DATASET_REGISTRY.get(DATASET)(root=str(tiny_datasets))
    return ({p: (pid, cam) for p, pid, cam in data.query}, {p: (pid, cam) for p, pid, cam in data.gallery})


@pytest.fixture(scope="module")
def drawn(tiny_datasets, inference_run, tmp_path_factory):
    """Every query of the tiny test set drawn (--queries random --num 100), DMF seed 0."""
    from fastreid_dmf.tooling.visualize import visualize_ranking

    _, checkpoint = inference_run("DMF", 0)
    out = tmp_path_factory.mktemp("ranking") / "lists"
    summary = visualize_ranking(checkpoint, DATASET, str(out), opts=NO_WORKERS, k=K, queries="random", num=100)
    return out, summary


def test_pngs_have_the_documented_pixel_size(drawn):
    out, summary = drawn
    records = summary["queries_drawn"]
    assert len(records) == summary["num_query"] == 12
    for record in records:
        with Image.open(out / record["png"]) as image:
            assert image.size == (WIDTH, HEIGHT)
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size == (WIDTH, HEIGHT * len(records))
    assert summary["image_size"] == {"width": WIDTH, "height": HEIGHT, "cell_width": CELL_W, "cell_height": CELL_H}
    assert json.loads((out / "ranking.json").read_text()) == summary


def test_borders_are_green_for_the_query_identity_and_red_otherwise(drawn, truth):
    from fastreid_dmf.tooling.visualize.figures import GREEN, QUERY_GREY, RED

    out, summary = drawn
    queries, gallery = truth
    colours = {GREEN: 0, RED: 0}
    for record in summary["queries_drawn"]:
        q_pid, q_cam = queries[record["path"]]
        assert (record["pid"], record["camid"]) == (q_pid, q_cam)
        with Image.open(out / record["png"]) as image:
            pixels = image.convert("RGB")
            x0, y0 = _tile_origin(0)
            assert pixels.getpixel((x0 + 1, y0 + 1)) == QUERY_GREY
            assert len(record["top_k"]) == K
            for entry in record["top_k"]:
                pid, cam = gallery[entry["path"]]
                assert (entry["pid"], entry["camid"]) == (pid, cam)
                assert entry["match"] == (pid == q_pid)
                expected = GREEN if pid == q_pid else RED
                x0, y0 = _tile_origin(entry["rank"])
                frame = [(x0, y0), (x0 + 1, y0 + 1), (x0 + CELL_W + 7, y0 + CELL_H + 7), (x0 + 2, y0 + 70),
                         (x0 + CELL_W + 6, y0 + 3)]
                assert [pixels.getpixel(xy) for xy in frame] == [expected] * len(frame), (record["png"], entry)
                colours[expected] += 1
    assert colours[GREEN] and colours[RED]  # both cases were checked


def test_same_identity_same_camera_gallery_images_never_ranked(drawn, truth):
    _, summary = drawn
    queries, gallery = truth
    skipped_somewhere = False
    for record in summary["queries_drawn"]:
        q_pid, q_cam = queries[record["path"]]
        same = sum(1 for pid, cam in gallery.values() if (pid, cam) == (q_pid, q_cam))
        assert record["skipped_same_pid_same_camera"] == same
        assert record["ranked_gallery"] == len(gallery) - same
        skipped_somewhere |= same > 0
        assert all(gallery[e["path"]] != (q_pid, q_cam) for e in record["top_k"])
        distances = [e["distance"] for e in record["top_k"]]
        assert distances == sorted(distances)
        assert [e["rank"] for e in record["top_k"]] == list(range(1, K + 1))
    assert skipped_somewhere  # the tiny split exercises the rule


def test_ap_and_map_match_fastreids_evaluator(drawn, inference_run):
    """Mean of the per-query APs = ReidEvaluator's mAP on the same model and test set."""
    from fastreid.evaluation import ReidEvaluator, inference_on_dataset

    from fastreid_dmf.data.build import build_dmf_test_loader
    from fastreid_dmf.engine.inference import load_inference_model

    _, summary = drawn
    _, checkpoint = inference_run("DMF", 0)
    cfg, model = load_inference_model(checkpoint, opts=NO_WORKERS)
    loader, num_query = build_dmf_test_loader(cfg, DATASET)
    results = inference_on_dataset(model, loader, ReidEvaluator(cfg, num_query), flip_test=cfg.TEST.FLIP.ENABLED)
    aps = [r["ap"] for r in summary["queries_drawn"] if r["ap"] is not None]
    assert summary["mAP"] * 100 == pytest.approx(results["mAP"], abs=1e-4)
    assert np.mean(aps) * 100 == pytest.approx(results["mAP"], abs=1e-4)


def _rankings(aps):
    from fastreid_dmf.tooling.visualize.ranking import QueryRanking

    empty = np.zeros(0, dtype=np.int64)
    return [QueryRanking(i, ap, empty, empty.astype(np.float32), empty.astype(bool), 0, 0) for i, ap in enumerate(aps)]


def test_query_selection():
    from fastreid_dmf.tooling.visualize.ranking import select_queries

    rankings = _rankings([0.5, None, 0.1, 0.9, 0.1])
    pids = np.array([3, 3, 7, 8, 9])
    assert select_queries(rankings, pids, "worst", 2) == [2, 4]
    assert select_queries(rankings, pids, "best", 2) == [3, 0]
    assert select_queries(rankings, pids, "worst", 10) == [2, 4, 0, 3]  # no AP: left out
    assert select_queries(rankings, pids, "ids", 1, ids=[8, 3]) == [3, 0, 1]
    picked = select_queries(rankings, pids, "random", 3, seed=1)
    assert picked == sorted(picked) and len(set(picked)) == 3
    assert picked == select_queries(rankings, pids, "random", 3, seed=1)
    with pytest.raises(ValueError, match="--ids 5"):
        select_queries(rankings, pids, "ids", 1, ids=[5])
    with pytest.raises(ValueError, match="--queries ids"):
        select_queries(rankings, pids, "worst", 1, ids=[3])
    with pytest.raises(ValueError, match="no query has"):
        select_queries(_rankings([None]), pids[:1], "best", 1)


def test_bad_inputs_are_named(tmp_path, inference_run, tiny_datasets):
    from fastreid_dmf.tooling.visualize import visualize_ranking

    _, checkpoint = inference_run("DMF", 0)
    missing = str(tmp_path / "nope" / "model_final.pth")
    with pytest.raises(FileNotFoundError, match="nope"):
        visualize_ranking(missing, DATASET, str(tmp_path / "a"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="full.*--overwrite"):
        visualize_ranking(checkpoint, DATASET, str(full), opts=NO_WORKERS)
    with pytest.raises(ValueError, match="--k 0"):
        visualize_ranking(checkpoint, DATASET, str(tmp_path / "b"), k=0)
    with pytest.raises(ValueError, match="'NoSuchSet'"):
        visualize_ranking(checkpoint, "NoSuchSet", str(tmp_path / "c"), opts=NO_WORKERS)
    # --overwrite: an earlier run's lists are replaced, other files kept.
    (full / "query_99_99.png").write_bytes(b"old")
    summary = visualize_ranking(checkpoint, DATASET, str(full), opts=NO_WORKERS, k=2, ids=[6], overwrite=True)
    assert summary["queries"] == "ids" and {r["pid"] for r in summary["queries_drawn"]} == {6}
    names = sorted(os.listdir(full))
    assert "keep.txt" in names and "query_99_99.png" not in names
    assert sorted(n for n in names if n.startswith("query_")) == sorted(r["png"] for r in summary["queries_drawn"])


def test_tool_runs_end_to_end(tmp_path, inference_run, tiny_benchmark_root):
    config, checkpoint = inference_run("DMF", 0)
    env = {**os.environ, "FASTREID_DATASETS": str(tiny_benchmark_root), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "lists"
    command = [sys.executable, os.path.join("tools", "visualize_ranking.py"), "--checkpoint", checkpoint,
               "--config-file", config, "--dataset", "SynthMarket", "--out", str(out), "--k", "3", "--num", "2",
               "--queries", "best", *NO_WORKERS]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "ranking.json").read_text())
    assert len(summary["queries_drawn"]) == 2 and summary["dataset"] == "SynthMarket"
    with Image.open(out / summary["queries_drawn"][0]["png"]) as image:
        assert image.size == (2 * 8 + 4 * (CELL_W + 8) + 3 * 4 + 12, HEIGHT)


def _tool(name: str):
    """``tools/<name>.py`` imported as a module (its ``main`` and ``parse_args``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_error_is_one_line(tmp_path, capsys):
    from fastreid_dmf.engine.cli import run_cli

    tool = _tool("visualize_ranking")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: tool.main(["--checkpoint", "c.pth", "--dataset", DATASET, "--out", str(tmp_path)]),
                prog="visualize_ranking.py")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == (f"visualize_ranking.py: error: --out {str(tmp_path)!r} exists and is "
                                               "not empty; pass --overwrite to replace its ranking lists, or choose "
                                               "a new folder")
