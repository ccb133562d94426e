"""Metrics from predictions: accuracies with cluster-bootstrap intervals, the PBB effect, pass@k.

Inputs of one program are correlated (a model that has learnt a program gets most of
its inputs right), so intervals come from a **cluster bootstrap over programs**: each
resample draws programs with replacement and pools all their predictions; accuracy is
the pooled ratio (correct / predictions) of the resample. The PBB effect
accuracy(w/o IO) - accuracy(control) resamples the programs of each group
independently. Composed programs are reported as their own group, `composed` (all of
them, then split by what their parts are), and are not in the PBB effect's w/o IO side:
half of them may chain two w/ IO programs. Every bootstrap is seeded by (experiment
seed, cell), so metrics.json is reproducible and does not depend on the order cells are
computed in.

Under the shuffled-code control the w/o IO predictions are also graded against the
shown sources' outputs (`shuffled`, `shuffled_per_program`): both gradings on the same
predictions, and their difference under one paired bootstrap. `budgets` records the
generation caps the evaluation used and each SFT stage's `max_length` and cut records
(`pbb.budgets`); `Cell.capped` counts the completions that hit the cap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pbb.budgets import generation_budgets
from pbb.config import Experiment
from pbb.data.composition import composed_parts, evaluation_group
from pbb.schema import COMPOSED_PARTS
from pbb.errors import PbbError
from pbb.seeds import bootstrap_rng
from pbb.records import (Cell, ConditionMetrics, Effect, Metrics, Prediction, Program, ProgramResult, ShuffledCell,
                         SizeRow)
from pbb.store import RunStore

PASS_AT_K = (1, 2, 5, 10, 20, 50, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021).

    Computed as a product so large n does not overflow.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _quantiles(stats: np.ndarray, confidence: float) -> list[float]:
    alpha = 1.0 - confidence
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return [float(lo), float(hi)]


def bootstrap_ratios(correct: Sequence[float], total: Sequence[float], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` resampled pooled accuracies: programs drawn with replacement (clusters)."""
    c = np.asarray(correct, dtype=float)
    t = np.asarray(total, dtype=float)
    idx = rng.integers(0, len(c), size=(n_boot, len(c)))
    return c[idx].sum(axis=1) / t[idx].sum(axis=1)


def cluster_bootstrap_ci(
    correct: Sequence[float], total: Sequence[float], *, n_boot: int, confidence: float, rng: np.random.Generator
) -> list[float]:
    """Percentile interval of the pooled accuracy under a cluster bootstrap over programs."""
    return _quantiles(bootstrap_ratios(correct, total, n_boot, rng), confidence)


def size_lines(program: Program) -> int:
    """Program size in source lines: the suite's own count if it gives one, else non-blank body lines."""
    if isinstance(program.meta.get("n_lines"), int):
        return int(program.meta["n_lines"])
    lines = [ln for ln in program.source.splitlines() if ln.strip()]
    return max(1, len(lines) - 1)  # minus the `def` line


def _per_item_pass_at_k(records: list[Prediction]) -> dict[str, float]:
    """Mean unbiased pass@k over (program, input) items, for every k up to the fewest samples."""
    items: dict[tuple, list[bool]] = defaultdict(list)
    for r in records:
        items[(r.program_id, r.input)].append(bool(r.correct))
    k_max = min(len(v) for v in items.values())
    out: dict[str, float] = {}
    for k in PASS_AT_K:
        if k > k_max:
            break
        out[str(k)] = float(np.mean([pass_at_k(len(v), sum(v), k) for v in items.values()]))
    return out


def _by_program(records: Iterable[Prediction]) -> dict[str, list[int]]:
    """program_id -> [correct, n], in first-seen order."""
    acc: dict[str, list[int]] = {}
    for r in records:
        a = acc.setdefault(r.program_id, [0, 0])
        a[0] += bool(r.correct)
        a[1] += 1
    return acc


def _group_of(r: Prediction, programs: dict[str, Program]) -> str:
    """The reported group of a prediction: `composed` for a composed program (older files say `without_io`)."""
    p = programs.get(r.program_id)
    return evaluation_group(p) if p is not None else r.group


