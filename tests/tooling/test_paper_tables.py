"""Paper-table configs are consistent, and results are collected into the paper's layout."""

import logging
import os
from collections import OrderedDict

import pytest
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.evaluation.testing import print_csv_format
from transformers import FlavaConfig

from fastreid_dmf.config import check_dmf_config, load_config
from fastreid_dmf.engine.trainer import save_results
from fastreid_dmf.modeling.mmet import flava
from fastreid_dmf.tooling.paper_tables import (
    PAPER_ROWS,
    PRETRAIN_CONFIGS,
    TEST_SET_LABELS,
    output_dir_of,
    paper_configs,
    paper_table,
    read_run_results,
)
from tests.shared import REPO

MMET_PRETRAIN = "configs/FineGPR/mmet_pretrain.yml"
MMET_ROWS = [r for r in PAPER_ROWS if r.mmet]
#: Fine-tuning configs (DMF rows with pre-training, and every MMET config of a row).
FINE_TUNING = [r.config for r in PAPER_ROWS if r.label != "no pre-training"] + [r.mmet for r in MMET_ROWS]
#: Solver keys DMF and MMET share, so that they are compared on one protocol.
SOLVER_KEYS = ("OPT", "BASE_LR", "MOMENTUM", "WEIGHT_DECAY", "MAX_EPOCH", "IMS_PER_BATCH", "SCHED", "ETA_MIN_LR",
               "WARMUP_ITERS", "WARMUP_FACTOR", "BIAS_LR_FACTOR")


def _load(config):
    return load_config(os.path.join(REPO, config))


@pytest.mark.parametrize("config", paper_configs())
def test_paper_config_merges_and_passes_checks(config, monkeypatch):
    cfg = _load(config)
    if cfg.MODEL.MMET.FLAVA_PATH:
        # No FLAVA folder here: the shape check runs against transformers' FlavaConfig defaults (= flava-full).
        monkeypatch.setattr(flava, "read_flava_config", lambda path: FlavaConfig())
    check_dmf_config(cfg)
    for name in (*cfg.DATASETS.NAMES, *cfg.DATASETS.TESTS):
        assert name in DATASET_REGISTRY._obj_map, f"{config}: dataset {name!r} is not registered"
    assert cfg.OUTPUT_DIR.startswith("logs/"), f"{config}: OUTPUT_DIR should be under logs/"


def test_every_config_file_under_configs_paper_belongs_to_a_table_row():
    listed = {os.path.normpath(c) for c in paper_configs()}
    for folder, _, files in os.walk(os.path.join(REPO, "configs", "paper")):
        for name in files:
            rel = os.path.normpath(os.path.relpath(os.path.join(folder, name), REPO))
            if not name.startswith("Base-"):
                assert rel in listed, f"{rel} is not referenced by any paper table row"


def test_output_dirs_are_distinct_so_no_run_overwrites_another():
    dirs = [output_dir_of(os.path.join(REPO, c)) for c in paper_configs()]
    assert len(dirs) == len(set(dirs))


@pytest.mark.parametrize("row", PAPER_ROWS, ids=lambda r: f"{r.table}:{r.label}")
def test_row_configs_test_on_the_papers_targets_with_baselines_on_the_same_protocol(row):
    dmf = _load(row.config)
    assert dmf.MODEL.META_ARCHITECTURE == "DMF"
    assert tuple(dmf.DATASETS.TESTS) == row.tests
    baselines = row.baselines or next(r.baselines for r in PAPER_ROWS if r.table == row.table and r.baselines)
    for baseline in baselines:
        cfg = _load(baseline)
        assert cfg.MODEL.META_ARCHITECTURE == "Baseline"
        assert tuple(cfg.DATASETS.NAMES) == tuple(dmf.DATASETS.NAMES), baseline
        assert tuple(cfg.DATASETS.TESTS) == row.tests, baseline
        assert list(cfg.INPUT.SIZE_TEST) == list(dmf.INPUT.SIZE_TEST), baseline


@pytest.mark.parametrize("config", FINE_TUNING)
def test_fine_tuning_rows_start_from_a_pretraining_runs_final_checkpoint(config):
    cfg = _load(config)
    pretrain_outputs = {output_dir_of(os.path.join(REPO, c)) for c in PRETRAIN_CONFIGS}
    assert os.path.dirname(cfg.MODEL.WEIGHTS) in pretrain_outputs
    assert os.path.basename(cfg.MODEL.WEIGHTS) == "model_final.pth"
    assert not cfg.MODEL.BACKBONE.PRETRAIN
    assert "heads.weight" in cfg.MODEL.DMF.SKIP_LOAD_KEYS
    assert cfg.DATALOADER.SAMPLER_TRAIN == "MultimodalIdentitySampler" and cfg.DATALOADER.TEXT_RATIO == 0.0
    if cfg.MODEL.META_ARCHITECTURE == "MMET":
        assert os.path.dirname(cfg.MODEL.WEIGHTS) == output_dir_of(os.path.join(REPO, MMET_PRETRAIN))


