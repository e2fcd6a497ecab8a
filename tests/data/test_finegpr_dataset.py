"""Tests for the FineGPR fast-reid dataset (fastreid_dmf.data.datasets.finegpr)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

# fastreid_dmf (imported first by these imports) applies the compat shim that fastreid.data needs on torch 2;
# fastreid itself is therefore imported inside the tests, after it.
from fastreid_dmf.data.datasets.finegpr import FineGPR
from fastreid_dmf.data.descriptions import build_description
from fastreid_dmf.data.finegpr_format import (
    parse_finegpr_filename,
    write_attribute_file,
)
from tests.shared import ATTRS, IMAGE_CODES, make_finegpr_tree, write_jpeg


def test_registered_in_fastreid_registry() -> None:
    from fastreid.data.datasets import DATASET_REGISTRY

    assert DATASET_REGISTRY.get("FineGPR") is FineGPR


def test_parses_items_pids_camids_and_descriptions(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    (folder / "README.txt").write_text("not an image")
    (folder / "0003" / "notes.txt").write_text("ignored")
    data = FineGPR(root=str(tmp_path))
    assert data.query == [] and data.gallery == []
    assert len(data.train) == len(ATTRS) * len(IMAGE_CODES)
    assert all(len(item) == 4 for item in data.train)
    assert {item[1] for item in data.train} == {f"finegpr_{pid}" for pid in ATTRS}
    assert {item[2] for item in data.train} == {f"finegpr_{c[0]}" for c in IMAGE_CODES}
    assert Counter(item[1] for item in data.train) == {f"finegpr_{pid}": len(IMAGE_CODES) for pid in ATTRS}
    assert data.get_num_pids(data.train) == 3 and data.get_num_cams(data.train) == len(IMAGE_CODES)
    for img_path, pid, camid, text in data.train:
        assert os.path.isfile(img_path) and img_path.endswith(".jpg")
        codes = parse_finegpr_filename(img_path)
        assert pid == f"finegpr_{codes.pid}"
        assert camid == f"finegpr_{codes.camera}"
        assert os.path.basename(os.path.dirname(img_path)) == f"{codes.pid:04d}"
        assert text == build_description(ATTRS[codes.pid], codes, "sentence", True)
    # fast-reid's tabulated summary works on the 4-tuples
    data.show_train()
    assert len(data) == len(data.train)


def test_descriptions_reflect_each_identity(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path)
    data = FineGPR(root=str(tmp_path), text_mode="keywords")
    texts = {pid: {t for _, p, _, t in data.train if p == f"finegpr_{pid}"} for pid in ATTRS}
    for text in texts[3]:
        assert text.startswith("male, adult, short hair, blue upper clothes, black lower clothes")
        assert "hat" in text.split(", ") and "bag" not in text.split(", ")
    for text in texts[7]:
        assert text.startswith("female, young, long hair, red upper clothes, white lower clothes")
        assert {"glasses", "dress", "bag"} <= set(text.split(", "))
    for text in texts[12]:
        assert text.startswith("male, old, short hair, gray upper clothes, brown lower clothes")
    # environment on: the six images of an identity have six different texts
    assert all(len(t) == len(IMAGE_CODES) for t in texts.values())


@pytest.mark.parametrize("mode", ["sentence", "keywords"])
def test_environment_off_gives_one_text_per_identity(tmp_path: Path, mode: str) -> None:
    make_finegpr_tree(tmp_path)
    data = FineGPR(root=str(tmp_path), text_mode=mode, text_environment=False)
    for pid, attrs in ATTRS.items():
        texts = {t for _, p, _, t in data.train if p == f"finegpr_{pid}"}
        assert texts == {build_description(attrs, None, mode, with_environment=False)}
    assert len({t for *_, t in data.train}) == len(ATTRS)


def test_identity_attributes_only_for_used_identities(tmp_path: Path) -> None:
    attrs = dict(ATTRS)
    attrs[99] = dict(ATTRS[3], gender="female")  # row without images
    make_finegpr_tree(tmp_path, attrs=attrs, pids=[3, 7, 12])
    data = FineGPR(root=str(tmp_path))
    assert data.identity_attributes() == {pid: ATTRS[pid] for pid in (3, 7, 12)}
    assert data.attributes == data.identity_attributes()
    data.identity_attributes()[3]["gender"] = "female"  # a copy
    assert data.attributes[3]["gender"] == "male"


def test_attribute_file_absolute_and_relative(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    (folder / "meta").mkdir()
    os.replace(folder / "attributes.csv", folder / "meta" / "attrs.csv")
    relative = FineGPR(root=str(tmp_path), attribute_file="meta/attrs.csv")
    absolute = FineGPR(root=str(tmp_path), attribute_file=str(folder / "meta" / "attrs.csv"))
    assert relative.train == absolute.train
    assert len(relative.train) == len(ATTRS) * len(IMAGE_CODES)


def test_order_is_sorted(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path)
    paths = [item[0] for item in FineGPR(root=str(tmp_path)).train]
    assert paths == sorted(paths)


def _many_codes(n: int) -> list[tuple[int, int, int, int]]:
    return [(1 + i % 36, 1 + (i // 36) % 7, 1 + (i // 252) % 7, 1 + i % 9) for i in range(n)]


def test_subset_count_per_identity_and_reproducible(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path, codes=_many_codes(20))
    full = FineGPR(root=str(tmp_path))
    assert len(full.train) == 60
    a = FineGPR(root=str(tmp_path), images_per_identity=5, subset_seed=1)
    b = FineGPR(root=str(tmp_path), images_per_identity=5, subset_seed=1)
    c = FineGPR(root=str(tmp_path), images_per_identity=5, subset_seed=2)
    assert a.train == b.train
    assert Counter(item[1] for item in a.train) == {f"finegpr_{pid}": 5 for pid in ATTRS}
    assert set(a.train) <= set(full.train)
    assert len({item[0] for item in a.train}) == 15
    assert set(a.train) != set(c.train)
    # seeds give different draws, so the subset is not simply "the first 5 files"
    firsts = {pid: [i[0] for i in full.train if i[1] == f"finegpr_{pid}"][:5] for pid in ATTRS}
    draws = [FineGPR(root=str(tmp_path), images_per_identity=5, subset_seed=s).train for s in range(4)]
    assert any(sorted(i[0] for i in d if i[1] == f"finegpr_{pid}") != firsts[pid] for d in draws for pid in ATTRS)


def test_subset_keeps_all_when_identity_has_fewer(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path)
    data = FineGPR(root=str(tmp_path), images_per_identity=len(IMAGE_CODES) + 5)
    assert len(data.train) == len(ATTRS) * len(IMAGE_CODES)
    same = FineGPR(root=str(tmp_path), images_per_identity=len(IMAGE_CODES))
    assert same.train == data.train


def test_subset_of_one_identity_does_not_depend_on_others(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path / "all", codes=_many_codes(12))
    make_finegpr_tree(tmp_path / "one", codes=_many_codes(12), attrs={7: ATTRS[7]})
    names_all = [os.path.basename(i[0]) for i in FineGPR(root=str(tmp_path / "all"), images_per_identity=3).train
                 if i[1] == "finegpr_7"]
    names_one = [os.path.basename(i[0]) for i in FineGPR(root=str(tmp_path / "one"), images_per_identity=3).train]
    assert names_all == names_one and len(names_one) == 3


@pytest.mark.parametrize("bad", [-1, 2.5, "3"])
def test_bad_images_per_identity(tmp_path: Path, bad: object) -> None:
    make_finegpr_tree(tmp_path)
    with pytest.raises(ValueError, match="images_per_identity"):
        FineGPR(root=str(tmp_path), images_per_identity=bad)


def test_unknown_text_mode(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path)
    with pytest.raises(ValueError, match="'captions'"):
        FineGPR(root=str(tmp_path), text_mode="captions")


def test_missing_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        FineGPR(root=str(tmp_path / "nowhere"))
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "FineGPR") in message
    assert "<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg" in message
    assert "tools/make_demo_data.py" in message


def test_missing_attribute_file(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    os.remove(folder / "attributes.csv")
    with pytest.raises(FileNotFoundError, match="attributes.csv"):
        FineGPR(root=str(tmp_path))
    make_finegpr_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match="other.csv"):
        FineGPR(root=str(tmp_path), attribute_file="other.csv")


@pytest.mark.parametrize("bad_name", ["0003_c1_w01_l01_p01.jpg", "0003_c37_w01_l01_p01.jpg", "0003_front.jpg",
                                      "0003_c01_w01_l01_p01.png", "0003_c01_w01_l01_p01.JPG"])
def test_bad_file_name(tmp_path: Path, bad_name: str) -> None:
    folder = make_finegpr_tree(tmp_path)
    write_jpeg(folder / "0003" / bad_name)
    with pytest.raises(ValueError) as info:
        FineGPR(root=str(tmp_path))
    message = str(info.value)
    assert bad_name in message
    assert str(folder / "0003") in message


def test_pid_differs_from_folder(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    write_jpeg(folder / "0003" / "0007_c01_w01_l01_p01.jpg")
    with pytest.raises(ValueError) as info:
        FineGPR(root=str(tmp_path))
    assert "0007_c01_w01_l01_p01.jpg" in str(info.value) and "0003" in str(info.value)


def test_identity_without_attribute_row(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path, attrs={3: ATTRS[3], 7: ATTRS[7]}, pids=[3, 7, 12])
    with pytest.raises(ValueError) as info:
        FineGPR(root=str(tmp_path))
    message = str(info.value)
    assert "identity 12" in message and str(folder / "attributes.csv") in message


def test_unknown_attribute_value(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    csv_path = folder / "attributes.csv"
    csv_path.write_text(csv_path.read_text().replace("blue", "turquoise"))
    with pytest.raises(ValueError) as info:
        FineGPR(root=str(tmp_path))
    assert "'turquoise'" in str(info.value) and "upper_color" in str(info.value)


def test_no_images(tmp_path: Path) -> None:
    folder = tmp_path / "FineGPR"
    folder.mkdir()
    write_attribute_file(str(folder / "attributes.csv"), ATTRS)
    (folder / "0003").mkdir()
    with pytest.raises(ValueError, match="no FineGPR images found") as info:
        FineGPR(root=str(tmp_path))
    assert str(folder) in str(info.value)


def test_flat_images_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "FineGPR"
    write_attribute_file(str(tmp_path / "attributes.csv"), ATTRS)
    write_jpeg(folder / "0003_c01_w01_l01_p01.jpg")
    (folder / "images").mkdir()
    with pytest.raises(ValueError) as info:
        FineGPR(root=str(tmp_path), attribute_file=str(tmp_path / "attributes.csv"))
    message = str(info.value)
    assert "no FineGPR images found" in message and "0003_c01_w01_l01_p01.jpg" in message
    assert "'images'" in message


def test_subfolder_in_identity_folder(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    write_jpeg(folder / "0003" / "extra" / "0003_c01_w01_l01_p01.jpg")
    with pytest.raises(ValueError, match="sub-folder") as info:
        FineGPR(root=str(tmp_path))
    assert str(folder / "0003" / "extra") in str(info.value)


def test_hidden_and_non_pid_entries_ignored(tmp_path: Path) -> None:
    folder = make_finegpr_tree(tmp_path)
    write_jpeg(folder / ".cache" / "x.jpg")
    write_jpeg(folder / "0003" / ".thumb.png")
    write_jpeg(folder / "previews" / "whatever.png")
    data = FineGPR(root=str(tmp_path))
    assert len(data.train) == len(ATTRS) * len(IMAGE_CODES)


def test_combineall_and_modes_accepted(tmp_path: Path) -> None:
    make_finegpr_tree(tmp_path)
    data = FineGPR(root=str(tmp_path), combineall=True, verbose=False)
    assert len(data.train) == len(ATTRS) * len(IMAGE_CODES)
