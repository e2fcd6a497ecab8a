"""Text-based person search sets CUHK-PEDES, ICFG-PEDES and RSTPReid (fastreid_dmf.data.datasets.text_person_search).

Each test writes a tiny tree in the released layout (as read by IRRA) under ``tmp_path``:
``<root>/<folder>/<annotation>.json`` plus ``<root>/<folder>/imgs/<relative image path>``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from PIL import Image

# fastreid_dmf (imported first) applies the compat shim that fastreid.data needs on torch 2.
from fastreid_dmf.data.datasets.text_person_search import CUHKPEDES, ICFGPEDES, RSTPReid

# (class, folder, annotation file, image path field)
SETS = {
    "CUHKPEDES": (CUHKPEDES, "CUHK-PEDES", "reid_raw.json", "file_path"),
    "ICFGPEDES": (ICFGPEDES, "ICFG-PEDES", "ICFG-PEDES.json", "file_path"),
    "RSTPReid": (RSTPReid, "RSTPReid", "data_captions.json", "img_path"),
}

# (split, id, relative image path, captions): 2 train ids, 2 test ids, 1 val id.
RECORDS = [
    ("train", 1, "CUHK01/0001001.png", ["a man in a red coat", "red coat, black trousers"]),
    ("train", 1, "CUHK01/0001002.png", ["the man wears a red coat"]),
    ("train", 2, "train_query/p2_s1.jpg", ["a woman with a blue bag"]),
    ("test", 7, "test_query/p7_s1.jpg", ["a boy in white shorts", "white shorts and a cap"]),
    ("test", 7, "test_query/p7_s2.jpg", ["a boy wearing a cap"]),
    ("test", 9, "CUHK03/9_1.png", ["a girl with long hair", "long hair, green skirt"]),
    ("val", 4, "Market/0004_c1.jpg", ["an old man with a stick", "grey jacket and a stick"]),
]


def record(split: str, pid: int, image: str, captions: list[str], path_field: str) -> dict:
    """One annotation record in the set's field names (CUHK/ICFG also carry ``processed_tokens``)."""
    rec = {"id": pid, path_field: image, "captions": captions, "split": split}
    if path_field == "file_path":
        rec["processed_tokens"] = [c.split() for c in captions]
    return rec


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (90, 140, 60)).save(path, "PNG" if path.suffix == ".png" else "JPEG")


def make_tree(root: Path, name: str, records: list | None = None, images: bool = True) -> Path:
    """Write the set's annotation file and images under ``root``; return the annotation file path.

    ``records`` defaults to :data:`RECORDS` (without val records for ICFG-PEDES) and may hold ready dicts
    (written as given, images not written for them) or ``(split, id, image, captions)`` tuples.
    """
    _, folder, annotation, field = SETS[name]
    if records is None:
        records = [r for r in RECORDS if not (name == "ICFGPEDES" and r[0] == "val")]
    data = []
    for rec in records:
        if isinstance(rec, tuple):
            if images:
                write_image(root / folder / "imgs" / rec[2])
            rec = record(*rec, field)
        data.append(rec)
    (root / folder / "imgs").mkdir(parents=True, exist_ok=True)
    anno = root / folder / annotation
    anno.write_text(json.dumps(data))
    return anno


def img(root: Path, name: str, rel: str) -> str:
    return str(root / SETS[name][1] / "imgs" / rel)


ALL = pytest.mark.parametrize("name", list(SETS))


@ALL
def test_train_split_becomes_finegpr_style_items_with_the_first_caption(tmp_path: Path, name: str) -> None:
    make_tree(tmp_path, name)
    cls, prefix = SETS[name][0], SETS[name][0].dataset_name
    data = cls(root=str(tmp_path))
    assert data.train == [
        (img(tmp_path, name, "CUHK01/0001001.png"), f"{prefix}_1", f"{prefix}_0", "a man in a red coat"),
        (img(tmp_path, name, "CUHK01/0001002.png"), f"{prefix}_1", f"{prefix}_0", "the man wears a red coat"),
        (img(tmp_path, name, "train_query/p2_s1.jpg"), f"{prefix}_2", f"{prefix}_0", "a woman with a blue bag"),
    ]
    assert data.train_captions[0] == ["a man in a red coat", "red coat, black trousers"]


@ALL
def test_test_split_is_the_gallery_with_int_pids_and_camera_zero(tmp_path: Path, name: str) -> None:
    make_tree(tmp_path, name)
    data = SETS[name][0](root=str(tmp_path))
    assert data.split == "test"
    assert data.gallery == [
        (img(tmp_path, name, "test_query/p7_s1.jpg"), 7, 0),
        (img(tmp_path, name, "test_query/p7_s2.jpg"), 7, 0),
        (img(tmp_path, name, "CUHK03/9_1.png"), 9, 0),
    ]
    assert data.query == []


