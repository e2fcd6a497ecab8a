"""Loaders of the real datasets' on-disk layouts, on tiny trees built here, and the look-alike generator.

Each hand-built tree copies the real folder and file names (Market-1501,
DukeMTMC-reID, MSMT17_V1/V2, CUHK03-NP release and .mat route, RandPerson
subset) with 8 x 4 pixel images.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import logging
import os
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

# conftest.py imports fastreid_dmf first, so fast-reid is already patched for torch 2 here
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.dukemtmcreid import DukeMTMC
from fastreid.data.datasets.market1501 import Market1501
from fastreid.data.datasets.msmt17 import MSMT17
from fastreid.data.samplers.triplet_sampler import NaiveIdentitySampler
from fastreid.evaluation.rank import evaluate_rank
from PIL import Image
from scipy.io import savemat

import fastreid_dmf  # noqa: F401  (compat patches, registration)
from fastreid_dmf.data.datasets import CUHK03NP, CUHK03NPLabeled, MSMT17All, RandPerson
from fastreid_dmf.data.datasets.randperson import parse_randperson_name
from fastreid_dmf.tooling.synthetic import README_MARKER, TREES, LookalikeSize, generate_real_layout_trees
from tests.shared import REPO as REPO_ROOT

REPO = Path(REPO_ROOT)


def _image(path: Path, shade: int = 0) -> None:
    """A tiny 4 x 8 (w x h) RGB image; PNG or JPEG from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8), (shade % 256, 90, 160)).save(path)


def _tree(base: Path, files: dict[str, list[str]]) -> None:
    for sub, names in files.items():
        (base / sub).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            _image(base / sub / name, 20 * i)


def _labels(items: list[tuple]) -> list[tuple]:
    return sorted((os.path.basename(path), pid, cam) for path, pid, cam in items)


# --------------------------------------------------------------------------- Market-1501 / DukeMTMC (fast-reid)

def test_market1501_drops_junk_and_keeps_distractors_in_gallery(tmp_path):
    base = tmp_path / "Market-1501-v15.09.15"
    _tree(base, {"bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c4s2_017465_01.jpg",
                                        "0007_c2s3_070952_01.jpg"],
                 "query": ["0001_c1s1_001051_00.jpg", "0001_c3s1_000551_00.jpg"],
                 "bounding_box_test": ["0001_c2s1_000301_01.jpg", "0000_c1s1_000151_01.jpg", "-1_c1s1_000401_03.jpg",
                                       "-1_c5s2_004578_04.jpg"]})
    (base / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    ds = Market1501(root=str(tmp_path))
    assert _labels(ds.train) == [("0002_c1s1_000451_03.jpg", "market1501_2", "market1501_0"),
                                 ("0002_c4s2_017465_01.jpg", "market1501_2", "market1501_3"),
                                 ("0007_c2s3_070952_01.jpg", "market1501_7", "market1501_1")]
    assert _labels(ds.query) == [("0001_c1s1_001051_00.jpg", 1, 0), ("0001_c3s1_000551_00.jpg", 1, 2)]
    assert _labels(ds.gallery) == [("0000_c1s1_000151_01.jpg", 0, 0), ("0001_c2s1_000301_01.jpg", 1, 1)]


def test_dukemtmc_reads_eight_cameras_and_frame_names(tmp_path):
    _tree(tmp_path / "DukeMTMC-reID", {
        "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c8_f0123456.jpg"],
        "query": ["0005_c2_f0046985.jpg"],
        "bounding_box_test": ["0005_c5_f0051781.jpg", "7139_c6_f0160815.jpg"]})
    ds = DukeMTMC(root=str(tmp_path))
    assert sorted(cam for _, _, cam in ds.train) == ["dukemtmc_1", "dukemtmc_7"]
    assert {pid for _, pid, _ in ds.train} == {"dukemtmc_1"}
    assert _labels(ds.gallery) == [("0005_c5_f0051781.jpg", 5, 4), ("7139_c6_f0160815.jpg", 7139, 5)]


# --------------------------------------------------------------------------- MSMT17 and MSMT17All

