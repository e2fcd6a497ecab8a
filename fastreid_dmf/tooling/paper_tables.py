"""The DMF paper's result tables: which config produces each row, the published numbers, and our results beside them.

Published numbers (Rank-1 / mAP, percent) are those of DMF (Xiang et al.,
arXiv 2211.00933) Tables 1-4, with the TransMatcher and QAConv-GS columns the
paper compares against (collected in the project's reference notes, section 3).
Every row names the config that reproduces it (``configs/paper/...``), the
fast-reid baselines run on the same source and targets, and MMET (FLAVA-size,
pre-trained on the same FineGPR subset, ``configs/FineGPR/mmet_pretrain.yml``)
is fine-tuned on the same protocol beside DMF (its paper gives no numbers for
these tables, so MMET has our column only).

Our results are read from each config's ``OUTPUT_DIR``: ``results.json``
(written by ``tools/train_net.py``) or, for runs made elsewhere, fast-reid's
``log.txt`` ("Evaluation results in csv format" tables; the last one per test
set wins).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tabulate import tabulate

from ..evaluation.report import load_results

__all__ = [
    "TEST_SET_LABELS",
    "BASELINE_LABELS",
    "PaperRow",
    "PAPER_ROWS",
    "paper_configs",
    "read_run_results",
    "output_dir_of",
    "paper_table",
]

#: Registered test-set names -> the paper's column labels.
TEST_SET_LABELS: dict[str, str] = {"Market1501": "Market", "CUHK03NP": "CUHK03-NP", "MSMT17": "MSMT17"}
#: Baseline config file stem prefix -> label.
BASELINE_LABELS: dict[str, str] = {"bagtricks_vit": "fast-reid bagtricks ViT-B/16",
                                   "bagtricks_R50": "fast-reid BoT R50"}
#: Published methods compared in Tables 2-4, in column order.
PAPER_METHODS: tuple[str, ...] = ("DMF", "TransMatcher", "QAConv-GS")

Score = tuple[float, float]  # (Rank-1, mAP) in percent


@dataclass(frozen=True)
class PaperRow:
    """One DMF configuration of a paper table and what the paper reports for it.

    Attributes:
        table: ``"Table 1"`` .. ``"Table 4"``.
        label: row label: the pre-training variant (Table 1) or the source
            domain (Tables 2-4).
        config: DMF config path relative to the repository root.
        baselines: fast-reid baseline configs on the same source and targets.
        mmet: MMET config on the same source and targets ("" = none for this row).
        paper: ``{test set registry name: {method: (Rank-1, mAP)}}``.
    """

    table: str
    label: str
    config: str
    baselines: tuple[str, ...] = ()
    paper: dict[str, dict[str, Score]] = field(default_factory=dict)
    mmet: str = ""

    @property
    def tests(self) -> tuple[str, ...]:
        """Test sets of this row, in the paper's column order."""
        return tuple(self.paper)


def _dmf_only(**scores: Score) -> dict[str, dict[str, Score]]:
    return {name: {"DMF": score} for name, score in scores.items()}


_T1 = "configs/paper/table1_duke"
_T1_BASE = (f"{_T1}/bagtricks_vit.yml", f"{_T1}/bagtricks_R50.yml")
_T2 = "configs/paper/table2_market"
_T3 = "configs/paper/table3_msmt17"
_T4 = "configs/paper/table4_randperson"