@ALL
def test_every_caption_of_the_evaluation_images_is_a_text_query_with_its_pid(tmp_path: Path, name: str) -> None:
    make_tree(tmp_path, name)
    data = SETS[name][0](root=str(tmp_path))
    assert data.text_queries == [
        ("a boy in white shorts", 7), ("white shorts and a cap", 7), ("a boy wearing a cap", 7),
        ("a girl with long hair", 9), ("long hair, green skirt", 9),
    ]
    assert {pid for _, pid in data.text_queries} == {pid for _, pid, _ in data.gallery}


@pytest.mark.parametrize("name", ["CUHKPEDES", "RSTPReid"])
def test_val_split_replaces_test_for_cuhk_pedes_and_rstpreid(tmp_path: Path, name: str) -> None:
    make_tree(tmp_path, name)
    data = SETS[name][0](root=str(tmp_path), split="val")
    assert data.gallery == [(img(tmp_path, name, "Market/0004_c1.jpg"), 4, 0)]
    assert data.text_queries == [("an old man with a stick", 4), ("grey jacket and a stick", 4)]
    assert len(data.train) == 3


def test_icfg_pedes_refuses_the_val_split_naming_the_config_key(tmp_path: Path) -> None:
    make_tree(tmp_path, "ICFGPEDES")
    with pytest.raises(ValueError, match=r"ICFGPEDES has no 'val' split.*DATASETS\.TEXT_SPLIT"):
        ICFGPEDES(root=str(tmp_path), split="val")


def test_an_unknown_split_is_refused_naming_the_config_key(tmp_path: Path) -> None:
    make_tree(tmp_path, "CUHKPEDES")
    with pytest.raises(ValueError, match=r"DATASETS\.TEXT_SPLIT.*'train'"):
        CUHKPEDES(root=str(tmp_path), split="train")


def test_a_repeated_evaluation_image_is_one_gallery_entry_with_all_its_captions(tmp_path: Path) -> None:
    make_tree(tmp_path, "RSTPReid", [("train", 0, "a.jpg", ["x"]), ("test", 3, "b.jpg", ["one"]),
                                     ("test", 3, "b.jpg", ["two"])])
    data = RSTPReid(root=str(tmp_path))
    assert data.gallery == [(img(tmp_path, "RSTPReid", "b.jpg"), 3, 0)]
    assert data.text_queries == [("one", 3), ("two", 3)]


def test_a_repeated_evaluation_image_with_two_ids_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, "RSTPReid", [("test", 3, "b.jpg", ["one"]), ("test", 5, "b.jpg", ["two"])])
    with pytest.raises(ValueError, match=r"'b.jpg' is listed in records 0 and 1.*ids 3 and 5"):
        RSTPReid(root=str(tmp_path))


@ALL
def test_show_train_and_show_test_log_without_a_query_set(tmp_path: Path, name: str, caplog) -> None:
    make_tree(tmp_path, name)
    data = SETS[name][0](root=str(tmp_path))
    with caplog.at_level(logging.INFO):
        data.show_train()
        data.show_test()
    assert re.search(r"\| train\s+\| 2\s+\| 3\s+\| 1\s+\|", caplog.text)
    assert re.search(r"\| test text queries\s+\| 2\s+\| 5\s+\|", caplog.text)
    assert re.search(r"\| test gallery images\s+\| 2\s+\| 3\s+\|", caplog.text)


# -- registration and config ----------------------------------------------------------------------------------------


def test_importing_fastreid_dmf_registers_the_three_sets() -> None:
    from fastreid.data.datasets import DATASET_REGISTRY

    import fastreid_dmf  # noqa: F401  (already imported by the module imports; registers the sets)

    for name, (cls, *_) in SETS.items():
        assert DATASET_REGISTRY.get(name) is cls


def test_the_classes_announce_text_queries_before_construction() -> None:
    # DATASETS.TEXT_TESTS accepts a registered class when it has a ``text_queries`` attribute.
    for cls, *_ in SETS.values():
        assert hasattr(cls, "text_queries")


@pytest.mark.parametrize("split", ["test", "val"])
def test_kwargs_from_config_reads_datasets_text_split(split: str) -> None:
    from fastreid.config import get_cfg

    from fastreid_dmf.config import add_dmf_config
    from fastreid_dmf.data.datasets.from_config import dataset_kwargs

    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.DATASETS.TEXT_SPLIT = split
    for name, (cls, *_) in SETS.items():
        assert cls.kwargs_from_config(cfg) == {"split": split}
        assert dataset_kwargs(cfg, name) == {"split": split}


# -- bad input ------------------------------------------------------------------------------------------------------


@ALL
def test_missing_dataset_folder_names_it_and_the_layout(tmp_path: Path, name: str) -> None:
    _, folder, annotation, _ = SETS[name]
    with pytest.raises(FileNotFoundError, match=rf"dataset folder .*{folder}.*expected layout .*{annotation}"):
        SETS[name][0](root=str(tmp_path))