def _msmt_tree(root: Path, version: str = "V1") -> dict[str, list[str]]:
    """Train pids 0, 1 (2 list_train images each, pid 0 one list_val image); test pids 0, 1, 2."""
    train_dir, test_dir = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}[version]
    main = root / f"MSMT17_{version}"
    lists = {
        "train": ["0000/0000_000_01_0303morning_0015_0.jpg 0", "0000/0000_001_05_0303noon_0932_1.jpg 0",
                  "0001/0001_000_02_0113afternoon_0101_0.jpg 1", "0001/0001_001_11_0114morning_1234_2.jpg 1"],
        "val": ["0000/0000_002_07_0302noon_0544_0.jpg 0"],
        "query": ["0000/0000_000_03_0303noon_0001_0.jpg 0", "0001/0001_000_04_0113morning_0002_0.jpg 1",
                  "0002/0002_000_14_0302afternoon_0003_1.jpg 2"],
        "gallery": ["0000/0000_001_06_0303noon_0011_0.jpg 0", "0001/0001_001_09_0113morning_0012_0.jpg 1",
                    "0002/0002_001_15_0302afternoon_0013_1.jpg 2", "0002/0002_002_01_0302noon_0014_0.jpg 2",
                    "0000/0000_002_12_0114noon_0015_2.jpg 0", "0001/0001_002_13_0114noon_0016_0.jpg 1"],
    }
    for split, lines in lists.items():
        folder = main / (train_dir if split in ("train", "val") else test_dir)
        for line in lines:
            _image(folder / line.split(" ")[0])
        (main / f"list_{split}.txt").write_text("".join(line + "\n" for line in lines))
    return lists


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_fastreid_msmt17_reads_list_files_of_both_versions(tmp_path, version):
    _msmt_tree(tmp_path, version)
    ds = MSMT17(root=str(tmp_path))
    assert len(ds.train) == 4 and {pid for _, pid, _ in ds.train} == {"msmt17_0", "msmt17_1"}
    assert sorted(cam for _, _, cam in ds.train) == ["msmt17_0", "msmt17_1", "msmt17_10", "msmt17_4"]
    assert sorted(pid for _, pid, _ in ds.query) == [2, 3, 4]  # test pids shifted by the 2 training ids
    assert sorted(cam for _, _, cam in ds.query) == [2, 3, 13]


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17all_trains_on_every_listed_image_with_distinct_test_labels(tmp_path, version):
    lists = _msmt_tree(tmp_path, version)
    ds = MSMT17All(root=str(tmp_path))
    n_listed = sum(len(lines) for lines in lists.values())
    assert len(ds.train) == n_listed == 14
    assert all(os.path.isfile(path) for path, _, _ in ds.train)
    pids = Counter(pid for _, pid, _ in ds.train)
    assert pids == {"msmt17all_0": 3, "msmt17all_1": 2, "msmt17all_2": 3, "msmt17all_3": 3, "msmt17all_4": 3}
    # test pid 0 (3 images in test/) is msmt17all_2, not merged with training pid 0
    test_root = os.path.join(str(tmp_path), f"MSMT17_{version}", "test" if version == "V1" else "mask_test_v2")
    assert {pid for path, pid, _ in ds.train if path.startswith(test_root + os.sep + "0000")} == {"msmt17all_2"}
    assert (ds.num_train_ids, ds.num_test_ids, ds.test_pid_offset) == (2, 3, 2)
    assert ds.query == [] and ds.gallery == []
    assert all(cam.startswith("msmt17all_") for _, _, cam in ds.train)


def test_msmt17all_can_leave_out_list_val(tmp_path):
    _msmt_tree(tmp_path)
    ds = MSMT17All(root=str(tmp_path), include_val=False)
    assert len(ds.train) == 13
    assert not any("0000_002_07" in path for path, _, _ in ds.train)


def test_msmt17all_reports_missing_version_folder_list_file_and_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="MSMT17_V1.*MSMT17_V2"):
        MSMT17All(root=str(tmp_path))
    _msmt_tree(tmp_path)
    (tmp_path / "MSMT17_V1" / "list_gallery.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_gallery.txt"):
        MSMT17All(root=str(tmp_path))
    _msmt_tree(tmp_path)
    (tmp_path / "MSMT17_V1" / "test" / "0002" / "0002_001_15_0302afternoon_0013_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 image\(s\) listed in .*list_gallery.txt.*0002_001_15"):
        MSMT17All(root=str(tmp_path))


