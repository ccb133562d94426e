"""Read a run directory and render its `report.md`.

The report is written for a reader who has 20 seconds: what was run, then the PBB effect
with its interval and a sentence that reads it, then the detail (accuracy tables, curves,
per-program results, timings, data drops). Every section says plainly when its input is
absent (no training for curriculum 'none', no baselines, no manifest) instead of failing:
only a missing or unreadable `eval/metrics.json` stops the report, since without it there
is nothing to report.

The formatting helpers here (`pct`, `interval`, `cell_text`, `md_table`, ...) are shared
with `pbb compare` so both print numbers the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pbb.errors import PbbError

if TYPE_CHECKING:
    from pbb.config import StageSpec, TrainConfig

GROUPS = ("with_io", "without_io", "control")
GROUP_LABEL = {"with_io": "w/ IO", "without_io": "w/o IO", "control": "control"}
MODE_LABEL = {"direct": "direct", "cot": "CoT"}
DIST_LABEL = {"test": "test", "shifted": "shifted"}
CONDITION_LABEL = {
    "final": "after training",
    "zero_shot": "zero-shot (base model, name only)",
    "in_context": "in-context (base model, source in the prompt)",
}
CELL_KEYS = ("group", "mode", "distribution")  # what a cell of metrics.json is keyed by
BASELINES = ("zero_shot", "in_context")  # base-model conditions, reported after the trained model
PER_GROUP_SHOWN = 12  # above this many programs in a group, show only the best and worst few
TOP_BOTTOM = 5
FAR_BETTER = 0.2  # an effect of 20+ points with its interval above zero reads "far better than chance"


# ---------------------------------------------------------------- loading


@dataclass
class RunData:
    """Everything the report reads from a run directory; absent parts are None / empty."""

    run_dir: Path
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    data_manifest: dict[str, Any] | None = None
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_log_lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # unreadable optional files, said in the report
    stages: list[tuple[StageSpec, TrainConfig]] | None = None  # the curriculum's stages; None if unknown

    @property
    def name(self) -> str:
        return str(self.config.get("name") or (self.manifest or {}).get("name") or self.run_dir.name)

    @property
    def conditions(self) -> dict[str, dict[str, Any]]:
        conds = self.metrics.get("conditions")
        return {k: v for k, v in conds.items() if isinstance(v, dict)} if isinstance(conds, dict) else {}

    @property
    def trained(self) -> bool:
        """False for curriculum 'none', where the 'final' evaluation is of the base model itself."""
        if self.stages is not None:
            return bool(self.stages)
        steps = (self.manifest or {}).get("steps")
        return bool(self.logs) or (isinstance(steps, dict) and any(str(k).startswith("train:") for k in steps))


def load_metrics(run_dir: Path) -> dict[str, Any]:
    """Read `eval/metrics.json`, or raise a PbbError saying what to run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PbbError(f"{run_dir}: not a run directory (no such directory); pass runs/<name> as written by `pbb run`")
    path = run_dir / "eval" / "metrics.json"
    if not path.exists():
        if not (run_dir / "config.yaml").exists() and not (run_dir / "manifest.json").exists():
            raise PbbError(f"{run_dir}: not a run directory (no config.yaml or manifest.json); pass runs/<name> as written by `pbb run`")
        raise PbbError(f"{path}: no metrics yet; run `pbb run CONFIG --out {run_dir}` to finish the evaluation first")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PbbError(f"{path}: not valid JSON ({e}); delete it and rerun `pbb run` to recompute the metrics") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("conditions"), dict):
        raise PbbError(f"{path}: has no 'conditions' mapping; delete it and rerun `pbb run` to recompute the metrics")
    return metrics


def _read_optional_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """A JSON object, or None when absent; an unreadable file is noted, not fatal."""
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(f"`{path.name}` could not be read ({type(e).__name__}); its sections are left out")
        return None
    return obj if isinstance(obj, dict) else None