@ALL
def test_missing_annotation_file_names_it(tmp_path: Path, name: str) -> None:
    _, folder, annotation, _ = SETS[name]
    (tmp_path / folder / "imgs").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=rf"annotation file .*{annotation}' not found"):
        SETS[name][0](root=str(tmp_path))


def test_missing_image_folder_names_it(tmp_path: Path) -> None:
    (tmp_path / "CUHK-PEDES").mkdir()
    (tmp_path / "CUHK-PEDES" / "reid_raw.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match=r"image folder .*CUHK-PEDES.imgs'"):
        CUHKPEDES(root=str(tmp_path))


def test_annotation_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, "CUHKPEDES").write_text("{not json")
    with pytest.raises(ValueError, match=r"reid_raw.json' is not valid JSON"):
        CUHKPEDES(root=str(tmp_path))


def test_annotation_file_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, "RSTPReid").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match=r"data_captions.json' holds a JSON dict, expected a list"):
        RSTPReid(root=str(tmp_path))


@pytest.mark.parametrize("field", ["id", "captions", "img_path", "split"])
def test_record_missing_a_field_names_the_record_and_field(tmp_path: Path, field: str) -> None:
    bad = record("test", 3, "b.jpg", ["x"], "img_path")
    del bad[field]
    make_tree(tmp_path, "RSTPReid", [("test", 1, "a.jpg", ["y"]), bad])
    with pytest.raises(ValueError, match=rf"record 1 of .*data_captions.json' lacks field\(s\) \['{field}'\]"):
        RSTPReid(root=str(tmp_path))


def test_rstpreid_records_need_img_path_not_file_path(tmp_path: Path) -> None:
    make_tree(tmp_path, "RSTPReid", [record("test", 1, "a.jpg", ["y"], "file_path")])
    with pytest.raises(ValueError, match=r"record 0 .* lacks field\(s\) \['img_path'\]"):
        RSTPReid(root=str(tmp_path))


@pytest.mark.parametrize("field, value, message", [
    ("id", "7", r"field 'id' must be a non-negative integer"),
    ("captions", "a man", r"field 'captions' must be a list of strings"),
    ("file_path", "/abs/a.jpg", r"field 'file_path' must be an image path relative to"),
    ("split", "query", r"field 'split' must be one of \('train', 'val', 'test'\), got 'query'"),
])
def test_record_with_a_bad_field_names_the_record_and_field(tmp_path: Path, field: str, value, message: str) -> None:
    bad = record("test", 3, "b.jpg", ["x"], "file_path")
    bad[field] = value
    make_tree(tmp_path, "CUHKPEDES", [("test", 1, "a.jpg", ["y"]), bad])
    with pytest.raises(ValueError, match=rf"record 1 of .*reid_raw.json'.*{message}"):
        CUHKPEDES(root=str(tmp_path))


@pytest.mark.parametrize("captions, message", [([], r"field 'captions' is empty"),
                                               (["ok", "  "], r"caption 1 of field 'captions' is empty")])
def test_empty_caption_is_refused_naming_the_record_and_image(tmp_path: Path, captions: list, message: str) -> None:
    make_tree(tmp_path, "ICFGPEDES", [("train", 1, "a.jpg", ["y"]), ("test", 2, "b.jpg", captions)])
    with pytest.raises(ValueError, match=rf"record 1 of .*ICFG-PEDES.json' \(image 'b.jpg', split 'test'\).*{message}"):
        ICFGPEDES(root=str(tmp_path))


@pytest.mark.parametrize("split", ["train", "test"])
def test_listed_image_missing_on_disk_is_named(tmp_path: Path, split: str) -> None:
    make_tree(tmp_path, "CUHKPEDES")
    rel = "CUHK01/0001002.png" if split == "train" else "CUHK03/9_1.png"
    Path(img(tmp_path, "CUHKPEDES", rel)).unlink()
    with pytest.raises(FileNotFoundError, match=rf"1 image\(s\) listed in .*reid_raw.json'.*not on disk.*{rel}"):
        CUHKPEDES(root=str(tmp_path))


def test_images_of_an_unused_split_need_not_exist(tmp_path: Path) -> None:
    make_tree(tmp_path, "CUHKPEDES")
    Path(img(tmp_path, "CUHKPEDES", "Market/0004_c1.jpg")).unlink()
    assert len(CUHKPEDES(root=str(tmp_path)).gallery) == 3
    with pytest.raises(FileNotFoundError, match=r"Market/0004_c1.jpg"):
        CUHKPEDES(root=str(tmp_path), split="val")


def test_no_record_of_the_chosen_split_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, "RSTPReid", [r for r in RECORDS if r[0] != "val"])
    with pytest.raises(ValueError, match=r"data_captions.json' has no record of split 'val'.*'val': 0"):
        RSTPReid(root=str(tmp_path), split="val")
