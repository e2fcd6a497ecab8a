"""FineGPR at its distributed size: 1,764 images per identity and the paper's 11-per-identity subset."""

from __future__ import annotations

import importlib.util
import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

# fastreid_dmf (imported first by these imports) applies the compat shim that fastreid.data needs on torch 2.
import fastreid_dmf.data.datasets.finegpr as finegpr_module
from fastreid_dmf.data.datasets.finegpr import FineGPR
from fastreid_dmf.data.descriptions import build_description
from fastreid_dmf.data.finegpr_format import parse_finegpr_filename, write_attribute_file
from tests.shared import REPO as REPO_ROOT

REPO = Path(REPO_ROOT)
PER_ID = 36 * 7 * 7  # viewpoints x weathers x illuminations = 1,764 images per identity
PIDS = (4, 17, 250)
ATTRS = {"gender": "female", "age": "adult", "hair_length": "long", "glasses": "no", "short_sleeve": "no",
         "dress": "yes", "boots": "no", "hat": "yes", "bag": "yes", "top_length": "long", "shoes": "dark",
         "upper_color": "green", "lower_color": "gray"}


def real_names(pid: int, count: int = PER_ID) -> list[str]:
    """An identity's FineGPR names in sorted order (scene code varies with weather and illumination)."""
    names = [f"{pid:04d}_c{c:02d}_w{w:02d}_l{light:02d}_p{1 + (w + light) % 9:02d}.jpg"
             for c in range(1, 37) for w in range(1, 8) for light in range(1, 8)]
    return names[:count]


def write_tree(root: Path, counts: dict[int, int]) -> Path:
    """Zero-byte files with real names under <root>/FineGPR (the constructor never opens images)."""
    folder = root / "FineGPR"
    for pid, count in counts.items():
        (folder / f"{pid:04d}").mkdir(parents=True)
        for name in real_names(pid, count):
            (folder / f"{pid:04d}" / name).touch()
    write_attribute_file(str(folder / "attributes.csv"), {pid: ATTRS for pid in counts})
    return folder


@pytest.fixture(scope="module")
def full_size_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finegpr_full")
    write_tree(root, {pid: PER_ID for pid in PIDS})
    return root


def test_paper_subset_of_full_size_identities_has_11_each_without_opening_images(
        full_size_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import PIL.Image

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset constructor opened an image")

    monkeypatch.setattr(PIL.Image, "open", no_open)
    data = FineGPR(root=str(full_size_root), images_per_identity=11)
    assert len(data.train) == 33
    assert Counter(item[1] for item in data.train) == {f"finegpr_{pid}": 11 for pid in PIDS}
    assert all(os.path.getsize(item[0]) == 0 for item in data.train)
    for path, pid, camid, text in data.train:
        codes = parse_finegpr_filename(path)
        assert (pid, camid) == (f"finegpr_{codes.pid}", f"finegpr_{codes.camera}")
        assert text == build_description(ATTRS, codes, "sentence", True)


def test_paper_subset_codes_are_spread_over_the_identity(full_size_root: Path) -> None:
    data = FineGPR(root=str(full_size_root), images_per_identity=11)
    for pid in PIDS:
        names = [os.path.basename(item[0]) for item in data.train if item[1] == f"finegpr_{pid}"]
        assert names == sorted(names) and names != real_names(pid)[:11]  # not just the first 11 sorted files
        codes = [parse_finegpr_filename(name) for name in names]
        # the first 11 sorted names all have c01 and w01/w02; a random draw spans viewpoints and weathers
        assert len({c.camera for c in codes}) >= 6
        assert len({c.weather for c in codes}) >= 3 and len({c.illumination for c in codes}) >= 3
    cameras = {parse_finegpr_filename(item[0]).camera for item in data.train}
    assert len(cameras) >= 12 and max(cameras) - min(cameras) >= 20


def test_paper_subset_identical_across_constructions_and_listing_orders(
        full_size_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = FineGPR(root=str(full_size_root), images_per_identity=11, subset_seed=0).train
    assert FineGPR(root=str(full_size_root), images_per_identity=11, subset_seed=0).train == first
    assert FineGPR(root=str(full_size_root), images_per_identity=11, subset_seed=1).train != first

    real_scandir = os.scandir
    calls = []

    class ShuffledScandir:
        """os.scandir stand-in that yields the entries in a scrambled order."""

        def __init__(self, path: str) -> None:
            with real_scandir(path) as entries:
                self.entries = list(entries)
            random.Random(len(self.entries) * 7 + len(calls)).shuffle(self.entries)
            calls.append(path)

        def __enter__(self) -> object:
            return iter(self.entries)

        def __exit__(self, *exc: object) -> bool:
            return False

    monkeypatch.setattr(finegpr_module.os, "scandir", ShuffledScandir)
    identity_dir = str(full_size_root / "FineGPR" / f"{PIDS[0]:04d}")
    with os.scandir(identity_dir) as entries:
        assert [e.name for e in entries][:11] != real_names(PIDS[0])[:11]
    calls.clear()
    assert FineGPR(root=str(full_size_root), images_per_identity=11, subset_seed=0).train == first
    assert len(calls) == 1 + len(PIDS)  # the dataset folder and every identity folder were listed shuffled


def test_subset_keeps_min_of_11_and_the_identity_size(tmp_path: Path) -> None:
    write_tree(tmp_path, {1: 5, 2: 11, 3: 12, 4: 40})
    data = FineGPR(root=str(tmp_path), images_per_identity=11)
    assert Counter(item[1] for item in data.train) == {"finegpr_1": 5, "finegpr_2": 11, "finegpr_3": 11,
                                                       "finegpr_4": 11}
    assert sorted(os.path.basename(i[0]) for i in data.train if i[1] == "finegpr_1") == real_names(1, 5)


def test_full_size_identities_without_subset_list_every_file(full_size_root: Path) -> None:
    data = FineGPR(root=str(full_size_root), text_mode="keywords")
    assert len(data.train) == len(PIDS) * PER_ID
    assert [os.path.basename(item[0]) for item in data.train] == [n for pid in PIDS for n in real_names(pid)]
    for path, _, _, text in data.train[::97]:
        assert text == build_description(ATTRS, parse_finegpr_filename(path), "keywords", True)


def test_benchmark_tool_measures_a_small_tree_and_cleans_up(tmp_path: Path) -> None:
    script = REPO / "tools" / "benchmark_finegpr_scan.py"
    spec = importlib.util.spec_from_file_location("benchmark_finegpr_scan", script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "bench.json"
    assert tool.main(["--work-dir", str(work), "--ids", "2", "--per-id", "30", "--repeats", "1",
                      "--verify-sample", "3", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["files"] == 60 and results["full_files"] == 2_028_600
    assert set(results["measured_s"]) == set(results["full_tree_estimate_s"])
    # measured_s is rounded to 1 ms and the estimate to 0.1 s: up to 0.0005 * 575 + 0.05 = 0.34 s apart.
    assert results["full_tree_estimate_s"]["scan_finegpr_tree"] == pytest.approx(
        results["measured_s"]["scan_finegpr_tree"] * 575, rel=0.01, abs=0.35)
    assert results["verify_images"]["paper_subset_estimate_s"] >= 0
    assert os.listdir(work) == []  # the temporary tree is removed
    with pytest.raises(SystemExit):
        tool.main(["--work-dir", str(work), "--json", str(out)])  # refuses to overwrite its JSON output