#: Every row of DMF Tables 1-4 (numbers: Rank-1 / mAP in percent).
PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("Table 1", "no pre-training", f"{_T1}/dmf_no_pretrain.yml", _T1_BASE,
             _dmf_only(Market1501=(54.2, 30.1), CUHK03NP=(11.4, 10.4), MSMT17=(9.1, 8.7))),
    PaperRow("Table 1", "Text", f"{_T1}/dmf_text_only.yml", (),
             _dmf_only(Market1501=(64.1, 38.7), CUHK03NP=(14.3, 13.1), MSMT17=(13.7, 12.5))),
    PaperRow("Table 1", "Image", f"{_T1}/dmf_image_only.yml", (),
             _dmf_only(Market1501=(74.9, 46.3), CUHK03NP=(19.3, 17.9), MSMT17=(17.5, 16.0))),
    PaperRow("Table 1", "Text + Image", f"{_T1}/dmf_text_image.yml", (),
             _dmf_only(Market1501=(80.2, 52.6), CUHK03NP=(21.2, 19.4), MSMT17=(20.8, 19.3)), mmet=f"{_T1}/mmet.yml"),
    PaperRow("Table 2", "Market", f"{_T2}/dmf.yml", (f"{_T2}/bagtricks_vit.yml", f"{_T2}/bagtricks_R50.yml"),
             {"CUHK03NP": {"DMF": (23.4, 22.6), "TransMatcher": (22.2, 21.4), "QAConv-GS": (19.1, 18.1)},
              "MSMT17": {"DMF": (50.6, 21.5), "TransMatcher": (47.3, 18.4), "QAConv-GS": (45.9, 17.2)}},
             mmet=f"{_T2}/mmet.yml"),
    PaperRow("Table 3", "MSMT17", f"{_T3}/dmf_msmt17.yml",
             (f"{_T3}/bagtricks_vit_msmt17.yml", f"{_T3}/bagtricks_R50_msmt17.yml"),
             {"Market1501": {"DMF": (81.3, 55.1), "TransMatcher": (80.1, 52.0), "QAConv-GS": (79.1, 49.5)},
              "CUHK03NP": {"DMF": (26.1, 24.7), "TransMatcher": (23.7, 22.5), "QAConv-GS": (20.9, 20.6)}},
             mmet=f"{_T3}/mmet_msmt17.yml"),
    PaperRow("Table 3", "MSMT17(all)", f"{_T3}/dmf_msmt17_all.yml",
             (f"{_T3}/bagtricks_vit_msmt17_all.yml", f"{_T3}/bagtricks_R50_msmt17_all.yml"),
             {"Market1501": {"DMF": (82.6, 58.8), "TransMatcher": (82.6, 58.4), "QAConv-GS": (82.4, 56.9)},
              "CUHK03NP": {"DMF": (34.0, 32.1), "TransMatcher": (31.9, 30.7), "QAConv-GS": (27.6, 28.0)}},
             mmet=f"{_T3}/mmet_msmt17_all.yml"),
    PaperRow("Table 4", "RandPerson", f"{_T4}/dmf.yml", (f"{_T4}/bagtricks_vit.yml", f"{_T4}/bagtricks_R50.yml"),
             {"Market1501": {"DMF": (78.7, 52.0), "TransMatcher": (77.3, 49.1), "QAConv-GS": (76.7, 46.7)},
              "CUHK03NP": {"DMF": (21.5, 19.3), "TransMatcher": (17.1, 16.0), "QAConv-GS": (18.4, 16.1)},
              "MSMT17": {"DMF": (52.4, 18.9), "TransMatcher": (48.3, 17.7), "QAConv-GS": (45.1, 15.5)}},
             mmet=f"{_T4}/mmet.yml"),
)

#: FineGPR pre-training configs the fine-tuning rows start from (DMF's three, then MMET's).
PRETRAIN_CONFIGS: tuple[str, ...] = (
    "configs/FineGPR/dmf_pretrain_text_only.yml",
    "configs/FineGPR/dmf_pretrain_image_only.yml",
    "configs/FineGPR/dmf_pretrain_text_image.yml",
    "configs/FineGPR/mmet_pretrain.yml",
)


def paper_configs(rows: Iterable[PaperRow] = PAPER_ROWS) -> list[str]:
    """Every config behind the paper tables: pre-training, then per row DMF, MMET and baselines (no duplicates)."""
    seen: list[str] = list(PRETRAIN_CONFIGS)
    for row in rows:
        for path in (row.config, *([row.mmet] if row.mmet else []), *row.baselines):
            if path not in seen:
                seen.append(path)
    return seen


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _parse_log(path: str) -> dict[str, dict[str, float]]:
    """Last fast-reid csv-format result table per test set in a ``log.txt``."""
    results: dict[str, dict[str, float]] = {}
    headers: list[str] | None = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = _ANSI.sub("", raw).strip()
            if not line.startswith("|"):
                headers = None  # a table ends at the next log line
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == "Dataset":
                headers = cells
                continue
            if headers is None or set(cells[0]) <= set(":- ") or len(cells) != len(headers):
                continue
            values = {}
            for name, cell in zip(headers[1:], cells[1:]):
                try:
                    values[name] = float(cell)
                except ValueError:
                    continue
            results[cells[0]] = values
    return results