def test_mmet_sits_beside_dmf_in_tables_2_to_4_and_beside_text_image_in_table_1():
    assert all(r.mmet for r in PAPER_ROWS if r.table != "Table 1")
    assert [r.label for r in PAPER_ROWS if r.table == "Table 1" and r.mmet] == ["Text + Image"]


@pytest.mark.parametrize("row", MMET_ROWS, ids=lambda r: r.mmet)
def test_mmet_row_fine_tunes_on_its_dmf_rows_protocol(row):
    dmf, mmet = _load(row.config), _load(row.mmet)
    assert mmet.MODEL.META_ARCHITECTURE == "MMET" and mmet.MODEL.BACKBONE.NAME == "build_mmet_backbone"
    assert tuple(mmet.DATASETS.NAMES) == tuple(dmf.DATASETS.NAMES)
    assert tuple(mmet.DATASETS.TESTS) == tuple(dmf.DATASETS.TESTS) == row.tests
    for key in ("SIZE_TRAIN", "SIZE_TEST"):
        assert list(mmet.INPUT[key]) == list(dmf.INPUT[key])
    for key in SOLVER_KEYS:
        assert mmet.SOLVER[key] == dmf.SOLVER[key], key
    assert mmet.MODEL.MMET.TEST_INPUT == "image"  # the target sets have no captions
    assert mmet.OUTPUT_DIR == os.path.join(os.path.dirname(dmf.OUTPUT_DIR), os.path.basename(row.mmet)[:-4])


def test_mmet_pretraining_matches_dmf_stage_one_but_for_the_task_sampler():
    dmf, mmet = _load("configs/FineGPR/dmf_pretrain_text_image.yml"), _load(MMET_PRETRAIN)
    assert tuple(mmet.DATASETS.NAMES) == tuple(dmf.DATASETS.NAMES) == ("FineGPR",)
    assert tuple(mmet.DATASETS.TESTS) == tuple(dmf.DATASETS.TESTS)
    assert mmet.DATASETS.FINEGPR == dmf.DATASETS.FINEGPR  # 11 images per id, keywords, same subset seed
    for key in SOLVER_KEYS:
        assert mmet.SOLVER[key] == dmf.SOLVER[key], key
    assert mmet.DATALOADER.SAMPLER_TRAIN == "TaskIdentitySampler"
    assert tuple(mmet.DATALOADER.TASK_WEIGHTS) == (1.0, 1.0, 1.0)
    assert mmet.DATALOADER.NUM_INSTANCE == dmf.DATALOADER.NUM_INSTANCE


@pytest.mark.parametrize("config", [MMET_PRETRAIN, *(r.mmet for r in MMET_ROWS)])
def test_mmet_paper_configs_are_flava_full_sized(config):
    cfg = _load(config)
    flava.check_flava_config(cfg, FlavaConfig())  # transformers' defaults describe facebook/flava-full
    assert cfg.MODEL.MMET.FLAVA_PATH == "pretrained/flava-full" and cfg.MODEL.DMF.LN_EPS == 1e-12
    mask = cfg.MODEL.MMET.MASK
    assert (mask.IMAGE_RATIO, mask.MIN_BLOCK, mask.TEXT_RATIO) == (0.4, 16, 0.15)
    assert cfg.MODEL.MMET.MIM.TARGET == "pixel" and tuple(cfg.MODEL.BACKBONE.STRIDE_SIZE) == (16, 16)


def test_table1_pretraining_variants_differ_only_in_text_ratio_and_encoder():
    text_image, image_only, text_only = (_load(c) for c in (
        "configs/FineGPR/dmf_pretrain_text_image.yml", "configs/FineGPR/dmf_pretrain_image_only.yml",
        "configs/FineGPR/dmf_pretrain_text_only.yml"))
    assert (text_image.DATALOADER.TEXT_RATIO, image_only.DATALOADER.TEXT_RATIO, text_only.DATALOADER.TEXT_RATIO) \
        == (0.5, 0.0, 1.0)
    assert image_only.MODEL.DMF.TEXT_ENCODER.NAME == ""
    for cfg in (text_image, image_only, text_only):
        assert cfg.DATASETS.FINEGPR.IMAGES_PER_ID == 11
        assert cfg.SOLVER.MAX_EPOCH == 120 and cfg.SOLVER.BASE_LR == 0.01 and cfg.SOLVER.IMS_PER_BATCH == 64