def test_msmt17all_names_file_and_line_of_a_bad_list_entry(tmp_path):
    _msmt_tree(tmp_path)
    path = tmp_path / "MSMT17_V1" / "list_query.txt"
    path.write_text(path.read_text() + "0003/0003_000_03_0303noon_0001_0.jpg\n")
    with pytest.raises(ValueError, match=r"line 4 of MSMT17 list file .*list_query.txt"):
        MSMT17All(root=str(tmp_path))


# --------------------------------------------------------------------------- CUHK03-NP

_RELEASE = {"bounding_box_train": ["0001_c1_1.png", "0001_c2_2.png", "0002_c1_3.png", "0002_c2_4.png"],
            "query": ["0003_c1_5.png", "0003_c2_7.png"],
            "bounding_box_test": ["0003_c1_6.png", "0003_c2_8.png"]}
# .mat route: the same 8 images under their extracted names, filelist order = the release's running number
_EXTRACTED = ["1_001_1_01.png", "1_001_2_06.png", "1_002_1_01.png", "1_002_2_06.png", "2_001_1_01.png",
              "2_001_1_02.png", "2_001_2_06.png", "2_001_2_07.png"]
_LABELS = [1, 1, 2, 2, 3, 3, 3, 3]


def _release_tree(root: Path, box: str = "detected") -> None:
    _tree(root / "cuhk03-np" / box, _RELEASE)
    (root / "cuhk03-np" / box / "query" / "Thumbs.db").write_bytes(b"\0")


def _mat_tree(root: Path, box: str = "detected", **override) -> Path:
    for i, name in enumerate(_EXTRACTED):
        _image(root / "cuhk03" / f"images_{box}" / name, i)
    filelist = np.empty((len(_EXTRACTED), 1), dtype=object)
    for i, name in enumerate(_EXTRACTED):
        filelist[i, 0] = name
    fields = {"filelist": filelist, "labels": np.array(_LABELS, dtype=float).reshape(-1, 1),
              "camId": np.array([[1], [2], [1], [2], [1], [1], [2], [2]], dtype=float),
              "train_idx": np.array([[1], [2], [3], [4]], dtype=float),  # 1-based, as in the real file
              "query_idx": np.array([[5], [7]], dtype=float), "gallery_idx": np.array([[6], [8]], dtype=float)}
    fields.update(override)
    fields = {k: v for k, v in fields.items() if v is not None}
    path = root / "cuhk03" / f"cuhk03_new_protocol_config_{box}.mat"
    savemat(str(path), fields)
    return path


def test_cuhk03np_release_tree_gives_fastreid_labels_and_views(tmp_path):
    _release_tree(tmp_path)
    ds = CUHK03NP(root=str(tmp_path))
    assert ds.layout == "release"
    assert _labels(ds.train) == [("0001_c1_1.png", "cuhk03np_1", "cuhk03np_0"),
                                 ("0001_c2_2.png", "cuhk03np_1", "cuhk03np_1"),
                                 ("0002_c1_3.png", "cuhk03np_2", "cuhk03np_0"),
                                 ("0002_c2_4.png", "cuhk03np_2", "cuhk03np_1")]
    assert _labels(ds.query) == [("0003_c1_5.png", 3, 0), ("0003_c2_7.png", 3, 1)]
    assert _labels(ds.gallery) == [("0003_c1_6.png", 3, 0), ("0003_c2_8.png", 3, 1)]


def test_cuhk03np_mat_route_reads_one_based_indices_into_filelist(tmp_path):
    _mat_tree(tmp_path)
    ds = CUHK03NP(root=str(tmp_path))
    assert ds.layout == "mat"
    assert [os.path.basename(p) for p, _, _ in ds.train] == _EXTRACTED[:4]
    assert _labels(ds.train) == [("1_001_1_01.png", "cuhk03np_1", "cuhk03np_0"),
                                 ("1_001_2_06.png", "cuhk03np_1", "cuhk03np_1"),
                                 ("1_002_1_01.png", "cuhk03np_2", "cuhk03np_0"),
                                 ("1_002_2_06.png", "cuhk03np_2", "cuhk03np_1")]
    assert _labels(ds.query) == [("2_001_1_01.png", 3, 0), ("2_001_2_06.png", 3, 1)]
    assert _labels(ds.gallery) == [("2_001_1_02.png", 3, 0), ("2_001_2_07.png", 3, 1)]