def read_run_results(output_dir: str) -> dict[str, dict[str, float]]:
    """Results of one run: ``{test set: {metric: value in percent}}``; {} if the run has none yet.

    Reads ``<output_dir>/results.json`` when present, else parses fast-reid's
    ``<output_dir>/log.txt``.

    Raises:
        ValueError: ``results.json`` exists but is not a fast-reid result dict.
    """
    json_path = os.path.join(output_dir, "results.json")
    if os.path.isfile(json_path):
        try:
            return load_results(json_path)
        except json.JSONDecodeError as err:
            raise ValueError(f"{json_path}: not valid JSON ({err})") from err
    log_path = os.path.join(output_dir, "log.txt")
    if os.path.isfile(log_path):
        return _parse_log(log_path)
    return {}


def output_dir_of(config_path: str) -> str:
    """``OUTPUT_DIR`` of a config file after ``_BASE_`` inheritance (fast-reid defaults + DMF keys).

    Raises:
        FileNotFoundError: no such config file.
    """
    from ..config import load_config

    return load_config(config_path).OUTPUT_DIR


def _fmt(score: Score | None) -> str:
    return "-" if score is None else f"{score[0]:.1f} / {score[1]:.1f}"


def _ours(results: dict[str, dict[str, float]], test: str) -> Score | None:
    values = results.get(test)
    if not values or "Rank-1" not in values or "mAP" not in values:
        return None
    return values["Rank-1"], values["mAP"]


def paper_table(table: str, base_dir: str = ".", repo_dir: str = ".") -> str:
    """One paper table with our Rank-1 / mAP next to the published numbers, as a pipe table.

    Args:
        table: ``"Table 1"`` .. ``"Table 4"``.
        base_dir: folder that relative ``OUTPUT_DIR`` values are relative to
            (where ``tools/train_net.py`` was run).
        repo_dir: repository root (config paths in :data:`PAPER_ROWS` are relative to it).

    Returns:
        Table 1: one row per pre-training variant, then MMET (FineGPR MMET
        pre-training, same fine-tuning) and the fast-reid baselines, columns
        "ours" and "paper" per test set (MMET and the baselines: "-" as
        paper). Tables 2-4: one row per source -> test pair, columns DMF
        (ours), MMET (ours), the fast-reid baselines (ours), then the
        paper's DMF, TransMatcher and QAConv-GS. Runs without results (or
        rows without an MMET config) show "-".

    Raises:
        ValueError: unknown table name.
    """
    rows = [r for r in PAPER_ROWS if r.table == table]
    if not rows:
        raise ValueError(f"unknown table {table!r}; expected one of {sorted({r.table for r in PAPER_ROWS})}")

    def results_of(config: str) -> dict[str, dict[str, float]]:
        out = output_dir_of(os.path.join(repo_dir, config))
        return read_run_results(out if os.path.isabs(out) else os.path.join(base_dir, out))

    if table == "Table 1":
        tests = rows[0].tests
        headers = ["Pre-training (fine-tune DukeMTMC)"]
        for test in tests:
            headers += [f"{TEST_SET_LABELS[test]} ours", f"{TEST_SET_LABELS[test]} paper"]
        body = []
        for row in rows:
            ours = results_of(row.config)
            line = [f"DMF {row.label}"]
            for test in tests:
                line += [_fmt(_ours(ours, test)), _fmt(row.paper[test]["DMF"])]
            body.append(line)
        others = [(f"MMET {r.label}", r.mmet) for r in rows if r.mmet]
        others += [(_baseline_label(b), b) for b in rows[0].baselines]
        for label, config in others:
            ours = results_of(config)
            line = [label]
            for test in tests:
                line += [_fmt(_ours(ours, test)), "-"]
            body.append(line)
        return tabulate(body, headers=headers, tablefmt="pipe")

    headers = ["Train -> Test", "DMF ours", "MMET ours"]
    baseline_labels = [_baseline_label(b) + " ours" for b in rows[0].baselines]
    headers += baseline_labels + [f"{m} paper" for m in PAPER_METHODS]
    body = []
    for row in rows:
        ours = results_of(row.config)
        mmet = results_of(row.mmet) if row.mmet else {}
        baselines = [results_of(b) for b in row.baselines]
        for test in row.tests:
            line = [f"{row.label} -> {TEST_SET_LABELS[test]}", _fmt(_ours(ours, test)), _fmt(_ours(mmet, test))]
            line += [_fmt(_ours(b, test)) for b in baselines]
            line += [_fmt(row.paper[test].get(m)) for m in PAPER_METHODS]
            body.append(line)
    return tabulate(body, headers=headers, tablefmt="pipe")


def _baseline_label(config: str) -> str:
    stem = os.path.splitext(os.path.basename(config))[0]
    for prefix, label in BASELINE_LABELS.items():
        if stem.startswith(prefix):
            return label
    return stem