def _write_fastreid_log(path, results):
    """Log results the way fast-reid's DefaultTrainer.test does (print_csv_format into a file handler)."""
    handler = logging.FileHandler(path)
    logger = logging.getLogger("fastreid.evaluation.testing")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for dataset, metrics in results.items():
            print_csv_format(OrderedDict([("dataset", dataset), *metrics.items()]))
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_fastreid_log_is_parsed_and_the_last_table_per_test_set_wins(tmp_path):
    _write_fastreid_log(tmp_path / "log.txt", {"Market1501": {"Rank-1": 10.0, "mAP": 5.0}})
    _write_fastreid_log(tmp_path / "log.txt", {"Market1501": {"Rank-1": 61.25, "Rank-5": 80.5, "mAP": 33.75},
                                               "CUHK03NP": {"Rank-1": 12.5, "mAP": 11.0}})
    results = read_run_results(str(tmp_path))
    assert results["Market1501"] == {"Rank-1": 61.25, "Rank-5": 80.5, "mAP": 33.75}
    assert results["CUHK03NP"] == {"Rank-1": 12.5, "mAP": 11.0}


def test_results_json_is_preferred_over_the_log(tmp_path):
    _write_fastreid_log(tmp_path / "log.txt", {"MSMT17": {"Rank-1": 1.0, "mAP": 1.0}})
    save_results({"MSMT17": {"Rank-1": 20.5, "mAP": 9.5}}, str(tmp_path), "results.json")
    assert read_run_results(str(tmp_path))["MSMT17"]["Rank-1"] == 20.5


def test_run_without_results_reads_as_empty(tmp_path):
    assert read_run_results(str(tmp_path / "missing")) == {}


def test_paper_table_puts_our_numbers_beside_the_published_ones(tmp_path):
    row = next(r for r in PAPER_ROWS if r.table == "Table 2")
    save_results({"CUHK03NP": {"Rank-1": 24.25, "mAP": 23.5}, "MSMT17": {"Rank-1": 51.0, "mAP": 22.0}},
                 str(tmp_path / output_dir_of(os.path.join(REPO, row.config))), "results.json")
    save_results({"CUHK03NP": {"Rank-1": 25.0, "mAP": 24.0}, "MSMT17": {"Rank-1": 52.0, "mAP": 23.0}},
                 str(tmp_path / output_dir_of(os.path.join(REPO, row.mmet))), "results.json")
    baseline = row.baselines[0]
    save_results({"CUHK03NP": {"Rank-1": 19.0, "mAP": 18.0}, "MSMT17": {"Rank-1": 40.0, "mAP": 15.0}},
                 str(tmp_path / output_dir_of(os.path.join(REPO, baseline))), "results.json")
    table = paper_table("Table 2", base_dir=str(tmp_path), repo_dir=REPO).splitlines()
    assert [c.strip() for c in table[0].strip("|").split("|")][1:3] == ["DMF ours", "MMET ours"]
    cuhk = next(line for line in table if f"-> {TEST_SET_LABELS['CUHK03NP']} " in line)
    cells = [c.strip() for c in cuhk.strip("|").split("|")]
    paper = row.paper["CUHK03NP"]
    assert cells[1] == "24.2 / 23.5" or cells[1] == "24.3 / 23.5"
    assert cells[2] == "25.0 / 24.0"  # MMET, next to DMF
    assert cells[3] == "19.0 / 18.0"
    assert cells[4] == "-"  # the R50 baseline has not run
    assert cells[5:] == [f"{paper[m][0]:.1f} / {paper[m][1]:.1f}" for m in ("DMF", "TransMatcher", "QAConv-GS")]


def test_table1_shows_mmet_after_the_dmf_rows_without_a_paper_number(tmp_path):
    row = next(r for r in PAPER_ROWS if r.table == "Table 1" and r.mmet)
    save_results({"Market1501": {"Rank-1": 70.0, "mAP": 45.0}},
                 str(tmp_path / output_dir_of(os.path.join(REPO, row.mmet))), "results.json")
    lines = paper_table("Table 1", base_dir=str(tmp_path), repo_dir=REPO).splitlines()[2:]
    labels = [line.strip("|").split("|")[0].strip() for line in lines]
    assert labels.index("MMET Text + Image") == labels.index("DMF Text + Image") + 1
    cells = [c.strip() for c in lines[labels.index("MMET Text + Image")].strip("|").split("|")]
    assert cells[1:3] == ["70.0 / 45.0", "-"] and cells[3:] == ["-"] * 4


def test_paper_table_rejects_unknown_table():
    with pytest.raises(ValueError, match="Table 5"):
        paper_table("Table 5")