def test_cuhk03np_auto_prefers_the_release_tree_and_layout_forces_a_route(tmp_path):
    _release_tree(tmp_path)
    _mat_tree(tmp_path)
    release, mat = CUHK03NP(root=str(tmp_path)), CUHK03NP(root=str(tmp_path), layout="mat")
    assert (release.layout, mat.layout) == ("release", "mat")
    strip = [(pid, cam) for _, pid, cam in release.train]
    assert sorted(strip) == sorted((pid, cam) for _, pid, cam in mat.train)
    assert mat.split_path.endswith("cuhk03_new_protocol_config_detected.mat")
    with pytest.raises(ValueError, match="unknown CUHK03-NP layout 'hdf5'"):
        CUHK03NP(root=str(tmp_path), layout="hdf5")


def test_cuhk03np_labeled_reads_only_labeled_boxes(tmp_path):
    _release_tree(tmp_path, "labeled")
    ds = CUHK03NPLabeled(root=str(tmp_path))
    assert all(f"{os.sep}labeled{os.sep}" in p for p, _, _ in ds.train + ds.query + ds.gallery)
    assert {pid for _, pid, _ in ds.train} == {"cuhk03nplabeled_1", "cuhk03nplabeled_2"}
    with pytest.raises(FileNotFoundError):
        CUHK03NP(root=str(tmp_path))  # no detected boxes here


def test_cuhk03np_without_data_lists_both_accepted_layouts(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CUHK03NP(root=str(tmp_path))
    message = str(err.value)
    assert "cuhk03-np/detected" in message and "bounding_box_train" in message
    assert "images_detected" in message and "cuhk03_new_protocol_config_detected.mat" in message


def test_cuhk03np_release_tree_names_a_missing_subfolder_and_a_bad_file_name(tmp_path):
    _release_tree(tmp_path)
    (tmp_path / "cuhk03-np" / "detected" / "query" / "0003_c1_5.png").rename(
        tmp_path / "cuhk03-np" / "detected" / "query" / "0003_cam1_5.png")
    with pytest.raises(ValueError, match=r"0003_cam1_5.png.*<pid4>_c<view 1\|2>_<n>.png"):
        CUHK03NP(root=str(tmp_path))
    for name in os.listdir(tmp_path / "cuhk03-np" / "detected" / "query"):
        os.remove(tmp_path / "cuhk03-np" / "detected" / "query" / name)
    os.rmdir(tmp_path / "cuhk03-np" / "detected" / "query")
    with pytest.raises(FileNotFoundError, match=r"lacks sub-folder\(s\) \['query'\]"):
        CUHK03NP(root=str(tmp_path))


@pytest.mark.parametrize("override, error, pattern", [
    ({"gallery_idx": None}, ValueError, r"lacks field\(s\) \['gallery_idx'\]"),
    ({"train_idx": np.array([[0], [1]], dtype=float)}, ValueError, r"'train_idx'.*index 0, outside 1..8.*1-based"),
    ({"query_idx": np.array([[5.5]])}, ValueError, r"'query_idx'.*integers"),
    ({"labels": np.array([[1.0], [2.0]])}, ValueError, r"'labels'.*2 entries but 'filelist' has 8"),
])
def test_cuhk03np_mat_route_rejects_bad_split_files(tmp_path, override, error, pattern):
    _mat_tree(tmp_path, **override)
    with pytest.raises(error, match=pattern):
        CUHK03NP(root=str(tmp_path))


def test_cuhk03np_mat_route_names_missing_images_and_split_file(tmp_path):
    path = _mat_tree(tmp_path)
    os.remove(tmp_path / "cuhk03" / "images_detected" / "2_001_2_07.png")
    with pytest.raises(FileNotFoundError, match=r"1 image\(s\) named in .*missing.*2_001_2_07.png"):
        CUHK03NP(root=str(tmp_path))
    path.unlink()
    with pytest.raises(FileNotFoundError, match="cuhk03_new_protocol_config_detected.mat"):
        CUHK03NP(root=str(tmp_path))


def test_cuhk03np_warns_when_identity_counts_are_not_767_and_700(tmp_path, caplog):
    _release_tree(tmp_path)
    with caplog.at_level(logging.WARNING, logger="fastreid_dmf.data.datasets.cuhk03np"):
        CUHK03NP(root=str(tmp_path))
    assert "2 training / 1 test identities" in caplog.text and "767 / 700" in caplog.text


# --------------------------------------------------------------------------- RandPerson

def test_randperson_parses_pid_scene_camera_and_uses_scene_camera_pairs_as_cameras(tmp_path):
    folder = tmp_path / "randperson_subset" / "randperson_subset"
    names = ["000000_s00_c00_f000228.jpg", "000000_s00_c01_f000300.jpg", "000001_s10_c03_f001000.jpg",
             "000002_c01_s02_f000010.jpg"]  # the last in the README's camera-first order
    for name in names:
        _image(folder / name)
    (folder / "README.txt").write_text("not an image")
    ds = RandPerson(root=str(tmp_path))
    assert ds.data_dir == str(folder)
    assert _labels(ds.train) == [("000000_s00_c00_f000228.jpg", "randperson_0", "randperson_0"),
                                 ("000000_s00_c01_f000300.jpg", "randperson_0", "randperson_1"),
                                 ("000001_s10_c03_f001000.jpg", "randperson_1", "randperson_1003"),
                                 ("000002_c01_s02_f000010.jpg", "randperson_2", "randperson_201")]
    assert (ds.num_scenes, ds.num_cameras) == (3, 4)
    assert ds.query == [] and ds.gallery == []
    assert parse_randperson_name("000002_c01_s02_f000010.jpg") == parse_randperson_name("000002_s02_c01_f000010.jpg")


def test_randperson_reads_a_flat_folder_and_rejects_bad_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="randperson_subset"):
        RandPerson(root=str(tmp_path))
    folder = tmp_path / "randperson_subset"
    _image(folder / "000005_s03_c00_f000012.jpg")
    assert [pid for _, pid, _ in RandPerson(root=str(tmp_path)).train] == ["randperson_5"]
    _image(folder / "000005_cam0_f12.jpg")
    with pytest.raises(ValueError, match=r"000005_cam0_f12.jpg.*<pid6>_s<scene2>_c<camera2>_f<frame6>"):
        RandPerson(root=str(tmp_path))