def _read_log(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a training log, skipping lines a kill cut short (and counting them)."""
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
        else:
            bad += 1
    return records, bad


def log_points(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stage's log records with a numeric step, one per step (the last written), in step order.

    A killed stage resumes from its last trainer checkpoint and logs those steps again;
    the later lines are the ones the final model descends from.
    """
    by_step = {r["step"]: r for r in recs if _num(r.get("step")) is not None}
    return [by_step[k] for k in sorted(by_step)]


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory. Only `eval/metrics.json` is required."""
    run_dir = Path(run_dir)
    metrics = load_metrics(run_dir)
    run = RunData(run_dir=run_dir, metrics=metrics)
    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists():
        try:
            cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
            run.config = cfg if isinstance(cfg, dict) else {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            run.problems.append(f"`config.yaml` could not be read ({type(e).__name__}); the experiment summary is partial")
    run.stages = resolved_stages(run.config) if run.config else None
    run.manifest = _read_optional_json(run_dir / "manifest.json", run.problems)
    run.data_manifest = _read_optional_json(run_dir / "data" / "manifest.json", run.problems)
    logs_dir = run_dir / "logs"
    if logs_dir.is_dir():
        for path in sorted(logs_dir.glob("*.jsonl")):
            records, bad = _read_log(path)
            run.logs[path.stem] = records
            if bad:
                run.bad_log_lines[path.stem] = bad
    # curriculum order, not file-name order (a custom curriculum's stages need not sort)
    order = {spec.name: i for i, (spec, _) in enumerate(run.stages or [])}
    run.logs = dict(sorted(run.logs.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    return run


# ---------------------------------------------------------------- formatting


def _num(x: Any) -> float | None:
    """A finite float, or None (missing, null, NaN, or not a number)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _ci(ci: Any) -> tuple[float, float] | None:
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = _num(ci[0]), _num(ci[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _fixed(x: float, sign: bool = False) -> str:
    """One decimal, optionally signed; zero never carries a sign ('-0.0' would read as a negative effect)."""
    text = f"{x:+.1f}" if sign else f"{x:.1f}"
    return "0.0" if text in ("-0.0", "+0.0") else text


def pct(x: Any) -> str:
    """0.54 -> '54.0%'; '–' when absent."""
    v = _num(x)
    return "–" if v is None else _fixed(100 * v) + "%"


def interval(ci: Any) -> str:
    """[0.441, 0.632] -> '[44.1, 63.2]' (percentage points); '' when absent."""
    c = _ci(ci)
    return "" if c is None else f"[{_fixed(100 * c[0])}, {_fixed(100 * c[1])}]"


def cell_text(cell: dict[str, Any] | None) -> str:
    """'54.0% [44.1, 63.2] (81/150)': accuracy, interval, correct/n."""
    if not cell:
        return "–"
    parts = [pct(cell.get("accuracy"))]
    if iv := interval(cell.get("ci")):
        parts.append(iv)
    if isinstance(cell.get("correct"), int) and isinstance(cell.get("n"), int):
        parts.append(f"({cell['correct']}/{cell['n']})")
    return " ".join(parts)


def effect_text(effect: dict[str, Any] | None) -> str:
    """'+48.0 points [37.1, 58.3]'; '–' when absent."""
    if not effect or _num(effect.get("effect")) is None:
        return "–"
    text = f"{_fixed(100 * effect['effect'], sign=True)} points"
    if iv := interval(effect.get("ci")):
        text += f" {iv}"
    return text


def escape(text: Any) -> str:
    """Make any text (a hostile program name, an error message) safe inside a table cell."""
    s = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s.replace("<", "&lt;").replace(">", "&gt;")


def code(text: Any) -> str:
    """`text` as inline code in a table cell; a backtick inside would end the span early."""
    return f"`{escape(text).replace('`', chr(39))}`"


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table padded so it also reads as plain text.

    `align` has one letter per column, 'l' or 'r' (default: first column left, the rest right).
    """
    ncol = len(header)
    align = align or "l" + "r" * (ncol - 1)
    rows = [[str(c) for c in r] + [""] * (ncol - len(r)) for r in rows]
    widths = [max(3, len(header[i]), *(len(r[i]) for r in rows)) for i in range(ncol)]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align)]
        return "| " + " | ".join(padded) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align)) + " |"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def duration(seconds: Any) -> str:
    """512.3 -> '8m 32s'."""
    s = _num(seconds)
    if s is None:
        return "–"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def plural(n: Any, noun: str) -> str:
    """'1 epoch', '3 epochs', '2.5 epochs'."""
    num = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{num} {noun}" if n == 1 else f"{num} {noun}s"


def mode_label(mode: str) -> str:
    return MODE_LABEL.get(mode, str(mode))


def dist_label(dist: str) -> str:
    return DIST_LABEL.get(dist, str(dist))


def group_label(group: str) -> str:
    return GROUP_LABEL.get(group, str(group))


def condition_label(cond: str, trained: bool = True) -> str:
    """'after training', 'zero-shot (base model, name only)', 'after stage1', ..."""
    if cond == "final" and not trained:
        return "base model (no training)"
    if cond in CONDITION_LABEL:
        return CONDITION_LABEL[cond]
    return f"after {cond}"  # an intermediate checkpoint (eval.after_every_stage)


def short_label(cond: str, trained: bool = True) -> str:
    """The label without its parenthesis, for legends and table cells."""
    return condition_label(cond, trained).split(" (")[0]


def ordered_conditions(conditions: dict[str, Any]) -> list[str]:
    """final, then intermediate checkpoints, then the baselines."""
    middle = [c for c in conditions if c != "final" and c not in BASELINES]
    return [c for c in ("final", *sorted(middle, key=_natural), *BASELINES) if c in conditions]


def _order(values: set[str], preferred: tuple[str, ...]) -> list[str]:
    return [v for v in preferred if v in values] + sorted(values - set(preferred))


def mode_dists(cells: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (mode, distribution) columns present, direct before CoT, test before shifted."""
    modes = _order({str(c.get("mode")) for c in cells}, tuple(MODE_LABEL))
    dists = _order({str(c.get("distribution")) for c in cells}, tuple(DIST_LABEL))
    present = {(str(c.get("mode")), str(c.get("distribution"))) for c in cells}
    return [(m, d) for m in modes for d in dists if (m, d) in present]


def records(cond: dict[str, Any], key: str, *needs: str) -> list[dict[str, Any]]:
    """The records under `cond[key]` that are mappings with a string under each of `needs`.

    Records without the fields a table is keyed by cannot be placed in it, so they are skipped
    rather than shown under a 'None' column.
    """
    recs = cond.get(key) if isinstance(cond, dict) else None
    if not isinstance(recs, list):
        return []
    return [r for r in recs if isinstance(r, dict) and all(isinstance(r.get(n), str) for n in needs)]


# ---------------------------------------------------------------- the experiment in one paragraph


def resolved_stages(config: dict[str, Any]) -> list[tuple[StageSpec, TrainConfig]] | None:
    """The curriculum's stages, each with its merged train config, from a run's config.yaml;
    None if they cannot be resolved.

    Built without full validation: the config was validated when the run started, and
    validating again would need the run's suite registered in this process.
    """
    from pbb.config import CurriculumOptions, DataConfig, Experiment, StageSpec, TrainConfig

    try:
        exp = Experiment.model_construct(
            name=str(config.get("name", "")),
            curriculum=str(config.get("curriculum", "")),
            curriculum_options=CurriculumOptions(**(config.get("curriculum_options") or {})),
            data=DataConfig(**(config.get("data") or {})),
            train=TrainConfig(**(config.get("train") or {})),
            stages=[StageSpec(**s) for s in config.get("stages") or []] or None,
        )
        if exp.curriculum != "custom":
            from pbb.train.curricula import CURRICULA

            if exp.curriculum not in CURRICULA:
                return None
        return [(s, exp.stage_train_config(s)) for s in exp.resolved_stages()]
    except (ValueError, TypeError, KeyError, AttributeError, PbbError):
        # a config from another pbb version (ValidationError is a ValueError): fall back to what the logs show
        return None


def _source_text(src: Any, doc_kind: str) -> str:
    """One data source of a stage in words: 'code docs of w/o IO', 'CoT examples of w/ IO'."""
    group = "all programs" if src.group == "all" else group_label(src.group)
    kind = {
        "doc": f"{'NL' if doc_kind == 'nl' else 'code'} docs",
        "code_doc": "code docs",
        "nl_doc": "NL docs",
        "direct": "direct examples",
        "cot": "CoT examples",
    }.get(src.kind)
    if src.kind == "replay":
        return f"replay of {src.count} stage-1 examples" if src.count else "replay of stage-1 examples"
    text = f"{kind} of {group}"
    if src.kind in ("direct", "cot") and src.split == "natural":
        text += " (natural inputs)"
    if src.max_per_program is not None:
        text += f" (≤{src.max_per_program} per program)"
    if src.repeat > 1:
        text += f" ×{src.repeat}"
    return text


def _stages_text(run: RunData) -> str:
    cfg = run.config
    doc_kind = str((cfg.get("data") or {}).get("doc_kind", "code"))
    stages = run.stages
    if stages is not None:
        if not stages:
            return "no training"
        parts = []
        for spec, tc in stages:
            hyper = f"{spec.method.upper()}, {plural(tc.epochs, 'epoch')}, lr {tc.learning_rate:g}"
            parts.append(f"{spec.name} ({hyper}: {', '.join(_source_text(s, doc_kind) for s in spec.sources)})")
        return ", then ".join(parts)
    if run.logs:  # config unreadable: the logs still name the stages
        return ", then ".join(f"{s} ({'GRPO' if any('reward' in r for r in recs) else 'SFT'})" for s, recs in run.logs.items())
    return "stages unknown"


def _program_counts(run: RunData) -> dict[str, int]:
    """Programs per group as built (data/manifest.json) or, failing that, as configured."""
    counts = (run.data_manifest or {}).get("counts")
    if isinstance(counts, dict):
        for v in (counts, *counts.values()):
            if isinstance(v, dict) and all(isinstance(v.get(g), int) for g in GROUPS):
                return {g: v[g] for g in GROUPS}
    data = run.config.get("data") or {}
    return {g: data[f"n_{g}"] for g in GROUPS if isinstance(data.get(f"n_{g}"), int)}


def summary_section(run: RunData) -> str:
    """One paragraph: model, suite, curriculum (stages, methods), groups, inputs, doc kind, seed."""
    cfg = run.config
    if not cfg:
        return "The run's `config.yaml` is absent, so the experiment cannot be described; the results below come from `eval/metrics.json`."
    data = cfg.get("data") or {}
    train = cfg.get("train") or {}
    ev = cfg.get("eval") or {}
    finetune = "LoRA" if train.get("finetune") == "lora" else "full finetuning"
    suite = f"`{escape(cfg.get('suite', '?'))}`"  # its options (every default filled in) are listed under Data
    counts = _program_counts(run)
    groups = ", ".join(f"{counts[g]} {group_label(g)}" for g in GROUPS if g in counts)
    if data.get("n_composed"):
        groups += f" (+{data['n_composed']} composed, evaluated with w/o IO)"
    inputs = (
        f"{data.get('train_inputs', '?')} training inputs ({data.get('cot_inputs', '?')} also as CoT), "
        f"{data.get('test_inputs', '?')} test inputs"
        + (f" and {data['shifted_inputs']} shifted ones" if data.get("shifted_inputs") else " (no shifted inputs)")
    )
    if data.get("natural_inputs"):
        inputs += f", {data['natural_inputs']} natural inputs"
    doc = "source code" if data.get("doc_kind", "code") == "code" else "natural-language descriptions"
    modes = " and ".join(mode_label(m) for m in ev.get("modes", [])) or "?"
    temp = ev.get("temperature", 0)
    sampling = "greedy" if not temp else f"temperature {temp}, {ev.get('n_samples', 1)} samples per prompt"
    baselines = [short_label(b) for b in BASELINES if b in run.conditions]
    evaluated = f"Evaluated {modes}, {sampling}"
    if baselines:
        evaluated += f", with the {' and '.join(baselines)} baseline{'s' if len(baselines) > 1 else ''}"
    curriculum = escape(cfg.get("curriculum", "?"))
    model = f"`{escape(cfg.get('model', '?'))}`"
    if run.trained:
        what = f"trained {model} ({finetune}) on the {suite} suite with the **{curriculum}** curriculum: {_stages_text(run)}. "
    else:
        what = f"evaluated {model} untrained (curriculum **{curriculum}**) on the {suite} suite. "
    return (
        f"**{escape(run.name)}** {what}"
        f"Programs: {groups or 'counts unknown'}; per program {inputs}. "
        f"Declarative documents hold the {doc} in {plural(data.get('templates_per_program', '?'), 'pointer template')}. "
        f"{evaluated}. Seed {cfg.get('seed', '?')}."
    )


# ---------------------------------------------------------------- the headline


def reading(effect: dict[str, Any], doc_kind: str = "code") -> str:
    """The one sentence that says what a PBB effect and its interval mean."""
    mode = mode_label(str(effect.get("mode")))
    head = f"{mode[0].upper() + mode[1:]}, {dist_label(str(effect.get('distribution')))} inputs: "
    head += f"w/o IO {pct(effect.get('without_io'))} vs control {pct(effect.get('control'))}, PBB effect {effect_text(effect)}"
    ci, e = _ci(effect.get("ci")), _num(effect.get("effect"))
    seen = "as code" if doc_kind == "code" else "as descriptions"
    if e is None:
        return head + " — no effect was computed."
    if ci is None:
        return head + " — no interval was computed, so no conclusion can be drawn."
    if ci[0] > 0:
        degree = "far better" if e >= FAR_BETTER else "better"
        return head + f" — the interval excludes zero: the model computes programs it saw only {seen} {degree} than chance."
    if ci[1] < 0:
        return head + " — the interval lies below zero: w/o IO programs score worse than never-seen ones; check the split and the data."
    return head + " — the interval includes zero: no evidence of PBB in this mode."


def headline_section(run: RunData) -> str:
    """The PBB effect per mode × distribution with its interval, and a sentence reading each."""
    conds = run.conditions
    with_effects = [c for c in ordered_conditions(conds) if records(conds[c], "pbb_effect", "mode", "distribution")]
    cond = "final" if "final" in with_effects else next(iter(with_effects), None)
    if cond is None:
        return "No PBB effect was computed (the metrics hold no `pbb_effect`: were both w/o IO and control evaluated?)."
    effects = records(conds[cond], "pbb_effect", "mode", "distribution")
    order = {md: i for i, md in enumerate(mode_dists(effects))}
    effects.sort(key=lambda e: order.get((str(e.get("mode")), str(e.get("distribution"))), 99))
    level = _num(run.metrics.get("confidence")) or 0.95
    rows = [
        [mode_label(str(e.get("mode"))), dist_label(str(e.get("distribution"))), pct(e.get("without_io")), pct(e.get("control")), effect_text(e)]
        for e in effects
    ]
    doc_kind = str((run.config.get("data") or {}).get("doc_kind", "code"))
    lines = []
    if cond != "final":
        lines.append(f"(No PBB effect after training in the metrics; these numbers are for the {condition_label(cond, run.trained)} condition.)\n")
    elif not run.trained:
        lines.append("(Nothing was trained: w/o IO and control programs are equally unseen, so any effect here is a difference "
                     "between the groups themselves, and should be zero.)\n")
    lines.append(md_table(["mode", "inputs", "w/o IO", "control", f"PBB effect [{level:.0%} interval]"], rows, "llrrr"))
    lines.append("")
    lines += [f"- {reading(e, doc_kind)}" for e in effects]
    by_condition = _effects_by_condition(run)
    if by_condition:
        lines += ["", "The PBB effect in every evaluated condition (a baseline's should be near zero: "
                  "the base model treats both groups alike):", "", by_condition]
    return "\n".join(lines)


def _effects_by_condition(run: RunData) -> str | None:
    """Rows: condition (checkpoints, baselines); columns: mode × distribution; None if only one condition has effects."""
    conds = {c: records(run.conditions[c], "pbb_effect", "mode", "distribution") for c in ordered_conditions(run.conditions)}
    conds = {c: e for c, e in conds.items() if e}
    if len(conds) < 2:
        return None
    cols = mode_dists([e for es in conds.values() for e in es])
    rows = []
    for c, es in conds.items():
        by_md = {(str(e.get("mode")), str(e.get("distribution"))): e for e in es}
        rows.append([short_label(c, run.trained)] + [effect_text(by_md.get(md)) for md in cols])
    return md_table(["condition"] + [f"{mode_label(m)}, {dist_label(d)}" for m, d in cols], rows)


# ---------------------------------------------------------------- accuracy tables


def accuracy_table(cond: dict[str, Any]) -> str:
    """Rows: group; columns: mode × distribution; cells '54.0% [44.1, 63.2] (81/150)'."""
    cells = records(cond, "cells", *CELL_KEYS)
    cols = mode_dists(cells)
    by_key = {(str(c.get("group")), str(c.get("mode")), str(c.get("distribution"))): c for c in cells}
    groups = _order({str(c.get("group")) for c in cells}, GROUPS)
    header = ["group"] + [f"{mode_label(m)}, {dist_label(d)}" for m, d in cols]
    rows = [[group_label(g)] + [cell_text(by_key.get((g, m, d))) for m, d in cols] for g in groups]
    return md_table(header, rows)


def _unparsed_table(conds: dict[str, Any], trained: bool) -> str | None:
    """Answers the grader could not parse: rows condition × group, columns mode × distribution; None if all parsed."""
    cells = {name: records(conds[name], "cells", *CELL_KEYS) for name in ordered_conditions(conds)}
    if not any(isinstance(c.get("unparsed"), int) and c["unparsed"] > 0 for cs in cells.values() for c in cs):
        return None
    cols = mode_dists([c for cs in cells.values() for c in cs])
    rows = []
    for name, cs in cells.items():
        by_key = {(c["group"], c["mode"], c["distribution"]): c for c in cs}
        for g in _order({c["group"] for c in cs}, GROUPS):
            row = [short_label(name, trained), group_label(g)]
            for m, d in cols:
                c = by_key.get((g, m, d))
                row.append(f"{c['unparsed']}/{c.get('n', '?')}" if c and isinstance(c.get("unparsed"), int) else "–")
            rows.append(row)
    return md_table(["condition", "group"] + [f"{mode_label(m)}, {dist_label(d)}" for m, d in cols], rows, "ll" + "r" * len(cols))


def _pass_at_k_table(cond: dict[str, Any]) -> str | None:
    """pass@k for k > 1 when several samples were drawn per prompt; None otherwise."""
    cells = records(cond, "cells", *CELL_KEYS)
    ks = sorted({k for c in cells for k in (c.get("pass_at_k") or {}) if str(k).isdigit() and int(k) > 1}, key=int)
    if not ks:
        return None
    rows = [[group_label(str(c.get("group"))), mode_label(str(c.get("mode"))), dist_label(str(c.get("distribution")))]
            + [pct((c.get("pass_at_k") or {}).get(k)) for k in ks] for c in cells]
    return md_table(["group", "mode", "inputs"] + [f"pass@{k}" for k in ks], rows, "lll" + "r" * len(ks))


def accuracy_section(run: RunData) -> str:
    conds = run.conditions
    level = _num(run.metrics.get("confidence")) or 0.95
    nb = run.metrics.get("n_bootstrap")
    out = [
        f"Each cell: accuracy, its {level:.0%} interval in percentage points (cluster bootstrap over programs"
        + (f", {nb} resamples" if nb else "") + "), and correct/n."
    ]
    for name in ordered_conditions(conds):
        label = condition_label(name, run.trained)
        out += ["", f"**{label[0].upper() + label[1:]}**", "", accuracy_table(conds[name])]
        if pk := _pass_at_k_table(conds[name]):
            out += ["", pk]
    # without training, the 'final' evaluation is the zero-shot baseline: not missing
    missing = [short_label(b) for b in BASELINES if b not in conds and (run.trained or b != "zero_shot")]
    if missing:
        out += ["", f"Not evaluated: the {' and '.join(missing)} baseline{'s' if len(missing) > 1 else ''} (see `eval.baselines`)."]
    unparsed = _unparsed_table(conds, run.trained)
    all_cells = [c for name in conds for c in records(conds[name], "cells", *CELL_KEYS)]
    if unparsed:
        out += ["", "**Unparsed answers** (counted as wrong)", "", unparsed]
    elif all_cells and all(c.get("unparsed") == 0 for c in all_cells):
        out += ["", "Every answer parsed."]
    return "\n".join(out)


# ---------------------------------------------------------------- training


def training_section(run: RunData, plot: str | None) -> str:
    """A row per stage (steps, loss and reward first → last), then the curves."""
    if not run.logs:
        if run.stages == []:
            return "No training: this curriculum evaluates the base model."
        return "No training logs (`logs/*.jsonl` absent): training did not run or did not log."
    rows = []
    for stage, recs in run.logs.items():
        points = log_points(recs)
        steps = [r for r in points if _num(r.get("loss")) is not None]
        rewards = [r["reward"] for r in points if _num(r.get("reward")) is not None]
        first = f"{steps[0]['loss']:.3f}" if steps else "–"
        last = f"{steps[-1]['loss']:.3f}" if steps else "–"
        last_step = points[-1]["step"] if points else 0
        rew = f"{rewards[0]:.3f} → {rewards[-1]:.3f}" if rewards else "–"
        rows.append([escape(stage), str(int(last_step)), f"{first} → {last}", rew, str(run.bad_log_lines.get(stage, 0))])
    unlogged = [spec.name for spec, _ in run.stages or [] if spec.name not in run.logs]
    out = [md_table(["stage", "steps", "loss first → last", "reward first → last", "unreadable lines"], rows)]
    if unlogged:
        out.append(f"\nNo log for stage{'s' if len(unlogged) > 1 else ''} {', '.join(escape(n) for n in unlogged)}.")
    if plot:
        out += ["", f"![Training curves]({plot})"]
    return "\n".join(out)


# ---------------------------------------------------------------- per program


def per_program_section(run: RunData) -> str:
    cond = run.conditions.get("final") or next((run.conditions[c] for c in ordered_conditions(run.conditions)), {})
    recs = records(cond, "per_program", *CELL_KEYS)
    if not recs:
        return "No per-program results in the metrics."
    cols = mode_dists(recs)
    programs: dict[str, dict[str, Any]] = {}
    for r in recs:
        p = programs.setdefault(str(r.get("program_id")), {"info": r, "cells": {}, "correct": 0, "n": 0})
        p["cells"][(str(r.get("mode")), str(r.get("distribution")))] = r
        if isinstance(r.get("correct"), int) and isinstance(r.get("n"), int):
            p["correct"] += r["correct"]
            p["n"] += r["n"]

    def score(p: dict[str, Any]) -> float:
        return p["correct"] / p["n"] if p["n"] else 0.0

    header = ["program", "group", "family", "lines"] + [f"{mode_label(m)}, {dist_label(d)}" for m, d in cols]
    rows: list[list[str]] = []
    notes = []
    by_group: dict[str, list[dict[str, Any]]] = {}
    for p in programs.values():
        by_group.setdefault(str(p["info"].get("group")), []).append(p)
    for g in _order(set(by_group), ("without_io", "with_io", "control")):
        ps = sorted(by_group[g], key=lambda p: (-score(p), _natural(p["info"].get("name"))))
        if len(ps) > PER_GROUP_SHOWN:
            notes.append(f"{group_label(g)}: the {TOP_BOTTOM} best and {TOP_BOTTOM} worst of {len(ps)} programs")
            ps = ps[:TOP_BOTTOM] + [None] + ps[-TOP_BOTTOM:]  # type: ignore[list-item]
        for p in ps:
            if p is None:
                rows.append(["…"] + [""] * (len(header) - 1))
                continue
            info = p["info"]
            size = info.get("size_lines")
            row = [code(info.get("name") or info.get("program_id")), group_label(g), escape(info.get("family", "")),
                   str(size) if size is not None else "–"]
            for md in cols:
                c = p["cells"].get(md)
                row.append(f"{c['correct']}/{c['n']}" if c and "correct" in c and "n" in c else "–")
            rows.append(row)
    out = ["Correct/n per program and column" + (f" ({'; '.join(notes)})" if notes else "") + ":", "",
           md_table(header, rows, "llll" + "r" * len(cols))]
    size_table = _by_size_table(cond)
    if size_table:
        out += ["", "**Accuracy by program size** (source lines; test and shifted inputs pooled)", "", size_table]
    return "\n".join(out)


def _natural(name: Any) -> list[Any]:
    """Sort key putting zorbix_2 before zorbix_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def _by_size_table(cond: dict[str, Any]) -> str | None:
    recs = records(cond, "by_size", "group", "mode")
    if not recs:
        return None
    groups = _order({str(r.get("group")) for r in recs}, GROUPS)
    modes = _order({str(r.get("mode")) for r in recs}, tuple(MODE_LABEL))
    sizes = sorted({r.get("size_lines") for r in recs if isinstance(r.get("size_lines"), int)})
    by_key = {(r.get("size_lines"), str(r.get("group")), str(r.get("mode"))): r for r in recs}
    cols = [(g, m) for g in groups for m in modes]
    rows = []
    for s in sizes:
        row = [str(s)]
        for g, m in cols:
            r = by_key.get((s, g, m))
            row.append(f"{pct(r.get('accuracy'))} (n={r.get('n', '?')})" if r else "–")
        rows.append(row)
    return md_table(["lines"] + [f"{group_label(g)}, {mode_label(m)}" for g, m in cols], rows)


# ---------------------------------------------------------------- timings and data


def timings_section(run: RunData) -> str:
    m = run.manifest
    if not m:
        return "No `manifest.json`: timings, hardware and versions are unknown."
    out = []
    steps = m.get("steps") if isinstance(m.get("steps"), dict) else {}
    if steps:
        rows = [[escape(name), duration((s or {}).get("wall_s")), "done" if (s or {}).get("done") else "not finished"]
                for name, s in steps.items() if isinstance(s, dict) or s is None]
        total = sum(_num((s or {}).get("wall_s")) or 0.0 for s in steps.values() if isinstance(s, dict))
        rows.append(["**total**", duration(total), ""])
        out += [md_table(["step", "wall time", "status"], rows, "lrl"), ""]
    else:
        out += ["No step timings in `manifest.json`.", ""]
    facts = []
    if _num(m.get("peak_rss_gb")) is not None:
        facts.append(f"peak memory {m['peak_rss_gb']:.1f} GB (RSS)")
    hw = m.get("hardware") if isinstance(m.get("hardware"), dict) else {}
    if hw:
        bits = [str(hw["cpu"]) if hw.get("cpu") else None,
                f"{hw['cores']} cores" if hw.get("cores") else None,
                f"GPU {hw['gpu']}" if hw.get("gpu") else "no GPU",
                f"{hw['memory_gb']:.0f} GB RAM" if _num(hw.get("memory_gb")) is not None else None]
        facts.append("hardware: " + ", ".join(escape(b) for b in bits if b))
    versions = {"pbb": m.get("pbb_version")} | (m.get("versions") if isinstance(m.get("versions"), dict) else {})
    vs = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    if vs:
        facts.append(f"versions: {escape(vs)}")
    if m.get("started"):
        facts.append(f"started {escape(m['started'])}")
    out += [f"- {f}" for f in facts]
    return "\n".join(out).rstrip()


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out += _flatten(v, key + ".") if isinstance(v, dict) else [(key, v)]
    return out


def data_section(run: RunData) -> str:
    """Suite options, what the build produced (programs, examples, stage datasets) and what it dropped."""
    out = []
    options = run.config.get("suite_options")
    if isinstance(options, dict) and options:
        out.append(f"- suite options: {escape(', '.join(f'{k}={v}' for k, v in options.items()))}")
    dm = run.data_manifest
    if not dm:
        return "\n".join(out + ["", "No `data/manifest.json`: the data build's counts and drops are unknown."]).strip()
    counts = dm.get("counts") if isinstance(dm.get("counts"), dict) else {}
    programs, examples = counts.get("programs"), counts.get("examples")
    if isinstance(programs, dict):
        keys = _order({str(k) for k in programs}, GROUPS)
        out.append("- programs: " + ", ".join(f"{escape(programs[k])} {group_label(k).replace('_', ' ')}" for k in keys))
    if isinstance(examples, dict):
        out.append("- examples per input split: " + ", ".join(f"{escape(k)} {escape(v)}" for k, v in examples.items()))
    stages, kinds = counts.get("stages"), counts.get("stage_kinds")
    if isinstance(stages, dict) and stages:
        kinds = kinds if isinstance(kinds, dict) else {}
        rows = [[escape(name), escape(n), escape(", ".join(f"{k} {v}" for k, v in (kinds.get(name) or {}).items()))]
                for name, n in stages.items()]
        out += ["", md_table(["stage dataset", "records", "of which"], rows, "lrl")]
    # anything else a newer build records, flattened as it is
    rest = {k: v for k, v in counts.items() if k not in ("programs", "examples", "stages", "stage_kinds")}
    if rest:
        out += ["", md_table(["count", "value"], [[escape(k), escape(v)] for k, v in _flatten(rest)])]
    if out:
        out.append("")
    dropped = [d for d in dm.get("dropped") or [] if isinstance(d, dict)]
    if not dropped:
        out.append("No programs or records were dropped.")
    else:
        reasons = Counter(str(d.get("reason", "unknown")).splitlines()[0][:120] if d.get("reason") else "unknown" for d in dropped)
        rows = []
        for reason, n in reasons.most_common(10):
            ids = [str(d.get("id")) for d in dropped if (str(d.get("reason", "unknown")).splitlines() or ["unknown"])[0][:120] == reason]
            rows.append([escape(reason), str(n), escape(", ".join(ids[:3]) + (", …" if len(ids) > 3 else ""))])
        more = len(reasons) - 10
        out += [f"{len(dropped)} dropped during the build:", "", md_table(["reason", "count", "e.g."], rows, "lrl")]
        if more > 0:
            out.append(f"\n(and {more} other reasons; see `data/manifest.json`)")
    short = [d for d in dm.get("input_shortfall") or [] if isinstance(d, dict) and isinstance(d.get("missing"), int)]
    if short:
        per_split: Counter[str] = Counter()
        for d in short:
            per_split[str(d.get("split"))] += d["missing"]
        splits = ", ".join(f"{n} {escape(split)}" for split, n in sorted(per_split.items()))
        programs = len({str(d.get("id")) for d in short})
        out.append(f"\n{programs} program{'s' if programs > 1 else ''} got fewer distinct inputs than asked ({splits} inputs short): "
                   "their cells have smaller n.")
    return "\n".join(out)


# ---------------------------------------------------------------- the whole report


def render_report(run: RunData, plots: dict[str, str]) -> str:
    """The Markdown text of report.md; `plots` maps 'training' / 'accuracy' to relative paths of written PNGs."""
    parts = [f"# PBB report: {escape(run.name)}", "", summary_section(run)]
    if run.problems:
        parts += [""] + [f"> Note: {p}." for p in run.problems]
    parts += ["", "## Headline: the PBB effect", "", headline_section(run)]
    parts += ["", "## Accuracy", "", accuracy_section(run)]
    if plots.get("accuracy"):
        parts += ["", f"![Accuracy by group and mode]({plots['accuracy']})"]
    parts += ["", "## Training", "", training_section(run, plots.get("training"))]
    parts += ["", "## Per program", "", per_program_section(run)]
    parts += ["", "## Timings", "", timings_section(run)]
    parts += ["", "## Data", "", data_section(run)]
    return "\n".join(parts) + "\n"
