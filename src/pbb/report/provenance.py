"""The sections of report.md that say what was run: the experiment in one paragraph, what each group was
trained on (the exposure ledger), the timings and the data build.

The config and the manifests are read as written (they may come from another pbb
version), so their fields are looked up defensively (`pbb.report.format.mapping`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pbb.records import LEDGER_GROUPS, LEDGER_KINDS
from pbb.report.format import (KIND_LABEL, duration, escape, finite, flatten, group_label, mapping, md_table, mode_label,
                               number, ordered, plural, short_label, stages_text)
from pbb.report.load import RunData
from pbb.schema import BASELINES, GROUPS

if TYPE_CHECKING:
    from pbb.records import Ledger


# ---------------------------------------------------------------- the experiment in one paragraph


def _program_counts(run: RunData) -> dict[str, int]:
    """Programs per group as built (data/manifest.json) or, failing that, as configured."""
    counts = mapping(run.data_manifest, "counts")
    for v in (counts, *counts.values()):
        if isinstance(v, dict) and all(isinstance(v.get(g), int) for g in GROUPS):
            return {g: v[g] for g in GROUPS}
    data = mapping(run.config, "data")
    return {g: data[f"n_{g}"] for g in GROUPS if isinstance(data.get(f"n_{g}"), int)}


def summary_section(run: RunData) -> str:
    """One paragraph: model, suite, curriculum (its stages from curriculum.json), groups, inputs, doc kind, seed."""
    cfg = run.config
    stages = stages_text(run.stages, run.doc_kind, run.logs)
    if not cfg:
        text = "The run's `config.yaml` is absent, so the experiment cannot be described; the results below come from `eval/metrics.json`."
        return text + (f" Stages: {stages}." if run.stages else "")
    data, train, ev = mapping(cfg, "data"), mapping(cfg, "train"), mapping(cfg, "eval")
    finetune = "LoRA" if train.get("finetune") == "lora" else "full finetuning"
    suite = f"`{escape(cfg.get('suite', '?'))}`"  # its options (every default filled in) are listed under Data
    counts = _program_counts(run)
    groups = ", ".join(f"{counts[g]} {group_label(g)}" for g in GROUPS if g in counts)
    if data.get("n_composed"):
        groups += f" (+{data['n_composed']} composed, evaluated with w/o IO and reported as their own group)"
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


# ---------------------------------------------------------------- timings and data


def _status(step: dict) -> str:
    """done / not finished, and for a baseline how many of its chunks the generation cache supplied."""
    status = "done" if step.get("done") else "not finished"
    reused, generated = finite(step.get("reused_chunks")), finite(step.get("generated_chunks"))
    if reused:
        status += f" ({int(reused)} of {int(reused + (generated or 0))} chunks' generations read back from the cache)"
    return status


def timings_section(run: RunData) -> str:
    """Wall time per step, peak memory, hardware and versions, from manifest.json."""
    m = run.manifest
    if not m:
        return "No `manifest.json`: timings, hardware and versions are unknown."
    out = []
    steps = mapping(m, "steps")
    if steps:
        rows = [[escape(name), duration((s or {}).get("wall_s")), _status(s or {})]
                for name, s in steps.items() if isinstance(s, dict) or s is None]
        total = sum(finite((s or {}).get("wall_s")) or 0.0 for s in steps.values() if isinstance(s, dict))
        rows.append(["**total**", duration(total), ""])
        out += [md_table(["step", "wall time", "status"], rows, "lrl"), ""]
    else:
        out += ["No step timings in `manifest.json`.", ""]
    facts = []
    if finite(m.get("peak_rss_gb")) is not None:
        facts.append(f"peak memory {m['peak_rss_gb']:.1f} GB (RSS)")
    if hw := mapping(m, "hardware"):
        bits = [str(hw["cpu"]) if hw.get("cpu") else None,
                f"{hw['cores']} cores" if hw.get("cores") else None,
                f"GPU {hw['gpu']}" if hw.get("gpu") else "no GPU",
                f"{hw['memory_gb']:.0f} GB RAM" if finite(hw.get("memory_gb")) is not None else None]
        facts.append("hardware: " + ", ".join(escape(b) for b in bits if b))
    versions = {"pbb": m.get("pbb_version")} | mapping(m, "versions")
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
    if options := mapping(run.config, "suite_options"):
        out.append(f"- suite options: {escape(', '.join(f'{k}={v}' for k, v in options.items()))}")
    dm = run.data_manifest
    if not dm:
        return "\n".join(out + ["", "No `data/manifest.json`: the data build's counts and drops are unknown."]).strip()
    counts = mapping(dm, "counts")
    if programs := mapping(counts, "programs"):
        out.append("- programs: " + ", ".join(f"{escape(programs[k])} {group_label(k).replace('_', ' ')}"
                                              for k in ordered(programs, GROUPS)))
    if examples := mapping(counts, "examples"):
        out.append("- examples per input distribution: " + ", ".join(f"{escape(k)} {escape(v)}" for k, v in examples.items()))
    if stages := mapping(counts, "stages"):
        kinds = mapping(counts, "stage_kinds")
        rows = [[escape(name), escape(n), escape(", ".join(f"{k} {v}" for k, v in mapping(kinds, name).items()))]
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