# --------------------------------------------------------------------------- look-alike generator

TINY = LookalikeSize(train_ids=4, train_images_per_id=4, test_ids=3, query_per_id=2, gallery_per_id=2,
                     distractors=2, junk=1, val_ids=1, finegpr_ids=4, finegpr_images_per_id=2)


@pytest.fixture(scope="module")
def lookalike(tmp_path_factory) -> tuple[str, dict]:
    root = str(tmp_path_factory.mktemp("lookalike") / "datasets")
    return root, generate_real_layout_trees(root, seed=0, size=TINY)


def _load(name: str, root: str, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DATASET_REGISTRY.get(name)(root=root, **kwargs)


def _hashes(root: str) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def test_lookalike_trees_use_the_real_folder_names(lookalike):
    root, counts = lookalike
    assert set(counts) == set(TREES)
    for folder in ("Market-1501-v15.09.15/bounding_box_train", "DukeMTMC-reID/query", "MSMT17_V1/train",
                   "MSMT17_V1/list_val.txt", "cuhk03-np/detected/bounding_box_test", "cuhk03-np/labeled/query",
                   "cuhk03/images_detected", "cuhk03/cuhk03_new_protocol_config_labeled.mat",
                   "randperson_subset/randperson_subset", "FineGPR/attributes.csv"):
        assert os.path.exists(os.path.join(root, folder)), folder
    for tree_dir in ("Market-1501-v15.09.15", "DukeMTMC-reID", "MSMT17_V1", "cuhk03-np", "cuhk03",
                     "randperson_subset", "FineGPR"):
        assert Path(root, tree_dir, "README.txt").read_text().splitlines()[0] == README_MARKER


def test_every_lookalike_tree_loads_through_its_registered_class_with_the_reported_counts(lookalike):
    root, counts = lookalike
    market = _load("Market1501", root)
    c = counts["Market1501"]
    assert (len(market.train), len(market.query)) == (c["train_images"], c["query_images"])
    assert len(market.gallery) == c["gallery_images"] - c["junk_images"]  # junk -1 dropped
    assert sum(pid == 0 for _, pid, _ in market.gallery) == c["distractor_images"]
    assert len({pid for _, pid, _ in market.train}) == c["train_ids"]

    duke, c = _load("DukeMTMC", root), counts["DukeMTMC"]
    assert (len(duke.train), len(duke.query), len(duke.gallery)) == (c["train_images"], c["query_images"],
                                                                     c["gallery_images"])
    gallery_only = {pid for _, pid, _ in duke.gallery} - {pid for _, pid, _ in duke.query}
    assert len(gallery_only) == c["distractor_ids"]

    msmt, c = _load("MSMT17", root), counts["MSMT17"]
    assert (len(msmt.train), len(msmt.query), len(msmt.gallery)) == (c["train_images"], c["query_images"],
                                                                     c["gallery_images"])
    msmt_all = _load("MSMT17All", root)
    assert len(msmt_all.train) == c["train_images"] + c["val_images"] + c["query_images"] + c["gallery_images"]
    assert len({pid for _, pid, _ in msmt_all.train}) == c["train_ids"] + c["test_ids"]

    for name, kwargs, tree in [("CUHK03NP", {}, "CUHK03NP"), ("CUHK03NPLabeled", {}, "CUHK03NP"),
                               ("CUHK03NP", {"layout": "mat"}, "CUHK03NP-mat"),
                               ("CUHK03NPLabeled", {"layout": "mat"}, "CUHK03NP-mat")]:
        ds, c = _load(name, root, **kwargs), counts[tree]
        assert (len(ds.train), len(ds.query), len(ds.gallery)) == (c["train_images"], c["query_images"],
                                                                   c["gallery_images"]), (name, kwargs)
        assert len({pid for _, pid, _ in ds.train}) == c["train_ids"]
        assert len({pid for _, pid, _ in ds.query + ds.gallery}) == c["test_ids"]

    rand, c = _load("RandPerson", root), counts["RandPerson"]
    assert len(rand.train) == c["train_images"] and len({cam for _, _, cam in rand.train}) == c["cameras"]
    finegpr = _load("FineGPR", root)
    assert len(finegpr.train) == counts["FineGPR"]["images"]
    assert len({pid for _, pid, _, _ in finegpr.train}) == counts["FineGPR"]["identities"]


def test_both_cuhk03np_routes_of_the_lookalike_hold_the_same_pixels_and_labels(lookalike):
    root, _ = lookalike
    release, mat = _load("CUHK03NP", root), _load("CUHK03NP", root, layout="mat")
    for a_items, b_items in ((release.query, mat.query), (release.gallery, mat.gallery), (release.train, mat.train)):
        a = sorted((pid, cam, Path(p).read_bytes()) for p, pid, cam in a_items)
        b = sorted((pid, cam, Path(p).read_bytes()) for p, pid, cam in b_items)
        assert a == b


@pytest.mark.parametrize("name, kwargs", [("Market1501", {}), ("DukeMTMC", {}), ("MSMT17", {}), ("CUHK03NP", {}),
                                          ("CUHK03NPLabeled", {"layout": "mat"})])
def test_every_lookalike_query_has_a_cross_camera_match_that_fastreid_ranks_first(lookalike, name, kwargs):
    root, _ = lookalike
    ds = _load(name, root, **kwargs)
    q_pids = np.array([pid for _, pid, _ in ds.query])
    g_pids = np.array([pid for _, pid, _ in ds.gallery])
    q_cams = np.array([cam for _, _, cam in ds.query])
    g_cams = np.array([cam for _, _, cam in ds.gallery])
    for pid, cam in zip(q_pids, q_cams):
        assert np.any((g_pids == pid) & (g_cams != cam)), (name, pid, cam)
    distmat = (q_pids[:, None] != g_pids[None, :]).astype(np.float32)  # an oracle feature
    cmc, all_ap, _ = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=5, use_cython=False)
    assert cmc[0] == pytest.approx(1.0) and np.mean(all_ap) == pytest.approx(1.0)


