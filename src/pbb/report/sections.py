"""The results sections of report.md: the headline PBB effect, the accuracy tables, training, per program.

Sections take the typed records of `pbb.records` (`Cell`, `Effect`, `ProgramResult`,
`SizeRow`). Values that are legitimately absent — a NaN accuracy, an interval that was
not computed (None or []), empty lists — render as '–' or a plain sentence. Composed
programs are a group of their own (`composed`), with a row of all of them and a row per
kind of parts; the sentence that reads an effect is `pbb.report.reading`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pbb.report.format import (cell_text, code, condition_label, dist_label, effect_text, escape, finite, md_table, number,
                               mode_dists, mode_label, natural_key, ordered, ordered_conditions, pct, row_label, short_label)
from pbb.report.load import RunData, log_points
from pbb.report.reading import basis_text, reading, training_basis
from pbb.schema import BASELINES, COMPOSED_PARTS, MODES, REPORTED_GROUPS

if TYPE_CHECKING:
    from pbb.records import Cell, ConditionMetrics, Effect, ProgramResult

PER_GROUP_SHOWN = 12  # above this many programs in a group, show only the best and worst few
TOP_BOTTOM = 5


def _columns(cols: list[tuple[str, str]]) -> list[str]:
    return [f"{mode_label(m)}, {dist_label(d)}" for m, d in cols]


def _rows(cells: list[Cell]) -> list[tuple[str, str | None]]:
    """The (group, parts) rows of some cells: groups in report order, a composed group's split right after it."""
    present = {(c.group, c.parts) for c in cells}
    parts_order = (*COMPOSED_PARTS, "unknown")
    out = []
    for g in ordered((g for g, _ in present), REPORTED_GROUPS):
        splits = sorted((p for gg, p in present if gg == g and p is not None),
                        key=lambda p: (parts_order.index(p) if p in parts_order else len(parts_order), p))
        out += ([(g, None)] if (g, None) in present else []) + [(g, p) for p in splits]
    return out


# ---------------------------------------------------------------- the headline


def _sorted_effects(effects: list[Effect]) -> list[Effect]:
    order = {md: i for i, md in enumerate(mode_dists(effects))}
    return sorted(effects, key=lambda e: order[(e.mode, e.distribution)])


def headline_section(run: RunData) -> str:
    """The PBB effect per mode × distribution with its interval, and a sentence reading each."""
    conds = run.conditions
    with_effects = [c for c in ordered_conditions(conds) if conds[c].pbb_effect]
    cond = "final" if "final" in with_effects else next(iter(with_effects), None)
    if cond is None:
        return "No PBB effect was computed (the metrics hold no `pbb_effect`: were both w/o IO and control evaluated?)."
    effects = _sorted_effects(conds[cond].pbb_effect)
    level = finite(run.metrics.confidence) or 0.95
    rows = [[mode_label(e.mode), dist_label(e.distribution), pct(e.without_io), pct(e.control), effect_text(e)] for e in effects]
    lines = []
    if cond != "final":
        lines.append(f"(No PBB effect after training in the metrics; these numbers are for the {condition_label(cond, run.trained)} condition.)\n")
    elif not run.trained:
        lines.append("(Nothing was trained: w/o IO and control programs are equally unseen, so any effect here is a difference "
                     "between the groups themselves, and should be zero.)\n")
    lines.append(md_table(["mode", "inputs", "w/o IO", "control", f"PBB effect [{level:.0%} interval]"], rows, "llrrr"))
    basis = training_basis(run, cond)
    lines += ["", basis_text(basis), ""]
    lines += [f"- {reading(e, basis)}" for e in effects]
    composed = max((c.n_programs for c in conds[cond].cells if c.group == "composed" and c.parts is None), default=0)
    if composed:
        lines += ["", f"The {composed} composed program{'s are' if composed > 1 else ' is'} not in this effect: "
                  "see the composed rows under Accuracy, split by what the parts are."]
    if by_condition := _effects_by_condition(run):
        lines += ["", "The PBB effect in every evaluated condition (a baseline's should be near zero: "
                  "the base model treats both groups alike):", "", by_condition]
    return "\n".join(lines)


