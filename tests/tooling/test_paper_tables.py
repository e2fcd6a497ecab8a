"""Paper-table configs are consistent, and results are collected into the paper's layout."""

import logging
import os
from collections import OrderedDict

import pytest
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.evaluation.testing import print_csv_format

from fastreid_dmf.config import check_dmf_config, load_config
from fastreid_dmf.engine.trainer import save_results
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


def _load(config):
    return load_config(os.path.join(REPO, config))


@pytest.mark.parametrize("config", paper_configs())
def test_paper_config_merges_and_passes_checks(config):
    cfg = _load(config)
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


@pytest.mark.parametrize("row", [r for r in PAPER_ROWS if r.label != "no pre-training"], ids=lambda r: r.config)
def test_fine_tuning_rows_start_from_a_pretraining_runs_final_checkpoint(row):
    cfg = _load(row.config)
    pretrain_outputs = {output_dir_of(os.path.join(REPO, c)) for c in PRETRAIN_CONFIGS}
    assert os.path.dirname(cfg.MODEL.WEIGHTS) in pretrain_outputs
    assert os.path.basename(cfg.MODEL.WEIGHTS) == "model_final.pth"
    assert not cfg.MODEL.BACKBONE.PRETRAIN
    assert "heads.weight" in cfg.MODEL.DMF.SKIP_LOAD_KEYS
    assert cfg.DATALOADER.TEXT_RATIO == 0.0


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
    baseline = row.baselines[0]
    save_results({"CUHK03NP": {"Rank-1": 19.0, "mAP": 18.0}, "MSMT17": {"Rank-1": 40.0, "mAP": 15.0}},
                 str(tmp_path / output_dir_of(os.path.join(REPO, baseline))), "results.json")
    table = paper_table("Table 2", base_dir=str(tmp_path), repo_dir=REPO).splitlines()
    cuhk = next(line for line in table if f"-> {TEST_SET_LABELS['CUHK03NP']} " in line)
    cells = [c.strip() for c in cuhk.strip("|").split("|")]
    paper = row.paper["CUHK03NP"]
    assert cells[1] == "24.2 / 23.5" or cells[1] == "24.3 / 23.5"
    assert cells[2] == "19.0 / 18.0"
    assert cells[3] == "-"  # the R50 baseline has not run
    assert cells[4:] == [f"{paper[m][0]:.1f} / {paper[m][1]:.1f}" for m in ("DMF", "TransMatcher", "QAConv-GS")]


def test_paper_table_rejects_unknown_table():
    with pytest.raises(ValueError, match="Table 5"):
        paper_table("Table 5")
