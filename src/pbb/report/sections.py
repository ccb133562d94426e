"""The sections of report.md, each a function of the loaded run, and the sentence that reads a PBB effect.

Sections take the typed records of `pbb.records` (`Cell`, `Effect`, `ProgramResult`,
`SizeRow`). Values that are legitimately absent — a NaN accuracy, an interval that was
not computed (None or []), empty lists — render as '–' or a plain sentence. The config
and the manifests are read as written (they may come from another pbb version), so
their fields are looked up defensively.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pbb.records import LEDGER_GROUPS, LEDGER_KINDS
from pbb.report.format import (KIND_LABEL, cell_text, ci_pair, code, condition_label, dist_label, duration, effect_text,
                               escape, finite, flatten, group_label, md_table, mode_dists, mode_label, natural_key, number,
                               ordered, ordered_conditions, pct, plural, short_label, stages_text)
from pbb.report.load import RunData, log_points
from pbb.schema import BASELINES, GROUPS, MODES

if TYPE_CHECKING:
    from pbb.records import ConditionMetrics, Effect, Ledger, ProgramResult

PER_GROUP_SHOWN = 12  # above this many programs in a group, show only the best and worst few
TOP_BOTTOM = 5
FAR_BETTER = 0.2  # an effect of 20+ points with its interval above zero reads "far better than chance"


def _mapping(d: Any, key: str) -> dict[str, Any]:
    """`d[key]` when it is a mapping, else {} (a config or manifest from another version)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def _columns(cols: list[tuple[str, str]]) -> list[str]:
    return [f"{mode_label(m)}, {dist_label(d)}" for m, d in cols]


# ---------------------------------------------------------------- the experiment in one paragraph


def _program_counts(run: RunData) -> dict[str, int]:
    """Programs per group as built (data/manifest.json) or, failing that, as configured."""
    counts = _mapping(run.data_manifest, "counts")
    for v in (counts, *counts.values()):
        if isinstance(v, dict) and all(isinstance(v.get(g), int) for g in GROUPS):
            return {g: v[g] for g in GROUPS}
    data = _mapping(run.config, "data")
    return {g: data[f"n_{g}"] for g in GROUPS if isinstance(data.get(f"n_{g}"), int)}


def summary_section(run: RunData) -> str:
    """One paragraph: model, suite, curriculum (its stages from curriculum.json), groups, inputs, doc kind, seed."""
    cfg = run.config
    stages = stages_text(run.stages, run.doc_kind, run.logs)
    if not cfg:
        text = "The run's `config.yaml` is absent, so the experiment cannot be described; the results below come from `eval/metrics.json`."
        return text + (f" Stages: {stages}." if run.stages else "")
    data, train, ev = _mapping(cfg, "data"), _mapping(cfg, "train"), _mapping(cfg, "eval")
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
    doc = "source code" if run.doc_kind == "code" else "natural-language descriptions"
    modes = " and ".join(mode_label(str(m)) for m in ev.get("modes") or []) or "?"
    temp = ev.get("temperature", 0)
    sampling = "greedy" if not temp else f"temperature {temp}, {ev.get('n_samples', 1)} samples per prompt"
    baselines = [short_label(b) for b in BASELINES if b in run.conditions]
    evaluated = f"Evaluated {modes}, {sampling}"
    if baselines:
        evaluated += f", with the {' and '.join(baselines)} baseline{'s' if len(baselines) > 1 else ''}"
    curriculum = escape(cfg.get("curriculum", "?"))
    model = f"`{escape(cfg.get('model', '?'))}`"
    if run.trained:
        what = f"trained {model} ({finetune}) on the {suite} suite with the **{curriculum}** curriculum: {stages}. "
    else:
        what = f"evaluated {model} untrained (curriculum **{curriculum}**) on the {suite} suite. "
    return (
        f"**{escape(run.name)}** {what}"
        f"Programs: {groups or 'counts unknown'}; per program {inputs}. "
        f"Declarative documents hold the {doc} in {plural(data.get('templates_per_program', '?'), 'pointer template')}. "
        f"{evaluated}. Seed {cfg.get('seed', '?')}."
    )


