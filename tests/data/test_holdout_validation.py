"""Validation identities held out of training (DATASETS.HOLDOUT, registered test set HeldOutValidation)."""

from __future__ import annotations

import random

import pytest
from fastreid.config import get_cfg
from fastreid.data import build as fastreid_build
from fastreid.data.datasets import DATASET_REGISTRY

from fastreid_dmf.config import add_dmf_config, check_dmf_config
from fastreid_dmf.data.build import dataset_kwargs, load_train_items
from fastreid_dmf.data.datasets.holdout import query_gallery_split, split_holdout

# 12 identities x 4 images; identity 11 is seen by one camera only.
ITEMS = [(f"p{pid}_{k}.jpg", f"ds_{pid}", f"ds_{0 if pid == 11 else k % 2}") for pid in range(12) for k in range(4)]


def test_holdout_removes_whole_identities_and_is_reproducible():
    train, held = split_holdout(ITEMS, 3, seed=5)
    held_pids = {it[1] for it in held}
    assert len(held_pids) == 3 and len(held) == 12
    assert held_pids.isdisjoint(it[1] for it in train)
    assert len(train) + len(held) == len(ITEMS)
    assert split_holdout(ITEMS, 3, seed=5) == (train, held)


def test_holdout_draw_does_not_depend_on_item_order():
    shuffled = ITEMS[:]
    random.Random(0).shuffle(shuffled)
    assert {it[1] for it in split_holdout(shuffled, 4, 1)[1]} == {it[1] for it in split_holdout(ITEMS, 4, 1)[1]}


@pytest.mark.parametrize("num_ids", [-1, 12, 13])
def test_holdout_rejects_counts_that_leave_no_training_identity(num_ids):
    with pytest.raises(ValueError, match="DATASETS.HOLDOUT.NUM_IDS"):
        split_holdout(ITEMS, num_ids)


def test_one_query_per_camera_with_a_cross_camera_match_and_single_camera_identities_are_distractors():
    query, gallery = query_gallery_split(ITEMS, seed=0)
    # Identities 0..10 have 2 images in each of 2 cameras: one query per camera; identity 11: none.
    assert len(query) == 22 and len(gallery) == len(ITEMS) - 22
    for path, pid, cam in query:
        assert any(g_pid == pid and g_cam != cam for _, g_pid, g_cam in gallery), path
        assert path not in {g[0] for g in gallery}
    one_camera_pid = sorted({it[1] for it in ITEMS}, key=str).index("ds_11")
    assert one_camera_pid not in {pid for _, pid, _ in query}
    assert all(isinstance(pid, int) and isinstance(cam, int) for _, pid, cam in query + gallery)


def test_a_camera_is_not_queried_when_it_would_leave_no_cross_camera_match():
    # One image in each of two cameras: only the first camera visited can give a query.
    query, gallery = query_gallery_split([("a.jpg", "p", "c0"), ("b.jpg", "p", "c1")], seed=0)
    assert len(query) == 1 and len(gallery) == 1 and query[0][2] != gallery[0][2]


@pytest.fixture
def holdout_cfg(tiny_benchmark_root, monkeypatch):
    monkeypatch.setattr(fastreid_build, "_root", str(tiny_benchmark_root))
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.DATASETS.NAMES = ("SynthMarket",)
    cfg.DATASETS.HOLDOUT.NUM_IDS = 2
    cfg.DATASETS.TESTS = ("HeldOutValidation",)
    return cfg


def test_heldout_identities_leave_training_and_become_the_validation_set(holdout_cfg, tiny_benchmark_root):
    train_items = load_train_items(holdout_cfg)
    full = DATASET_REGISTRY.get("SynthMarket")(root=str(tiny_benchmark_root)).train
    held_paths = {it[0] for it in full} - {it[0] for it in train_items}
    held_pids = {it[1] for it in full if it[0] in held_paths}
    assert len(held_pids) == 2
    assert held_pids.isdisjoint(it[1] for it in train_items)
    val = DATASET_REGISTRY.get("HeldOutValidation")(root=str(tiny_benchmark_root),
                                                    **dataset_kwargs(holdout_cfg, "HeldOutValidation"))
    assert {it[0] for it in val.query + val.gallery} == held_paths
    assert val.query and not val.train


def test_heldout_validation_needs_a_holdout(holdout_cfg):
    holdout_cfg.DATASETS.HOLDOUT.NUM_IDS = 0
    with pytest.raises(ValueError, match="DATASETS.HOLDOUT.NUM_IDS"):
        check_dmf_config(holdout_cfg)


def test_holdout_names_limit_which_training_sets_lose_identities(holdout_cfg, tiny_benchmark_root):
    holdout_cfg.DATASETS.NAMES = ("SynthMarket", "SynthMSMT")
    holdout_cfg.DATASETS.HOLDOUT.NAMES = ("SynthMarket",)
    check_dmf_config(holdout_cfg)
    train_pids = {it[1] for it in load_train_items(holdout_cfg)}
    msmt = DATASET_REGISTRY.get("SynthMSMT")(root=str(tiny_benchmark_root)).train
    market = DATASET_REGISTRY.get("SynthMarket")(root=str(tiny_benchmark_root)).train
    assert {it[1] for it in msmt} <= train_pids
    assert len({it[1] for it in market} - train_pids) == 2
    val = DATASET_REGISTRY.get("HeldOutValidation")(root=str(tiny_benchmark_root),
                                                    **dataset_kwargs(holdout_cfg, "HeldOutValidation"))
    assert {it[0] for it in val.query + val.gallery} <= {it[0] for it in market}


def test_holdout_names_must_be_training_sets(holdout_cfg):
    holdout_cfg.DATASETS.HOLDOUT.NAMES = ("SynthMSMT",)
    with pytest.raises(ValueError, match="DATASETS.HOLDOUT.NAMES"):
        check_dmf_config(holdout_cfg)
