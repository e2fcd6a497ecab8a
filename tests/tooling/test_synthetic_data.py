"""Tests of the bundled synthetic benchmark: renderer, on-disk layouts, determinism, fast-reid parsing."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

import fastreid_dmf  # noqa: F401  (applies the fastreid compat shims before fastreid.data is imported)
from fastreid_dmf.data.datasets.synthetic_targets import SynthMarket, SynthMSMT
from fastreid_dmf.data.finegpr_format import ATTRIBUTE_NAMES, COLORS, parse_finegpr_filename, read_attribute_file
from fastreid_dmf.tooling.synthetic import (
    COLOR_RGB,
    IMAGE_SIZE,
    PRESETS,
    README_MARKER,
    STYLES,
    Environment,
    Identity,
    generate_benchmark,
    render_distractor,
    render_person,
    render_person_with_boxes,
    sample_identity,
)

TINY = PRESETS["tiny"]
MARKET_NAME = re.compile(r"^(-1|\d{4})_c([1-6])s1_\d{6}_\d{2}\.jpg$")
MSMT_NAME = re.compile(r"^(\d{4})_\d{3}_(\d{2})_\d{4}(morning|noon|afternoon)_\d{4}_\d\.jpg$")


def _file_hashes(root: str) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> tuple[str, dict]:
    root = str(tmp_path_factory.mktemp("bench") / "datasets")
    counts = generate_benchmark(root, preset="tiny", seed=0)
    return root, counts


# --------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_bytes_and_other_seed_differs(tiny_root, tmp_path):
    root, _ = tiny_root
    again = str(tmp_path / "again")
    other = str(tmp_path / "other")
    generate_benchmark(again, preset="tiny", seed=0)
    generate_benchmark(other, preset="tiny", seed=1)
    first, second, third = _file_hashes(root), _file_hashes(again), _file_hashes(other)
    assert len(first) > 100
    assert first == second
    jpg_first = {h for p, h in first.items() if p.endswith(".jpg")}
    jpg_third = {h for p, h in third.items() if p.endswith(".jpg")}
    assert not jpg_first & jpg_third  # no image is reproduced by another seed


def test_render_person_is_deterministic_and_sized():
    ident = sample_identity(np.random.default_rng(5), 3)
    for style in STYLES:
        env = Environment(viewpoint=30, camera=2)
        a = render_person(ident, env, style, np.random.default_rng(9))
        b = render_person(ident, env, style, np.random.default_rng(9))
        c = render_person(ident, env, style, np.random.default_rng(10))
        assert a.size == IMAGE_SIZE and a.mode == "RGB"
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(a), np.asarray(c))
        assert render_distractor(env, style, np.random.default_rng(1)).size == IMAGE_SIZE


# --------------------------------------------------------------------------- layouts

def test_finegpr_names_and_attribute_file(tiny_root):
    root, counts = tiny_root
    folder = os.path.join(root, "FineGPR")
    per_pid: Counter = Counter()
    for path in glob.glob(os.path.join(folder, "*", "*")):
        codes = parse_finegpr_filename(path)  # raises on a bad name
        assert os.path.basename(os.path.dirname(path)) == f"{codes.pid:04d}"
        per_pid[codes.pid] += 1
    table = read_attribute_file(os.path.join(folder, "attributes.csv"))
    assert set(table) == set(per_pid)
    assert len(per_pid) == TINY.source_ids == counts["FineGPR"]["identities"]
    assert set(per_pid.values()) == {TINY.source_images_per_id}
    with open(os.path.join(folder, "README.txt"), encoding="utf-8") as handle:
        text = handle.read()
    assert text.startswith(README_MARKER) and "seed: 0" in text and "preset: tiny" in text


def test_groups_sharing_all_attributes_exist_and_still_look_different(tiny_root):
    root, counts = tiny_root
    table = read_attribute_file(os.path.join(root, "FineGPR", "attributes.csv"))
    groups = defaultdict(list)
    for pid, attrs in table.items():
        groups[tuple(attrs[a] for a in ATTRIBUTE_NAMES)].append(pid)
    shared = [pids for pids in groups.values() if len(pids) > 1]
    assert shared, "no two identities share all 13 attributes"
    assert sum(len(p) for p in shared) == counts["FineGPR"]["shared_attribute_ids"]
    # identities with equal attributes differ by their hidden traits, hence in pixels
    attrs = dict(table[shared[0][0]])
    a, b = (sample_identity(np.random.default_rng(k), k, attrs) for k in (1, 2))
    assert a.traits != b.traits
    env = Environment(viewpoint=0)
    img_a = np.asarray(render_person(a, env, "finegpr", np.random.default_rng(0)), dtype=np.float64)
    img_b = np.asarray(render_person(b, env, "finegpr", np.random.default_rng(0)), dtype=np.float64)
    assert np.abs(img_a - img_b).mean() > 1.0


def test_synth_market_parses_with_fastreid_market1501(tiny_root):
    root, counts = tiny_root
    data = SynthMarket(root=root)
    train_pids = {p for _, p, _ in data.train}
    assert len(train_pids) == TINY.train_ids and len(data.train) == TINY.train_ids * TINY.train_images_per_id
    assert all(p.startswith("synthmarket_") for p in train_pids)
    assert data.get_num_cams(data.train) <= 6
    lo, hi = TINY.query_per_id
    assert TINY.test_ids * lo <= len(data.query) <= TINY.test_ids * hi
    query_pids = {p for _, p, _ in data.query}
    assert len(query_pids) == TINY.test_ids
    assert not {f"synthmarket_{p}" for p in query_pids} & train_pids  # train and test pids are disjoint
    # one query per (pid, camera); each query has a gallery match in another camera
    assert len({(p, c) for _, p, c in data.query}) == len(data.query)
    gallery_cams = defaultdict(set)
    for _, p, c in data.gallery:
        gallery_cams[p].add(c)
    assert all(gallery_cams[p] - {c} for _, p, c in data.query)
    # junk (-1) is on disk but skipped by the parser; distractors (0) are kept
    gallery_dir = os.path.join(root, "synth_market", "bounding_box_test")
    assert len(glob.glob(os.path.join(gallery_dir, "-1_c*.jpg"))) == TINY.junk
    assert all(p != -1 for _, p, _ in data.gallery)
    assert sum(p == 0 for _, p, _ in data.gallery) == TINY.distractors
    assert len(data.gallery) == TINY.test_ids * TINY.gallery_per_id + TINY.distractors
    assert counts["synth_market"]["gallery_images"] == len(os.listdir(gallery_dir))
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        for name in os.listdir(os.path.join(root, "synth_market", sub)):
            assert MARKET_NAME.match(name), name
    assert [p for p, _, _ in data.query] == sorted(p for p, _, _ in data.query)


def test_synth_msmt_parses_with_fastreid_msmt17(tiny_root):
    root, counts = tiny_root
    data = SynthMSMT(root=root)
    main = os.path.join(root, "synth_msmt", "MSMT17_V1")
    assert data.get_num_pids(data.train) == TINY.train_ids
    with open(os.path.join(main, "list_val.txt"), encoding="utf-8") as handle:
        val = [line.split(" ")[0] for line in handle]
    with open(os.path.join(main, "list_train.txt"), encoding="utf-8") as handle:
        train = [line.split(" ")[0] for line in handle]
    assert val and not set(val) & set(train)
    assert len(train) + len(val) == TINY.train_ids * TINY.train_images_per_id == len(
        glob.glob(os.path.join(main, "train", "*", "*.jpg")))
    # query/gallery pids are shifted by the number of training ids, as upstream
    expected = {TINY.train_ids + p for p in range(TINY.test_ids)}
    assert {p for _, p, _ in data.query} == expected == {p for _, p, _ in data.gallery}
    assert len(data.query) + len(data.gallery) == len(glob.glob(os.path.join(main, "test", "*", "*.jpg")))
    assert counts["synth_msmt"]["query_images"] == len(data.query)
    cams = {c for _, _, c in data.query + data.gallery}
    assert cams <= set(range(15))
    for path, pid, cam in data.query + data.gallery:
        match = MSMT_NAME.match(os.path.basename(path))
        assert match and os.path.isfile(path)
        assert int(match.group(2)) - 1 == cam and int(match.group(1)) + TINY.train_ids == pid
    gallery_cams = defaultdict(set)
    for _, p, c in data.gallery:
        gallery_cams[p].add(c)
    assert all(gallery_cams[p] - {c} for _, p, c in data.query)


def test_missing_folder_errors_name_folder_and_tool(tmp_path):
    for cls, folder in ((SynthMarket, "synth_market"), (SynthMSMT, "synth_msmt")):
        with pytest.raises(FileNotFoundError) as err:
            cls(root=str(tmp_path))
        message = str(err.value)
        assert os.path.join(str(tmp_path), folder) in message
        assert "tools/make_demo_data.py" in message and "layout" in message


def test_registered_in_fastreid_registry():
    from fastreid.data.datasets import DATASET_REGISTRY

    assert DATASET_REGISTRY.get("SynthMarket") is SynthMarket
    assert DATASET_REGISTRY.get("SynthMSMT") is SynthMSMT


# --------------------------------------------------------------------------- overwrite protection

def test_refuses_to_overwrite_without_flag(tmp_path):
    root = str(tmp_path / "d")
    generate_benchmark(root, preset="tiny", seed=0)
    before = _file_hashes(root)
    with pytest.raises(FileExistsError, match="FineGPR"):
        generate_benchmark(root, preset="tiny", seed=1)
    assert _file_hashes(root) == before
    generate_benchmark(root, preset="tiny", seed=1, overwrite=True)
    assert _file_hashes(root) != before
    assert not [n for n in os.listdir(root) if n.startswith(".")]  # no temporary folders left


def test_never_deletes_foreign_data_even_with_overwrite(tmp_path):
    root = tmp_path / "d"
    (root / "synth_market").mkdir(parents=True)
    precious = root / "synth_market" / "my_notes.txt"
    precious.write_text("user data")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="synth_market"):
            generate_benchmark(str(root), preset="tiny", seed=0, overwrite=overwrite)
        assert precious.read_text() == "user data"
        assert not (root / "FineGPR").exists()  # refused before writing anything


# --------------------------------------------------------------------------- rendering follows attributes

def _identity(rng: np.random.Generator, **fixed: str) -> Identity:
    ident = sample_identity(rng, 1)
    attrs = dict(ident.attributes, **fixed)
    plain = dataclasses.replace(sample_identity(rng, 1, attrs).traits, pattern="plain")
    return Identity(1, attrs, plain)


def _mean_rgb(image, box) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return np.asarray(image, dtype=np.float64)[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)


def _nearest_colour(rgb: np.ndarray) -> str:
    return min(COLORS, key=lambda c: float(np.sum((np.asarray(COLOR_RGB[c], np.float64) - rgb) ** 2)))


@pytest.mark.parametrize("colour", COLORS)
def test_clothing_regions_show_declared_colours(colour):
    rng = np.random.default_rng(COLORS.index(colour))
    env = Environment(viewpoint=0, weather="neutral", illumination="forenoon")
    for k, view in enumerate((0, 20, 180, 340)):
        other = COLORS[(COLORS.index(colour) + 1 + k) % len(COLORS)]
        ident = _identity(rng, upper_color=colour, lower_color=other, dress="no")
        image, boxes = render_person_with_boxes(ident, dataclasses.replace(env, viewpoint=view), "finegpr", rng)
        assert _nearest_colour(_mean_rgb(image, boxes.upper)) == colour
        assert _nearest_colour(_mean_rgb(image, boxes.lower)) == other
        # a dress is drawn in the upper colour over the thighs
        dressed = _identity(rng, upper_color=colour, lower_color=other, dress="yes")
        image, boxes = render_person_with_boxes(dressed, dataclasses.replace(env, viewpoint=view), "finegpr", rng)
        assert _nearest_colour(_mean_rgb(image, boxes.lower)) == colour


def test_hat_changes_only_the_head_top():
    rng = np.random.default_rng(3)
    base = _identity(rng, hat="no")
    traits = dataclasses.replace(base.traits, hat_rgb=(220, 30, 30))
    with_hat = Identity(1, dict(base.attributes, hat="yes"), traits)
    without = Identity(1, dict(base.attributes, hat="no"), traits)
    env = Environment(viewpoint=0, weather="neutral", illumination="noon")
    img_hat, boxes = render_person_with_boxes(with_hat, env, "finegpr", np.random.default_rng(0))
    img_none, boxes_none = render_person_with_boxes(without, env, "finegpr", np.random.default_rng(0))
    assert boxes == boxes_none
    top = _mean_rgb(img_hat, boxes.hat_top) - _mean_rgb(img_none, boxes.hat_top)
    assert np.abs(top).max() > 40
    legs_y = int(boxes.upper[3]) + 2
    assert np.array_equal(np.asarray(img_hat)[legs_y:], np.asarray(img_none)[legs_y:])


def test_glasses_visible_from_front_not_from_back():
    rng = np.random.default_rng(4)
    base = _identity(rng, hat="no")
    on = Identity(1, dict(base.attributes, glasses="yes"), base.traits)
    off = Identity(1, dict(base.attributes, glasses="no"), base.traits)
    for view, visible in ((0, True), (180, False)):
        env = Environment(viewpoint=view, weather="neutral", illumination="noon")
        a, boxes = render_person_with_boxes(on, env, "finegpr", np.random.default_rng(1))
        b = render_person(off, env, "finegpr", np.random.default_rng(1))
        head_diff = np.abs(_mean_rgb(a, boxes.head) - _mean_rgb(b, boxes.head)).max()
        if visible:
            assert head_diff > 3
        else:
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_older_identities_have_grey_hair_and_teenagers_are_shorter():
    rng = np.random.default_rng(6)
    for _ in range(20):
        hair = np.asarray(_identity(rng, age="older").traits.hair_rgb)
        assert hair.min() >= 140 and hair.max() - hair.min() <= 10
    env = Environment(viewpoint=0)
    base = _identity(rng)
    heights = {}
    for age in ("teenager", "adult"):
        ident = Identity(1, dict(base.attributes, age=age), base.traits)
        _, boxes = render_person_with_boxes(ident, env, "finegpr", np.random.default_rng(2))
        heights[age] = boxes.lower[3] - boxes.head[1]
    assert heights["teenager"] < 0.95 * heights["adult"]
