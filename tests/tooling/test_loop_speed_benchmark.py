"""tools/benchmark_loop_speed.py on a tiny DMF: report structure and consistency, no overwriting (timings unchecked)."""

import importlib.util
import json
import os

import pytest

from fastreid_dmf.tooling.benchmarks.loop_speed import (
    BACKBONES,
    BATCHES,
    LOOP_TARGET,
    REPORT_JSON,
    REPORT_MD,
    run_benchmark,
)
from tests.modeling.text_fixtures import HIDDEN, make_text_encoder
from tests.shared import REPO


def _tiny_opts(encoder: str) -> list[str]:
    """Overrides of the demo configs: a 1-block, 32-wide model on 32x16 images, batches of 4 x 4, no workers."""
    return ["MODEL.DMF.EMBED_DIM", "32", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.NUM_HEADS", "2",
            "INPUT.SIZE_TRAIN", "[32, 16]", "MODEL.DMF.PATCH_SIZE", "8", "MODEL.BACKBONE.STRIDE_SIZE", "(8, 8)",
            "INPUT.PADDING.SIZE", "2", "MODEL.DMF.TEXT_ENCODER.NAME", encoder, "MODEL.DMF.TEXT_DIM", str(HIDDEN),
            "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", "32", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
            "DATALOADER.NUM_WORKERS", "0"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_text_encoder(str(tmp_path_factory.mktemp("bert")), "bert")


@pytest.fixture(scope="module")
def report_dir(tiny_benchmark_root, tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("loop") / "report"
    # 2 rounds of 2 loop iterations: fast-reid's IterationTimer records from the 3rd iteration on.
    run_benchmark(str(out), iters=2, warmup=0, steps=2, settle=0.0, opts=_tiny_opts(tiny_bert),
                  datasets_root=str(tiny_benchmark_root))
    return out


def test_report_has_every_measurement_and_consistent_ratios(report_dir):
    with open(report_dir / REPORT_JSON) as handle:
        report = json.load(handle)
    assert (report["iters"], report["warmup"], report["steps"]) == (2, 0, 2)
    expected = {f"{kind}/{batch}" for batch in BATCHES for kind in ("loop", "bare")} | \
        {f"backbone/{name}/{mode}" for name in BACKBONES for mode in ("train", "infer")} | {"text/cold", "text/warm"}
    m = report["measurements"]
    assert set(m) == expected
    for summary in m.values():
        assert summary["rounds"] == 2 and len(summary["samples_s"]) == 2
        assert summary["q1_s"] <= summary["median_s"] <= summary["q3_s"]
        assert summary["iqr_s"] == pytest.approx(summary["q3_s"] - summary["q1_s"])
    for batch in BATCHES:
        ratio = report["loop_ratio"][batch]
        assert ratio["ratio"] == pytest.approx(m[f"loop/{batch}"]["median_s"] / m[f"bare/{batch}"]["median_s"])
        assert ratio["target"] == LOOP_TARGET and ratio["within_target"] == (ratio["ratio"] <= LOOP_TARGET)
        assert ratio["ratio_q1_q3"][0] <= ratio["ratio"] <= ratio["ratio_q1_q3"][1]
        assert ratio["data_time_median_s"] is not None and ratio["time_median_s"] is not None
    assert report["batches"]["image"]["size"] == report["batches"]["mixed"]["size"] == 16
    assert report["batches"]["image"]["texts"] == 0 and report["batches"]["image"]["text_ratio"] == 0.0
    assert report["batches"]["mixed"]["text_ratio"] == 0.5
    assert report["batches"]["mixed"]["text_cache_warm_s"] is not None
    if report["batches"]["mixed"]["texts"]:
        assert report["batches"]["mixed"]["text_tokens"] <= report["batches"]["mixed"]["max_tokens"] == 32
    backbones = report["backbones"]
    assert backbones["batch_size"] == 16
    for mode in ("train", "infer"):
        rate = backbones[mode]["images_per_s"]
        for name in BACKBONES:
            assert rate[name] == pytest.approx(16 / m[f"backbone/{name}/{mode}"]["median_s"])
        assert backbones[mode]["dmf_over_fastreid"] == pytest.approx(rate["dmf"] / rate["fastreid"])
        assert backbones[mode]["dmf_over_timm"] == pytest.approx(rate["dmf"] / rate["timm"])
    params = report["models"]["backbone_parameters"]
    assert params["dmf"] >= params["fastreid"] > 0 and params["timm"] > 0  # DMF adds the text translation
    text = report["text_encoding"]
    assert text["batch_size"] == 16 and text["distinct_descriptions"] >= 16
    assert text["cold_descriptions_per_s"] == pytest.approx(16 / m["text/cold"]["median_s"])
    assert text["warm_over_cold"] == pytest.approx(text["warm_descriptions_per_s"] / text["cold_descriptions_per_s"])
    table = (report_dir / REPORT_MD).read_text()
    for label in ("| image (TEXT_RATIO 0.0, 0 workers) |", "| mixed (TEXT_RATIO 0.5, 0 workers) |",
                  "| train (fwd+bwd) |", "| inference |", "| cold (encoder runs) |", "| warm (cached) |"):
        assert label in table


def test_an_existing_report_is_never_overwritten(report_dir, tiny_benchmark_root, tiny_bert):
    before = {name: (report_dir / name).read_bytes() for name in (REPORT_JSON, REPORT_MD)}
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        run_benchmark(str(report_dir), iters=1, warmup=0, steps=1, settle=0.0, opts=_tiny_opts(tiny_bert),
                      datasets_root=str(tiny_benchmark_root))
    spec = importlib.util.spec_from_file_location("benchmark_loop_speed", os.path.join(REPO, "tools",
                                                                                   "benchmark_loop_speed.py"))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    with pytest.raises(SystemExit) as exit_info:  # the CLI refuses before building anything
        cli.main(["--out", str(report_dir), "--iters", "1"])
    assert exit_info.value.code == 2
    assert {name: (report_dir / name).read_bytes() for name in before} == before


def test_bad_arguments_are_refused_before_measuring(tmp_path):
    with pytest.raises(ValueError, match="steps >= 1"):
        run_benchmark(str(tmp_path / "out"), steps=0)
    assert not (tmp_path / "out").exists()
