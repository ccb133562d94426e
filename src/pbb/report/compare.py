"""`pbb compare`: several runs side by side, one row per run.

Per mode × distribution each row shows the w/o IO accuracy, the control accuracy and the
PBB effect, each with its interval, from the runs' final evaluation. Below it, each run's
curriculum stages as its `curriculum.json` has them (what it trained, not what today's
code would resolve its config to), each group's exposures by record kind from its
`data/ledger.json` (what the stage files held, records × epochs), and the config fields
on which the runs differ, so a reader sees at once what the comparison varies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pbb.errors import PbbError
from pbb.io import write_text
from pbb.records import LEDGER_KINDS
from pbb.report.format import (
    KIND_LABEL,
    cell_text,
    dist_label,
    effect_text,
    escape,
    finite,
    flatten,
    md_table,
    mode_dists,
    mode_label,
    number,
    stages_text,
)
from pbb.report.load import RunData, load_run
from pbb.report.provenance import ledger_group_label, ledger_groups

if TYPE_CHECKING:
    from pbb.records import Cell, Effect

# Config keys every run has but that say nothing about what was varied.
_IGNORED_KEYS = {"name"}


def _final(run: RunData) -> tuple[dict[tuple[str, str, str], Cell], dict[tuple[str, str], Effect]]:
    """The final condition's cells keyed by (group, mode, distribution) and effects keyed by (mode, distribution)."""
    cond = run.conditions.get("final")
    if cond is None:
        return {}, {}
    return ({(c.group, c.mode, c.distribution): c for c in cond.cells if c.parts is None},  # a composed split is not its group
            {(e.mode, e.distribution): e for e in cond.pbb_effect})


def _differences(runs: list[RunData], labels: list[str]) -> str | None:
    """A table of the config fields whose values differ between runs; None if none do."""
    flat = [dict(flatten(r.config)) for r in runs]
    keys = sorted({k for f in flat for k in f} - _IGNORED_KEYS)
    rows = []
    for k in keys:
        values = [f.get(k, "–") for f in flat]
        if len({repr(v) for v in values}) > 1:
            rows.append([f"`{escape(k)}`"] + [escape(v) for v in values])
    return md_table(["config field"] + labels, rows, "l" * (len(runs) + 1)) if rows else None


def _stages(run: RunData) -> str:
    text = stages_text(run.stages, run.doc_kind, run.logs)
    if run.stages is None:  # a run from an older version: what the logs show, said as such
        text += " (no `curriculum.json`" + ("; from its training logs)" if run.logs else ")")
    return text


def _exposures(runs: list[RunData], labels: list[str]) -> list[str]:
    """Per run and group, the exposures of each record kind over all stages; runs without a ledger said so."""
    rows, missing = [], []
    for run, label in zip(runs, labels):
        if run.ledger is None:
            missing.append(label)
            continue
        for g, rep in ledger_groups(run.ledger):
            by_kind = [number(run.ledger.total(group=g, replay=rep, kind=k)) for k in LEDGER_KINDS]
            rows.append([escape(label), ledger_group_label(g, rep), *by_kind, number(run.ledger.total(group=g, replay=rep))])
    out = ["**Exposures per group** (records × epochs over all stages, from each run's `data/ledger.json`)", ""]
    if rows:
        out.append(md_table(["run", "group", *(KIND_LABEL[k] for k in LEDGER_KINDS), "total"], rows, "ll" + "r" * (len(LEDGER_KINDS) + 1)))
    if missing:
        out += ["", f"No `data/ledger.json` (a build of an older version) in: {', '.join(escape(x) for x in missing)}."]
    return out


def compare_runs(run_dirs: list[str | Path], out_file: str | Path | None = None) -> str:
    """A side-by-side Markdown table of several runs; also written to `out_file` if given.

    Raises PbbError naming the directory when one is not a run directory or has no metrics.
    """
    if not run_dirs:
        raise PbbError("pbb compare: no run directories given; pass two or more, e.g. `pbb compare runs/a runs/b`")
    runs = [load_run(d) for d in run_dirs]
    labels = [r.name for r in runs]
    if len(set(labels)) < len(labels):  # same config name twice: the directories tell them apart
        labels = [str(r.run_dir) for r in runs]
    finals = [_final(r) for r in runs]
    cols = mode_dists([*(e for _, effects in finals for e in effects.values()), *(c for cells, _ in finals for c in cells.values())])
    header = ["run", "model", "curriculum", "doc"]
    for m, d in cols:
        tag = f"{mode_label(m)}, {dist_label(d)}"
        header += [f"{tag}: w/o IO", f"{tag}: control", f"{tag}: PBB effect"]
    rows = []
    for run, label, (cells, effects) in zip(runs, labels, finals):
        cfg = run.config
        doc = cfg["data"].get("doc_kind", "–") if isinstance(cfg.get("data"), dict) else "–"
        row = [escape(label), escape(cfg.get("model", "–")), escape(cfg.get("curriculum", "–")), escape(doc)]
        for m, d in cols:
            row += [cell_text(cells.get(("without_io", m, d))), cell_text(cells.get(("control", m, d))), effect_text(effects.get((m, d)))]
        rows.append(row)
    level = finite(runs[0].metrics.confidence) or 0.95
    parts = [
        f"# Comparison of {len(runs)} runs",
        "",
        f"After training; accuracy [{level:.0%} interval] (correct/n); PBB effect = w/o IO − control, in percentage points.",
        "",
        md_table(header, rows, "llll" + "r" * (len(header) - 4)),
    ]
    no_final = [label for run, label in zip(runs, labels) if "final" not in run.conditions]
    if no_final:
        parts += ["", f"No evaluation after training in: {', '.join(escape(x) for x in no_final)} (–)."]
    parts += ["", "**Curriculum stages** (from each run's `curriculum.json`)", ""]
    parts += [f"- {escape(label)}: {_stages(run)}" for run, label in zip(runs, labels)]
    parts += ["", *_exposures(runs, labels)]
    diff = _differences(runs, [escape(x) for x in labels])
    if diff:
        parts += ["", "**What differs between the runs' configs**", "", diff]
    text = "\n".join(parts) + "\n"
    if out_file is not None:
        write_text(out_file, text)
    return text
