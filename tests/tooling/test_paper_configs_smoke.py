"""Every paper-table config trains and tests for a few iterations on look-alike data in the real layouts.

One module-scoped run (pre-training configs first, so the fine-tuning configs
load the checkpoints those wrote), then one assertion set per config.
"""

import math
import os

import pytest

from fastreid_dmf.tooling.paper_tables import PAPER_ROWS, PRETRAIN_CONFIGS, output_dir_of, paper_configs, paper_table
from fastreid_dmf.tooling.smoke import run_smoke_suite
from fastreid_dmf.tooling.synthetic.lookalike_trees import generate_real_layout_trees
from tests.shared import REPO

CONFIGS = paper_configs()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    base = tmp_path_factory.mktemp("paper_smoke")
    root = str(base / "datasets")
    generate_real_layout_trees(root)
    workdir = str(base / "runs")
    outcomes = run_smoke_suite([os.path.join(REPO, c) for c in CONFIGS], workdir, datasets_root=root)
    return workdir, {os.path.relpath(o.config, REPO): o for o in outcomes}


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_and_tests_on_every_target(smoke, config):
    _, outcomes = smoke
    outcome = outcomes[config]
    assert outcome.ok, outcome.error

    from fastreid_dmf.config import load_config

    cfg = load_config(os.path.join(REPO, config))
    assert list(outcome.results) == list(cfg.DATASETS.TESTS)
    for metrics in outcome.results.values():
        assert 0.0 <= metrics["Rank-1"] <= 100.0 and math.isfinite(metrics["mAP"])
    assert os.path.isfile(os.path.join(outcome.output_dir, "results.json"))
    assert os.path.isfile(os.path.join(outcome.output_dir, "model_final.pth"))


@pytest.mark.parametrize("row", [r for r in PAPER_ROWS if r.label != "no pre-training"], ids=lambda r: r.config)
def test_fine_tuning_run_loaded_its_pretraining_checkpoint(smoke, row):
    workdir, outcomes = smoke
    outcome = outcomes[row.config]
    assert outcome.ok, outcome.error
    with open(os.path.join(outcome.output_dir, "log.txt"), encoding="utf-8") as handle:
        log = handle.read()
    pretrain_dirs = [os.path.join(workdir, output_dir_of(os.path.join(REPO, c))) for c in PRETRAIN_CONFIGS]
    assert any(f"from {d}/model_final.pth; 1 skipped by MODEL.DMF.SKIP_LOAD_KEYS, 0 of the wrong shape and 0 "
               "missing" in log
               for d in pretrain_dirs), "fine-tuning did not load every stage-I tensor but the classifier"
    assert "heads.weight" in log  # re-initialised classifier is named in the log


def test_collected_tables_have_our_numbers_for_every_run(smoke):
    workdir, _ = smoke
    for table in sorted({r.table for r in PAPER_ROWS}):
        lines = paper_table(table, base_dir=workdir, repo_dir=REPO).splitlines()[2:]
        for line in lines:
            cells = [c.strip() for c in line.strip("|").split("|")]
            ours = cells[1::2] if table == "Table 1" else cells[1:4]
            assert all(c != "-" for c in ours), f"{table}: missing results in {line}"