def _effects_by_condition(run: RunData) -> str | None:
    """Rows: condition (checkpoints, baselines); columns: mode × distribution; None if only one condition has effects."""
    conds = {c: run.conditions[c].pbb_effect for c in ordered_conditions(run.conditions) if run.conditions[c].pbb_effect}
    if len(conds) < 2:
        return None
    cols = mode_dists([e for es in conds.values() for e in es])
    rows = []
    for c, es in conds.items():
        by_md = {(e.mode, e.distribution): e for e in es}
        rows.append([short_label(c, run.trained)] + [effect_text(by_md.get(md)) for md in cols])
    return md_table(["condition", *_columns(cols)], rows)


# ---------------------------------------------------------------- accuracy tables


def accuracy_table(cond: ConditionMetrics) -> str:
    """Rows: group (a composed group's split by parts under it); columns: mode × distribution; cells '54.0% [44.1, 63.2] (81/150)'."""
    cols = mode_dists(cond.cells)
    by_key = {(c.group, c.parts, c.mode, c.distribution): c for c in cond.cells}
    rows = [[row_label(g, p)] + [cell_text(by_key.get((g, p, m, d))) for m, d in cols] for g, p in _rows(cond.cells)]
    return md_table(["group", *_columns(cols)], rows)


def _unparsed_table(conds: dict[str, ConditionMetrics], trained: bool) -> str | None:
    """Answers the grader could not parse: rows condition × group, columns mode × distribution; None if all parsed."""
    names = ordered_conditions(conds)
    pooled = {name: [c for c in conds[name].cells if c.parts is None] for name in names}  # a split adds up to its group
    if not any(c.unparsed > 0 for cells in pooled.values() for c in cells):
        return None
    cols = mode_dists([c for cells in pooled.values() for c in cells])
    rows = []
    for name in names:
        by_key = {(c.group, c.mode, c.distribution): c for c in pooled[name]}
        for g, _ in _rows(pooled[name]):
            cells = [by_key.get((g, m, d)) for m, d in cols]
            rows.append([short_label(name, trained), row_label(g)] + [f"{c.unparsed}/{c.n}" if c else "–" for c in cells])
    return md_table(["condition", "group", *_columns(cols)], rows, "ll" + "r" * len(cols))


def _pass_at_k_table(cond: ConditionMetrics) -> str | None:
    """pass@k for k > 1 when several samples were drawn per prompt; None otherwise."""
    ks = sorted({k for c in cond.cells for k in c.pass_at_k if str(k).isdigit() and int(k) > 1}, key=int)
    if not ks:
        return None
    rows = [[row_label(c.group, c.parts), mode_label(c.mode), dist_label(c.distribution)] + [pct(c.pass_at_k.get(k)) for k in ks]
            for c in cond.cells]
    return md_table(["group", "mode", "inputs"] + [f"pass@{k}" for k in ks], rows, "lll" + "r" * len(ks))


def accuracy_section(run: RunData) -> str:
    """An accuracy table per condition (after training, checkpoints, baselines), pass@k, and the unparsed answers."""
    conds = run.conditions
    level = finite(run.metrics.confidence) or 0.95
    nb = run.metrics.n_bootstrap
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
    all_cells = [c for cond in conds.values() for c in cond.cells]
    if unparsed := _unparsed_table(conds, run.trained):
        out += ["", "**Unparsed answers** (counted as wrong)", "", unparsed]
    elif all_cells:
        out += ["", "Every answer parsed."]
    return "\n".join(out)


# ---------------------------------------------------------------- training


def _loss(x: Any) -> str:
    v = finite(x)
    return "–" if v is None else f"{v:.3f}"


def training_section(run: RunData, plot: str | None) -> str:
    """A row per stage (optimizer steps, prompts seen, loss and reward first → last), then the curves."""
    if not run.logs:
        if run.stages == []:
            return "No training: this curriculum evaluates the base model."
        return "No training logs (`logs/*.jsonl` absent): training did not run or did not log."
    rows = []
    for stage, recs in run.logs.items():
        points = log_points(recs)
        losses = [r["loss"] for r in points if finite(r.get("loss")) is not None]
        rewards = [r["reward"] for r in points if finite(r.get("reward")) is not None]
        loss = f"{_loss(losses[0])} → {_loss(losses[-1])}" if losses else "– → –"
        reward = f"{_loss(rewards[0])} → {_loss(rewards[-1])}" if rewards else "–"
        steps = str(int(points[-1]["step"])) if points else "0"
        seen = finite(points[-1].get("prompts_seen")) if points else None  # logs of older versions have none
        rows.append([escape(stage), steps, "–" if seen is None else number(seen), loss, reward, str(run.bad_log_lines.get(stage, 0))])
    unlogged = [s.name for s in run.stages or [] if s.name not in run.logs]
    out = [md_table(["stage", "optimizer steps", "prompts seen", "loss first → last", "reward first → last", "unreadable lines"], rows),
           "", "Prompts seen: prompts trained on, summed over the optimizer steps (an SFT record is one prompt, a GRPO "
           "prompt one however many completions it samples), so SFT and GRPO stages compare on the same count; after whole "
           "epochs it equals the stage's exposures in the ledger."]
    if unlogged:
        out.append(f"\nNo log for stage{'s' if len(unlogged) > 1 else ''} {', '.join(escape(n) for n in unlogged)}.")
    if plot:
        out += ["", f"![Training curves]({plot})"]
    return "\n".join(out)