@pytest.mark.parametrize("name, kwargs", [("Market1501", {}), ("DukeMTMC", {}), ("MSMT17", {}), ("MSMT17All", {}),
                                          ("CUHK03NP", {}), ("RandPerson", {}), ("FineGPR", {})])
def test_lookalike_training_sets_fill_a_4_ids_x_4_images_batch_without_repeats(lookalike, name, kwargs):
    root, _ = lookalike
    train = _load(name, root, **kwargs).train
    sampler = NaiveIdentitySampler([item[:3] for item in train], mini_batch_size=16, num_instances=4, seed=0)
    batch = list(itertools.islice(iter(sampler), 16))
    per_pid = defaultdict(set)
    for index in batch:
        per_pid[train[index][1]].add(index)
    if name == "FineGPR":  # 2 images per identity in TINY: sampled with replacement
        assert len(per_pid) == 4
    else:
        assert len(per_pid) == 4 and all(len(indices) == 4 for indices in per_pid.values())


def test_lookalike_generation_is_deterministic_per_seed(lookalike, tmp_path):
    root, counts = lookalike
    again, other = str(tmp_path / "again"), str(tmp_path / "other")
    assert generate_real_layout_trees(again, seed=0, size=TINY) == counts
    generate_real_layout_trees(other, seed=1, size=TINY, trees=["Market1501", "CUHK03NP-mat"])
    first = _hashes(root)
    assert first == _hashes(again)
    images = {h for p, h in first.items() if p.endswith((".jpg", ".png"))}
    third = _hashes(other)
    assert not images & {h for p, h in third.items() if p.endswith((".jpg", ".png"))}
    assert first["cuhk03/cuhk03_new_protocol_config_detected.mat"] != third[
        "cuhk03/cuhk03_new_protocol_config_detected.mat"]