# ---------------------------------------------------------------- what was trained


def ledger_groups(ledger: Ledger) -> list[tuple[str, bool]]:
    """The (group, replay) rows a ledger table shows: every group with records, and control always (it must read 0)."""
    present = {(r.group, r.replay) for r in ledger.rows} | {("control", False)}
    order = {g: i for i, g in enumerate(LEDGER_GROUPS)}
    return sorted(present, key=lambda gr: (gr[1], order.get(gr[0], len(order)), gr[0]))


def ledger_group_label(group: str, replay: bool) -> str:
    """'w/o IO', 'w/ IO (replay)'; a replay file's records are replay by definition."""
    return group_label(group) + (" (replay)" if replay and group != "external" else "")


def exposure_section(run: RunData) -> str:
    """Group × stage exposures (records × epochs) from `data/ledger.json`, and what kinds of record they are."""
    ledger = run.ledger
    if ledger is None:
        return "No `data/ledger.json` (a build of an older version): what each group was trained on is not counted."
    if not ledger.stages:
        return "Nothing was trained: no stage, no exposure."
    stages = [str(s.get("name")) for s in ledger.stages if isinstance(s, dict)]
    epochs = {str(s.get("name")): s.get("epochs") for s in ledger.stages if isinstance(s, dict)}
    header = ["group", *(f"{escape(s)} (×{number(epochs[s])})" for s in stages), "total", "of which (all stages)"]
    rows = []
    for g, rep in ledger_groups(ledger):
        cells = [number(ledger.total(stage=s, group=g, replay=rep)) for s in stages]
        kinds = [f"{KIND_LABEL[k]} {number(n)}" for k in LEDGER_KINDS if (n := ledger.total(group=g, replay=rep, kind=k))]
        rows.append([ledger_group_label(g, rep), *cells, number(ledger.total(group=g, replay=rep)), ", ".join(kinds) or "–"])
    unit = "tokens" if ledger.token_unit == "tokens" else "characters (built without a tokenizer)"
    tokens = ", ".join(f"{escape(s)} {number(sum(r.tokens for r in ledger.rows if r.stage == s))}" for s in stages)
    return "\n".join([
        "Exposures: records × epochs, counted on the stage files (`data/ledger.json`); a CoT example "
        "'+ source' restates the program's source before its trace.",
        "",
        md_table(header, rows, "l" + "r" * (len(stages) + 1) + "l"),
        "",
        f"Size of one pass, in {unit}: {tokens}.",
    ])


# ---------------------------------------------------------------- the headline


def reading(effect: Effect, doc_kind: str = "code") -> str:
    """The one sentence that says what a PBB effect and its interval mean."""
    mode = mode_label(effect.mode)
    head = f"{mode[0].upper() + mode[1:]}, {dist_label(effect.distribution)} inputs: "
    head += f"w/o IO {pct(effect.without_io)} vs control {pct(effect.control)}, PBB effect {effect_text(effect)}"
    ci, e = ci_pair(effect.ci), finite(effect.effect)
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
    lines.append("")
    lines += [f"- {reading(e, run.doc_kind)}" for e in effects]
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
    """Rows: group; columns: mode × distribution; cells '54.0% [44.1, 63.2] (81/150)'."""
    cols = mode_dists(cond.cells)
    by_key = {(c.group, c.mode, c.distribution): c for c in cond.cells}
    rows = [[group_label(g)] + [cell_text(by_key.get((g, m, d))) for m, d in cols]
            for g in ordered((c.group for c in cond.cells), GROUPS)]
    return md_table(["group", *_columns(cols)], rows)