def _cell(exp: Experiment, condition: str, group: str, mode: str, dist: str, recs: list[Prediction],
          parts: str | None = None) -> Cell:
    per = _by_program(recs)
    c, t = zip(*per.values())
    correct = sum(c)
    key = (group, mode, dist) if parts is None else (group, mode, dist, parts)
    return Cell(
        group=group, mode=mode, distribution=dist, n=len(recs), n_programs=len(per),
        correct=correct, unparsed=sum(not r.parsed for r in recs),
        accuracy=correct / len(recs),
        ci=cluster_bootstrap_ci(c, t, n_boot=exp.eval.n_bootstrap, confidence=exp.eval.confidence,
                                rng=bootstrap_rng(exp.seed, condition, *key)),
        pass_at_k=_per_item_pass_at_k(recs), parts=parts, capped=sum(bool(r.capped) for r in recs),
    )


def condition_metrics(exp: Experiment, records: list[Prediction], programs: dict[str, Program], condition: str) -> ConditionMetrics:
    """cells, pbb_effect, per_program and by_size for one condition's predictions.

    Composed programs are a group of their own (`composed`), with a cell of all of them
    and one per kind of parts (`pbb.data.composition.composed_parts`); the PBB effect
    compares the w/o IO programs alone with the control.
    """
    cfg = exp.eval
    cells_in: dict[tuple[str, str, str], list[Prediction]] = defaultdict(list)
    for r in records:
        cells_in[(_group_of(r, programs), r.mode, r.distribution)].append(r)
    # the configured group order, composed programs right after the w/o IO ones they are evaluated with
    preferred = tuple(x for g in cfg.groups for x in ((g, "composed") if g == "without_io" else (g,)))

    def order(key: tuple[str, str, str]) -> tuple:
        g, m, d = key
        pos = lambda xs, x: xs.index(x) if x in xs else len(xs)  # noqa: E731
        return (pos(preferred, g), g, pos(cfg.modes, m), m, pos(cfg.distributions, d), d)

    def parts_of(pid: str) -> str | None:
        p = programs.get(pid)
        return composed_parts(p, programs) if p is not None else None

    cells = []
    for key in sorted(cells_in, key=order):
        g, m, d = key
        recs = cells_in[key]
        cells.append(_cell(exp, condition, g, m, d, recs))
        if g == "composed":
            by_parts: dict[str, list[Prediction]] = defaultdict(list)
            for r in recs:
                by_parts[parts_of(r.program_id) or "unknown"].append(r)
            for parts in sorted(by_parts, key=lambda x: (COMPOSED_PARTS.index(x) if x in COMPOSED_PARTS else len(COMPOSED_PARTS), x)):
                cells.append(_cell(exp, condition, g, m, d, by_parts[parts], parts=parts))

    effects = []
    modes_dists = sorted({(m, d) for _, m, d in cells_in}, key=lambda md: order(("without_io", *md)))
    for m, d in modes_dists:
        w, ctl = cells_in.get(("without_io", m, d)), cells_in.get(("control", m, d))
        if not w or not ctl:
            continue
        pw, pc = _by_program(w), _by_program(ctl)
        rng = bootstrap_rng(exp.seed, condition, "pbb_effect", m, d)
        cw, tw = zip(*pw.values())
        cc, tc = zip(*pc.values())
        diffs = bootstrap_ratios(cw, tw, cfg.n_bootstrap, rng) - bootstrap_ratios(cc, tc, cfg.n_bootstrap, rng)
        acc_w, acc_c = sum(cw) / sum(tw), sum(cc) / sum(tc)
        effects.append(Effect(mode=m, distribution=d, effect=acc_w - acc_c, ci=_quantiles(diffs, cfg.confidence),
                              without_io=acc_w, control=acc_c))

    per_program = []
    by_size_acc: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for key in sorted(cells_in, key=order):
        g, m, d = key
        for pid, (c, t) in _by_program(cells_in[key]).items():
            prog = programs.get(pid)
            size = size_lines(prog) if prog else 0
            per_program.append(ProgramResult(
                program_id=pid, name=prog.name if prog else "", group=g, family=prog.family if prog else "",
                mode=m, distribution=d, n=t, correct=c, accuracy=c / t, size_lines=size,
                parts=parts_of(pid) if g == "composed" else None,
            ))
            # pooled over distributions (the contract's by_size has no distribution column)
            acc = by_size_acc[(g, m, size)]
            acc[0] += c
            acc[1] += t
    by_size = [
        SizeRow(group=g, mode=m, size_lines=s, n=t, accuracy=c / t)
        for (g, m, s), (c, t) in sorted(by_size_acc.items(), key=lambda kv: (order((kv[0][0], kv[0][1], "")), kv[0][2]))
    ]
    shuffled, shuffled_per_program = shuffled_metrics(exp, [cells_in[k] for k in sorted(cells_in, key=order)
                                                            if k[0] == "without_io"], programs, condition)
    return ConditionMetrics(cells=cells, pbb_effect=effects, per_program=per_program, by_size=by_size,
                            shuffled=shuffled, shuffled_per_program=shuffled_per_program)