def test_lookalike_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "DukeMTMC-reID" / "bounding_box_train" / "0001_c2_f0046182.jpg"
    _image(mine)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not generated by fastreid-dmf"):
            generate_real_layout_trees(str(tmp_path), size=TINY, overwrite=overwrite)
    assert mine.is_file()
    assert sorted(os.listdir(tmp_path)) == ["DukeMTMC-reID"]  # checked before anything was written


def test_lookalike_overwrites_its_own_trees_only_when_asked(tmp_path):
    root = str(tmp_path)
    generate_real_layout_trees(root, size=TINY, trees=["RandPerson"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_real_layout_trees(root, size=TINY, trees=["RandPerson"], seed=3)
    generate_real_layout_trees(root, size=TINY, trees=["RandPerson"], seed=3, overwrite=True)
    assert "seed: 3" in Path(root, "randperson_subset", "README.txt").read_text()
    assert not any(name.endswith(".partial") for name in os.listdir(root))


def test_lookalike_msmt17_v2_loads_with_fastreid_and_msmt17all(tmp_path):
    root = str(tmp_path)
    counts = generate_real_layout_trees(root, size=TINY, trees=["MSMT17"], msmt17_version="V2")["MSMT17"]
    assert sorted(os.listdir(os.path.join(root, "MSMT17_V2")))[:4] == ["README.txt", "list_gallery.txt",
                                                                       "list_query.txt", "list_train.txt"]
    assert os.path.isdir(os.path.join(root, "MSMT17_V2", "mask_train_v2"))
    assert len(_load("MSMT17", root).query) == counts["query_images"]
    assert len(_load("MSMT17All", root).train) == sum(counts[k] for k in ("train_images", "val_images",
                                                                          "query_images", "gallery_images"))


def test_lookalike_rejects_bad_arguments_before_writing(tmp_path):
    with pytest.raises(ValueError, match="unknown look-alike tree 'Market'"):
        generate_real_layout_trees(str(tmp_path), trees=["Market"])
    with pytest.raises(ValueError, match=r"LookalikeSize.gallery_per_id must be an integer in 2..8, got 1"):
        generate_real_layout_trees(str(tmp_path), size=LookalikeSize(gallery_per_id=1))
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        generate_real_layout_trees(str(tmp_path), seed=-1)
    with pytest.raises(ValueError, match="unknown MSMT17 version 'V3'"):
        generate_real_layout_trees(str(tmp_path), msmt17_version="V3")
    assert os.listdir(tmp_path) == []


def test_make_lookalike_data_cli_writes_selected_trees_and_refuses_to_overwrite(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_lookalike_data", REPO / "tools" / "make_lookalike_data.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    args = ["--root", str(tmp_path), "--only", "Market1501", "RandPerson", "--train-ids", "4", "--test-ids", "2"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert '"Market1501"' in out and "wrote 2 look-alike tree(s)" in out
    assert sorted(os.listdir(tmp_path)) == ["Market-1501-v15.09.15", "randperson_subset"]
    assert len(_load("Market1501", str(tmp_path)).train) == 4 * 4
    assert cli.main(args) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(args + ["--overwrite"]) == 0
