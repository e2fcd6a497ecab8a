"""tools/benchmark_mmet_speed.py on a tiny MMET and DMF: report structure and no overwriting (timings unchecked)."""

import importlib.util
import json
import os

import pytest

from fastreid_dmf.tooling.benchmarks.mmet_speed import (
    DMF_BATCHES,
    REPORT_JSON,
    REPORT_MD,
    TASKS,
    run_benchmark,
    select_pk_items,
)
from tests.modeling.text_fixtures import HIDDEN, make_text_encoder
from tests.shared import REPO


def _tiny_opts(encoder: str) -> list[str]:
    """Overrides of both demo configs: a 1-block, 32-wide model on 32x16 images, batches of 4 x 4."""
    return ["MODEL.DMF.EMBED_DIM", "32", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.NUM_HEADS", "2",
            "INPUT.SIZE_TRAIN", "[32, 16]", "MODEL.DMF.PATCH_SIZE", "8", "MODEL.BACKBONE.STRIDE_SIZE", "(8, 8)",
            "INPUT.PADDING.SIZE", "2", "MODEL.DMF.TEXT_ENCODER.NAME", encoder, "MODEL.DMF.TEXT_DIM", str(HIDDEN),
            "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", "32", "MODEL.MMET.FUSION.DEPTH", "1",
            "MODEL.MMET.FUSION.NUM_HEADS", "2", "MODEL.MMET.MASK.MIN_BLOCK", "1",
            "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_text_encoder(str(tmp_path_factory.mktemp("bert")), "bert")


@pytest.fixture(scope="module")
def report_dir(tiny_benchmark_root, tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("speed") / "report"
    run_benchmark(str(out), iters=1, warmup=0, opts=_tiny_opts(tiny_bert), datasets_root=str(tiny_benchmark_root))
    return out


def test_report_has_every_measurement_with_median_and_iqr_ratios_and_masking_shares(report_dir):
    with open(report_dir / REPORT_JSON) as handle:
        report = json.load(handle)
    assert report["iters"] == 1 and report["warmup"] == 0
    expected = {f"mmet/{t}" for t in TASKS} | {f"dmf/{b}" for b in DMF_BATCHES} | \
        {f"data/{t}/{part}" for t in TASKS for part in ("read", "masks")}
    assert set(report["measurements"]) == expected
    for summary in report["measurements"].values():
        assert summary["rounds"] == 1 and len(summary["samples_s"]) == 1
        assert summary["q1_s"] <= summary["median_s"] <= summary["q3_s"]
        assert summary["iqr_s"] == pytest.approx(summary["q3_s"] - summary["q1_s"])
    assert set(report["ratio_to_dmf_image"]) == {k for k in expected if not k.startswith("data/")}
    assert report["ratio_to_dmf_image"]["dmf/image"] == pytest.approx(1.0)
    assert set(report["masking"]) == set(TASKS)
    for share in report["masking"].values():
        assert share["masks_fraction"] == pytest.approx(share["masks_median_s"] / share["iteration_median_s"])
        assert share["target_fraction"] == 0.10
        assert share["within_target"] == (share["masks_fraction"] <= 0.10)
    assert report["batch"]["mmet"] == report["batch"]["dmf"] == {"size": 16, "identities": 4, "instances": 4}
    assert report["models"]["mmet"]["meta_architecture"] == "MMET"
    assert report["models"]["dmf"]["meta_architecture"] == "DMF"
    assert report["models"]["mmet"]["embed_dim"] == report["models"]["dmf"]["embed_dim"] == 32
    assert report["dmf_text_cache"]["misses_while_timed"] == 0, "DMF's text batches are timed on cached features"
    table = (report_dir / REPORT_MD).read_text()
    for label in ("| MMET | visual |", "| MMET | textual |", "| MMET | visual-textual |", "| DMF | image |",
                  "| DMF | text (cached features) |", "| DMF | mixed 50/50 |", "| visual-textual |"):
        assert label in table


def test_an_existing_report_is_never_overwritten(report_dir, tiny_benchmark_root, tiny_bert):
    before = {name: (report_dir / name).read_bytes() for name in (REPORT_JSON, REPORT_MD)}
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        run_benchmark(str(report_dir), iters=1, warmup=0, opts=_tiny_opts(tiny_bert),
                      datasets_root=str(tiny_benchmark_root))
    spec = importlib.util.spec_from_file_location("benchmark_mmet_speed", os.path.join(REPO, "tools",
                                                                                   "benchmark_mmet_speed.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    with pytest.raises(SystemExit) as exit_info:  # the CLI refuses before building anything
        cli.main(["--out", str(report_dir), "--iters", "1"])
    assert exit_info.value.code == 2
    assert {name: (report_dir / name).read_bytes() for name in before} == before


def test_pk_items_are_p_identities_of_k_items_each():
    items = [(f"{pid}_{n}.jpg", pid, 0) for pid in range(6) for n in range(3)]
    chosen = select_pk_items(items, batch_size=8, num_instances=4, seed=0)
    pids = [items[i][1] for i in chosen]
    assert len(chosen) == 8 and len(set(pids)) == 2
    assert pids[:4] == [pids[0]] * 4 and pids[4:] == [pids[4]] * 4  # grouped by identity (3 items: replacement)
    with pytest.raises(ValueError, match="identities"):
        select_pk_items(items, batch_size=28, num_instances=4)