def shuffled_metrics(exp: Experiment, wo_cells: list[list[Prediction]], programs: dict[str, Program],
                     condition: str) -> tuple[list[ShuffledCell], list[ProgramResult]]:
    """The shuffled-code control: each w/o IO (mode, distribution) graded against the true and the shown sources' outputs.

    Only predictions with a shuffled grading count (the shown source ran on the input);
    one bootstrap over programs draws both gradings, so their difference is paired.
    """
    cfg = exp.eval
    cells: list[ShuffledCell] = []
    per_program: list[ProgramResult] = []
    for recs in wo_cells:
        graded = [r for r in recs if r.shuffled_correct is not None]
        if not graded:
            continue
        m, d = graded[0].mode, graded[0].distribution
        acc: dict[str, list[int]] = {}  # program id -> [correct (true), correct (shuffled), n]
        for r in graded:
            a = acc.setdefault(r.program_id, [0, 0, 0])
            a[0] += bool(r.correct)
            a[1] += bool(r.shuffled_correct)
            a[2] += 1
        ct, cs, t = (np.asarray(col, dtype=float) for col in zip(*acc.values()))
        rng = bootstrap_rng(exp.seed, condition, "shuffled_code", m, d)
        idx = rng.integers(0, len(t), size=(cfg.n_bootstrap, len(t)))
        totals = t[idx].sum(axis=1)
        boot_true, boot_shuffled = ct[idx].sum(axis=1) / totals, cs[idx].sum(axis=1) / totals
        n = int(t.sum())
        cells.append(ShuffledCell(
            mode=m, distribution=d, n=n, n_programs=len(acc), undefined=len(recs) - len(graded),
            same_output=sum(r.shuffled_expected == r.expected for r in graded),
            correct_true=int(ct.sum()), accuracy_true=float(ct.sum() / n), ci_true=_quantiles(boot_true, cfg.confidence),
            correct_shuffled=int(cs.sum()), accuracy_shuffled=float(cs.sum() / n),
            ci_shuffled=_quantiles(boot_shuffled, cfg.confidence),
            difference=float((cs.sum() - ct.sum()) / n), ci_difference=_quantiles(boot_shuffled - boot_true, cfg.confidence),
        ))
        for pid, (_, c, k) in acc.items():
            prog = programs.get(pid)
            per_program.append(ProgramResult(
                program_id=pid, name=prog.name if prog else "", group="without_io", family=prog.family if prog else "",
                mode=m, distribution=d, n=k, correct=c, accuracy=c / k, size_lines=size_lines(prog) if prog else 0,
            ))
    return cells, per_program


def run_budgets(exp: Experiment, store: RunStore) -> dict:
    """The budgets the run used: each mode's generation cap, each trained SFT stage's max_length and its cut records."""
    try:
        caps = {m: b.to_json() for m, b in generation_budgets(exp, store.data).items()}
    except PbbError:  # the data files are gone (metrics recomputed from predictions alone): the caps are not known
        caps = {}
    out: dict = {"max_new_tokens": caps}
    stages = {}
    for s in exp.curriculum_stages():
        info = store.read_stage_info(s.name)
        if info and "max_length" in info:
            stages[s.name] = {k: info.get(k) for k in ("max_length", "max_length_source", "longest_record", "records", "cut_records")}
    out["max_length"] = stages
    return out


def compute_metrics(exp: Experiment, store: RunStore) -> Metrics:
    """Read every `predictions-<condition>.jsonl` of a run, write and return `metrics.json`."""
    programs = store.data.programs_by_id()
    conditions = {c: condition_metrics(exp, store.read_predictions(c), programs, c) for c in store.prediction_conditions()}
    metrics = Metrics(confidence=exp.eval.confidence, n_bootstrap=exp.eval.n_bootstrap, conditions=conditions,
                      budgets=run_budgets(exp, store))
    store.write_metrics(metrics)
    return metrics