def _unparsed_table(conds: dict[str, ConditionMetrics], trained: bool) -> str | None:
    """Answers the grader could not parse: rows condition × group, columns mode × distribution; None if all parsed."""
    names = ordered_conditions(conds)
    if not any(c.unparsed > 0 for name in names for c in conds[name].cells):
        return None
    cols = mode_dists([c for name in names for c in conds[name].cells])
    rows = []
    for name in names:
        by_key = {(c.group, c.mode, c.distribution): c for c in conds[name].cells}
        for g in ordered((c.group for c in conds[name].cells), GROUPS):
            cells = [by_key.get((g, m, d)) for m, d in cols]
            rows.append([short_label(name, trained), group_label(g)] + [f"{c.unparsed}/{c.n}" if c else "–" for c in cells])
    return md_table(["condition", "group", *_columns(cols)], rows, "ll" + "r" * len(cols))


def _pass_at_k_table(cond: ConditionMetrics) -> str | None:
    """pass@k for k > 1 when several samples were drawn per prompt; None otherwise."""
    ks = sorted({k for c in cond.cells for k in c.pass_at_k if str(k).isdigit() and int(k) > 1}, key=int)
    if not ks:
        return None
    rows = [[group_label(c.group), mode_label(c.mode), dist_label(c.distribution)] + [pct(c.pass_at_k.get(k)) for k in ks]
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
    """One row per program, w/o IO first (the PBB test set), best first; the best and worst few of a large group."""
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
    for g in ordered(by_group, ("without_io", "with_io", "control")):
        ps = sorted(by_group[g], key=lambda rs: (-score(rs), natural_key(rs[0].name)))
        shown: list[list[ProgramResult] | None] = list(ps)
        if len(ps) > PER_GROUP_SHOWN:
            notes.append(f"{group_label(g)}: the {TOP_BOTTOM} best and {TOP_BOTTOM} worst of {len(ps)} programs")
            shown = [*ps[:TOP_BOTTOM], None, *ps[-TOP_BOTTOM:]]
        for rs in shown:
            if rs is None:
                rows.append(["…"] + [""] * (3 + len(cols)))
                continue
            info, by_md = rs[0], {(r.mode, r.distribution): r for r in rs}
            size = str(info.size_lines) if info.size_lines > 0 else "–"  # 0: the program was not in the build
            row = [code(info.name or info.program_id), group_label(g), escape(info.family), size]
            row += [f"{c.correct}/{c.n}" if (c := by_md.get(md)) else "–" for md in cols]
            rows.append(row)
    return rows, notes


def _by_size_table(cond: ConditionMetrics) -> str | None:
    if not cond.by_size:
        return None
    groups = ordered((r.group for r in cond.by_size), GROUPS)
    modes = ordered((r.mode for r in cond.by_size), MODES)
    by_key = {(r.size_lines, r.group, r.mode): r for r in cond.by_size}
    cols = [(g, m) for g in groups for m in modes]
    rows = []
    for s in sorted({r.size_lines for r in cond.by_size}):
        rows.append([str(s)] + [f"{pct(r.accuracy)} (n={r.n})" if (r := by_key.get((s, g, m))) else "–" for g, m in cols])
    return md_table(["lines"] + [f"{group_label(g)}, {mode_label(m)}" for g, m in cols], rows)


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


# ---------------------------------------------------------------- timings and data


def timings_section(run: RunData) -> str:
    """Wall time per step, peak memory, hardware and versions, from manifest.json."""
    m = run.manifest
    if not m:
        return "No `manifest.json`: timings, hardware and versions are unknown."
    out = []
    steps = _mapping(m, "steps")
    if steps:
        rows = [[escape(name), duration((s or {}).get("wall_s")), "done" if (s or {}).get("done") else "not finished"]
                for name, s in steps.items() if isinstance(s, dict) or s is None]
        total = sum(finite((s or {}).get("wall_s")) or 0.0 for s in steps.values() if isinstance(s, dict))
        rows.append(["**total**", duration(total), ""])
        out += [md_table(["step", "wall time", "status"], rows, "lrl"), ""]
    else:
        out += ["No step timings in `manifest.json`.", ""]
    facts = []
    if finite(m.get("peak_rss_gb")) is not None:
        facts.append(f"peak memory {m['peak_rss_gb']:.1f} GB (RSS)")
    if hw := _mapping(m, "hardware"):
        bits = [str(hw["cpu"]) if hw.get("cpu") else None,
                f"{hw['cores']} cores" if hw.get("cores") else None,
                f"GPU {hw['gpu']}" if hw.get("gpu") else "no GPU",
                f"{hw['memory_gb']:.0f} GB RAM" if finite(hw.get("memory_gb")) is not None else None]
        facts.append("hardware: " + ", ".join(escape(b) for b in bits if b))
    versions = {"pbb": m.get("pbb_version")} | _mapping(m, "versions")
    if vs := ", ".join(f"{k} {v}" for k, v in versions.items() if v):
        facts.append(f"versions: {escape(vs)}")
    if m.get("started"):
        facts.append(f"started {escape(m['started'])}")
    out += [f"- {f}" for f in facts]
    return "\n".join(out).rstrip()


def _drops(dropped: list[dict[str, Any]]) -> list[str]:
    """The build's dropped programs and inputs, by reason (first line, capped), ten reasons at most."""
    def reason(d: dict[str, Any]) -> str:
        return (str(d.get("reason") or "unknown").splitlines() or ["unknown"])[0][:120]

    reasons = Counter(reason(d) for d in dropped)
    rows = []
    for r, n in reasons.most_common(10):
        ids = list(dict.fromkeys(str(d.get("id")) for d in dropped if reason(d) == r))  # a program's inputs once
        rows.append([escape(r), str(n), escape(", ".join(ids[:3]) + (", …" if len(ids) > 3 else ""))])
    out = [f"{len(dropped)} dropped during the build:", "", md_table(["reason", "count", "e.g."], rows, "lrl")]
    if len(reasons) > 10:
        out.append(f"\n(and {len(reasons) - 10} other reasons; see `data/manifest.json`)")
    return out


def data_section(run: RunData) -> str:
    """Suite options, what the build produced (programs, examples, stage datasets) and what it dropped."""
    out = []
    if options := _mapping(run.config, "suite_options"):
        out.append(f"- suite options: {escape(', '.join(f'{k}={v}' for k, v in options.items()))}")
    dm = run.data_manifest
    if not dm:
        return "\n".join(out + ["", "No `data/manifest.json`: the data build's counts and drops are unknown."]).strip()
    counts = _mapping(dm, "counts")
    if programs := _mapping(counts, "programs"):
        out.append("- programs: " + ", ".join(f"{escape(programs[k])} {group_label(k).replace('_', ' ')}"
                                              for k in ordered(programs, GROUPS)))
    if examples := _mapping(counts, "examples"):
        out.append("- examples per input distribution: " + ", ".join(f"{escape(k)} {escape(v)}" for k, v in examples.items()))
    if stages := _mapping(counts, "stages"):
        kinds = _mapping(counts, "stage_kinds")
        rows = [[escape(name), escape(n), escape(", ".join(f"{k} {v}" for k, v in _mapping(kinds, name).items()))]
                for name, n in stages.items()]
        out += ["", md_table(["stage dataset", "records", "of which"], rows, "lrl")]
    # anything else a newer build records, flattened as it is
    if rest := {k: v for k, v in counts.items() if k not in ("programs", "examples", "stages", "stage_kinds")}:
        out += ["", md_table(["count", "value"], [[escape(k), escape(v)] for k, v in flatten(rest)])]
    if out:
        out.append("")
    dropped = [d for d in dm.get("dropped") or [] if isinstance(d, dict)]
    out += _drops(dropped) if dropped else ["No programs or records were dropped."]
    short = [d for d in dm.get("input_shortfall") or [] if isinstance(d, dict) and isinstance(d.get("missing"), int)]
    if short:
        per_dist: Counter[str] = Counter()
        for d in short:
            per_dist[str(d.get("distribution", d.get("split")))] += d["missing"]  # `split`: a build of an older version
        dists = ", ".join(f"{n} {escape(dist)}" for dist, n in sorted(per_dist.items()))
        n = len({str(d.get("id")) for d in short})
        out.append(f"\n{n} program{'s' if n > 1 else ''} got fewer distinct inputs than asked ({dists} inputs short): "
                   "their cells have smaller n.")
    return "\n".join(out)