# ---------------------------------------------------------------- per program


def _program_rows(results: list[ProgramResult], cols: list[tuple[str, str]]) -> tuple[list[list[str]], list[str]]:
    """One row per program, w/o IO first (the PBB test set), then composed, best first; the best and worst few of a large group."""
    programs: dict[str, list[ProgramResult]] = {}
    for r in results:
        programs.setdefault(r.program_id, []).append(r)

    def score(rs: list[ProgramResult]) -> float:
        n = sum(r.n for r in rs)
        return sum(r.correct for r in rs) / n if n else 0.0

    by_group: dict[str, list[list[ProgramResult]]] = {}
    for rs in programs.values():
        by_group.setdefault(rs[0].group, []).append(rs)
    rows: list[list[str]] = []
    notes = []
    for g in ordered(by_group, ("without_io", "composed", "with_io", "control")):
        ps = sorted(by_group[g], key=lambda rs: (-score(rs), natural_key(rs[0].name)))
        shown: list[list[ProgramResult] | None] = list(ps)
        if len(ps) > PER_GROUP_SHOWN:
            notes.append(f"{row_label(g)}: the {TOP_BOTTOM} best and {TOP_BOTTOM} worst of {len(ps)} programs")
            shown = [*ps[:TOP_BOTTOM], None, *ps[-TOP_BOTTOM:]]
        for rs in shown:
            if rs is None:
                rows.append(["…"] + [""] * (3 + len(cols)))
                continue
            info, by_md = rs[0], {(r.mode, r.distribution): r for r in rs}
            size = str(info.size_lines) if info.size_lines > 0 else "–"  # 0: the program was not in the build
            row = [code(info.name or info.program_id), row_label(g, info.parts), escape(info.family), size]
            row += [f"{c.correct}/{c.n}" if (c := by_md.get(md)) else "–" for md in cols]
            rows.append(row)
    return rows, notes


def _by_size_table(cond: ConditionMetrics) -> str | None:
    if not cond.by_size:
        return None
    groups = ordered((r.group for r in cond.by_size), REPORTED_GROUPS)
    modes = ordered((r.mode for r in cond.by_size), MODES)
    by_key = {(r.size_lines, r.group, r.mode): r for r in cond.by_size}
    cols = [(g, m) for g in groups for m in modes]
    rows = []
    for s in sorted({r.size_lines for r in cond.by_size}):
        rows.append([str(s)] + [f"{pct(r.accuracy)} (n={r.n})" if (r := by_key.get((s, g, m))) else "–" for g, m in cols])
    return md_table(["lines"] + [f"{row_label(g)}, {mode_label(m)}" for g, m in cols], rows)


def per_program_section(run: RunData) -> str:
    """Correct/n per program of the final evaluation (or the first condition there is), then accuracy by size."""
    conds = run.conditions
    name = "final" if "final" in conds else next(iter(ordered_conditions(conds)), None)
    cond = conds.get(name) if name else None
    if cond is None or not cond.per_program:
        return "No per-program results in the metrics."
    cols = mode_dists(cond.per_program)
    rows, notes = _program_rows(cond.per_program, cols)
    header = ["program", "group", "family", "lines", *_columns(cols)]
    out = ["Correct/n per program and column" + (f" ({'; '.join(notes)})" if notes else "") + ":", "",
           md_table(header, rows, "llll" + "r" * len(cols))]
    if size_table := _by_size_table(cond):
        out += ["", "**Accuracy by program size** (source lines; test and shifted inputs pooled)", "", size_table]
    return "\n".join(out)
