"""FineGPR-C captions: the caption file format, text mode "caption", and the annotation converter."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

# fastreid_dmf (imported first by these imports) applies the compat shim that fastreid.data needs on torch 2.
from fastreid_dmf.data.datasets.finegpr import FineGPR
from fastreid_dmf.data.descriptions import build_description, sentence_description
from fastreid_dmf.data.finegpr_format import (
    parse_finegpr_filename,
    read_attribute_file,
    read_caption_file,
    write_attribute_file,
    write_caption_file,
)
from fastreid_dmf.tooling.finegpr_convert import (
    convert_attributes,
    convert_captions,
    generate_captions,
    load_attribute_annotations,
    load_caption_annotations,
    parse_code_map,
    parse_code_maps,
    parse_column_map,
    write_generated_captions,
)
from tests.shared import REPO as REPO_ROOT

REPO = Path(REPO_ROOT)

ATTRS = {
    1: {"gender": "male", "age": "teenager", "hair_length": "short", "glasses": "no", "short_sleeve": "yes",
        "dress": "no", "boots": "yes", "hat": "yes", "bag": "no", "top_length": "short", "shoes": "light",
        "upper_color": "blue", "lower_color": "blue"},
    2: {"gender": "female", "age": "older", "hair_length": "long", "glasses": "yes", "short_sleeve": "no",
        "dress": "yes", "boots": "no", "hat": "no", "bag": "yes", "top_length": "long", "shoes": "dark",
        "upper_color": "red", "lower_color": "white"},
}
NAMES = {
    1: ["0001_c28_w03_l05_p01.jpg", "0001_c01_w01_l01_p03.jpg", "0001_c10_w07_l07_p09.jpg",
        "0001_c19_w02_l04_p05.jpg", "0001_c05_w04_l02_p02.jpg"],
    2: ["0002_c28_w01_l01_p01.jpg", "0002_c36_w06_l06_p08.jpg", "0002_c12_w05_l03_p04.jpg"],
}
ALL_NAMES = sorted(n for names in NAMES.values() for n in names)


def make_tree(root: Path, names: dict[int, list[str]] = NAMES, attrs: dict | None = ATTRS) -> Path:
    """<root>/FineGPR/<pid4>/<name> as zero-byte files (the dataset never opens images) + attributes.csv."""
    folder = root / "FineGPR"
    for pid, pid_names in names.items():
        (folder / f"{pid:04d}").mkdir(parents=True, exist_ok=True)
        for name in pid_names:
            (folder / f"{pid:04d}" / name).touch()
    if attrs is not None:
        write_attribute_file(str(folder / "attributes.csv"), attrs)
    return folder


def caption_of(name: str) -> str:
    return f"Caption of {name}, with a comma and \"quotes\"."


# ------------------------------------------------------------------------------------------- caption file format


def test_caption_file_round_trip_sorted_with_commas_quotes_and_unicode(tmp_path: Path) -> None:
    captions = {name: caption_of(name) for name in reversed(ALL_NAMES)}
    captions["0001_c01_w01_l01_p03.jpg"] = "Une personne âgée — 年配"
    path = tmp_path / "captions.csv"
    write_caption_file(str(path), captions)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "image,caption"
    assert [line.split(",", 1)[0] for line in lines[1:]] == ALL_NAMES  # sorted, base names
    assert read_caption_file(str(path)) == captions


def test_read_caption_file_accepts_relative_paths_bom_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("\ufeffimage,caption\n0001/0001_c01_w01_l01_p03.jpg,  first  \n\n"
                    "0002\\0002_c28_w01_l01_p01.jpg,second\n0001_c28_w03_l05_p01.jpg,\"a, b\"\n", encoding="utf-8")
    assert read_caption_file(str(path)) == {"0001_c01_w01_l01_p03.jpg": "first", "0002_c28_w01_l01_p01.jpg": "second",
                                            "0001_c28_w03_l05_p01.jpg": "a, b"}


GOOD = "0001_c01_w01_l01_p03.jpg"


@pytest.mark.parametrize(("content", "line", "fragment"), [
    (f"{GOOD},a caption\n", 1, "header"),
    ("file,text\n" f"{GOOD},x\n", 1, "'image,caption'"),
    ("image,caption,extra\n", 1, "header"),
    ("image,caption\n" f"{GOOD},x\n" "0001_c28_w03_l05_p01.jpg,   \n", 3, "empty caption"),
    ("image,caption\n" f"{GOOD},x\n" f"0001/{GOOD},y\n", 3, "appears twice (first on line 2)"),
    ("image,caption\n" "0001_c99_w01_l01_p01.jpg,x\n", 2, "c99"),
    ("image,caption\n" "picture.jpg,x\n", 2, "'<pid4>_cXX_wXX_lXX_pXX.jpg'"),
    ("image,caption\n" f"{GOOD},a,b\n", 2, "3 field(s)"),
    ("image,caption\n" f"0002/{GOOD},x\n", 2, "folder 0002"),
    ("image,caption\n" f"/data/0001/{GOOD},x\n", 2, "not a FineGPR file name"),
    ("image,caption\n\n" f"{GOOD},\"two\nlines\"\n", 3, "line break"),
])
def test_read_caption_file_errors_name_file_and_line(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        read_caption_file(str(path))
    message = str(info.value)
    assert f"{path}, line {line}" in message and fragment in message


def test_read_caption_file_empty_missing_and_not_utf8(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        read_caption_file(str(empty))
    with pytest.raises(FileNotFoundError, match="image,caption"):
        read_caption_file(str(tmp_path / "nowhere.csv"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"image,caption\n" + GOOD.encode() + b",caf\xe9\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_caption_file(str(latin))


def test_write_caption_file_refuses_to_overwrite_and_validates_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "captions.csv"
    path.write_text("user data")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_caption_file(str(path), {GOOD: "x"})
    assert path.read_text() == "user data"
    write_caption_file(str(path), {GOOD: "x"}, overwrite=True)
    assert read_caption_file(str(path)) == {GOOD: "x"}
    new = tmp_path / "new.csv"
    for bad, fragment in [({GOOD: " "}, "empty caption"), ({"x.jpg": "t"}, "x.jpg"),
                          ({GOOD: "t", f"0001/{GOOD}": "u"}, "given twice"), ({GOOD: "a\nb"}, "line break")]:
        with pytest.raises(ValueError, match=fragment):
            write_caption_file(str(new), bad)
        assert not new.exists() and os.listdir(tmp_path) == ["captions.csv"]


# ---------------------------------------------------------------------------------------------- text mode caption


def test_caption_mode_takes_texts_from_caption_file_without_attribute_file(tmp_path: Path) -> None:
    folder = make_tree(tmp_path, attrs=None)
    write_caption_file(str(folder / "captions.csv"), {n: caption_of(n) for n in ALL_NAMES})
    data = FineGPR(root=str(tmp_path), text_mode="caption")
    assert [os.path.basename(item[0]) for item in data.train] == ALL_NAMES
    for path, pid, camid, text in data.train:
        codes = parse_finegpr_filename(path)
        assert text == caption_of(os.path.basename(path))
        assert pid == f"finegpr_{codes.pid}" and camid == f"finegpr_{codes.camera}"
    assert data.caption_path == str(folder / "captions.csv") and data.attribute_path is None
    assert data.identity_attributes() == {}
    # the attribute file is still required by the attribute-based modes
    with pytest.raises(FileNotFoundError, match="attributes.csv"):
        FineGPR(root=str(tmp_path), text_mode="sentence")


def test_caption_mode_caption_file_relative_and_absolute(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    (folder / "meta").mkdir()
    write_caption_file(str(folder / "meta" / "c.csv"), {n: caption_of(n) for n in ALL_NAMES})
    relative = FineGPR(root=str(tmp_path), text_mode="caption", caption_file="meta/c.csv")
    absolute = FineGPR(root=str(tmp_path), text_mode="caption", caption_file=str(folder / "meta" / "c.csv"))
    assert relative.train == absolute.train and len(relative.train) == len(ALL_NAMES)
    with pytest.raises(FileNotFoundError) as info:
        FineGPR(root=str(tmp_path), text_mode="caption")
    assert str(folder / "captions.csv") in str(info.value)
    assert "tools/convert_finegpr_annotations.py" in str(info.value)


def test_caption_mode_images_without_caption_are_counted_and_listed(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    kept = ALL_NAMES[:3]
    write_caption_file(str(folder / "captions.csv"), {n: caption_of(n) for n in kept})
    with pytest.raises(ValueError) as info:
        FineGPR(root=str(tmp_path), text_mode="caption")
    message = str(info.value)
    assert f"{len(ALL_NAMES) - 3} of the {len(ALL_NAMES)} FineGPR images used have no caption" in message
    assert repr(ALL_NAMES[3]) in message and str(folder / "captions.csv") in message
    assert repr(ALL_NAMES[0]) not in message


def test_caption_mode_captions_of_images_not_on_disk_are_ignored_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = make_tree(tmp_path)
    captions = {n: caption_of(n) for n in ALL_NAMES}
    captions.update({"0003_c01_w01_l01_p01.jpg": "elsewhere", "0001_c02_w01_l01_p01.jpg": "not rendered"})
    write_caption_file(str(folder / "captions.csv"), captions)
    with caplog.at_level(logging.INFO, logger="fastreid_dmf.data.datasets.finegpr"):
        data = FineGPR(root=str(tmp_path), text_mode="caption")
    assert len(data.train) == len(ALL_NAMES)
    assert "elsewhere" not in {item[3] for item in data.train}
    assert f"2 of {len(captions)} captions are for images not on disk" in caplog.text


def test_caption_mode_with_subset_needs_captions_of_chosen_images_only(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    chosen = FineGPR(root=str(tmp_path), images_per_identity=2, subset_seed=5).train
    chosen_names = [os.path.basename(item[0]) for item in chosen]
    write_caption_file(str(folder / "captions.csv"), {n: caption_of(n) for n in chosen_names})
    data = FineGPR(root=str(tmp_path), text_mode="caption", images_per_identity=2, subset_seed=5)
    assert [item[:3] for item in data.train] == [item[:3] for item in chosen]
    assert [item[3] for item in data.train] == [caption_of(n) for n in chosen_names]


def test_config_caption_keys_reach_the_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastreid.config import get_cfg
    from fastreid.data import build as fastreid_build

    from fastreid_dmf.config import add_dmf_config
    from fastreid_dmf.data.build import dataset_kwargs, load_train_items

    folder = make_tree(tmp_path, attrs=None)
    write_caption_file(str(folder / "my_captions.csv"), {n: caption_of(n) for n in ALL_NAMES})
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.DATASETS.NAMES = ("FineGPR",)
    cfg.DATASETS.FINEGPR.TEXT_MODE = "caption"
    cfg.DATASETS.FINEGPR.CAPTION_FILE = "my_captions.csv"
    assert dataset_kwargs(cfg, "FineGPR")["caption_file"] == "my_captions.csv"
    monkeypatch.setattr(fastreid_build, "_root", str(tmp_path))
    items = load_train_items(cfg)
    assert [item[3] for item in items] == [caption_of(n) for n in ALL_NAMES]


# -------------------------------------------------------------------------------------------- attribute converter


def _numeric_row(attrs: dict[str, str]) -> dict[str, object]:
    """FineGPR-style numeric codes: colours 01..09, yes/no as 1/0, gender 0 = male."""
    from fastreid_dmf.data.finegpr_format import COLORS

    row: dict[str, object] = dict(attrs)
    for name in ("glasses", "short_sleeve", "dress", "boots", "hat", "bag"):
        row[name] = 1 if attrs[name] == "yes" else 0
    for name in ("upper_color", "lower_color"):
        row[name] = f"{COLORS.index(attrs[name]) + 1:02d}"
    row["gender"] = 0 if attrs["gender"] == "male" else 1
    return row


def test_convert_attributes_json_dict_with_numeric_codes(tmp_path: Path) -> None:
    source = tmp_path / "attrs.json"
    data = {f"{pid:04d}": _numeric_row(a) for pid, a in ATTRS.items()}
    data["0002"]["hat"] = False  # JSON booleans too
    data["0001"]["boots"] = "True"
    source.write_text(json.dumps(data))
    out = tmp_path / "attributes.csv"
    gender_codes = {"gender": parse_code_map("0=male,1=female", "gender")}
    summary = convert_attributes(str(source), str(out), code_maps=gender_codes)
    assert read_attribute_file(str(out)) == ATTRS
    assert (summary.input_form, summary.entries, summary.written) == ("json-dict", 2, 2)


def test_convert_attributes_json_records_with_column_map(tmp_path: Path) -> None:
    records = []
    for pid, attrs in ATTRS.items():
        record = {"person_id": pid, **attrs}
        record["sex"] = record.pop("gender")
        record["Upper Colour"] = record.pop("upper_color").upper()
        records.append(record)
    source = tmp_path / "attrs.json"
    source.write_text(json.dumps(records))
    table, form = load_attribute_annotations(
        str(source), column_map=parse_column_map("person_id=pid,sex=gender,Upper Colour=upper_color"))
    assert table == ATTRS and form == "json-records"


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_convert_attributes_csv_and_tsv_with_column_map_and_codes(tmp_path: Path, delimiter: str) -> None:
    columns = ["ID", "sex", "age_code", *[a for a in ATTRS[1] if a not in ("gender", "age")], "notes"]
    ages = {"teenager": 0, "adult": 1, "older": 2}
    lines = [delimiter.join(columns)]
    for pid, attrs in ATTRS.items():
        row = _numeric_row(attrs)
        values = [str(pid), str(row["gender"]), str(ages[attrs["age"]]),
                  *[str(row[a]) for a in columns[3:-1]], "free text"]
        lines.append(delimiter.join(values))
    source = tmp_path / ("attrs.tsv" if delimiter == "\t" else "attrs.txt")  # .txt: delimiter sniffed
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "attributes.csv"
    summary = convert_attributes(
        str(source), str(out), column_map=parse_column_map("ID=pid,sex=gender,age_code=age"),
        code_maps=parse_code_maps(["gender:0=male,1=female", "age:0=teenager,1=adult,2=older"]),
        drop_columns=["notes"])
    assert read_attribute_file(str(out)) == ATTRS
    assert summary.input_form == ("tsv" if delimiter == "\t" else "csv")


def test_convert_attributes_gender_code_mapping_is_respected_and_required(tmp_path: Path) -> None:
    source = tmp_path / "attrs.json"
    source.write_text(json.dumps({str(pid): _numeric_row(a) for pid, a in ATTRS.items()}))
    with pytest.raises(ValueError) as info:
        load_attribute_annotations(str(source))
    assert "--gender-codes" in str(info.value) and "pid 1" in str(info.value)
    reversed_table, _ = load_attribute_annotations(str(source), code_maps={"gender": {"0": "female", "1": "male"}})
    assert reversed_table[1]["gender"] == "female" and reversed_table[2]["gender"] == "male"


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda rows: rows[0].update(shirt="red"), "unknown column(s) ['shirt']"),
    (lambda rows: rows[1].pop("hat"), "missing attribute(s) ['hat']"),
    (lambda rows: rows[1].update(pid=1), "pid 1 appears twice"),
    (lambda rows: rows[0].update(upper_color="12"), "'12' for attribute 'upper_color'"),
    (lambda rows: rows[0].update(pid="first"), "pid 'first' is not an integer"),
])
def test_convert_attributes_errors_name_record_and_problem(tmp_path: Path, mutate, fragment: str) -> None:
    rows = [{"pid": pid, **attrs} for pid, attrs in ATTRS.items()]
    mutate(rows)
    source = tmp_path / "attrs.json"
    source.write_text(json.dumps(rows))
    with pytest.raises(ValueError) as info:
        convert_attributes(str(source), str(tmp_path / "out.csv"))
    assert fragment in str(info.value) and str(source) in str(info.value) and "record" in str(info.value)
    assert not (tmp_path / "out.csv").exists()


def test_convert_attributes_csv_error_names_line(tmp_path: Path) -> None:
    source = tmp_path / "attrs.csv"
    write_attribute_file(str(source), ATTRS)
    source.write_text(source.read_text().replace("blue", "teal"))
    with pytest.raises(ValueError, match=r"attrs.csv, line 2 \(pid 1\): unknown value 'teal'"):
        load_attribute_annotations(str(source))


def test_option_parsers_reject_bad_items() -> None:
    with pytest.raises(ValueError, match="'sex'"):
        parse_column_map("sex")
    with pytest.raises(ValueError, match="'colour'"):
        parse_column_map("a=colour")
    with pytest.raises(ValueError, match="not one of image, caption"):
        parse_column_map("file=pid", ("image", "caption"))
    with pytest.raises(ValueError, match="'robot'"):
        parse_code_map("2=robot", "gender")
    with pytest.raises(ValueError, match="attribute:code=word"):
        parse_code_maps(["0=male"])


# ---------------------------------------------------------------------------------------------- caption converter

EXPECTED = {"0001_c01_w01_l01_p03.jpg": "A young male walks.", "0002_c28_w01_l01_p01.jpg": "An old female, with a bag."}


def _check_written(out: Path) -> None:
    assert read_caption_file(str(out)) == EXPECTED


def test_convert_captions_json_dict_with_list_values(tmp_path: Path) -> None:
    source = tmp_path / "c.json"
    source.write_text(json.dumps({"FineGPR/0001/0001_c01_w01_l01_p03.jpg": ["A young male\n walks.", "second"],
                                  "0002_c28_w01_l01_p01": "An old female, with a bag."}))
    summary = convert_captions(str(source), str(tmp_path / "out.csv"))
    _check_written(tmp_path / "out.csv")
    assert (summary.input_form, summary.written, summary.extra_captions, summary.identities) == ("json-dict", 2, 1, 2)


def test_convert_captions_json_records_image_or_file_name_caption_or_text(tmp_path: Path) -> None:
    source = tmp_path / "c.json"
    source.write_text(json.dumps([
        {"image": "0001_c01_w01_l01_p03.jpg", "caption": "A young male walks.", "id": 7},
        {"file_name": "0002/0002_c28_w01_l01_p01.jpg", "text": "An old female, with a bag."},
        {"file_name": "0002_c28_w01_l01_p01.jpg", "text": "a duplicate"},
    ]))
    summary = convert_captions(str(source), str(tmp_path / "out.csv"))
    _check_written(tmp_path / "out.csv")
    assert (summary.input_form, summary.extra_captions) == ("json-records", 1)
    mapped = tmp_path / "m.json"
    mapped.write_text(json.dumps([{"path": k, "sentence": v} for k, v in EXPECTED.items()]))
    assert load_caption_annotations(str(mapped), parse_column_map("path=image,sentence=caption", ("image", "caption"))
                                    ).captions == EXPECTED
    with pytest.raises(ValueError, match=r"record 1: no image field"):
        load_caption_annotations(str(mapped))


def test_convert_captions_text_lines_tab_or_space(tmp_path: Path) -> None:
    source = tmp_path / "FineGPR-C.txt"
    source.write_text("image\tcaption\n# comment\n\n0001_c01_w01_l01_p03.jpg\tA young male walks.\n"
                      "0002_c28_w01_l01_p01.jpg    An old female, with a bag.\n", encoding="utf-8")
    summary = convert_captions(str(source), str(tmp_path / "out.csv"))
    _check_written(tmp_path / "out.csv")
    assert summary.input_form == "text-lines"
    bad = tmp_path / "bad.txt"
    bad.write_text("0001_c01_w01_l01_p03.jpg\tok\n0002_c28_w01_l01_p01.jpg\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: no caption"):
        load_caption_annotations(str(bad))


def test_convert_captions_coco_first_caption_per_image(tmp_path: Path) -> None:
    source = tmp_path / "captions_coco.json"
    source.write_text(json.dumps({
        "images": [{"id": 10, "file_name": "0001/0001_c01_w01_l01_p03.jpg"},
                   {"id": 11, "file_name": "0002_c28_w01_l01_p01.jpg"},
                   {"id": 12, "file_name": "0002_c36_w06_l06_p08.jpg"}],
        "annotations": [{"id": 1, "image_id": 11, "caption": "An old female, with a bag."},
                        {"id": 2, "image_id": 10, "caption": "A young male walks."},
                        {"id": 3, "image_id": 10, "caption": "Another caption."},
                        {"id": 4, "image_id": 11, "caption": "And another."}],
    }))
    summary = convert_captions(str(source), str(tmp_path / "out.csv"))
    _check_written(tmp_path / "out.csv")
    assert (summary.input_form, summary.written, summary.extra_captions, summary.images_without_caption) == (
        "coco", 2, 2, 1)
    source.write_text(json.dumps({"images": [{"id": 1, "file_name": GOOD}],
                                  "annotations": [{"image_id": 2, "caption": "x"}]}))
    with pytest.raises(ValueError, match=r"annotations\[1\]: image_id 2 is not an id"):
        load_caption_annotations(str(source))


def test_convert_captions_csv_with_column_map(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("idx,file,sentence\n1,0001_c01_w01_l01_p03.jpg,A young male walks.\n"
                      "2,0002_c28_w01_l01_p01.jpg,\"An old female, with a bag.\"\n")
    convert_captions(str(source), str(tmp_path / "out.csv"),
                     column_map=parse_column_map("file=image,sentence=caption", ("image", "caption")))
    _check_written(tmp_path / "out.csv")


def test_convert_captions_bad_image_name_names_location(tmp_path: Path) -> None:
    source = tmp_path / "c.json"
    source.write_text(json.dumps([{"image": GOOD, "caption": "x"}, {"image": "0001_c40_w01_l01_p01.jpg",
                                                                     "caption": "y"}]))
    with pytest.raises(ValueError) as info:
        convert_captions(str(source), str(tmp_path / "out.csv"))
    assert f"{source}, record 2" in str(info.value) and "c40" in str(info.value)
    assert not (tmp_path / "out.csv").exists()


def test_converters_refuse_to_overwrite_unless_told(tmp_path: Path) -> None:
    captions_in = tmp_path / "c.json"
    captions_in.write_text(json.dumps(EXPECTED))
    attrs_in = tmp_path / "a.json"
    attrs_in.write_text(json.dumps({str(pid): a for pid, a in ATTRS.items()}))
    for convert, source in ((convert_captions, captions_in), (convert_attributes, attrs_in)):
        out = tmp_path / f"out_{source.stem}.csv"
        out.write_text("user's file")
        with pytest.raises(FileExistsError, match="refusing to overwrite"):
            convert(str(source), str(out))
        assert out.read_text() == "user's file"
        convert(str(source), str(out), overwrite=True)
        assert out.read_text() != "user's file"
        with pytest.raises(ValueError, match="is the input file"):
            convert(str(source), str(source), overwrite=True)
    assert read_caption_file(str(tmp_path / "out_c.csv")) == EXPECTED
    assert read_attribute_file(str(tmp_path / "out_a.csv")) == ATTRS
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------- generated captions


def test_generate_captions_round_trip_gives_sentence_mode_texts(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    summary = write_generated_captions(str(folder), str(folder / "captions.csv"))
    assert (summary.input_form, summary.written, summary.identities) == ("generated", len(ALL_NAMES), 2)
    captions = read_caption_file(str(folder / "captions.csv"))
    name = "0001_c28_w03_l05_p01.jpg"
    assert captions[name] == sentence_description(ATTRS[1], parse_finegpr_filename(name))
    assert captions[name].startswith("There is a young male with short hair")
    assert "in an overcast afternoon, with a front viewpoint" in captions[name]
    by_caption = FineGPR(root=str(tmp_path), text_mode="caption").train
    by_sentence = FineGPR(root=str(tmp_path), text_mode="sentence").train
    assert by_caption == by_sentence
    with pytest.raises(FileExistsError):
        write_generated_captions(str(folder), str(folder / "captions.csv"))


def test_generate_captions_subset_and_without_environment(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    subset = generate_captions(str(folder), str(folder / "attributes.csv"), images_per_identity=2, subset_seed=3)
    expected = FineGPR(root=str(tmp_path), images_per_identity=2, subset_seed=3).train
    assert sorted(subset) == sorted(os.path.basename(item[0]) for item in expected)
    plain = generate_captions(str(folder), str(folder / "attributes.csv"), with_environment=False)
    assert set(plain.values()) == {build_description(a, None, "sentence", False) for a in ATTRS.values()}


def test_generate_captions_identity_without_attribute_row(tmp_path: Path) -> None:
    folder = make_tree(tmp_path, attrs={1: ATTRS[1]})
    with pytest.raises(ValueError, match=r"1 identities .* pids \[2\]"):
        generate_captions(str(folder), str(folder / "attributes.csv"))


def test_cli_converts_coco_then_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "coco.json"
    source.write_text(json.dumps({"images": [{"id": 1, "file_name": GOOD}, {"id": 2, "file_name": ALL_NAMES[-1]}],
                                  "annotations": [{"image_id": 1, "caption": "one"}, {"image_id": 1, "caption": "2"},
                                                  {"image_id": 2, "caption": "three"}]}))
    out = tmp_path / "captions.csv"
    command = [sys.executable, str(REPO / "tools" / "convert_finegpr_annotations.py"), "--captions", str(source),
               "--output", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout[:first.stdout.rindex("}") + 1])
    assert (counts["input_form"], counts["written"], counts["extra_captions"]) == ("coco", 2, 1)
    assert read_caption_file(str(out)) == {GOOD: "one", ALL_NAMES[-1]: "three"}
    second = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert second.returncode == 1 and "refusing to overwrite" in second.stderr
    assert read_caption_file(str(out)) == {GOOD: "one", ALL_NAMES[-1]: "three"}
